"""``samiam segment`` / ``boost`` / ``weights`` end to end through typer's runner."""

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from samiam.cli.app import app
from tests.conftest import write_png

runner = CliRunner()
FAST = [
    "--model",
    "tiny-random",
    "--pred-iou-thresh",
    "0",
    "--stability-thresh",
    "0",
    "--points-per-side",
    "4",
    "-q",
]


@pytest.fixture()
def example(tmp_path: Path, two_lattice_image) -> Path:
    return write_png(tmp_path / "two.png", two_lattice_image[0])


def _outputs(folder: Path, stem: str):
    return {p.name for p in folder.iterdir() if p.name.startswith(stem)}


def test_segment_writes_all_four_outputs(tmp_path: Path, example: Path):
    out = tmp_path / "out"
    res = runner.invoke(app, ["segment", str(example), "-o", str(out), *FAST])
    assert res.exit_code == 0, res.output
    assert _outputs(out, "two") == {"two.masks.json", "two.raw.json", "two.labels.png", "two.overlay.png"}
    doc = json.loads((out / "two.masks.json").read_text())
    assert doc["image"] == {"file": str(example), "height": 256, "width": 256}
    run = doc["run"]
    assert run["model"] == "tiny-random" and run["device"] == "cpu" and run["boosted"] is True
    assert run["boost"]["method"] == "field" and {"field", "boost_field"} <= set(run["timings"])
    assert run["timings"]["generate"] == 0.0  # the default runs no SAM prompt
    assert json.loads((out / "two.raw.json").read_text())["annotations"] == []
    assert "materials_chosen" in run and run["boost"]["crop_size"] == 60
    labels = cv2.imread(str(out / "two.labels.png"), cv2.IMREAD_UNCHANGED)
    assert labels.dtype == np.uint16 and labels.shape == (256, 256)
    assert labels.max() == len(doc["annotations"])
    overlay = cv2.imread(str(out / "two.overlay.png"))
    assert overlay.shape == (256, 256, 3)
    assert not [p for p in out.iterdir() if ".part" in p.name]


def test_fused_method_runs_sam_and_fuses(tmp_path: Path, example: Path):
    out = tmp_path / "out"
    res = runner.invoke(app, ["segment", str(example), "-o", str(out), "--method", "fused", *FAST])
    assert res.exit_code == 0, res.output
    run = json.loads((out / "two.masks.json").read_text())["run"]
    assert run["boost"]["method"] == "fused"
    assert {"generate", "field", "boost_filter", "boost_fuse"} <= set(run["timings"])
    assert json.loads((out / "two.raw.json").read_text())["annotations"]  # SAM proposed masks


def test_boost_reruns_from_raw_json(tmp_path: Path, example: Path):
    out = tmp_path / "out"
    assert runner.invoke(app, ["segment", str(example), "-o", str(out), *FAST]).exit_code == 0
    out2 = tmp_path / "out2"
    res = runner.invoke(app, ["boost", str(out / "two.raw.json"), str(example), "-o", str(out2), "--materials", "1"])
    assert res.exit_code == 0, res.output
    doc = json.loads((out2 / "two.masks.json").read_text())
    assert doc["run"]["boost"]["materials"] == 1 and len(doc["annotations"]) <= 1


def test_no_boost_writes_raw_masks_as_result(tmp_path: Path, example: Path):
    out = tmp_path / "out"
    res = runner.invoke(app, ["segment", str(example), "-o", str(out), "--no-boost", *FAST])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "two.masks.json").read_text())
    raw = json.loads((out / "two.raw.json").read_text())
    assert doc["run"]["boosted"] is False and len(doc["annotations"]) == len(raw["annotations"])


def test_batch_goes_on_after_a_bad_file(tmp_path: Path, example: Path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\ngarbage")
    out = tmp_path / "out"
    res = runner.invoke(app, ["segment", str(bad), str(example), "-o", str(out), *FAST])
    assert res.exit_code == 1
    assert "broken.png: FAILED" in res.output and "not a decodable" in res.output
    assert "Traceback" not in res.output
    assert (out / "two.masks.json").exists() and not _outputs(out, "broken")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "vit_q"], "unknown model 'vit_q'"),
        (["--materials", "many"], "--materials must be"),
        (["--encoder", "wavelets"], "unknown encoder"),
        (["--box-scales", "a,b"], "--box-scales"),
    ],
)
def test_bad_options_give_one_line(tmp_path: Path, example: Path, args, message):
    res = runner.invoke(app, ["segment", str(example), "-o", str(tmp_path / "o"), "-q", *args])
    assert res.exit_code == 2
    assert message in res.output and "Traceback" not in res.output


