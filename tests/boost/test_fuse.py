"""Fusion of SAM masks with the material field, and the field-placed prompts."""

from __future__ import annotations

import numpy as np
import pytest

from samiam.boost.config import BoostConfig
from samiam.boost.fuse import fuse_masks_with_field
from samiam.boost.pipeline import boost_masks
from samiam.errors import ParameterError
from samiam.field.build import MaterialField
from samiam.field.cluster import FieldClusters
from samiam.field.lattice import LatticeEstimate
from samiam.field.prompts import field_prompt_boxes
from samiam.masks import MaskRecord


def _field(labels: np.ndarray, confidence: float = 0.9) -> MaterialField:
    k = int(labels.max()) + 1
    post = np.eye(k, dtype=np.float32)[labels]
    conf = np.full(labels.shape, confidence, np.float32)
    clusters = FieldClusters(labels[::8, ::8], post[::8, ::8], k, {})
    return MaterialField(labels, conf, post, clusters, LatticeEstimate(None, 0.0), 32, 8)


def _halves(h: int = 64, w: int = 64) -> np.ndarray:
    lab = np.zeros((h, w), np.int64)
    lab[:, w // 2 :] = 1
    return lab


def test_straddling_mask_is_split_along_the_field() -> None:
    lab = _halves()
    straddle = np.zeros_like(lab, bool)
    straddle[10:50, 16:48] = True  # half in each material
    owner, rep = fuse_masks_with_field([MaskRecord.from_mask(straddle)], _field(lab))
    assert rep.split_masks == 1 and rep.pure_masks == 0
    assert (owner[10:50, 16:32] == 0).all() and (owner[10:50, 32:48] == 1).all()


def test_pure_mask_outline_wins_over_the_field_boundary() -> None:
    lab = _halves()
    mask = np.zeros_like(lab, bool)
    mask[:, :36] = True  # 32 columns of material 0 + 4 the field calls 1: pure at 0.8
    owner, rep = fuse_masks_with_field([MaskRecord.from_mask(mask)], _field(lab))
    assert rep.pure_masks == 1
    assert (owner[:, :36] == 0).all() and (owner[:, 36:] == 1).all()


def test_low_confidence_pixels_stay_unsegmented() -> None:
    owner, rep = fuse_masks_with_field([], _field(_halves(), confidence=0.3))
    assert (owner == -1).all() and rep.unsegmented == 1.0


def test_fused_output_is_disjoint_and_one_mask_per_material() -> None:
    rng = np.random.default_rng(0)
    img = rng.random((64, 64)).astype(np.float32)
    lab = _halves()
    recs = []
    for _ in range(20):
        m = np.zeros_like(lab, bool)
        y, x = rng.integers(0, 48, 2)
        m[y : y + 16, x : x + 16] = True
        recs.append(MaskRecord.from_mask(m, score=0.9))
    final, info = boost_masks(img, recs, BoostConfig(method="fused", min_area_frac=0.0), field=_field(lab))
    stack = np.stack([r.decode() for r in final])
    assert stack.sum(0).max() == 1  # disjoint
    assert sorted(r.material for r in final) == [1, 2]
    assert info["fusion"]["pure_masks"] + info["fusion"]["split_masks"] == info["filtered_masks"]


def test_bad_fusion_parameters() -> None:
    with pytest.raises(ParameterError):
        fuse_masks_with_field([], _field(_halves()), purity=0.0)
    with pytest.raises(ParameterError):
        BoostConfig(method="magic").validate()
    with pytest.raises(ParameterError):
        BoostConfig(fusion_min_confidence=2.0).validate()


def test_fine_prompts_go_only_to_field_boundaries() -> None:
    lab = _halves(256, 256)
    boxes, counts = field_prompt_boxes(lab, (0.5, 0.25, 0.125), 0.5)
    assert counts["0.5"]["kept"] == counts["0.5"]["grid"]
    fine = boxes[(boxes[:, 2] - boxes[:, 0]) < 40]
    assert 0 < len(fine) < counts["0.125"]["grid"]
    assert ((fine[:, 0] < 128) & (fine[:, 2] > 128)).all()  # every fine box crosses the boundary
    one, counts1 = field_prompt_boxes(np.zeros((256, 256), np.int64), (0.5, 0.25, 0.125), 0.5)
    assert counts1["0.125"]["kept"] == counts1["0.125"]["grid"]  # one material: nothing to place by
