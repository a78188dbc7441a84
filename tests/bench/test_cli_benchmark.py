"""``samiam benchmark`` end to end: predictions folders, the tiny random SAM, bad input, shared data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from samiam.bench.datasets import read_label_map
from samiam.bench.metrics import score_image
from samiam.cli.app import app
from samiam.io.write import read_masks_json

from .conftest import shared_or_skip
from .test_runner import build_predictions, write_prediction

runner = CliRunner()
TINY = ["--model", "tiny-random", "--device", "cpu", "--points-per-side", "4"]
TINY += ["--pred-iou-thresh", "0", "--stability-thresh", "0", "--quiet"]  # random weights: keep every mask


def test_scores_a_predictions_folder(folder_dataset: Path, tmp_path: Path):
    preds = build_predictions(folder_dataset, tmp_path / "preds")
    out = tmp_path / "out"
    res = runner.invoke(app, ["benchmark", str(folder_dataset), "-o", str(out), "--predictions", str(preds), "-q"])
    assert res.exit_code == 0, res.output
    assert "perfect" in res.stdout and "1.000" in res.stdout
    for name in ("results.json", "results.md", "metrics.png"):
        assert (out / name).is_file()
    doc = json.loads((out / "results.json").read_text())
    assert doc["run"]["methods"] == ["everything", "perfect"]
    # --methods selects among the folders found
    res = runner.invoke(
        app,
        [
            "benchmark",
            str(folder_dataset),
            "-o",
            str(out),
            "--predictions",
            str(preds),
            "--methods",
            "perfect",
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads((out / "results.json").read_text())["run"]["methods"] == ["perfect"]


def test_problems_are_listed_and_the_exit_code_is_non_zero(folder_dataset: Path, tmp_path: Path):
    preds = build_predictions(folder_dataset, tmp_path / "preds")
    (preds / "perfect" / "img2.masks.json").unlink()
    (folder_dataset / "labels" / "img1.png").unlink()
    out = tmp_path / "out"
    res = runner.invoke(app, ["benchmark", str(folder_dataset), "-o", str(out), "--predictions", str(preds), "-q"])
    assert res.exit_code == 2
    errors = [line for line in res.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2, res.stderr
    assert "Traceback" not in res.output
    assert json.loads((out / "results.json").read_text())["dataset"]["n_scored"] == 2  # img0 and img2


@pytest.mark.parametrize(
    "args, message",
    [
        (["--limit", "0"], "--limit must be >= 1"),
        (["--weights", "easy=-1"], "weights: expected"),
        (["--methods", "raw,magic"], "unknown method 'magic'"),
        (["--materials", "zero"], "--materials must be"),
        (["--match-iou", "0"], "--match-iou must be"),
    ],
)
def test_bad_options_give_one_line(folder_dataset: Path, tmp_path: Path, args: list[str], message: str):
    out = tmp_path / "out"
    res = runner.invoke(app, ["benchmark", str(folder_dataset), "-o", str(out), *TINY, *args])
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [res.stderr.strip()] and message in res.stderr
    assert not out.exists()


def test_bad_dataset_paths_give_one_line(tmp_path: Path):
    out = tmp_path / "out"
    res = runner.invoke(app, ["benchmark", str(tmp_path / "missing"), "-o", str(out), "-q"])
    assert res.exit_code == 2 and "missing: no such dataset" in res.stderr
    (tmp_path / "empty" / "images").mkdir(parents=True)
    (tmp_path / "empty" / "labels").mkdir()
    res = runner.invoke(app, ["benchmark", str(tmp_path / "empty"), "-o", str(out), *TINY])
    assert res.exit_code == 2 and "images: no images" in res.stderr and "Traceback" not in res.output
    assert not out.exists()


def test_tiny_random_sam_segments_once_and_reuses_raw_masks(folder_dataset: Path, tmp_path: Path):
    out = tmp_path / "out"
    res = runner.invoke(app, ["benchmark", str(folder_dataset), "-o", str(out), *TINY, "--limit", "2"])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "results.json").read_text())
    assert doc["run"]["methods"] == ["raw", "boosted"] and doc["dataset"]["n_scored"] == 2
    assert doc["run"]["model"]["model"] == "tiny-random"
    raw_file = out / "predictions" / "raw" / "img0.masks.json"
    raw = json.loads(raw_file.read_text())
    assert raw["image"]["height"] == 64 and raw["run"]["boosted"] is False
    boosted = json.loads((out / "predictions" / "boosted" / "img0.masks.json").read_text())
    assert boosted["run"]["boosted"] is True
    assert boosted["run"]["timings"]["generate"] == raw["run"]["timings"]["generate"]  # same raw masks
    image_rec = doc["images"][0]["methods"]["raw"]
    assert image_rec["summary"]["n_pred"] == len(raw["annotations"])
    # a second run re-boosts the saved raw masks with another encoder, without re-segmenting
    before = raw_file.read_bytes()
    res = runner.invoke(
        app,
        ["benchmark", str(folder_dataset), "-o", str(out), *TINY, "--limit", "2", "--reuse-raw"]
        + ["--methods", "raw,boosted-stats"],
    )
    assert res.exit_code == 0, res.output
    assert raw_file.read_bytes() == before
    assert "model: none loaded" in res.stderr
    doc = json.loads((out / "results.json").read_text())
    assert doc["run"]["model"] == {"reused_raw_masks_from": ["tiny-random"]}
    assert doc["run"]["methods"] == ["raw", "boosted-stats"]
    assert (out / "predictions" / "boosted-stats" / "img1.masks.json").is_file()


def _check_scores_against_predictions(doc: dict, root: Path) -> None:
    """Every reported image mIoU is the one ``score_image`` gives for the written prediction file."""
    assert doc["images"]
    for img in doc["images"]:
        labels = read_label_map(root / "labels" / f"{img['stem']}.png")
        for scored in img["methods"].values():
            seg = read_masks_json(scored["prediction"])
            want = score_image((r.decode() for r in seg.masks), labels).summary()
            assert scored["summary"]["miou"] == pytest.approx(want["miou"])
            assert scored["summary"]["n_pred"] == len(seg.masks)


@pytest.mark.shared
def test_shared_stem_sim_with_label_predictions(tmp_path: Path):
    root = shared_or_skip()
    preds = tmp_path / "preds"
    n_regions = {}
    for label_file in sorted((root / "labels").glob("*.png"))[:2]:
        labels = read_label_map(label_file)
        ids = [k for k in np.unique(labels) if k > 0]
        n_regions[label_file.stem] = len(ids)
        write_prediction(preds / "labels" / f"{label_file.stem}.masks.json", [labels == k for k in ids])
        # wrong: one mask over the whole image; each region's IoU is its share of the valid pixels
        write_prediction(preds / "everything" / f"{label_file.stem}.masks.json", [np.ones(labels.shape, bool)])
    out = tmp_path / "out"
    res = runner.invoke(app, ["benchmark", str(root), "-o", str(out), "--predictions", str(preds), "--limit", "2"])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "results.json").read_text())
    summary = doc["summary"]["labels"]
    assert summary["all"]["n_images"] == 2 and summary["all"]["miou"] == 1.0
    assert summary["all"]["boundary_miou"] == 1.0
    assert min(n_regions.values()) >= 2
    for img in doc["images"]:  # mean over R regions of |G_r| / |V| is at most 1 / R
        wrong = img["methods"]["everything"]["summary"]["miou"]
        assert wrong <= 1 / n_regions[img["stem"]] + 1e-9
    assert doc["summary"]["everything"]["all"]["miou"] <= 0.5
    _check_scores_against_predictions(doc, root)


@pytest.mark.shared
@pytest.mark.slow
def test_shared_stem_sim_with_the_default_model(tmp_path: Path):
    root = shared_or_skip()
    out = tmp_path / "out"
    res = runner.invoke(app, ["benchmark", str(root), "-o", str(out), "--limit", "2", "--quiet"])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "results.json").read_text())
    assert doc["dataset"]["n_scored"] == 2 and list(doc["summary"]) == ["raw", "boosted"]
    for method in ("raw", "boosted"):
        summary = doc["summary"][method]["all"]
        assert summary["n_images"] == 2 and summary["n_pred"] >= 1
        assert len(list((out / "predictions" / method).glob("*.masks.json"))) == 2
    _check_scores_against_predictions(doc, root)
