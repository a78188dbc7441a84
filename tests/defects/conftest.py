"""Shared fixtures of the defect-stage tests: synthetic STM images and one tiny trained model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from samiam.defects import DefectParams, TrainParams, train_defect_model
from samiam.defects.train import TrainConfig
from samiam.io.micrograph import micrograph_from_array
from samiam.synth.stm import synthetic_stm

TRAIN_SEEDS = (0, 1, 2, 3)


@pytest.fixture(scope="session", autouse=True)
def _single_torch_thread():
    """Tiny batches: one thread is as fast and does not thrash on a shared 2-core CI machine."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_train_params(epochs: int = 5) -> TrainParams:
    """Small, fast training settings for the tests (a few seconds on 2 CPU cores)."""
    return TrainParams(
        ae1=TrainConfig(epochs=epochs, batch_size=64),
        ae2=TrainConfig(epochs=epochs, batch_size=32),
        patches_per_image=300,
        max_classes=4,
    )


@pytest.fixture(scope="session")
def train_images():
    return [synthetic_stm(128, seed=s) for s in TRAIN_SEEDS]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, train_images) -> Path:
    out = tmp_path_factory.mktemp("defect-model") / "model"
    mgs = [micrograph_from_array(im.heights, f"train{i}.npy") for i, im in enumerate(train_images)]
    train_defect_model(mgs, out, DefectParams(), tiny_train_params(), progress=False)
    return out


@pytest.fixture(scope="session")
def npy_images(tmp_path_factory, train_images) -> list[Path]:
    folder = tmp_path_factory.mktemp("stm-npy")
    paths = []
    for i, im in enumerate(train_images):
        p = folder / f"synthetic_{i}.npy"
        np.save(p, im.heights)
        paths.append(p)
    return paths
