"""The protocol handlers with a tiny random SAM: interactive, automatic, setup, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from samiam.io.read import read_micrograph
from samiam.labelstudio.brush_rle import decode_brush_rle
from samiam.labelstudio.config import parse_label_config
from samiam.labelstudio.errors import ImageNotFoundError, RequestError
from samiam.labelstudio.handlers import LabelStudioBackend, parse_context
from samiam.labelstudio.images import ImageResolver
from samiam.masks import MaskRecord
from samiam.models.build import load_model
from samiam.pipeline import segment_micrograph
from samiam.segmentation import Segmentation

from .conftest import (
    IMAGE_H,
    IMAGE_W,
    LABEL_CONFIG,
    fast_segment_config,
    keypoint,
    predict_payload,
    rectangle,
    synthetic_micrograph,
)


def _only_region(response: dict) -> dict:
    assert len(response["results"]) == 1
    prediction = response["results"][0]
    assert prediction["model_version"] == response["model_version"]
    assert len(prediction["result"]) <= 1
    return prediction


def test_keypoint_gives_a_brush_mask_with_the_chosen_label(backend: LabelStudioBackend, micrograph_png) -> None:
    response = backend.predict(predict_payload(str(micrograph_png), [keypoint(40, 60, "Ge")]))
    prediction = _only_region(response)
    assert prediction["result"], "the random model should give a non-empty mask here"
    region = prediction["result"][0]
    assert (region["from_name"], region["to_name"], region["type"]) == ("mask", "image", "brushlabels")
    assert (region["original_width"], region["original_height"]) == (IMAGE_W, IMAGE_H)
    assert region["value"]["format"] == "rle" and region["value"]["brushlabels"] == ["Ge"]
    mask = decode_brush_rle(region["value"]["rle"], IMAGE_H, IMAGE_W)
    # Same mask as asking the predictor directly with the pixel prompt.
    image = backend.resolver.load(str(micrograph_png))
    ctx = parse_context([keypoint(40, 60, "Ge")])
    expected, _ = backend.interactive.segment(image, ctx.to_pixels(IMAGE_W, IMAGE_H))
    np.testing.assert_array_equal(mask, expected)


def test_rectangle_and_second_click_reuse_the_embedding(backend: LabelStudioBackend, micrograph_png) -> None:
    r1 = backend.predict(predict_payload(str(micrograph_png), [rectangle(10, 10, 50, 60, "SrTiO3")]))
    r2 = backend.predict(
        predict_payload(str(micrograph_png), [rectangle(10, 10, 50, 60, "SrTiO3"), keypoint(20, 20, positive=False)])
    )
    assert backend.interactive.encoder_runs == 1
    for r in (r1, r2):
        p = _only_region(r)
        if p["result"]:
            assert p["result"][0]["value"]["brushlabels"] == ["SrTiO3"]


def test_parse_context_polarity_and_label_choice() -> None:
    ctx = parse_context(
        [
            keypoint(10, 20, "negative", positive=None),  # negative by its label
            keypoint(30, 40, "Ge", positive=None),  # positive: the chosen label
            keypoint(50, 60, "SrTiO3", positive=False),  # negative by is_positive
        ]
    )
    assert ctx.label == "Ge" and ctx.to_name == "image" and ctx.size == (IMAGE_W, IMAGE_H)
    np.testing.assert_array_equal(ctx.point_labels, [0, 1, 0])
    prompts = ctx.to_pixels(200, 100)
    np.testing.assert_allclose(prompts.points, [[20, 20], [60, 40], [100, 60]])


@pytest.mark.parametrize(
    ("payload_context", "message"),
    [
        ([keypoint(10, 10, "Si")], "unknown label 'Si'"),
        ([{**keypoint(10, 10), "type": "polygonlabels"}], "unsupported control tag 'polygonlabels'"),
        ([{**keypoint(10, 10), "value": {"x": "left", "y": 3}}], "x must be a number"),
        ([rectangle(1, 1, 5, 5), rectangle(2, 2, 5, 5)], "more than one rectangle"),
        ([keypoint(10, 10), {**keypoint(20, 20), "to_name": "other"}], "two images"),
    ],
)
def test_malformed_context(backend: LabelStudioBackend, micrograph_png, payload_context, message) -> None:
    with pytest.raises(RequestError, match=message):
        backend.predict(predict_payload(str(micrograph_png), payload_context))


def test_request_level_errors(backend: LabelStudioBackend, micrograph_png) -> None:
    with pytest.raises(RequestError, match="no tasks"):
        backend.predict({"tasks": [], "label_config": LABEL_CONFIG})
    with pytest.raises(RequestError, match="JSON object"):
        backend.predict([1, 2])
    with pytest.raises(RequestError, match="no 'label_config'"):
        backend.predict({"tasks": [{"id": 1, "data": {"image": str(micrograph_png)}}]})
    with pytest.raises(RequestError, match="task 1: no data key 'image'"):
        backend.predict({"tasks": [{"id": 1, "data": {"img": "x.png"}}], "label_config": LABEL_CONFIG})
    with pytest.raises(ImageNotFoundError):
        backend.predict(predict_payload("/nowhere/mic.png", [keypoint(10, 10)]))


def test_setup_validates_the_config_and_remembers_it(backend: LabelStudioBackend, micrograph_png) -> None:
    answer = backend.setup(
        {
            "project": "3.17",
            "schema": LABEL_CONFIG,
            "hostname": "http://127.0.0.1:8080",
            "access_token": "abc",
        }
    )
    assert answer == {"model_version": backend.model_version}
    assert backend.resolver.url == "http://127.0.0.1:8080" and backend.resolver.api_key == "abc"
    # /predict without label_config uses the schema of /setup for the same project.
    payload = predict_payload(str(micrograph_png), [keypoint(40, 60)])
    payload.pop("label_config")
    payload["project"] = "3.17"
    assert backend.predict(payload)["results"]
    with pytest.raises(RequestError, match="no <BrushLabels>"):
        backend.setup({"project": "4.1", "schema": "<View><Image name='i' value='$image'/></View>"})
    assert backend.versions() == {"versions": [backend.model_version]}
    assert backend.webhook({"action": "ANNOTATION_CREATED"})["status"] == "ignored"
    with pytest.raises(RequestError, match="action"):
        backend.webhook({})


def test_materials_become_brush_regions_named_from_the_config(backend: LabelStudioBackend) -> None:
    _, labels = synthetic_micrograph()
    strip = np.zeros_like(labels, bool) | (np.arange(IMAGE_W) < 4)
    top = labels == 1
    # Material 1 split in two masks (one region), material 2, a third material beyond the labels,
    # and a material that already has a name.
    masks = [
        MaskRecord.from_mask(top & (np.arange(IMAGE_W) < 64), score=0.6, material=1),
        MaskRecord.from_mask(labels == 2, score=0.7, material=2),
        MaskRecord.from_mask(top & (np.arange(IMAGE_W) >= 64), score=0.6, material=1),
        MaskRecord.from_mask(strip, score=1.0, material=3),
        MaskRecord.from_mask(np.zeros_like(strip), material="Au"),
    ]
    seg = Segmentation("x.png", IMAGE_H, IMAGE_W, masks)
    control = parse_label_config(LABEL_CONFIG).brush_for()
    prediction = backend.materials_prediction(seg, control, "image")
    names = [r["value"]["brushlabels"] for r in prediction["result"]]
    assert names == [["SrTiO3"], ["Ge"], ["material 3"]]  # the "Au" mask is empty: no region
    for k, region in enumerate(prediction["result"][:2], start=1):
        np.testing.assert_array_equal(decode_brush_rle(region["value"]["rle"], IMAGE_H, IMAGE_W), labels == k)
    assert prediction["score"] == pytest.approx(np.mean([0.6, 0.7, 1.0]), abs=1e-4)
    masks[-1] = MaskRecord.from_mask(strip, material="Au")
    named = backend.materials_prediction(Segmentation("x.png", IMAGE_H, IMAGE_W, masks), control, "image")
    assert [r["value"]["brushlabels"] for r in named["result"]][-1] == ["Au"]


def test_automatic_prediction_is_the_boosted_segmentation(micrograph_png: Path) -> None:
    # Seed 1 of the random model gives at least one material on this image (seed 0 gives none).
    backend = LabelStudioBackend(
        load_model("tiny-random", device="cpu", seed=1), fast_segment_config(), ImageResolver()
    )
    payload = predict_payload(str(micrograph_png))
    payload["tasks"].append({"id": 8, "data": {"image": str(micrograph_png)}})
    response = backend.predict(payload)
    assert len(response["results"]) == 2  # one prediction per task, as Label Studio requires
    assert backend.results.misses == 1  # same image: segmented once
    first, second = response["results"]
    assert first["result"], "expected at least one material region from the random model"
    assert [r["value"]["rle"] for r in first["result"]] == [r["value"]["rle"] for r in second["result"]]
    # The regions are the boosted materials of samiam's pipeline, in material order, named from the config.
    cfg = fast_segment_config()
    cfg.boost.max_materials = 2  # the config lists two labels
    _, boosted = segment_micrograph(read_micrograph(micrograph_png), backend.model, cfg)
    expected = {}
    for rec in boosted.masks:
        expected[rec.material] = expected.get(rec.material, False) | rec.decode()
    assert len(first["result"]) == len(expected) <= 2
    for region, material in zip(first["result"], sorted(expected), strict=True):
        assert region["value"]["brushlabels"] == [("SrTiO3", "Ge")[material - 1]]
        np.testing.assert_array_equal(decode_brush_rle(region["value"]["rle"], IMAGE_H, IMAGE_W), expected[material])
