"""Robust z-scores and bulk references."""

import numpy as np
import pytest

from samiam.defects.stem.bulk import neighbour_reference
from samiam.defects.stem.residual import intensity_bins, robust_z


def test_robust_z_ignores_outliers_and_works_per_group():
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.normal(0, 1, 500), rng.normal(10, 3, 500)])
    v[0] = 50.0
    z = robust_z(v, np.repeat([0, 1], 500))
    assert z[0] > 30
    assert np.median(np.abs(z[1:500])) == pytest.approx(0.674, abs=0.1)
    assert np.median(np.abs(z[500:])) == pytest.approx(0.674, abs=0.1)


def test_intensity_bins_are_quantiles():
    b = intensity_bins(np.arange(100.0), 4)
    assert np.bincount(b).tolist() == [25, 25, 25, 25]


def test_neighbour_reference_uses_the_same_sublattice():
    xy = np.array([[x, y] for y in range(10) for x in range(10)], float) * 5
    expected = np.where((xy[:, 0] // 5 + xy[:, 1] // 5) % 2 == 0, 1.0, 0.5)
    observed = expected.copy()
    observed[55] *= 2
    ref = neighbour_reference(observed, expected, xy, 5.0)
    assert ref[55] == pytest.approx(expected[55])
