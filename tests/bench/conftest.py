"""Fixtures for the benchmark tests: small labelled lattice images generated here, never copied."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
STEM_SIM = SHARED / "data" / "stem-sim"
MATERIALS = ("Ge", "SrTiO3", "vacuum")


def synthetic_labelled(seed: int, h: int = 64, w: int = 80, layout: str = "stack") -> tuple[np.ndarray, np.ndarray]:
    """Return (uint8 image, int32 label map) of a toy cross-section: three lattices, 0 at interfaces.

    ``stack``: three horizontal bands; ``particle``: a disc of material 2 on material 1, vacuum on top.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    labels = np.full((h, w), 3, np.int32)
    if layout == "stack":
        labels[: h // 3] = 1
        labels[h // 3 : 2 * h // 3] = 2
    else:
        labels[h // 2 :] = 1
        labels[(yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (h / 4) ** 2] = 2
    periods = {1: 4.0, 2: 7.0, 3: 0.0}
    image = np.zeros((h, w))
    for k, p in periods.items():
        if p:
            lattice = (np.cos(2 * np.pi * xx / p) * np.cos(2 * np.pi * yy / p) + 1) / 2
            image[labels == k] = 0.2 + 0.7 * lattice[labels == k]
    image += rng.normal(0, 0.05, image.shape)
    edges = cv2.morphologyEx(labels.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    labels[edges] = 0  # thin ignore band at every interface
    return np.clip(image * 255, 0, 255).astype(np.uint8), labels


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)
    return path


def build_folder_dataset(root: Path, n: int = 3, h: int = 64, w: int = 80) -> Path:
    """images/ + labels/ + meta.json with alternating stack/particle layouts."""
    meta = {}
    for i in range(n):
        layout = "stack" if i % 2 == 0 else "particle"
        image, labels = synthetic_labelled(i, h, w, layout)
        write_png(root / "images" / f"img{i}.png", image)
        write_png(root / "labels" / f"img{i}.png", labels.astype(np.uint8))
        meta[f"img{i}"] = {"names": list(MATERIALS), "layout": layout}
    (root / "meta.json").write_text(json.dumps(meta))
    return root


@pytest.fixture
def folder_dataset(tmp_path: Path) -> Path:
    return build_folder_dataset(tmp_path / "set")


def shared_or_skip() -> Path:
    if not (STEM_SIM / "meta.json").is_file():
        pytest.skip(f"shared data not found at {STEM_SIM} (needs ../shared next to the repository)")
    return STEM_SIM
