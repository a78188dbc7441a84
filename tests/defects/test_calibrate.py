"""Per-image calibration on images the tests make: noise, scan-line noise, atomic spacing, feature scale."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from samiam.defects.blobs import BlobParams, scales
from samiam.defects.calibrate import atomic_spacing, calibrate, feature_scale, noise_level
from samiam.errors import ParameterError
from samiam.synth.stm import synthetic_stm


def _bumps(size: int, sigma: float, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = np.zeros((size, size))
    z[rng.integers(0, size, n), rng.integers(0, size, n)] = 1.0
    return ndi.gaussian_filter(z, sigma) * sigma**2


@pytest.mark.parametrize("sigma", [0.01, 0.05])
def test_noise_level_recovers_white_noise_on_a_tilted_terrace(sigma):
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:256, 0:256]
    z = 0.003 * xx + 0.001 * yy + 0.2 * np.sin(xx / 40.0) + rng.normal(0, sigma, (256, 256))
    noise, rows, differ = noise_level(z)
    assert noise == pytest.approx(sigma, rel=0.1)
    assert np.median(rows) == pytest.approx(sigma, rel=0.1)
    assert not differ


def test_noise_level_recovers_the_noise_of_a_synthetic_stm_image():
    im = synthetic_stm(256, noise=0.01, corrugation=0.005, line_noise=0.0, step=False, seed=3)
    noise, _, _ = noise_level(im.heights)
    assert noise == pytest.approx(0.01, rel=0.2)


def test_noisy_scan_lines_are_measured_per_line():
    rng = np.random.default_rng(2)
    z = rng.normal(0, 0.02, (200, 200))
    z[80:120] = rng.normal(0, 0.08, (40, 200))
    _, rows, differ = noise_level(z)
    assert differ
    assert np.median(rows[85:115]) == pytest.approx(0.08, rel=0.15)
    assert np.median(rows[:70]) == pytest.approx(0.02, rel=0.15)


@pytest.mark.parametrize("period", [6.0, 9.0])
def test_atomic_spacing_recovers_the_lattice_period(period):
    im = synthetic_stm(256, period=period, n_defects=0, step=False, noise=0.004, seed=4)
    spacing = atomic_spacing(im.heights)
    # hexagonal lattice of neighbour distance ``period``: rows repeat every period * sqrt(3) / 2
    assert spacing == pytest.approx(period * np.sqrt(3) / 2, rel=0.06)


def test_no_atomic_spacing_in_white_noise():
    assert atomic_spacing(np.random.default_rng(5).normal(size=(256, 256))) is None


def test_feature_scale_follows_the_size_of_the_features():
    small = feature_scale(_bumps(256, 2.0, 300, 6))
    large = feature_scale(_bumps(256, 6.0, 60, 6))
    assert 2.2 < large / small < 4.0


def test_blob_scales_follow_the_image_when_it_is_resampled():
    z = _bumps(192, 3.0, 40, 7) + np.random.default_rng(8).normal(0, 0.002, (192, 192))
    z2 = ndi.zoom(z, 2, order=3)
    c1, c2 = calibrate(z), calibrate(z2)
    params = BlobParams(min_scale=0.6)  # above the 2 px floor on both images
    s1 = scales(params, c1.spacing, c1.feature_scale, z.shape)
    s2 = scales(params, c2.spacing, c2.feature_scale, z2.shape)
    assert s1[0] > 2.0
    assert s2[0] / s1[0] == pytest.approx(2.0, rel=0.2)
    assert s2[-1] / s1[-1] == pytest.approx(2.0, rel=0.2)
    px = scales(BlobParams(scale_unit="px"), None)
    assert px[0] == 2.0 and px[-1] == 24.0  # the previous pixel ladder


def test_calibration_rejects_a_tiny_or_3d_array():
    with pytest.raises(ParameterError, match="expected a 2-D height map"):
        calibrate(np.zeros((8, 8)))
    with pytest.raises(ParameterError, match="expected a 2-D height map"):
        noise_level(np.zeros((2, 32, 32)))
