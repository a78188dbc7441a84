"""From a posterior on the window grid to a full-resolution label map."""

from __future__ import annotations

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter


def smooth_posterior(posterior: np.ndarray, sigma_cells: float) -> np.ndarray:
    """Spatially smooth a grid posterior (Gaussian on the log-probabilities), renormalised.

    Args:
        posterior: (rows, cols, K) probabilities.
        sigma_cells: smoothing in grid cells (0 = none).

    Returns:
        (rows, cols, K) probabilities (all-zero rows, windows without texture, stay zero).
    """
    if sigma_cells <= 0:
        return posterior
    logp = np.log(np.clip(posterior, 1e-6, 1.0))
    logp = gaussian_filter(logp, (sigma_cells, sigma_cells, 0), mode="nearest")
    logp -= logp.max(-1, keepdims=True)
    p = np.exp(logp)
    known = posterior.sum(-1, keepdims=True) > 0  # windows without texture stay without a material
    return (p / p.sum(-1, keepdims=True) * known).astype(np.float32)


def upsample_posterior(
    posterior: np.ndarray, centre_y: np.ndarray, centre_x: np.ndarray, shape: tuple[int, int]
) -> np.ndarray:
    """Bilinear upsampling of a grid posterior to the image, between the window centres.

    Args:
        posterior: (rows, cols, K) probabilities.
        centre_y, centre_x: pixel coordinates of the grid rows' and columns' window centres.
        shape: (H, W) of the image; pixels beyond the outer centres take the nearest cell.

    Returns:
        (H, W, K) float32 probabilities.
    """
    h, w = shape
    rows, cols, k = posterior.shape
    ys = np.interp(np.arange(h), centre_y, np.arange(rows)).astype(np.float32)
    xs = np.interp(np.arange(w), centre_x, np.arange(cols)).astype(np.float32)
    map_x = np.ascontiguousarray(np.broadcast_to(xs[None, :], (h, w)))
    map_y = np.ascontiguousarray(np.broadcast_to(ys[:, None], (h, w)))
    out = np.empty((h, w, k), np.float32)
    for c in range(0, k, 4):  # cv2.remap takes at most 4 channels
        chans = np.ascontiguousarray(posterior[:, :, c : c + 4].astype(np.float32))
        res = cv2.remap(chans, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out[:, :, c : c + 4] = res.reshape(h, w, -1)
    return out
