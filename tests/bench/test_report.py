"""Report: means per method and group, markdown table, bar chart."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from samiam.bench.metrics import score_image
from samiam.bench.report import markdown_report, plot_summary, summarise, write_markdown

LABELS = np.ones((10, 10), np.uint8)
LABELS[:, 5:] = 2
LEFT, RIGHT = LABELS == 1, LABELS == 2
FULL = np.ones((10, 10), bool)


def record(stem: str, layout: str, method_masks: dict[str, list[np.ndarray]]) -> dict:
    methods = {}
    for method, masks in method_masks.items():
        s = score_image(masks, LABELS, names={1: "Ge", 2: "vacuum"}, difficulty={1: "hard", 2: "easy"})
        methods[method] = {"summary": s.summary(), "regions": [r.as_dict() for r in s.regions]}
    return {"stem": stem, "groups": {"layout": layout}, "methods": methods}


@pytest.fixture
def images() -> list[dict]:
    return [
        record("a", "stack", {"raw": [FULL], "boosted": [LEFT, RIGHT]}),  # raw mIoU 0.5, boosted 1
        record("b", "particle", {"raw": [LEFT, RIGHT], "boosted": [LEFT, RIGHT]}),  # both 1
    ]


def test_summary_means(images):
    summary = summarise(images, ["raw", "boosted"])
    assert summary["raw"]["all"]["miou"] == pytest.approx(0.75)  # (0.5 + 1) / 2
    assert summary["boosted"]["all"]["miou"] == 1.0
    assert summary["raw"]["all"]["n_images"] == 2
    assert summary["raw"]["by_layout"]["stack"]["miou"] == 0.5
    assert summary["raw"]["by_layout"]["particle"]["miou"] == 1.0
    assert summary["raw"]["all"]["hungarian_miou"] == pytest.approx((0.25 + 1) / 2)
    # region classes pool regions over images: Ge regions of the raw method have precision 0.5 and 1
    assert summary["raw"]["by_material"]["Ge"]["precision"] == pytest.approx(0.75)
    assert summary["raw"]["by_region_difficulty"]["hard"]["n_regions"] == 2


def test_markdown_and_plot(images, tmp_path: Path):
    summary = summarise(images, ["raw", "boosted"])
    results = {
        "run": {"model": "none", "methods": "raw,boosted"},
        "dataset": {"path": "x", "layout": "folders", "n_scored": 2, "problems": ["img9.png: no label map"]},
        "summary": summary,
    }
    text = markdown_report(results)
    assert "| raw | 2 | 0.750 |" in text and "| boosted | 2 | 1.000 |" in text
    assert "## Mean over images, by layout" in text and "| raw / stack | 1 | 0.500 |" in text
    assert "img9.png: no label map" in text
    assert write_markdown(tmp_path / "results.md", results).read_text() == text
    png = plot_summary(tmp_path / "plot.png", summary)
    img = cv2.imread(str(png))
    assert img is not None and img.shape[0] > 200 and img.std() > 10
