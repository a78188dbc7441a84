"""Metrics pinned on hand-made cases (values worked out by hand) and against a naive per-pair loop."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from samiam.bench.boundary import boundary_iou, boundary_width, mask_boundary
from samiam.bench.metrics import PAPER_DIFFICULTY_WEIGHTS, REGION_METRICS, score_image

# 10x10 image, d = 1. Region 1 = columns 0-4, region 2 = columns 5-9 (50 pixels each).
LABELS = np.ones((10, 10), np.uint8)
LABELS[:, 5:] = 2
LEFT = LABELS == 1
RIGHT = LABELS == 2
TOP_LEFT = LEFT.copy()
TOP_LEFT[5:] = False
BOTTOM_LEFT = LEFT & ~TOP_LEFT


def region(score, label):
    return next(r for r in score.regions if r.label == label)


def test_perfect_prediction():
    s = score_image(np.stack([LEFT, RIGHT]), LABELS)
    for r in s.regions:
        assert (r.miou, r.recall, r.precision, r.false_positive) == (1.0, 1.0, 1.0, 0.0)
        assert (r.boundary_miou, r.boundary_recall, r.boundary_precision) == (1.0, 1.0, 1.0)
        assert (r.best_iou, r.best_boundary_iou, r.hungarian_iou, r.n_matched) == (1.0, 1.0, 1.0, 1)
    assert (s.n_pred, s.n_regions, s.n_unmatched) == (2, 2, 0)
    assert s.summary()["hungarian_miou"] == 1.0


def test_region_split_in_halves():
    s = score_image([TOP_LEFT, BOTTOM_LEFT, RIGHT], LABELS)
    r1 = region(s, 1)
    # each half: 25 / 50
    assert r1.miou == 0.5 and r1.best_iou == 0.5
    assert r1.false_positive == pytest.approx(0.5)  # 0.5 + 0.5 - max
    assert r1.recall == 1.0 and r1.precision == 1.0
    assert r1.hungarian_iou == 0.5 and r1.n_matched == 2
    # boundaries (d = 1): B(region 1) = columns 0 and 4 + rows 0/9 in columns 1-3 = 26 px;
    # B(half) = 25 - 9 interior = 16 px, 13 of them on B(region 1): BIoU = 13 / (26 + 16 - 13) = 13/29.
    assert r1.boundary_miou == pytest.approx(13 / 29)
    assert r1.boundary_false_positive == pytest.approx(13 / 29)
    # both half bands cover all of B(region 1); together they are 32 px (the split line is false)
    assert r1.boundary_recall == 1.0
    assert r1.boundary_precision == pytest.approx(26 / 32)
    assert region(s, 2).miou == 1.0
    summary = s.summary()
    assert summary["miou"] == pytest.approx(0.75)
    assert summary["hungarian_miou"] == pytest.approx(0.75)
    assert summary["n_pred"] == 3


def test_one_mask_covering_everything():
    s = score_image([np.ones((10, 10), bool)], LABELS)
    for r in s.regions:
        assert r.miou == 0.5 and r.best_iou == 0.5 and r.false_positive == 0.0
        assert r.recall == 1.0 and r.precision == 0.5
    # ring of the full mask = 36 px; B(region) = 26 px; shared = column 0 or 9 (10) + rows 0/9 (8) = 18
    r1 = region(s, 1)
    assert r1.boundary_miou == pytest.approx(18 / 44)
    assert r1.boundary_recall == pytest.approx(18 / 26)
    assert r1.boundary_precision == pytest.approx(18 / 36)
    # one mask can be assigned to one region only
    assert sorted(r.hungarian_iou for r in s.regions) == [0.0, 0.5]
    assert s.summary()["hungarian_miou"] == pytest.approx(0.25)


def test_empty_prediction():
    s = score_image(np.zeros((0, 10, 10), bool), LABELS)
    assert (s.n_pred, s.n_regions, s.n_unmatched) == (0, 2, 0)
    for r in s.regions:
        for metric in REGION_METRICS:
            assert getattr(r, metric) == 0.0, metric
    # an all-empty mask is also no match
    s = score_image([np.zeros((10, 10), bool)], LABELS)
    assert s.n_unmatched == 1 and s.summary()["miou"] == 0.0


def test_ignored_pixels_are_excluded_from_every_count():
    labels = LABELS.copy()
    labels[:, 4:6] = 0  # ignore band at the interface
    # masks reaching into the ignore band are perfect once ignored pixels are removed
    s = score_image([LEFT, RIGHT], labels)
    for r in s.regions:
        assert r.area == 40
        assert r.miou == 1.0 and r.boundary_miou == 1.0 and r.precision == 1.0
    # a mask lying only on ignored pixels matches nothing
    band = labels == 0
    s = score_image([band], labels)
    assert s.n_unmatched == 1 and s.summary()["recall"] == 0.0


def test_five_percent_match_threshold():
    two, three = np.zeros((10, 10), bool), np.zeros((10, 10), bool)
    two[0, :2] = True  # IoU 2/50 = 0.04: not matched
    three[0, :3] = True  # IoU 3/50 = 0.06: matched
    s = score_image([LEFT, two], LABELS)
    assert region(s, 1).n_matched == 1 and region(s, 1).miou == 1.0 and s.n_unmatched == 1
    s = score_image([LEFT, three], LABELS)
    r1 = region(s, 1)
    assert r1.n_matched == 2
    assert r1.miou == pytest.approx(0.53) and r1.false_positive == pytest.approx(0.06)
    assert r1.best_iou == 1.0 and r1.recall == 1.0 and r1.precision == 1.0


def test_scores_do_not_depend_on_mask_order():
    masks = [TOP_LEFT, RIGHT, np.ones((10, 10), bool), BOTTOM_LEFT]
    a = score_image(masks, LABELS).summary()
    b = score_image(masks[::-1], LABELS).summary()
    assert a == pytest.approx(b)


def test_difficulty_weights():
    s = score_image(
        [TOP_LEFT, BOTTOM_LEFT, RIGHT],
        LABELS,
        names={1: "Ge", 2: "vacuum"},
        difficulty={1: "easy", 2: "hard"},
        difficulty_weights=PAPER_DIFFICULTY_WEIGHTS,
    )
    assert region(s, 1).name == "Ge" and region(s, 1).difficulty == "easy"
    assert s.mean("miou") == pytest.approx((10 * 0.5 + 1 * 1.0) / 11)
    with pytest.raises(ValueError, match="unknown metric"):
        s.mean("accuracy")


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="shape"):
        score_image([np.ones((5, 5), bool)], LABELS)
    with pytest.raises(ValueError, match="integer"):
        score_image([], LABELS.astype(float))


def naive_scores(masks: list[np.ndarray], labels: np.ndarray, match: float = 0.05) -> dict[int, dict]:
    """Straightforward per-pair implementation of the documented formulas."""
    valid = labels > 0
    d = boundary_width(*labels.shape)
    ms = [m & valid for m in masks]
    bs = [mask_boundary(m, d) for m in ms]
    out = {}
    ids = [int(v) for v in np.unique(labels[valid])]
    iou = np.zeros((len(ms), len(ids)))
    for j, k in enumerate(ids):
        g = labels == k
        bg = mask_boundary(g, d)
        ious = np.array([(m & g).sum() / (m | g).sum() for m in ms])
        bious = np.array([(b & bg).sum() / (b | bg).sum() for b in bs])
        iou[:, j] = ious
        sel = ious >= match
        u = np.any([m for m, s in zip(ms, sel, strict=True) if s], axis=0) if sel.any() else np.zeros_like(g)
        bu = np.any([b for b, s in zip(bs, sel, strict=True) if s], axis=0) if sel.any() else np.zeros_like(g)
        out[k] = {
            "miou": ious[sel].mean() if sel.any() else 0.0,
            "false_positive": ious[sel].sum() - ious[sel].max() if sel.any() else 0.0,
            "recall": (u & g).sum() / g.sum(),
            "precision": (u & g).sum() / u.sum() if u.any() else 0.0,
            "boundary_miou": bious[sel].mean() if sel.any() else 0.0,
            "boundary_false_positive": bious[sel].sum() - bious[sel].max() if sel.any() else 0.0,
            "boundary_recall": (bu & bg).sum() / bg.sum(),
            "boundary_precision": (bu & bg).sum() / bu.sum() if bu.any() else 0.0,
            "best_iou": ious.max(),
            "best_boundary_iou": bious.max(),
        }
    rows, cols = linear_sum_assignment(-iou)
    for j, k in enumerate(ids):
        hit = rows[cols == j]
        out[k]["hungarian_iou"] = float(iou[hit[0], j]) if hit.size else 0.0
    return out


def test_vectorised_scores_equal_the_naive_definition_on_random_data():
    rng = np.random.default_rng(11)
    for _ in range(5):
        h, w = 64, 80
        field = cv2.GaussianBlur(rng.random((h, w)), (0, 0), 6)
        labels = np.digitize(field, np.quantile(field, [0.3, 0.6, 0.8])).astype(np.int32) + 1
        labels[rng.random((h, w)) < 0.05] = 0  # scattered ignored pixels
        masks = []
        for _ in range(rng.integers(1, 9)):
            blob = cv2.GaussianBlur(rng.random((h, w)), (0, 0), rng.uniform(2, 8))
            masks.append(blob > np.quantile(blob, rng.uniform(0.3, 0.95)))
        got = score_image(masks, labels)
        want = naive_scores(masks, labels)
        for r in got.regions:
            for metric, value in want[r.label].items():
                assert getattr(r, metric) == pytest.approx(value, abs=1e-9), metric


def test_boundary_metric_equals_pairwise_boundary_iou_without_ignore():
    rng = np.random.default_rng(5)
    labels = np.ones((90, 70), np.int32)
    labels[40:, :] = 2
    labels[:, 50:] = 3
    blob = cv2.GaussianBlur(rng.random((90, 70)), (0, 0), 5) > 0.5
    s = score_image([blob], labels)
    for r in s.regions:
        assert r.best_boundary_iou == pytest.approx(boundary_iou(blob, labels == r.label), abs=1e-9)
