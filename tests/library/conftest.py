"""Fixtures for the few-shot library tests: synthetic cross-sections and fragment masks made in the test."""

from __future__ import annotations

import numpy as np
import pytest

from samiam.masks import MaskRecord

SIZE = 384
LEARN_MATERIALS = ("square", "hexagonal", "amorphous", "vacuum")


def stack(materials: tuple[str, ...], seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A SIZE x SIZE film stack of the given lattices (bottom band first)."""
    from samiam.synth.stem import stack_cross_section

    return stack_cross_section(SIZE, SIZE, materials=materials, seed=seed)


def fragments(lab: np.ndarray, block: int = 96, min_area: int = 2500) -> tuple[list[MaskRecord], np.ndarray]:
    """Grid tiles cut by the ground-truth regions: what a fragmenting mask generator gives.

    Returns:
        (masks, ground-truth label of each mask).
    """
    recs, truth = [], []
    h, w = lab.shape
    for k in np.unique(lab[lab > 0]):
        for y in range(0, h, block):
            for x in range(0, w, block):
                m = np.zeros((h, w), bool)
                m[y : y + block, x : x + block] = True
                m &= lab == k
                if m.sum() >= min_area:
                    recs.append(MaskRecord.from_mask(m, score=0.9))
                    truth.append(int(k))
    return recs, np.array(truth)


def name_of_region(final: list[MaskRecord], region: np.ndarray) -> str | None:
    """Material of the final mask covering most of ``region``."""
    best, name = 0, None
    for r in final:
        n = int((r.decode() & region).sum())
        if n > best:
            best, name = n, r.material
    return name


@pytest.fixture(scope="session")
def learnt():
    """(library, image, labels, names) learnt from one labelled stack of four materials."""
    from samiam.library import example_from_label_map, learn_examples

    img, lab, names = stack(LEARN_MATERIALS, seed=1)
    lib, _ = learn_examples([example_from_label_map(img, lab, names, "learn.png")])
    return lib, img, lab, names