def test_wrong_checkpoint_hash_is_one_line(tmp_path: Path, example: Path):
    ck = tmp_path / "sam_vit_b.pth"
    ck.write_bytes(b"0" * 100)
    res = runner.invoke(
        app, ["segment", str(example), "-o", str(tmp_path / "o"), "--model", "vit_b", "--checkpoint", str(ck)]
    )
    assert res.exit_code == 2 and "does not match vit_b" in res.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
def test_unwritable_output_dir(tmp_path: Path, example: Path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    res = runner.invoke(app, ["segment", str(example), "-o", str(ro / "sub"), *FAST])
    assert res.exit_code == 2 and "not writable" in res.output


def test_output_path_that_is_a_file(tmp_path: Path, example: Path):
    f = tmp_path / "file"
    f.write_text("x")
    res = runner.invoke(app, ["segment", str(example), "-o", str(f), *FAST])
    assert res.exit_code == 2 and "not writable" in res.output and "Traceback" not in res.output


def test_empty_folder_input(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["segment", str(tmp_path / "empty"), "-o", str(tmp_path / "o"), *FAST])
    assert res.exit_code == 2 and "no image files" in res.output


def test_weights_cli(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SAMIAM_CACHE", str(tmp_path / "cache"))
    res = runner.invoke(app, ["weights", "list"])
    assert res.exit_code == 0 and "vit_h" in res.output and "not downloaded" in res.output
    f = tmp_path / "w.pth"
    f.write_bytes(b"abc")
    res = runner.invoke(app, ["weights", "verify", str(f), "--model", "vit_b"])
    assert res.exit_code == 2 and "does not match vit_b" in res.output
    res = runner.invoke(app, ["weights", "download", "vit_b", "--url", f.as_uri()])
    assert res.exit_code == 2 and "SHA-256" in res.output
    assert not list((tmp_path / "cache").glob("*.pth"))


@pytest.mark.slow
def test_segment_with_litemedsam_end_to_end(tmp_path: Path, monkeypatch):
    from samiam.synth.stem import particle_on_support

    monkeypatch.setenv("SAMIAM_CACHE", str(tmp_path / "cache"))
    img, lab, _ = particle_on_support(256, 256, seed=4)
    src = write_png(tmp_path / "particle.png", img)
    out = tmp_path / "out"
    res = runner.invoke(
        app, ["segment", str(src), "-o", str(out), "-q", "--box-scales", "0.5,0.25", "--method", "fused"]
    )
    assert res.exit_code == 0, res.output
    assert "model: litemedsam" in res.output
    doc = json.loads((out / "particle.masks.json").read_text())
    assert doc["run"]["model"] == "litemedsam" and doc["run"]["generator_mode"] == "boxes"
    assert len(doc["annotations"]) >= 1
    raw = json.loads((out / "particle.raw.json").read_text())
    assert len(raw["annotations"]) >= len(doc["annotations"])
    # the label map: values 0..K with K = the number of masks, each id painting exactly its (disjoint) mask
    labels = cv2.imread(str(out / "particle.labels.png"), cv2.IMREAD_UNCHANGED)
    k = len(doc["annotations"])
    assert labels.dtype == np.uint16 and labels.shape == lab.shape
    assert set(np.unique(labels).tolist()) <= set(range(k + 1)) and labels.max() == k
    counts = np.bincount(labels.ravel(), minlength=k + 1)
    assert counts[1:].tolist() == [a["area"] for a in doc["annotations"]]
    # and it finds the particle: some id covers most of it (ground truth label 1)
    particle = lab == 1
    best = max(((labels == i) & particle).sum() / ((labels == i) | particle).sum() for i in range(1, k + 1))
    print(f"best particle IoU {best:.3f}")
    assert best > 0.5
