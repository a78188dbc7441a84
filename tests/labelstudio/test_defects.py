"""STM defect mode of the Label Studio backend: rectangles, named after the labelled tasks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from samiam.defects import DefectParams, TrainParams, load_model, train_defect_model
from samiam.defects.train import TrainConfig
from samiam.io.micrograph import micrograph_from_array
from samiam.labelstudio.defects import DefectNamer
from samiam.labelstudio.errors import RequestError
from samiam.labelstudio.handlers import LabelStudioBackend
from samiam.labelstudio.images import ImageResolver
from samiam.synth.stm import synthetic_stm

from .conftest import fast_segment_config

RECT_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="defect" toName="image">
    <Label value="adatom"/><Label value="vacancy"/>
  </RectangleLabels>
</View>"""


def _stm(seed: int):
    return synthetic_stm(160, n_defects=6, kinds=("adatom", "vacancy"), step=False, seed=seed)


@pytest.fixture(scope="module")
def defect_model(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("ls-defects") / "model"
    mgs = [micrograph_from_array(synthetic_stm(128, seed=s).heights, f"t{s}.npy") for s in (0, 1, 2, 3)]
    tp = TrainParams(ae1=TrainConfig(epochs=5, batch_size=64), ae2=TrainConfig(epochs=5, batch_size=32))
    tp.patches_per_image, tp.max_classes = 300, 4
    train_defect_model(mgs, out, DefectParams(), tp, progress=False)
    return load_model(out)


@pytest.fixture
def images(tmp_path) -> dict[int, tuple[Path, object]]:
    out = {}
    for seed in (7, 8):
        im = _stm(seed)
        p = tmp_path / f"stm{seed}.npy"
        np.save(p, im.heights)
        out[seed] = (p, im)
    return out


def _rect(x, y, label, size=160):
    return {
        "type": "rectanglelabels",
        "from_name": "defect",
        "to_name": "image",
        "original_width": size,
        "original_height": size,
        "value": {
            "x": 100 * (x - 5) / size,
            "y": 100 * (y - 5) / size,
            "width": 1000 / size,
            "height": 1000 / size,
            "rotation": 0,
            "rectanglelabels": [label],
        },
    }


def test_defect_rectangles_are_named_after_the_labelled_tasks(tiny_model, defect_model, images):
    backend = LabelStudioBackend(tiny_model, fast_segment_config(), ImageResolver(), defects=DefectNamer(defect_model))
    assert backend.setup({"schema": RECT_CONFIG, "project": 1})["model_version"]  # no BrushLabels needed
    (p7, im7), (p8, im8) = images[7], images[8]
    before = backend.predict({"tasks": [{"id": 8, "data": {"image": str(p8)}}], "label_config": RECT_CONFIG})
    regions = before["results"][0]["result"]
    assert regions and all(r["type"] == "rectanglelabels" and r["from_name"] == "defect" for r in regions)
    assert all(r["value"]["rectanglelabels"][0].startswith("class ") for r in regions)  # nothing labelled yet

    rects = [_rect(*im7.centres[im7.kinds.index(k)], k) for k in ("adatom", "vacancy")]
    ack = backend.webhook(
        {"action": "ANNOTATION_CREATED", "task": {"id": 7, "data": {"image": str(p7)}}, "annotation": {"result": rects}}
    )
    assert ack["status"] == "updated" and ack["defect_classes"] == ["adatom", "vacancy"]

    after = backend.predict({"tasks": [{"id": 8, "data": {"image": str(p8)}}], "label_config": RECT_CONFIG})
    regions = after["results"][0]["result"]
    right = 0
    for (x, y), kind in zip(im8.centres, im8.kinds, strict=True):
        for r in regions:
            v = r["value"]
            cx, cy = 1.6 * (v["x"] + v["width"] / 2), 1.6 * (v["y"] + v["height"] / 2)
            if np.hypot(cx - x, cy - y) <= 4:
                right += v["rectanglelabels"][0] == kind
    assert right >= 4, regions


def test_a_bad_rectangle_in_a_webhook_is_a_request_error(tiny_model, defect_model, images):
    backend = LabelStudioBackend(tiny_model, fast_segment_config(), ImageResolver(), defects=DefectNamer(defect_model))
    p7, _ = images[7]
    bad = {"type": "rectanglelabels", "value": {"x": 1, "y": 1, "width": 2, "height": 2, "rectanglelabels": ["a"]}}
    with pytest.raises(RequestError, match="original_width"):
        backend.webhook(
            {
                "action": "ANNOTATION_CREATED",
                "task": {"id": 7, "data": {"image": str(p7)}},
                "annotation": {"result": [bad]},
            }
        )
