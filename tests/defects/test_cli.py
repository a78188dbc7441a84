import json

import numpy as np
import pytest
from typer.testing import CliRunner

from samiam.cli.app import app
from samiam.defects.outputs import OUTPUT_SUFFIXES

runner = CliRunner()


def _errors(result):
    return [line for line in result.output.splitlines() if line.startswith("error:")]


def test_run_writes_every_output(tiny_model_dir, npy_images, tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(
        app, ["defects", "run", str(npy_images[0]), "--model", str(tiny_model_dir), "-o", str(out), "-q"]
    )
    assert res.exit_code == 0, res.output
    stem = npy_images[0].stem
    for suffix in OUTPUT_SUFFIXES.values():
        assert (out / f"{stem}{suffix}").is_file(), suffix
    doc = json.loads((out / f"{stem}.defects.json").read_text())
    assert doc["n_defects"] == len(doc["instances"]) > 0
    inst = doc["instances"][0]
    assert {"id", "bbox", "centroid", "area", "class", "class_probability", "soft_assignments"} <= set(inst)
    assert len(inst["bbox"]) == 4 and len(inst["centroid"]) == 2
    run = doc["run"]
    assert run["model"] == str(tiny_model_dir) and "timings_s" in run and "parameters" in run
    assert np.load(out / f"{stem}.error.npy").shape == (128, 128)
    assert f"{npy_images[0].name}:" in res.output  # one summary line per image


def test_train_command_writes_a_model(npy_images, tmp_path):
    out = tmp_path / "m"
    args = [
        "defects",
        "train",
        *map(str, npy_images[:3]),
        "-o",
        str(out),
        "--epochs",
        "2",
        "--patches-per-image",
        "100",
        "--max-classes",
        "2",
        "-q",
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert (out / "config.json").is_file()
    assert "trained on 3 image(s)" in res.output


@pytest.mark.parametrize(
    "array, message",
    [
        (np.full((64, 64), np.nan, np.float32), "NaN or infinite"),
        (np.zeros((3, 4, 64, 64), np.float32), "expected a 2-D image"),
    ],
)
def test_bad_image_gives_one_line_and_no_output(tiny_model_dir, tmp_path, array, message):
    bad = tmp_path / "bad.npy"
    np.save(bad, array)
    out = tmp_path / "out"
    res = runner.invoke(app, ["defects", "run", str(bad), "--model", str(tiny_model_dir), "-o", str(out), "-q"])
    assert res.exit_code != 0
    errors = _errors(res)
    assert any(message in e and "bad.npy" in e for e in errors), res.output
    assert "Traceback" not in res.output
    assert not list(out.glob("bad*"))


def test_missing_model_dir_gives_one_line(npy_images, tmp_path):
    res = runner.invoke(
        app, ["defects", "run", str(npy_images[0]), "--model", str(tmp_path / "nope"), "-o", str(tmp_path / "o")]
    )
    assert res.exit_code == 2
    assert len(_errors(res)) == 1 and "no such model folder" in _errors(res)[0]


def test_model_dir_of_another_format_version_gives_one_line(tiny_model_dir, npy_images, tmp_path):
    import shutil

    old = tmp_path / "old-model"
    shutil.copytree(tiny_model_dir, old)
    cfg = json.loads((old / "config.json").read_text())
    cfg["format_version"] = 0
    (old / "config.json").write_text(json.dumps(cfg))
    res = runner.invoke(app, ["defects", "run", str(npy_images[0]), "--model", str(old), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2
    errors = _errors(res)
    assert len(errors) == 1 and "model format version 0" in errors[0] and "retrain" in errors[0]


def test_folder_that_is_not_a_model_gives_one_line(npy_images, tmp_path):
    res = runner.invoke(
        app, ["defects", "run", str(npy_images[0]), "--model", str(tmp_path), "-o", str(tmp_path / "o")]
    )
    assert res.exit_code == 2
    assert "not a samiam defect model" in _errors(res)[0]


def test_bad_option_gives_one_line(tiny_model_dir, npy_images, tmp_path):
    res = runner.invoke(
        app,
        [
            "defects",
            "run",
            str(npy_images[0]),
            "--model",
            str(tiny_model_dir),
            "-o",
            str(tmp_path / "o"),
            "--stride",
            "0",
        ],
    )
    assert res.exit_code == 2
    assert "stride must be between 1 and" in _errors(res)[0]
