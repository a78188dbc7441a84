"""The backend's ``fit``: an annotation event updates the material library named by ``--library``."""

import dataclasses
from pathlib import Path

from samiam.labelstudio.brush_rle import encode_brush_rle
from samiam.labelstudio.handlers import LabelStudioBackend
from samiam.labelstudio.images import ImageResolver
from samiam.library import load_library
from tests.labelstudio.conftest import fast_segment_config, synthetic_micrograph


def _event(image: Path, labels, action: str = "ANNOTATION_CREATED") -> dict:
    h, w = labels.shape
    results = []
    for value, name in ((1, "square"), (2, "hexagonal")):
        results.append(
            {
                "from_name": "mask",
                "to_name": "image",
                "type": "brushlabels",
                "original_width": w,
                "original_height": h,
                "value": {"format": "rle", "rle": encode_brush_rle(labels == value), "brushlabels": [name]},
            }
        )
    return {
        "action": action,
        "task": {"id": 1, "data": {"image": str(image)}},
        "annotation": {"id": 7, "result": results},
    }


def test_annotation_event_builds_the_library(tmp_path: Path, tiny_model, micrograph_png: Path):
    _, labels = synthetic_micrograph()
    lib = tmp_path / "lib.json"
    cfg = fast_segment_config()
    cfg = dataclasses.replace(cfg, boost=dataclasses.replace(cfg.boost, library=str(lib)))
    backend = LabelStudioBackend(tiny_model, cfg, ImageResolver())
    out = backend.webhook(_event(micrograph_png, labels))
    assert out["status"] == "updated" and out["materials"] == ["hexagonal", "square"]
    assert set(load_library(lib).names) == {"square", "hexagonal"}
    assert backend.webhook({"action": "PROJECT_UPDATED"})["status"] == "ignored"


def test_without_library_events_are_ignored(tiny_model):
    backend = LabelStudioBackend(tiny_model, fast_segment_config(), ImageResolver())
    assert backend.webhook({"action": "ANNOTATION_CREATED"})["status"] == "ignored"
