"""The bulk lattice a defect is measured against: Fourier filtering of the lattice peaks, and a
local reference from translation-equivalent neighbour columns."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree


def fourier_bulk(image: np.ndarray, bragg: np.ndarray) -> np.ndarray:
    """The image keeping only its lattice's Fourier coefficients (and the slow background).

    Point defects spread their power over the whole spectrum, below the Bragg peaks, so they
    vanish from this image: a vacancy's column is filled in, an interstitial removed.

    Args:
        image: HxW float image.
        bragg: bool HxW mask in FFT layout (``lattice.bragg_mask``).

    Returns:
        float32 HxW bulk image.
    """
    mean = float(image.mean())
    f = np.fft.fft2(image - mean)
    return (np.fft.ifft2(f * bragg).real + mean).astype(np.float32)


def sample(image: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``image`` at (N, 2) float (x, y) positions."""
    return ndi.map_coordinates(image, [xy[:, 1], xy[:, 0]], order=1, mode="nearest")


def neighbour_reference(
    observed: np.ndarray, expected: np.ndarray, xy: np.ndarray, spacing: float, similar: float = 0.15
) -> np.ndarray:
    """Per-column reference: median observed intensity of nearby columns of the same kind.

    Columns of one sublattice have the same bulk intensity; neighbours within 2.5 spacings whose
    expected (bulk) intensity is within ``similar`` of the column contrast count as the same kind.

    Args:
        observed: (M,) measured column intensities.
        expected: (M,) bulk intensities at the columns.
        xy: (M, 2) column positions.
        spacing: nearest-neighbour column distance (px).
        similar: tolerance on the expected intensity, as a fraction of its robust range.

    Returns:
        (M,) reference intensities (the column's own expected value where it has no such neighbour).
    """
    k = min(len(xy), 25)
    d, idx = cKDTree(xy).query(xy, k=k)
    rng = np.percentile(expected, 95) - np.percentile(expected, 5) + 1e-12
    same = (np.abs(expected[idx] - expected[:, None]) < similar * rng) & (d > 0) & (d < 2.5 * spacing)
    vals = np.where(same, observed[idx], np.nan)
    ref = np.nanmedian(np.where(same.any(1, keepdims=True), vals, 0.0), axis=1)
    return np.where(same.any(1), ref, expected)
