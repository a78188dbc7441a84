"""Deviations from the bulk: per-column intensity z-scores and off-lattice residual peaks.

Noise is estimated from the image itself: robust (median / MAD) z-scores of the column
deviations, per bin of bulk intensity (sublattices differ in brightness and so in shot noise),
and of the residual at off-lattice pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from samiam.defects.stem.bulk import neighbour_reference, sample
from samiam.defects.stem.columns import local_maxima

# Smoothing (fraction of the column spacing) before measuring: about the probe size, so the
# sample at a column is a weighted column intensity.
SMOOTH = 0.2
# Off-lattice pixels are at least this far (fraction of the column spacing) from every column: the
# midpoint of a nearest-neighbour bond is the closest point *between* two columns. Nearer peaks are
# the other half of a displaced column's residual dipole, not an extra column.
OFF_LATTICE = 0.5
MAD_TO_SIGMA = 1.4826


def robust_z(values: np.ndarray, groups: np.ndarray | None = None, reference: np.ndarray | None = None) -> np.ndarray:
    """(values - median) / (1.4826 MAD), per group when ``groups`` (int labels) is given.

    ``reference`` (bool) restricts the values the median and MAD are taken from (e.g. away from the edge).
    """
    values = np.asarray(values, np.float64)
    out = np.zeros_like(values)
    g = np.zeros(len(values), int) if groups is None else groups
    ref = np.ones(len(values), bool) if reference is None else reference
    for k in np.unique(g):  # a handful of groups
        v = values[(g == k) & ref] if ((g == k) & ref).any() else values[g == k]
        med = np.median(v)
        mad = MAD_TO_SIGMA * np.median(np.abs(v - med)) + 1e-12
        out[g == k] = (values[g == k] - med) / mad
    return out


def intensity_bins(expected: np.ndarray, n: int = 4) -> np.ndarray:
    """Quantile bins (0..n-1) of the columns' bulk intensity."""
    if len(expected) < 8 * n:
        return np.zeros(len(expected), int)
    edges = np.quantile(expected, np.linspace(0, 1, n + 1)[1:-1])
    return np.searchsorted(edges, expected)


@dataclass
class ColumnDeviations:
    """Per-column deviations from the bulk.

    Attributes:
        observed: (M,) smoothed image at each column.
        expected: (M,) bulk (Fourier) image at each column.
        reference: (M,) the value each column is compared with (``method``).
        z: (M,) robust z-score of observed - reference.
        relative: (M,) (observed - reference) / the column's contrast over the background.
        method: "fourier" or "neighbours".
    """

    observed: np.ndarray
    expected: np.ndarray
    reference: np.ndarray
    z: np.ndarray
    relative: np.ndarray
    method: str


def column_deviations(
    smoothed: np.ndarray,
    bulk: np.ndarray,
    xy: np.ndarray,
    spacing: float,
    method: str = "fourier",
    border: float = 0.0,
) -> ColumnDeviations:
    """Intensity of every column against the bulk.

    Args:
        smoothed: HxW smoothed image.
        bulk: HxW smoothed bulk image.
        xy: (M, 2) column positions.
        spacing: column spacing (px).
        method: "fourier": reference = bulk image at the column; "neighbours": median of nearby
            columns of the same sublattice.
        border: columns within this many px of the edge (where the Fourier bulk is poorer) do not
            enter the noise estimate.

    Returns:
        The deviations.
    """
    if method not in ("fourier", "neighbours"):
        raise ValueError(f"expected method 'fourier' or 'neighbours', got '{method}'")
    obs = sample(smoothed, xy)
    exp = sample(bulk, xy)
    ref = exp if method == "fourier" else neighbour_reference(obs, exp, xy, spacing)
    background = float(np.percentile(bulk, 2))
    contrast = np.maximum(exp - background, 1e-6 + 0.05 * (np.median(exp) - background))
    dev = obs - ref
    h, w = smoothed.shape
    inner = (xy[:, 0] >= border) & (xy[:, 0] < w - border) & (xy[:, 1] >= border) & (xy[:, 1] < h - border)
    bins = intensity_bins(exp[inner])
    edges = np.quantile(exp[inner], np.linspace(0, 1, bins.max() + 2)[1:-1]) if inner.sum() else []
    z = robust_z(dev, np.searchsorted(edges, exp), inner)
    return ColumnDeviations(obs, exp, ref, z, dev / contrast, method)


@dataclass
class OffLatticePeaks:
    """Maxima of the residual away from every column.

    Attributes:
        xy: (K, 2) float (x, y).
        z: (K,) robust z-score of the residual (noise from all off-lattice pixels).
        relative: (K,) residual / the median column contrast.
        distance: (K,) distance to the nearest column / column spacing.
    """

    xy: np.ndarray
    z: np.ndarray
    relative: np.ndarray
    distance: np.ndarray


def off_lattice_peaks(
    residual: np.ndarray, xy: np.ndarray, spacing: float, contrast: float, border: int = 0
) -> OffLatticePeaks:
    """Local maxima of the residual farther than ``OFF_LATTICE`` spacings from every column.

    A maximum of the whole residual (not of the masked one) is kept, so the tail of a bright
    column does not make an off-lattice peak at the edge of the mask.

    Args:
        residual: HxW smoothed image minus smoothed bulk.
        xy: (M, 2) columns.
        spacing: column spacing (px).
        contrast: median column contrast over the background (for ``relative``).
        border: pixels within this many px of the edge do not enter the noise estimate.

    Returns:
        The peaks.
    """
    h, w = residual.shape
    tree = cKDTree(xy)
    sub = np.mgrid[border : h - border : 2, border : w - border : 2].reshape(2, -1).T  # every 4th pixel: the noise
    dsub, _ = tree.query(sub[:, ::-1].astype(np.float64))
    offv = residual[sub[:, 0], sub[:, 1]][dsub > OFF_LATTICE * spacing]
    med = float(np.median(offv)) if len(offv) else 0.0
    mad = MAD_TO_SIGMA * float(np.median(np.abs(offv - med))) + 1e-12 if len(offv) else 1.0
    yx = local_maxima(residual, 0.5 * spacing)
    yx = yx[residual[yx[:, 0], yx[:, 1]] > med + 2 * mad]
    pxy = yx[:, ::-1].astype(np.float64)
    d, _ = tree.query(pxy) if len(pxy) else (np.zeros(0), None)
    keep = d > OFF_LATTICE * spacing
    pxy, yx, d = pxy[keep], yx[keep], d[keep]
    vals = residual[yx[:, 0], yx[:, 1]]
    return OffLatticePeaks(pxy, (vals - med) / mad, vals / max(contrast, 1e-12), d / spacing)


def smooth(image: np.ndarray, spacing: float, fraction: float = SMOOTH) -> np.ndarray:
    """Gaussian smoothing at about the probe size (``fraction`` x column spacing)."""
    return ndi.gaussian_filter(image.astype(np.float32), fraction * spacing)
