"""``--library`` and ``--fill`` through ``samiam segment`` / ``samiam boost``."""

import json
from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from samiam.cli.app import app
from samiam.segmentation import Segmentation
from samiam.synth.stem import grid_fragments
from tests.conftest import write_png

runner = CliRunner()


def _fragments_json(lab: np.ndarray, path: Path, image: str, block: int = 48) -> Path:
    recs, _ = grid_fragments(lab, block)
    h, w = lab.shape
    path.write_text(json.dumps(Segmentation(image, h, w, recs, {"model": "test"}).to_json()))
    return path


def test_learn_then_boost_with_library_names_materials(tmp_path: Path, two_lattice_image):
    from samiam.synth.stem import stack_cross_section

    img, lab = two_lattice_image
    ex = write_png(tmp_path / "example.png", img)
    cv2.imwrite(str(tmp_path / "example.labels.png"), lab.astype(np.uint8))
    lib = tmp_path / "lib.json"
    res = runner.invoke(
        app,
        [
            "materials",
            "learn",
            str(ex),
            "--labels",
            str(tmp_path / "example.labels.png"),
            "--names",
            "square,hexagonal",
            "-o",
            str(lib),
        ],
    )
    assert res.exit_code == 0, res.output
    # a new image: the same lattices in the opposite order
    img2, lab2, _ = stack_cross_section(256, 256, materials=("hexagonal", "square"), seed=8, wavy=0.0)
    new = write_png(tmp_path / "new.png", img2)
    raw = _fragments_json(lab2, tmp_path / "new.raw.json", str(new))
    out = tmp_path / "out"
    res = runner.invoke(app, ["boost", str(raw), str(new), "-o", str(out), "--library", str(lib), "--fill"])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "new.masks.json").read_text())
    assert doc["run"]["boost"]["library"] == str(lib) and doc["run"]["boost"]["fill"] is True
    names = {a["material"] for a in doc["annotations"]}
    assert {"square", "hexagonal"} <= names
    # the bottom band (label 1) is hexagonal in the new image
    labels = cv2.imread(str(out / "new.labels.png"), cv2.IMREAD_UNCHANGED)
    ann = {a["id"]: a["material"] for a in doc["annotations"]}
    bottom = np.bincount(labels[lab2 == 1].ravel()).argmax()
    assert ann.get(int(bottom)) == "hexagonal"


def test_missing_library_is_one_line(tmp_path: Path, two_lattice_image):
    img, lab = two_lattice_image
    src = write_png(tmp_path / "x.png", img)
    res = runner.invoke(
        app,
        [
            "segment",
            str(src),
            "-o",
            str(tmp_path / "o"),
            "--model",
            "tiny-random",
            "--library",
            str(tmp_path / "no.json"),
        ],
    )
    assert res.exit_code == 2 and "material library not found" in res.output and "Traceback" not in res.output
