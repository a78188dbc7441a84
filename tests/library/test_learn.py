"""Learning a library from label maps, named masks files and Label Studio brush annotations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from samiam.errors import InputError
from samiam.io.micrograph import micrograph_from_array
from samiam.labelstudio.brush_rle import encode_brush_rle
from samiam.library import (
    LearnConfig,
    example_from_label_map,
    example_from_masks_json,
    examples_from_labelstudio,
    learn_examples,
    load_library,
    update_library_from_tasks,
)
from samiam.segmentation import Segmentation
from tests.conftest import write_png
from tests.library.conftest import stack

FAST = LearnConfig(crops_per_material=24)


@pytest.fixture(scope="module")
def two_band():
    return stack(("square", "vacuum"), seed=4)


def test_label_map_names_by_sequence_and_mapping(two_band):
    img, lab, _ = two_band
    ex = example_from_label_map(img, lab, ["Ge", "vacuum"])
    assert sorted(ex.regions) == ["Ge", "vacuum"]
    assert (ex.regions["Ge"] == (lab == 1)).all()
    ex = example_from_label_map(img, lab, {2: "vacuum"})  # label 1 unnamed: ignored
    assert list(ex.regions) == ["vacuum"]
    lab0 = lab.copy()
    lab0[:50] = 0  # 0 = ignore
    ex = example_from_label_map(img, lab0, ["Ge", "vacuum"])
    assert not ex.regions["vacuum"][:50].any()


def test_label_map_errors_name_the_problem(two_band):
    img, lab, _ = two_band
    with pytest.raises(InputError, match="label map is 10x10"):
        example_from_label_map(img, np.zeros((10, 10), np.uint8), ["a"])
    with pytest.raises(InputError, match="integer"):
        example_from_label_map(img, lab.astype(np.float32), ["a"])
    with pytest.raises(InputError, match="no named regions"):
        example_from_label_map(img, lab, {7: "x"})


def test_learn_stores_raw_features_stats_and_pixel_size(two_band):
    img, lab, _ = two_band
    mic = micrograph_from_array(img, "a.png", pixel_size=0.17, pixel_unit="Å")
    lib, report = learn_examples([example_from_label_map(mic, lab, ["Ge", "vacuum"], "a.png")], FAST)
    assert lib.names == ["Ge", "vacuum"] and lib.pixel_size_nm == pytest.approx(0.017)
    ge = lib.materials["Ge"]
    # 24 crops at each rung of the crop-size ladder (60, 48, 36, 24 px)
    assert ge.features.shape == (96, 33) and ge.sources == ["a.png"]
    assert np.bincount(ge.sizes)[[60, 48, 36, 24]].tolist() == [24] * 4
    # square lattice: a = 11 px with a centred column, strongest spacing ~7.8 px (the (1,1) planes)
    assert 6.5 < ge.stats["period_px"] < 11.5
    assert ge.stats["period_nm"] == pytest.approx(ge.stats["period_px"] * 0.017, rel=1e-3)
    assert lib.materials["vacuum"].stats["period_px"] is None
    assert ge.stats["intensity_mean"] > lib.materials["vacuum"].stats["intensity_mean"]
    assert [a["material"] for a in report.added] == ["Ge", "vacuum"]


def test_calibrated_examples_are_brought_to_the_library_pixel_size(two_band):
    img, lab, _ = two_band
    a = micrograph_from_array(img, "a.png", pixel_size=0.2, pixel_unit="Å")
    lib, _ = learn_examples([example_from_label_map(a, lab, ["Ge", "vacuum"])], FAST)
    # the same image said to have half the pixel size: its lattice period halves in library pixels
    b = micrograph_from_array(img, "b.png", pixel_size=0.1, pixel_unit="Å")
    lib2, _ = learn_examples([example_from_label_map(b, lab, ["Ge2", "vacuum"])], FAST, library=lib)
    assert lib2.pixel_size_nm == pytest.approx(0.02)
    p1, p2 = lib2.materials["Ge"].stats["period_px"], lib2.materials["Ge2"].stats["period_px"]
    assert p2 == pytest.approx(p1 / 2, rel=0.2)


def test_masks_json_with_named_masks(tmp_path: Path, two_band):
    img, lab, _ = two_band
    write_png(tmp_path / "img.png", img)
    from samiam.masks import MaskRecord

    recs = [MaskRecord.from_mask(lab == 1, material="Ge"), MaskRecord.from_mask(lab == 2, material=2)]
    seg = Segmentation(file="img.png", height=lab.shape[0], width=lab.shape[1], masks=recs)
    path = tmp_path / "img.masks.json"
    path.write_text(json.dumps(seg.to_json()))
    ex = example_from_masks_json(path)  # image found next to the JSON
    assert list(ex.regions) == ["Ge"]  # the numbered material is not a name
    recs[0].material = 1
    path.write_text(json.dumps(Segmentation("img.png", *lab.shape, masks=recs).to_json()))
    with pytest.raises(InputError, match="no named masks"):
        example_from_masks_json(path)


def _brush_task(lab: np.ndarray, names: dict[int, str], image: str, task_id: int = 1) -> dict:
    h, w = lab.shape
    results = [
        {
            "type": "brushlabels",
            "from_name": "tag",
            "to_name": "image",
            "original_width": w,
            "original_height": h,
            "value": {"format": "rle", "rle": encode_brush_rle(lab == k), "brushlabels": [name]},
        }
        for k, name in names.items()
    ]
    return {"id": task_id, "data": {"image": image}, "annotations": [{"id": 10, "result": results}]}


def test_labelstudio_brush_tasks_build_then_extend_a_library(tmp_path: Path, two_band):
    img, lab, _ = two_band
    image = str(write_png(tmp_path / "a.png", img))
    lib_path = tmp_path / "lib.json"
    lib = update_library_from_tasks(lib_path, [_brush_task(lab, {1: "Ge"}, image)], cfg=FAST)
    assert lib.names == ["Ge"] and load_library(lib_path).materials["Ge"].features.shape[0] == 96
    img2, lab2, _ = stack(("vacuum", "square"), seed=9)
    arr2 = micrograph_from_array(img2, "b")
    lib = update_library_from_tasks(
        lib_path, [_brush_task(lab2, {1: "vacuum", 2: "Ge"}, "b", 2)], image_for=lambda task: arr2, cfg=FAST
    )
    back = load_library(lib_path)
    assert back.names == ["Ge", "vacuum"] and back.materials["Ge"].features.shape[0] == 192
    assert len(back.materials["Ge"].sources) == 2


def test_labelstudio_polygons_webhook_shape_and_overlaps(two_band):
    img, lab, _ = two_band
    h, w = lab.shape
    poly = {
        "type": "polygonlabels",
        "original_width": w,
        "original_height": h,
        "value": {"points": [[0, 0], [100, 0], [100, 40], [0, 40]], "polygonlabels": ["vacuum"]},
    }
    brush = {
        "type": "brushlabels",
        "original_width": w,
        "original_height": h,
        "value": {"format": "rle", "rle": encode_brush_rle(np.ones((h, w), bool)), "brushlabels": ["all"]},
    }
    payload = {
        "action": "ANNOTATION_CREATED",
        "task": {"id": 5, "data": {"image": "x"}},
        "annotation": {"result": [poly, brush]},
    }
    (ex,) = examples_from_labelstudio([payload], image_for=lambda t: img)
    # pixels painted with both names are learnt as neither
    assert not (ex.regions["vacuum"] & ex.regions["all"]).any()
    assert ex.regions["all"].sum() == pytest.approx(h * w * 0.6, rel=0.05)


def test_labelstudio_errors(two_band):
    img, lab, _ = two_band
    task = _brush_task(lab, {1: "Ge"}, "x")
    task["annotations"][0]["result"][0]["original_width"] = 10
    with pytest.raises(InputError, match="annotation is for a 10x"):
        examples_from_labelstudio([task], image_for=lambda t: img)
    task = _brush_task(lab, {1: "Ge"}, "x")
    task["annotations"][0]["result"][0]["value"]["rle"] = [1, 2, 3]
    with pytest.raises(InputError, match="undecodable brush RLE"):
        examples_from_labelstudio([task], image_for=lambda t: img)
    with pytest.raises(InputError, match="no local image file"):
        examples_from_labelstudio([_brush_task(lab, {1: "Ge"}, "/no/such/file.png")])
    with pytest.raises(InputError, match="no task with brush or polygon"):
        examples_from_labelstudio([{"id": 1, "data": {}, "annotations": []}])
