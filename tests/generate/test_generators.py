import numpy as np
import pytest

from samiam.errors import ParameterError
from samiam.generate.boxes import box_grid, generate_box_grid
from samiam.generate.config import GeneratorConfig


def test_box_grid_covers_the_image_at_each_scale():
    boxes = box_grid(100, 160, (0.5, 0.25), 0.5)
    assert boxes.shape[1] == 4
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 160).all() and (boxes[:, 3] <= 100).all()
    for side in (50, 25):
        sel = boxes[np.isclose(boxes[:, 2] - boxes[:, 0], side)]
        assert sel[:, 0].min() == 0 and sel[:, 2].max() == 160
        assert sel[:, 1].min() == 0 and sel[:, 3].max() == 100


def test_generator_config_validation():
    with pytest.raises(ParameterError, match="box scales"):
        GeneratorConfig(box_scales=(0.0,)).validate()
    with pytest.raises(ParameterError, match="mode"):
        GeneratorConfig(mode="lasso").validate()
    with pytest.raises(ParameterError, match="pred-iou-thresh"):
        GeneratorConfig(pred_iou_thresh=1.5).validate()
    cfg = GeneratorConfig()
    assert cfg.thresholds("points") == (0.88, 0.95)
    assert GeneratorConfig(pred_iou_thresh=0.3).thresholds("boxes")[0] == 0.3


def test_box_grid_generator_returns_mask_records(tiny_model, two_lattice_image):
    img, _ = two_lattice_image
    rgb = np.repeat((img * 255).astype(np.uint8)[:, :, None], 3, axis=2)
    done = []
    cfg = GeneratorConfig(box_scales=(0.5,), pred_iou_thresh=0, stability_score_thresh=0, box_nms_thresh=1.0)
    recs = generate_box_grid(tiny_model, rgb, cfg, progress=done.append)
    assert sum(done) == len(box_grid(256, 256, (0.5,), 0.5))
    assert recs, "thresholds at 0 and no NMS keep every box's mask"
    for r in recs:
        m = r.decode()
        assert m.shape == (256, 256) and m.sum() == r.area > 0
        assert "box" in r.extra["prompt"]


def test_point_generator_returns_mask_records(tiny_model, two_lattice_image):
    from samiam.generate.points import generate_point_grid

    img, _ = two_lattice_image
    rgb = np.repeat((img * 255).astype(np.uint8)[:, :, None], 3, axis=2)
    cfg = GeneratorConfig(points_per_side=4, pred_iou_thresh=0, stability_score_thresh=0)
    recs = generate_point_grid(tiny_model, rgb, cfg)
    assert recs, "thresholds at 0 keep at least one point's mask"
    for r in recs:
        assert r.decode().sum() == r.area and "point" in r.extra["prompt"]
