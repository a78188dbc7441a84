"""Flatten STM height maps: row alignment (line-by-line background) and plane subtraction."""

from __future__ import annotations

import numpy as np

from samiam.errors import InputError


def check_heights(heights: np.ndarray, source: str = "<array>") -> np.ndarray:
    """Check that ``heights`` is a finite 2-D array and return it as float64.

    Args:
        heights: the height map.
        source: name used in error messages.

    Returns:
        float64 copy of the heights.

    Raises:
        InputError: not 2-D, too small, or with NaN/infinite values.
    """
    arr = np.asarray(heights)
    if arr.ndim != 2:
        raise InputError(f"{source}: expected a 2-D height map, got an array of shape {arr.shape}")
    if min(arr.shape) < 16:
        raise InputError(f"{source}: height map is {arr.shape[1]}x{arr.shape[0]}; at least 16x16 is needed")
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{source}: expected numeric heights, got dtype {arr.dtype}")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise InputError(f"{source}: {int(bad.sum())} height value(s) are NaN or infinite; expected finite heights")
    return arr.astype(np.float64)


def align_rows(heights: np.ndarray) -> np.ndarray:
    """Remove a constant offset per scan line by the median of differences to the previous line.

    The median of row-to-row differences ignores the few pixels where a step edge or a defect
    crosses, so step edges keep their height while scan-line jumps vanish.

    Args:
        heights: HxW heights (rows are scan lines).

    Returns:
        HxW heights with row offsets removed (mean offset zero).
    """
    diffs = np.median(np.diff(heights, axis=0), axis=1)
    offsets = np.concatenate([[0.0], np.cumsum(diffs)])
    offsets -= offsets.mean()
    return heights - offsets[:, None]


def fit_plane(heights: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Least-squares plane a + b*x + c*y over the pixels with non-zero weight.

    Args:
        heights: HxW heights.
        weights: optional HxW mask/weights (pixels with weight 0 are ignored).

    Returns:
        HxW plane values.
    """
    h, w = heights.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    xx = xx / max(w - 1, 1) - 0.5
    yy = yy / max(h - 1, 1) - 0.5
    sel = np.ones((h, w), bool) if weights is None else np.asarray(weights) > 0
    if sel.sum() < 3:
        sel = np.ones((h, w), bool)
    # normal equations of the 3-parameter fit (3x3), cheaper than lstsq on an (H*W, 3) matrix
    cols = np.stack([np.ones(int(sel.sum())), xx[sel], yy[sel]])
    gram = cols @ cols.T
    rhs = cols @ np.asarray(heights, np.float64)[sel]
    coef = np.linalg.lstsq(gram, rhs, rcond=None)[0]
    return coef[0] + coef[1] * xx + coef[2] * yy


def robust_plane(heights: np.ndarray, mask: np.ndarray | None = None, iterations: int = 3) -> np.ndarray:
    """Plane fit that re-fits after dropping outliers (> 3 robust sigma), so defects do not tilt it.

    Args:
        heights: HxW heights.
        mask: optional boolean HxW pixels allowed in the fit.
        iterations: number of re-fits.

    Returns:
        HxW plane values.
    """
    keep = np.ones(heights.shape, bool) if mask is None else mask.copy()
    plane = fit_plane(heights, keep)
    for _ in range(iterations):
        resid = heights - plane
        med = np.median(resid[keep]) if keep.any() else 0.0
        sigma = robust_sigma(resid[keep]) if keep.any() else 0.0
        if sigma <= 0:
            break
        inliers = np.abs(resid - med) <= 3.0 * sigma
        if mask is not None:
            inliers &= mask
        if inliers.sum() < 3:
            break
        keep = inliers
        plane = fit_plane(heights, keep)
    return plane


def robust_sigma(values: np.ndarray) -> float:
    """1.4826 x median absolute deviation: the standard deviation of Gaussian noise, robust to outliers."""
    v = np.asarray(values, np.float64).ravel()
    if v.size == 0:
        return 0.0
    mad = float(np.median(np.abs(v - np.median(v))))
    if mad == 0.0:
        return float(v.std())
    return 1.4826 * mad


def flatten_heights(heights: np.ndarray, *, plane: bool = True, lines: bool = True) -> np.ndarray:
    """Flatten a height map as STM users expect: line-by-line alignment, then a robust plane.

    Args:
        heights: HxW finite heights.
        plane: subtract a robust plane.
        lines: remove per-scan-line offsets (median of differences).

    Returns:
        float64 HxW flattened heights with median 0.
    """
    out = np.asarray(heights, np.float64)
    if lines:
        out = align_rows(out)
    if plane:
        out = out - robust_plane(out)
    return out - np.median(out)
