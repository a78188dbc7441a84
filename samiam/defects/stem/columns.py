"""Atom columns: local maxima of the lattice (bulk) image, refined to sub-pixel positions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from samiam.errors import InputError

# Minimum distance between two columns, as a fraction of the spectral period: the nearest
# neighbours of a honeycomb sit at 2/3 of it, of a square or triangular lattice at >= 1.
MIN_DISTANCE = 0.5
# A column rises above the bulk image's median by this fraction of (99th percentile - median):
# Fourier ripples between synthetic columns stay below 0.05, dim sublattices sit above 0.3.
MIN_CONTRAST = 0.1


@dataclass
class Columns:
    """The atom columns of one image.

    Attributes:
        xy: (M, 2) float sub-pixel (x, y) of each column.
        spacing: median nearest-neighbour distance between columns (px).
    """

    xy: np.ndarray
    spacing: float


def local_maxima(image: np.ndarray, min_distance: float) -> np.ndarray:
    """(N, 2) int (y, x) of the local maxima (5x5) of ``image`` with no brighter maximum within ``min_distance``.

    Maxima are compared with each other, not with every pixel of a disk: a dim column beside a
    bright one is kept even where the bright column's tail, inside the disk, is higher.
    """
    peak = (image == ndi.maximum_filter(image, size=5, mode="nearest")) & (
        image > ndi.minimum_filter(image, size=5, mode="nearest")
    )  # not a flat plateau
    yx = np.argwhere(peak)
    if len(yx) < 2:
        return yx
    val = image[yx[:, 0], yx[:, 1]]
    pairs = cKDTree(yx.astype(np.float64)).query_pairs(min_distance, output_type="ndarray")
    lower = np.where(val[pairs[:, 0]] < val[pairs[:, 1]], pairs[:, 0], pairs[:, 1])
    keep = np.ones(len(yx), bool)
    keep[lower] = False
    return yx[keep]


def refine_subpixel(image: np.ndarray, yx: np.ndarray) -> np.ndarray:
    """(N, 2) float (x, y): each maximum moved to the vertex of a parabola through its 3x3 neighbours."""
    h, w = image.shape
    y = np.clip(yx[:, 0], 1, h - 2)
    x = np.clip(yx[:, 1], 1, w - 2)
    c = image[y, x]

    def step(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        den = lo - 2 * c + hi
        return np.clip(np.where(den < 0, 0.5 * (lo - hi) / np.where(den < 0, den, -1), 0.0), -0.5, 0.5)

    dx = step(image[y, x - 1], image[y, x + 1])
    dy = step(image[y - 1, x], image[y + 1, x])
    return np.stack([x + dx, y + dy], 1).astype(np.float64)


def find_columns(bulk: np.ndarray, period_px: float, source: str = "<array>") -> Columns:
    """Atom columns of the bulk (lattice-only) image.

    A maximum counts when it rises above the image's median by at least a tenth of the
    robust column contrast (99th percentile minus median), which drops the weak ripples the
    Fourier filter leaves between columns.

    Args:
        bulk: HxW bulk image (``bulk.fourier_bulk``).
        period_px: lattice period (px).
        source: name for error messages.

    Returns:
        The columns.

    Raises:
        InputError: fewer than 16 columns found.
    """
    yx = local_maxima(bulk, MIN_DISTANCE * period_px)
    med, top = np.median(bulk), np.percentile(bulk, 99)
    keep = bulk[yx[:, 0], yx[:, 1]] > med + MIN_CONTRAST * (top - med)
    yx = yx[keep]
    if len(yx) < 16:
        raise InputError(f"{source}: {len(yx)} atom column(s) found; expected a lattice of at least 16 columns")
    xy = refine_subpixel(bulk, yx)
    d, _ = cKDTree(xy).query(xy, k=2)
    return Columns(xy, float(np.median(d[:, 1])))
