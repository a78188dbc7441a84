"""Step detection on the real Si(001)-H scans of ../shared (skipped when absent)."""

from pathlib import Path

import numpy as np
import pytest

from samiam.defects.prepare import prepare_heights

FSL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "stm" / "fsl_stm"

pytestmark = [
    pytest.mark.shared,
    pytest.mark.skipif(not FSL.is_dir(), reason="../shared/data/stm/fsl_stm is not available"),
]


def test_the_brockley_step_is_found_and_a_stepless_scan_has_none():
    brockley = next(FSL.glob("*Brockley*.npy"))
    neasden = next(FSL.glob("*Neasden*.npy"))
    stepped = prepare_heights(np.load(brockley), brockley.name)
    flat = prepare_heights(np.load(neasden), neasden.name)
    assert stepped.steps.n_steps == 1
    assert 0.005 < stepped.steps.band.mean() < 0.1
    assert stepped.steps.terraces.max() >= 2
    assert flat.steps.n_steps == 0
