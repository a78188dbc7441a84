"""Scores of a defect result against labels: box-centroid recall/precision, AMI, pixel IoU, step fraction."""

from __future__ import annotations

import numpy as np


def centroid_in_boxes(centroids: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Bool (n_centroids, n_boxes): centroid (x, y) lies inside box [x, y, w, h] (edges included)."""
    c = np.asarray(centroids, np.float64).reshape(-1, 2)
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    inside_x = (c[:, None, 0] >= b[None, :, 0]) & (c[:, None, 0] <= b[None, :, 0] + b[None, :, 2])
    inside_y = (c[:, None, 1] >= b[None, :, 1]) & (c[:, None, 1] <= b[None, :, 1] + b[None, :, 3])
    return inside_x & inside_y


def detection_scores(centroids: np.ndarray, boxes: np.ndarray) -> dict:
    """Recall and precision with the box-centroid rules.

    A labelled box is found when some detection's centroid lies inside it; a detection is true
    when its centroid lies inside some labelled box.

    Args:
        centroids: (N, 2) detection centroids (x, y).
        boxes: (M, 4) labelled boxes [x, y, w, h].

    Returns:
        Dict with found, n_boxes, true_detections, n_detections, recall, precision, and
        ``box_match``: for each box, the index of the detection whose centroid is nearest the box
        centre among those inside it (-1 if none).
    """
    inside = centroid_in_boxes(centroids, boxes)
    n_det, n_box = inside.shape
    found = inside.any(axis=0)
    true_det = inside.any(axis=1)
    match = np.full(n_box, -1, int)
    if n_det and n_box:
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        centre = b[:, :2] + b[:, 2:] / 2
        dist = np.linalg.norm(np.asarray(centroids, np.float64)[:, None, :] - centre[None], axis=2)
        dist = np.where(inside, dist, np.inf)
        match = np.where(found, dist.argmin(axis=0), -1)
    return {
        "found": int(found.sum()),
        "n_boxes": int(n_box),
        "true_detections": int(true_det.sum()),
        "n_detections": int(n_det),
        "recall": float(found.mean()) if n_box else float("nan"),
        "precision": float(true_det.mean()) if n_det else float("nan"),
        "box_match": match,
    }


def pixel_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two binary masks (1.0 when both are empty)."""
    p, t = np.asarray(pred, bool), np.asarray(truth, bool)
    union = int((p | t).sum())
    return 1.0 if union == 0 else float((p & t).sum() / union)


def flagged_fraction(mask: np.ndarray, region: np.ndarray) -> float:
    """Fraction of ``region`` pixels that are set in ``mask`` (nan if the region is empty)."""
    r = np.asarray(region, bool)
    n = int(r.sum())
    return float("nan") if n == 0 else float((np.asarray(mask, bool) & r).sum() / n)
