import numpy as np
import pytest

from samiam.defects.flatten import align_rows, check_heights, flatten_heights, robust_sigma
from samiam.errors import InputError


def test_align_rows_removes_scan_line_offsets_but_keeps_a_vertical_step():
    rng = np.random.default_rng(0)
    z = np.zeros((64, 64))
    z[:, 32:] = 1.0  # vertical step: crosses every row at the same place
    offsets = rng.normal(0, 0.5, 64)
    out = align_rows(z + offsets[:, None])
    assert np.allclose(out - out[:, :1], z, atol=1e-9)  # step intact, rows aligned
    assert np.ptp(out[:, 0]) < 1e-9


def test_flatten_removes_a_plane():
    yy, xx = np.mgrid[0:50, 0:60].astype(float)
    z = 0.3 * xx - 0.2 * yy + 5
    z[20:24, 30:34] += 2.0  # a defect must not tilt the fit
    out = flatten_heights(z)
    background = np.ones_like(z, bool)
    background[20:24, 30:34] = False
    assert np.abs(out[background]).max() < 1e-6
    assert out[22, 32] == pytest.approx(2.0, abs=1e-6)


def test_robust_sigma_ignores_outliers():
    v = np.random.default_rng(1).normal(0, 2.0, 20000)
    v[:200] = 1e6
    assert robust_sigma(v) == pytest.approx(2.0, rel=0.05)


@pytest.mark.parametrize(
    "array, expected",
    [
        (np.zeros((4, 5, 6)), "expected a 2-D height map"),
        (np.zeros((8, 40)), "at least 16x16"),
        (np.where(np.eye(32) > 0, np.nan, 1.0), "32 height value(s) are NaN or infinite"),
    ],
)
def test_check_heights_rejects_bad_arrays(array, expected):
    with pytest.raises(InputError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        check_heights(array, "scan.npy")
