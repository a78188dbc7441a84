"""``samiam defects run|train --modality stem`` on small synthetic images."""

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from samiam.cli.app import app
from samiam.synth.stem_defects import synthetic_stem_defects

runner = CliRunner()


@pytest.fixture(scope="module")
def stem_png(tmp_path_factory):
    s = synthetic_stem_defects(192, crystal="square", n_per_kind=2, dose=100, seed=11)
    im = (s.image - s.image.min()) / (s.image.max() - s.image.min())
    path = tmp_path_factory.mktemp("stem") / "haadf.png"
    cv2.imwrite(str(path), (im * 65535).astype(np.uint16))
    return path, s


def test_run_modality_stem_writes_every_output(stem_png, tmp_path):
    path, s = stem_png
    out = tmp_path / "out"
    res = runner.invoke(app, ["defects", "run", str(path), "--modality", "stem", "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    assert "modality: stem" in res.output
    doc = json.loads((out / "haadf.defects.json").read_text())
    assert doc["n_defects"] == len(doc["instances"]) >= 5
    inst = doc["instances"][0]
    assert {"centroid", "bbox", "class", "class_probability", "pseudo_label"} <= set(inst)
    xy = np.array([i["centroid"] for i in doc["instances"]])
    d = np.sqrt(((s.positions[:, None] - xy[None]) ** 2).sum(-1)).min(1)
    assert (d < 0.5 * s.spacing).mean() >= 0.8
    for k in range(doc["n_classes"]):
        assert (out / f"haadf.heatmap_c{k}.png").is_file()
        assert np.load(out / f"haadf.heatmap_c{k}.npy").shape == (192, 192)
    assert (out / "haadf.defects_overlay.png").is_file() and (out / "haadf.defects_embedding.png").is_file()


def test_bare_png_with_auto_says_to_give_modality(stem_png, tmp_path):
    res = runner.invoke(app, ["defects", "run", str(stem_png[0]), "-o", str(tmp_path / "o")])
    assert res.exit_code != 0
    assert "--modality stem or --modality stm" in res.output
    assert not (tmp_path / "o").exists()


def test_stm_without_model_is_a_clear_error(tmp_path):
    np.save(tmp_path / "h.npy", np.zeros((64, 64)))
    res = runner.invoke(app, ["defects", "run", str(tmp_path / "h.npy"), "-o", str(tmp_path / "o")])
    assert res.exit_code != 0
    assert "STM images need --model" in res.output


def test_non_lattice_image_gives_one_error_line(tmp_path):
    noise = (np.random.default_rng(0).random((128, 128)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "noise.png"), noise)
    res = runner.invoke(
        app, ["defects", "run", str(tmp_path / "noise.png"), "--modality", "stem", "-o", str(tmp_path / "o")]
    )
    assert res.exit_code != 0
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert any("no clear lattice" in e for e in errors), res.output
    assert not list((tmp_path / "o").glob("*.defects.json"))


def test_train_then_run_with_the_model(stem_png, tmp_path):
    path, _ = stem_png
    model = tmp_path / "model"
    res = runner.invoke(app, ["defects", "train", str(path), "--modality", "stem", "-o", str(model)])
    assert res.exit_code == 0, res.output
    assert json.loads((model / "config.json").read_text())["format"] == "samiam-stem-defect-model"
    res = runner.invoke(app, ["defects", "run", str(path), "-m", str(model), "-o", str(tmp_path / "o"), "-q"])
    assert res.exit_code == 0, res.output
    assert "the --model folder is a STEM model" in res.output
    doc = json.loads((tmp_path / "o" / "haadf.defects.json").read_text())
    assert doc["run"]["model"] == str(model)


def test_train_on_stem_and_stm_images_together_is_refused(stem_png, tmp_path):
    np.save(tmp_path / "h.npy", np.zeros((64, 64)))
    res = runner.invoke(
        app, ["defects", "train", str(stem_png[0]), str(tmp_path / "h.npy"), "--modality", "auto", "-o", str(tmp_path)]
    )
    assert res.exit_code != 0
    assert "cannot tell" in res.output  # the bare PNG is undecided under auto
    dm = tmp_path / "scan.dm3"
    dm.write_bytes(b"")
    res = runner.invoke(app, ["defects", "train", str(dm), str(tmp_path / "h.npy"), "-o", str(tmp_path / "m")])
    assert res.exit_code != 0
    assert "got both" in res.output
