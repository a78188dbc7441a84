import numpy as np
import pytest

from samiam.defects.scoring import detection_scores, flagged_fraction, pixel_iou


def test_detection_scores_follow_the_box_centroid_rules():
    boxes = np.array([[0, 0, 10, 10], [20, 20, 5, 5], [50, 50, 4, 4]])
    cents = np.array([[5, 5], [6, 4], [22, 24], [40, 40]])
    s = detection_scores(cents, boxes)
    assert s["found"] == 2 and s["recall"] == pytest.approx(2 / 3)
    assert s["true_detections"] == 3 and s["precision"] == pytest.approx(3 / 4)
    assert list(s["box_match"]) == [0, 2, -1]


def test_empty_detection_sets():
    s = detection_scores(np.zeros((0, 2)), np.array([[0, 0, 3, 3]]))
    assert s["recall"] == 0.0 and np.isnan(s["precision"])


def test_pixel_iou_and_flagged_fraction():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[:2] = True
    b[1:3] = True
    assert pixel_iou(a, b) == pytest.approx(4 / 12)
    assert pixel_iou(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0
    assert flagged_fraction(a, b) == pytest.approx(0.5)
