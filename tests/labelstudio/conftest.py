"""Fixtures for the Label Studio backend tests: a synthetic two-lattice micrograph and a tiny random SAM."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

import samiam.models  # noqa: F401  (torchvision shim first)
from samiam.generate.config import GeneratorConfig
from samiam.labelstudio.handlers import LabelStudioBackend
from samiam.labelstudio.images import ImageResolver
from samiam.models.build import LoadedModel, load_model
from samiam.pipeline import SegmentConfig
from samiam.synth.stem import stack_cross_section

IMAGE_H, IMAGE_W = 96, 128
LABELS = ("SrTiO3", "Ge")

LABEL_CONFIG = f"""<View>
  <Image name="image" value="$image" zoom="true"/>
  <BrushLabels name="mask" toName="image">
    {"".join(f'<Label value="{v}"/>' for v in LABELS)}
  </BrushLabels>
  <KeyPointLabels name="point" toName="image" smart="true">
    {"".join(f'<Label value="{v}"/>' for v in LABELS)}
  </KeyPointLabels>
  <RectangleLabels name="box" toName="image" smart="true">
    {"".join(f'<Label value="{v}"/>' for v in LABELS)}
  </RectangleLabels>
</View>"""


def synthetic_micrograph(height: int = IMAGE_H, width: int = IMAGE_W, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 image, label map 1..2): two lattices stacked, from the project's STEM simulator."""
    img, labels, _ = stack_cross_section(height, width, materials=("square", "hexagonal"), seed=seed)
    return np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8), labels


@pytest.fixture(scope="session")
def micrograph_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ls") / "two_lattices.png"
    img, _ = synthetic_micrograph()
    assert cv2.imwrite(str(path), img)
    return path


@pytest.fixture(scope="session")
def tiny_model() -> LoadedModel:
    return load_model("tiny-random", device="cpu")


def fast_segment_config() -> SegmentConfig:
    """Automatic mode on the random model: thresholds off so masks exist, a coarse point grid."""
    return SegmentConfig(generator=GeneratorConfig(pred_iou_thresh=0, stability_score_thresh=0, points_per_side=4))


@pytest.fixture
def backend(tiny_model: LoadedModel) -> LabelStudioBackend:
    return LabelStudioBackend(tiny_model, fast_segment_config(), ImageResolver())


def keypoint(x: float, y: float, label: str | None = "Ge", positive: bool | None = True) -> dict[str, Any]:
    """A KeyPointLabels context region as the Label Studio editor sends it (percent coordinates)."""
    region: dict[str, Any] = {
        "id": "kp1",
        "from_name": "point",
        "to_name": "image",
        "type": "keypointlabels",
        "origin": "manual",
        "original_width": IMAGE_W,
        "original_height": IMAGE_H,
        "image_rotation": 0,
        "value": {"x": x, "y": y, "width": 0.5, "keypointlabels": [label] if label else []},
    }
    if positive is not None:
        region["is_positive"] = positive
    return region


def rectangle(x: float, y: float, w: float, h: float, label: str = "SrTiO3", rotation: float = 0) -> dict[str, Any]:
    """A RectangleLabels context region (percent coordinates)."""
    return {
        "id": "r1",
        "from_name": "box",
        "to_name": "image",
        "type": "rectanglelabels",
        "origin": "manual",
        "original_width": IMAGE_W,
        "original_height": IMAGE_H,
        "image_rotation": 0,
        "value": {"x": x, "y": y, "width": w, "height": h, "rotation": rotation, "rectanglelabels": [label]},
    }


def predict_payload(image: str, context: list[dict] | None = None, config: str = LABEL_CONFIG) -> dict[str, Any]:
    """A ``/predict`` body like Label Studio's (project uid, label_config, params.context)."""
    return {
        "tasks": [{"id": 7, "project": 1, "data": {"image": image}}],
        "project": "1.1700000000",
        "label_config": config,
        "params": {"login": None, "password": None, "context": {"result": context} if context else None},
    }


def http(method: str, url: str, body: bytes | dict | None = None, timeout: float = 30.0) -> tuple[int, Any]:
    """Minimal HTTP client: returns (status, parsed JSON or text)."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")
