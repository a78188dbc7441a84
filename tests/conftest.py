"""Shared fixtures: paths, synthetic images made by samiam's own generators, a tiny random SAM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared").resolve()


def shared_path(*parts: str) -> Path:
    """Path under ../shared, skipping the test with a reason when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"needs {p} (the shared data folder beside the repo), which is absent")
    return p


@pytest.fixture(autouse=True)
def _feature_cache(tmp_path_factory, monkeypatch):
    """Keep the tests' feature cache out of the user's ~/.cache."""
    monkeypatch.setenv("SAMIAM_FEATURE_CACHE", str(tmp_path_factory.getbasetemp() / "feature-cache"))


@pytest.fixture(scope="session")
def tiny_model():
    from samiam.models.build import load_model

    return load_model("tiny-random", device="cpu")


@pytest.fixture(scope="session")
def two_lattice_image() -> tuple[np.ndarray, np.ndarray]:
    """256x256 stack: square lattice (label 1) under a hexagonal one (label 2), no vacuum."""
    from samiam.synth.stem import stack_cross_section

    img, lab, _ = stack_cross_section(256, 256, materials=("square", "hexagonal"), seed=3, wavy=0.0)
    return img, lab


def write_png(path: Path, img01: np.ndarray) -> Path:
    import cv2

    cv2.imwrite(str(path), (np.clip(img01, 0, 1) * 255).astype(np.uint8))
    return path
