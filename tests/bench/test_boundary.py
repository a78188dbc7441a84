"""Boundary bands and Boundary IoU against the reference definition of Cheng et al. (2021)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from samiam.bench.boundary import boundary_iou, boundary_width, mask_boundary


def reference_boundary(mask: np.ndarray, dilation_ratio: float = 0.02) -> np.ndarray:
    """The boundary-iou-api definition: zero pad, 3x3 erosion iterated d times, mask minus erosion."""
    mask = mask.astype(np.uint8)
    h, w = mask.shape
    dilation = max(1, int(round(dilation_ratio * np.sqrt(h**2 + w**2))))
    padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    eroded = cv2.erode(padded, np.ones((3, 3), np.uint8), iterations=dilation)[1 : h + 1, 1 : w + 1]
    return mask - eroded


def reference_boundary_iou(gt: np.ndarray, dt: np.ndarray, dilation_ratio: float = 0.02) -> float:
    gb, db = reference_boundary(gt, dilation_ratio), reference_boundary(dt, dilation_ratio)
    return ((gb * db) > 0).sum() / ((gb + db) > 0).sum()


def random_blobs(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    noise = cv2.GaussianBlur(rng.random((h, w)), (0, 0), rng.uniform(1.0, 10.0))
    return noise > np.quantile(noise, rng.uniform(0.2, 0.8))


def test_band_width_follows_the_image_diagonal():
    assert boundary_width(1024, 1024) == 29  # 0.02 * 1448.2 = 28.96
    assert boundary_width(100, 100) == 3  # 2.83
    assert boundary_width(20, 20) == 1  # 0.57 rounds to 1
    assert boundary_width(5, 5) == 1  # 0.14 rounds to 0, clamped to 1
    with pytest.raises(ValueError):
        boundary_width(10, 10, ratio=0)


def test_boundary_iou_matches_reference_on_random_masks():
    rng = np.random.default_rng(3)
    for _ in range(40):
        h, w = (int(v) for v in rng.integers(8, 260, size=2))
        a, b = random_blobs(rng, h, w), random_blobs(rng, h, w)
        ratio = float(rng.choice([0.005, 0.02, 0.05]))
        assert boundary_iou(a, b, ratio) == pytest.approx(reference_boundary_iou(a, b, ratio), abs=1e-9)
        d = boundary_width(h, w, ratio)
        np.testing.assert_array_equal(mask_boundary(a, d), reference_boundary(a, ratio).astype(bool))


def test_region_touching_the_border_has_a_boundary_along_the_border():
    # 100x100, top half: d = 3. Band = rows 0-2 (image border), rows 47-49 (interface),
    # and columns 0-2 and 97-99 (image border) for rows 3-46: 600 + 6 * 44 = 864 pixels.
    mask = np.zeros((100, 100), bool)
    mask[:50] = True
    band = mask_boundary(mask, boundary_width(100, 100))
    assert band.sum() == 864
    assert band[0].all() and band[49].all() and band[:50, 0].all()
    assert not band[3:47, 3:97].any()


def test_boundary_iou_of_a_shifted_border_region_by_hand():
    # 20x20, d = 1. Region = columns 0-9: band = columns 0 and 9 (40) + rows 0/19 in columns 1-8 (16) = 56.
    # Prediction = columns 0-8: band = columns 0 and 8 (40) + rows 0/19 in columns 1-7 (14) = 54.
    # Shared: column 0 (20) + rows 0/19 in columns 1-8 (16) = 36. BIoU = 36 / (56 + 54 - 36) = 36/74.
    gt = np.zeros((20, 20), bool)
    gt[:, :10] = True
    pred = np.zeros((20, 20), bool)
    pred[:, :9] = True
    assert boundary_iou(gt, pred) == pytest.approx(36 / 74, abs=1e-12)
    assert boundary_iou(gt, gt) == 1.0


def test_empty_masks():
    empty = np.zeros((30, 30), bool)
    assert not mask_boundary(empty, 2).any()
    assert boundary_iou(empty, empty) == 1.0
    full = ~empty
    assert boundary_iou(empty, full) == 0.0
