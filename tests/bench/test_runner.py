"""Runner: scoring prediction folders, writing results, and collecting problems."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from samiam.bench.datasets import read_label_map
from samiam.bench.metrics import REGION_METRICS
from samiam.bench.runner import (
    BenchmarkOptions,
    boost_config_for,
    parse_methods,
    parse_weights,
    prediction_sources,
    run_benchmark,
)
from samiam.boost.config import BoostConfig
from samiam.errors import InputError, ParameterError
from samiam.io.files import write_json
from samiam.masks import MaskRecord
from samiam.segmentation import Segmentation


def write_prediction(path: Path, masks: list[np.ndarray]) -> Path:
    h, w = masks[0].shape
    seg = Segmentation(file=path.stem, height=h, width=w, masks=[MaskRecord.from_mask(m) for m in masks])
    return write_json(path, seg.to_json())


def build_predictions(dataset: Path, out: Path) -> Path:
    """perfect/: one mask per labelled region; everything/: one mask over the whole image."""
    for label_file in sorted((dataset / "labels").glob("*.png")):
        labels = read_label_map(label_file)
        stem = label_file.stem
        write_prediction(out / "perfect" / f"{stem}.masks.json", [labels == k for k in (1, 2, 3)])
        write_prediction(out / "everything" / f"{stem}.masks.json", [np.ones(labels.shape, bool)])
    return out


def test_scores_prediction_folders(folder_dataset: Path, tmp_path: Path):
    preds = build_predictions(folder_dataset, tmp_path / "preds")
    opts = BenchmarkOptions(predictions=preds, progress=False)
    result = run_benchmark(folder_dataset, tmp_path / "out", opts, echo=lambda line: None)
    assert result.problems == []
    summary = result.results["summary"]
    assert list(summary) == ["everything", "perfect"]
    perfect = summary["perfect"]["all"]
    for metric in ("miou", "recall", "precision", "boundary_miou", "boundary_recall", "hungarian_miou"):
        assert perfect[metric] == 1.0, metric
    assert perfect["false_positive"] == 0.0 and perfect["n_pred"] == 3.0
    # one mask over everything: IoU with region r = |G_r| / |valid pixels|, recall 1, one match each
    expected = []
    for label_file in sorted((folder_dataset / "labels").glob("*.png")):
        labels = read_label_map(label_file)
        areas = np.bincount(labels.ravel())[1:]
        expected.append(np.mean(areas / areas.sum()))
    everything = summary["everything"]["all"]
    assert everything["miou"] == pytest.approx(np.mean(expected))
    assert everything["recall"] == 1.0 and everything["false_positive"] == 0.0 and everything["n_pred"] == 1.0
    # results.json: every metric per image, method and region, plus the run parameters
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["dataset"]["n_scored"] == 3 and doc["run"]["options"]["predictions"] == str(preds)
    region = doc["images"][0]["methods"]["perfect"]["regions"][0]
    assert set(REGION_METRICS) <= set(region) and region["name"] == "Ge"
    assert (tmp_path / "out" / "results.md").read_text().startswith("# samiam benchmark")
    assert (tmp_path / "out" / "metrics.png").stat().st_size > 1000
    assert set(summary["perfect"]["by_layout"]) == {"stack", "particle"}


def test_bad_predictions_are_reported_and_the_rest_scored(folder_dataset: Path, tmp_path: Path):
    preds = build_predictions(folder_dataset, tmp_path / "preds")
    (preds / "perfect" / "img0.masks.json").unlink()
    (preds / "perfect" / "img1.masks.json").write_text("{broken")
    write_prediction(preds / "everything" / "img2.masks.json", [np.ones((8, 8), bool)])
    opts = BenchmarkOptions(predictions=preds, progress=False)
    result = run_benchmark(folder_dataset, tmp_path / "out", opts, echo=lambda line: None)
    text = "\n".join(result.problems)
    assert len(result.problems) == 3, text
    assert "perfect/img0.masks.json: missing prediction" in text
    assert "perfect/img1.masks.json: not a samiam masks JSON" in text
    assert "everything/img2.masks.json: masks are for 8x8 pixels, the label map is 80x64" in text
    assert result.results["summary"]["perfect"]["all"]["n_images"] == 1
    assert result.results["summary"]["everything"]["all"]["n_images"] == 2
    assert result.results["dataset"]["problems"] == result.problems


def test_prediction_folder_discovery(tmp_path: Path):
    flat = tmp_path / "segment-out"
    write_prediction(flat / "a.masks.json", [np.ones((4, 4), bool)])
    write_prediction(flat / "a.raw.json", [np.ones((4, 4), bool)])
    sources = prediction_sources(flat, None)
    assert list(sources) == ["segment-out", "segment-out.raw"]
    assert sources["segment-out.raw"][1] == ".raw.json"
    with pytest.raises(InputError, match="no predictions for method"):
        prediction_sources(flat, ["boosted"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no \\*.masks.json files"):
        prediction_sources(tmp_path / "empty", None)
    with pytest.raises(InputError, match="not found"):
        prediction_sources(tmp_path / "nope", None)


def test_option_parsing():
    assert parse_weights("none") is None
    assert parse_weights("paper") == {"easy": 10.0, "hard": 1.0}
    assert parse_weights("easy=3, hard=0.5") == {"easy": 3.0, "hard": 0.5}
    for bad in ("easy", "easy=0", "easy=x"):
        with pytest.raises(ParameterError):
            parse_weights(bad)
    assert parse_methods("raw, boosted") == ["raw", "boosted"] and parse_methods(None) is None
    with pytest.raises(ParameterError):
        parse_methods("raw,raw")
    assert boost_config_for("boosted-stats", BoostConfig(materials=3)).encoder == "stats"
    assert boost_config_for("boosted-stats", BoostConfig(materials=3)).materials == 3


def test_nothing_scorable_raises(folder_dataset: Path, tmp_path: Path):
    preds = tmp_path / "preds" / "m"
    write_prediction(preds / "other.masks.json", [np.ones((4, 4), bool)])
    with pytest.raises(InputError, match="no image could be scored"):
        run_benchmark(folder_dataset, tmp_path / "out", BenchmarkOptions(predictions=preds.parent, progress=False))
    assert not (tmp_path / "out" / "results.json").exists()
