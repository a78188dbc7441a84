"""Naming on the shared stem-sim set (skipped without ../shared): a regression check on real-looking data.

A library learnt from the label maps of dev_101_006 and dev_101_010 (all eight materials) names the
ground-truth regions (cut into 256 px tiles, as fragments) of images whose materials look as in those
two: every region of dev_101_004/005/007/008/009 must get its true name. The full protocol and the
harder images are in benchmarks/fewshot/RESULTS.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from samiam.boost.config import BoostConfig
from tests.library.conftest import fragments, name_of_region

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
STEM_SIM = SHARED / "data" / "stem-sim"

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def stem_sim():
    """(dataset folder, meta, library learnt from dev_101_006 and dev_101_010)."""
    from samiam.library import LearnConfig, example_from_label_map, learn_examples

    if not (STEM_SIM / "meta.json").exists():
        pytest.skip(f"needs {STEM_SIM} (the shared data folder beside the repo), which is absent")
    meta = json.loads((STEM_SIM / "meta.json").read_text())
    examples = [
        example_from_label_map(STEM_SIM / "images" / f"{s}.png", STEM_SIM / "labels" / f"{s}.png", meta[s]["names"])
        for s in ("dev_101_006", "dev_101_010")
    ]
    lib, _ = learn_examples(examples, LearnConfig(crops_per_material=48))
    return STEM_SIM, meta, lib


@pytest.mark.parametrize("stem", ["dev_101_004", "dev_101_005", "dev_101_007", "dev_101_008", "dev_101_009"])
def test_library_from_two_images_names_the_regions_of_another(stem_sim, stem):
    from samiam.io.read import read_micrograph
    from samiam.library import name_masks

    root, meta, lib = stem_sim
    image = read_micrograph(root / "images" / f"{stem}.png").image
    labels = cv2.imread(str(root / "labels" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
    recs, _ = fragments(labels, block=256, min_area=8000)
    final, _ = name_masks(image, recs, lib, BoostConfig(min_area_frac=0.0))
    names = meta[stem]["names"]
    assert {n: name_of_region(final, labels == k) for k, n in enumerate(names, 1)} == {n: n for n in names}
