"""``samiam materials learn/show`` through typer's runner: outputs and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from samiam.cli.app import app
from samiam.labelstudio.brush_rle import encode_brush_rle
from samiam.library import load_library
from samiam.library.store import VERSION
from tests.conftest import write_png
from tests.library.conftest import stack

runner = CliRunner()
FAST = ["--crops-per-material", "8"]


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> tuple[Path, Path, np.ndarray]:
    folder = tmp_path_factory.mktemp("ex")
    img, lab, _ = stack(("square", "vacuum"), 111)
    image = write_png(folder / "img.png", img)
    labels = folder / "img.labels.png"
    cv2.imwrite(str(labels), lab)
    return image, labels, lab


def _one_line_error(res) -> str:
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert "Traceback" not in res.output
    return lines[0]


def test_learn_from_image_and_label_map_then_show(tmp_path: Path, example):
    image, labels, _ = example
    out = tmp_path / "lib.json"
    res = runner.invoke(
        app, ["materials", "learn", str(image), "-l", str(labels), "-n", "Ge,vacuum", "-o", str(out), *FAST]
    )
    assert res.exit_code == 0, res.output
    assert "2 materials (Ge, vacuum)" in res.output
    assert load_library(out).names == ["Ge", "vacuum"]
    res = runner.invoke(app, ["materials", "show", str(out)])
    assert res.exit_code == 0 and "Ge: 32 crops" in res.output and "vacuum" in res.output


def test_update_adds_and_label_studio_export_is_read(tmp_path: Path, example):
    image, labels, lab = example
    out = tmp_path / "lib.json"
    assert (
        runner.invoke(
            app, ["materials", "learn", str(image), "-l", str(labels), "-n", "2=vacuum", "-o", str(out), *FAST]
        ).exit_code
        == 0
    )
    h, w = lab.shape
    task = {
        "id": 3,
        "data": {"image": "/data/upload/1/img.png"},
        "annotations": [
            {
                "result": [
                    {
                        "type": "brushlabels",
                        "original_width": w,
                        "original_height": h,
                        "value": {"format": "rle", "rle": encode_brush_rle(lab == 1), "brushlabels": ["Ge"]},
                    }
                ]
            }
        ],
    }
    export = tmp_path / "export.json"
    export.write_text(json.dumps([task]))
    res = runner.invoke(
        app, ["materials", "learn", str(export), "--image-root", str(image.parent), "--update", "-o", str(out), *FAST]
    )
    assert res.exit_code == 0, res.output
    assert load_library(out).names == ["vacuum", "Ge"]


def test_learn_from_named_masks_json(tmp_path: Path, example):
    from samiam.masks import MaskRecord
    from samiam.segmentation import Segmentation

    image, _, lab = example
    seg = Segmentation(str(image), *lab.shape, masks=[MaskRecord.from_mask(lab == 2, material="vacuum")])
    masks = tmp_path / "named.json"  # recognised by content, not by name
    masks.write_text(json.dumps(seg.to_json()))
    res = runner.invoke(app, ["materials", "learn", str(masks), "-o", str(tmp_path / "lib.json"), *FAST])
    assert res.exit_code == 0, res.output
    assert load_library(tmp_path / "lib.json").names == ["vacuum"]


def test_corrupt_and_wrong_version_libraries_fail_with_one_line(tmp_path: Path, example):
    image, labels, _ = example
    out = tmp_path / "lib.json"
    runner.invoke(app, ["materials", "learn", str(image), "-l", str(labels), "-n", "Ge,vacuum", "-o", str(out), *FAST])
    doc = json.loads(out.read_text())
    doc["version"] = VERSION + 1
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(doc))
    line = _one_line_error(runner.invoke(app, ["materials", "show", str(wrong)]))
    assert str(wrong) in line and f"version {VERSION + 1}" in line
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text(out.read_text()[:200])
    line = _one_line_error(runner.invoke(app, ["materials", "show", str(corrupt)]))
    assert str(corrupt) in line and "not a samiam material library" in line
    # --update onto a corrupt library: same line, and the file is left as it was
    before = corrupt.read_text()
    res = runner.invoke(
        app,
        ["materials", "learn", str(image), "-l", str(labels), "-n", "Ge,vacuum", "--update", "-o", str(corrupt), *FAST],
    )
    assert str(corrupt) in _one_line_error(res) and corrupt.read_text() == before


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["{image}", "-n", "Ge"], "needs its label map"),
        (["{image}", "-l", "{labels}"], "needs the names"),
        (["{image}", "-l", "{tmp}/none.png", "-n", "Ge"], "no such label map"),
        (["{tmp}/missing.png", "-l", "{labels}", "-n", "Ge"], "no such file"),
        (["{image}", "-l", "{labels}", "-n", "7=Ge"], "no named regions"),
        (["{image}", "-l", "{labels}", "-n", "x=Ge"], "is not LABEL=NAME"),
    ],
)
def test_bad_learning_input_gives_one_line_and_no_library(tmp_path: Path, example, args, expected):
    image, labels, _ = example
    fmt = {"image": str(image), "labels": str(labels), "tmp": str(tmp_path)}
    out = tmp_path / "lib.json"
    res = runner.invoke(app, ["materials", "learn", *[a.format(**fmt) for a in args], "-o", str(out), *FAST])
    assert expected in _one_line_error(res)
    assert not out.exists()
