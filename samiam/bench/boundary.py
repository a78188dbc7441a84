"""Boundary bands of binary masks and the Boundary IoU of Cheng et al. (2021).

Source: B. Cheng, R. Girshick, P. Dollar, A. C. Berg, A. Kirillov, "Boundary IoU: Improving
Object-Centric Image Segmentation Evaluation", CVPR 2021, and its reference code
(github.com/bowenc0221/boundary-iou-api, ``boundary_iou/utils/boundary_utils.py``):

    d        = max(1, round(ratio * sqrt(H^2 + W^2)))          ratio = 0.02
    B(X)     = X minus erode(X, 3x3 square kernel, d iterations), computed on X padded by one
               row/column of zeros, so that a mask cut by the image border has a boundary there
    BIoU(A,B)= |B(A) & B(B)| / |B(A) | B(B)|

``d`` iterations of a 3x3 erosion equal one erosion by a (2d+1)x(2d+1) square, and the zero
padding equals a zero constant border; that is what ``mask_boundary`` computes (one OpenCV call
on the mask's bounding box), exactly equal to the reference.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

DEFAULT_RATIO = 0.02


def boundary_width(height: int, width: int, ratio: float = DEFAULT_RATIO) -> int:
    """Return the boundary band width ``d = max(1, round(ratio * image diagonal))`` in pixels.

    Args:
        height: image height.
        width: image width.
        ratio: fraction of the image diagonal (0.02 in Cheng et al.).

    Returns:
        The band width, at least 1.
    """
    if ratio <= 0:
        raise ValueError(f"boundary ratio must be > 0, got {ratio}")
    return max(1, int(round(ratio * math.sqrt(height**2 + width**2))))


def mask_boundary(mask: np.ndarray, d: int) -> np.ndarray:
    """Return the inner boundary band of width ``d`` of a binary mask.

    A pixel of the mask is on the boundary when a pixel outside the mask (or outside the
    image) lies within Chebyshev distance ``d`` of it.

    Args:
        mask: HxW boolean (or 0/1) array.
        d: band width in pixels (>= 1).

    Returns:
        HxW boolean boundary mask (a subset of ``mask``).
    """
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {mask.shape}")
    m = mask.astype(bool, copy=False)
    out = np.zeros(m.shape, bool)
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return out
    cols = np.flatnonzero(m.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    # Outside the bounding box the mask is empty, so eroding the crop with a zero border is exact.
    crop = np.ascontiguousarray(m[y0:y1, x0:x1], dtype=np.uint8)
    kernel = np.ones((2 * d + 1, 2 * d + 1), np.uint8)
    eroded = cv2.erode(crop, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    out[y0:y1, x0:x1] = m[y0:y1, x0:x1] & (eroded == 0)
    return out


def boundary_iou(a: np.ndarray, b: np.ndarray, ratio: float = DEFAULT_RATIO) -> float:
    """Boundary IoU of two masks of one image (1.0 when both are empty).

    Args:
        a: HxW boolean mask.
        b: HxW boolean mask of the same shape.
        ratio: band width as a fraction of the image diagonal.

    Returns:
        ``|B(a) & B(b)| / |B(a) | B(b)|``.
    """
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {a.shape} vs {b.shape}")
    d = boundary_width(*a.shape, ratio=ratio)
    ba, bb = mask_boundary(a, d), mask_boundary(b, d)
    union = int(np.count_nonzero(ba | bb))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(ba & bb)) / union
