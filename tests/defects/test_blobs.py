import numpy as np
import pytest
from scipy import ndimage as ndi

from samiam.defects.blobs import (
    BlobParams,
    Blobs,
    blob_mask,
    blob_regions,
    close_pairs,
    detect_blobs,
    gate_blobs,
    half_max_outline,
    hessian_at,
    hessian_responses,
    lattice_period,
    line_noise_factor,
    persistent,
    roundness,
)
from samiam.defects.flatten import flatten_heights, robust_sigma
from samiam.defects.instances import find_instances
from samiam.errors import ParameterError
from samiam.synth.stm import synthetic_stm


def normalised(heights: np.ndarray) -> np.ndarray:
    flat = flatten_heights(heights)
    return (flat / robust_sigma(flat)).astype(np.float32)


def test_lattice_period_is_the_first_order_spacing_of_the_hex_lattice():
    im = synthetic_stm(256, period=8.0, n_defects=0, step=False, seed=5)
    # rows of a hexagonal lattice with nearest-neighbour distance a are a*sqrt(3)/2 apart
    assert abs(lattice_period(normalised(im.heights)) - 8.0 * np.sqrt(3) / 2) < 0.3


def test_lattice_period_is_none_for_white_noise():
    rng = np.random.default_rng(0)
    assert lattice_period(rng.normal(size=(128, 128))) is None


def test_hessian_responses_match_spatial_gaussian_derivatives():
    rng = np.random.default_rng(1)
    z = ndi.gaussian_filter(rng.normal(size=(96, 96)), 2.0)
    s = 3.0
    hyy = ndi.gaussian_filter(z, s, order=(2, 0))
    hxx = ndi.gaussian_filter(z, s, order=(0, 2))
    hxy = ndi.gaussian_filter(z, s, order=(1, 1))
    ref = -np.sign(hxx + hyy) * np.sqrt(np.maximum(hxx * hyy - hxy**2, 0)) * s * s
    got = hessian_responses(z, np.array([s]))[0]
    inner = (slice(15, -15), slice(15, -15))
    assert np.abs(got - ref)[inner].max() < 0.02 * np.abs(ref).max()


def test_blobs_find_bumps_and_pits_with_their_sign_and_not_the_lattice():
    im = synthetic_stm(160, n_defects=6, kinds=("adatom", "vacancy"), step=False, seed=7)
    h = normalised(im.heights)
    blobs = detect_blobs(h, BlobParams(), lattice_period(h))
    assert len(blobs.sigma) >= 6
    for (x, y), kind in zip(im.centres, im.kinds, strict=True):
        d = np.hypot(blobs.yx[:, 0] - y, blobs.yx[:, 1] - x)
        j = int(d.argmin())
        assert d[j] <= 3.0
        assert (blobs.strength[j] > 0) == (kind == "adatom")
    # at most one blob away from the defects: lattice sites and noise do not respond
    near = np.min(
        np.hypot(blobs.yx[:, None, 0] - im.centres[None, :, 1], blobs.yx[:, None, 1] - im.centres[None, :, 0]), 1
    )
    assert (near > 6).sum() <= 1


def test_a_scan_line_streak_gives_no_blob():
    z = np.zeros((128, 128), np.float32)
    z += np.random.default_rng(2).normal(0, 0.05, z.shape).astype(np.float32)
    z[60:62, 10:118] += 3.0  # a bright two-line glitch: line-like, det(H) ~ 0
    blobs = detect_blobs(z, BlobParams(), None)
    on_line = (np.abs(blobs.yx[:, 0] - 61) < 6) & (blobs.yx[:, 1] > 20) & (blobs.yx[:, 1] < 108)
    assert not on_line.any()


def test_gate_and_disks():
    blobs = Blobs(np.array([[20.0, 20.0], [60.0, 60.0]]), np.array([2.0, 4.0]), np.array([8.0, -9.0]))
    err = np.zeros((80, 80), np.float32)
    err[58:63, 58:63] = 5.0
    kept = gate_blobs(blobs, err, 1.0, 1.5)
    assert kept.yx.tolist() == [[60.0, 60.0]]
    mask = blob_mask(blobs, (80, 80), 1.5)
    labels, n = ndi.label(mask)
    assert n == 2
    assert abs(mask[labels == labels[20, 20]].sum() - np.pi * 3.0**2) < 12
    assert abs(mask[labels == labels[60, 60]].sum() - np.pi * 6.0**2) < 20


def _gauss(shape, y, x, sy, sx, amp=1.0):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    return amp * np.exp(-((yy - y) ** 2) / (2 * sy**2) - (xx - x) ** 2 / (2 * sx**2))


def test_hessian_at_points_matches_gaussian_derivative_filters():
    z = ndi.gaussian_filter(np.random.default_rng(3).normal(size=(64, 80)), 1.5)
    yx = np.array([[10, 12], [32, 40], [2, 78], [63, 0]])
    for s in (1.5, 3.0):
        hyy, hxx, hxy = hessian_at(z, yx, s)
        for got, order in ((hyy, (2, 0)), (hxx, (0, 2)), (hxy, (1, 1))):
            ref = ndi.gaussian_filter(z, s, order=order)[yx[:, 0], yx[:, 1]]
            np.testing.assert_allclose(got, ref, atol=1e-3 * np.abs(ref).max() + 1e-9)


def test_roundness_is_one_for_a_round_bump_and_small_for_a_streak():
    round_bump = _gauss((41, 41), 20, 20, 3, 3)
    streak = _gauss((41, 41), 20, 20, 1.5, 9)
    at = np.array([[20, 20]])
    assert roundness(*hessian_at(round_bump, at, 2.0))[0] > 0.99
    assert roundness(*hessian_at(streak, at, 2.0))[0] < 0.2


def test_persistence_keeps_the_smallest_same_sign_response_over_n_scales():
    a = np.array([[3.0, 3.0, -4.0]])
    b = np.array([[5.0, -1.0, -2.0]])
    c = np.array([[4.0, 2.0, -6.0]])
    out, sig = persistent([a, b, c], np.array([1.0, 2.0, 4.0]), 3)
    assert len(out) == 1 and sig[0] == pytest.approx(2.0)
    assert out[0].tolist() == [[3.0, 0.0, -2.0]]  # sign change in the middle column: no blob
    out2, sig2 = persistent([a, b, c], np.array([1.0, 2.0, 4.0]), 2)
    assert len(out2) == 2 and sig2 == pytest.approx([np.sqrt(2), np.sqrt(8)])
    same, _ = persistent([a, b], np.array([1.0, 2.0]), 1)
    assert same[0] is a


def test_line_noise_factor_raises_noisy_scan_lines_only():
    rng = np.random.default_rng(4)
    r = rng.normal(size=(200, 256))
    r[80:120] *= 5.0  # a burst of noisy scan lines
    f = line_noise_factor(r, rows=21, quantile=75.0)
    assert f.shape == (200,) and f.min() >= 1.0
    assert np.all(f[90:110] > 3.0)
    assert np.all(f[:60] < 1.2) and np.all(f[140:] < 1.2)


def test_a_faint_wide_defect_persists_and_isolated_pixel_noise_does_not():
    rng = np.random.default_rng(5)
    z = rng.normal(0, 1.0, (160, 160))
    z += _gauss(z.shape, 80, 80, 7, 7, amp=6.0)  # faint, wide: below the noise at single pixels
    blobs = detect_blobs(z.astype(np.float32), BlobParams(), None)
    d = np.hypot(blobs.yx[:, 0] - 80, blobs.yx[:, 1] - 80)
    assert (d <= 4).any()
    assert (d > 20).sum() <= 1  # white noise alone gives (almost) nothing


def test_persistence_and_strong_blobs_can_be_switched_off():
    z = np.random.default_rng(6).normal(0, 1.0, (128, 128)).astype(np.float32)
    loose = detect_blobs(z, BlobParams(persist=1, strong_threshold=0.0, min_roundness=0.0, line_noise_rows=0), None)
    strict = detect_blobs(z, BlobParams(), None)
    assert len(loose.sigma) > 10 * max(len(strict.sigma), 1)


def test_short_horizontal_streaks_are_not_blobs():
    z = np.random.default_rng(7).normal(0, 0.05, (128, 128))
    for y, x in ((30, 30), (64, 80), (100, 40)):
        z += _gauss(z.shape, y, x, 1.0, 6.0, amp=3.0)  # 12 px long, 2 px thick dashes along the scan lines
    z += _gauss(z.shape, 64, 30, 3.0, 3.0, amp=3.0)  # one round defect
    blobs = detect_blobs(z.astype(np.float32), BlobParams(), None)
    assert np.hypot(blobs.yx[:, 0] - 64, blobs.yx[:, 1] - 30).min() <= 2
    for y, x in ((30, 30), (64, 80), (100, 40)):
        assert np.hypot(blobs.yx[:, 0] - y, blobs.yx[:, 1] - x).min() > 4


def test_blob_regions_split_touching_defects_and_keep_one_defect_whole():
    blobs = Blobs(
        np.array([[30.0, 30.0], [30.0, 42.0], [80.0, 80.0], [82.0, 83.0]]),
        np.array([5.0, 5.0, 8.0, 2.0]),
        np.array([4.0, 4.0, -5.0, -6.0]),
    )
    mask = blob_mask(blobs, (120, 120), 1.5)
    assert ndi.label(mask)[1] == 2  # the first two disks touch
    regions = blob_regions(mask, blobs, 1.5)
    assert regions.max() == 3  # two touching neighbours + one defect with a blob inside its disk
    assert regions[30, 30] != regions[30, 42] and regions[80, 80] == regions[82, 83]
    assert (regions > 0).sum() == mask.sum() and regions[~mask].max() == 0
    labels, inst = find_instances(mask, np.zeros((120, 120)), regions=regions)
    cx = sorted(round(i.centroid[0]) for i in inst if i.centroid[1] < 50)
    assert len(inst) == 3 and cx[0] < 36 < cx[1]  # centroids on each side, not in the gap


def test_blob_regions_without_blobs_and_for_a_full_mask():
    empty = Blobs(np.zeros((0, 2)), np.zeros(0), np.zeros(0))
    mask = np.zeros((20, 20), bool)
    mask[2:6, 2:6] = True
    assert blob_regions(mask, empty, 1.5).max() == 1
    full = np.ones((20, 20), bool)
    one = Blobs(np.array([[10.0, 10.0]]), np.array([3.0]), np.array([5.0]))
    assert np.all(blob_regions(full, one, 1.5) == 1)


@pytest.mark.parametrize(
    "kw",
    [
        dict(persist=0),
        dict(persist=9),
        dict(strong_persist=0),
        dict(strong_threshold=-1.0),
        dict(min_roundness=1.5),
        dict(line_noise_quantile=100.0),
        dict(line_noise_rows=-1),
    ],
)
def test_bad_blob_parameters_are_refused(kw):
    with pytest.raises(ParameterError):
        BlobParams(**kw).check()


def test_half_max_outline_follows_an_elongated_bump_and_a_pit():
    z = _gauss((100, 140), 50, 40, 3.0, 10.0, amp=2.0) - _gauss((100, 140), 50, 105, 4.0, 4.0, amp=2.0)
    blobs = Blobs(np.array([[50.0, 40.0], [50.0, 105.0]]), np.array([3.0, 4.0]), np.array([6.0, -6.0]))
    out = half_max_outline(z, blobs, 1.5, smooth=0.0)
    labels, n = ndi.label(out)
    assert n == 2
    k = np.sqrt(2 * np.log(2))  # half maximum of a Gaussian at k sigma
    bump, pit = labels == labels[50, 40], labels == labels[50, 105]
    assert abs(bump.sum() - np.pi * (k * 3.0) * (k * 10.0)) < 0.15 * np.pi * (k * 3.0) * (k * 10.0)
    assert abs(pit.sum() - np.pi * (k * 4.0) ** 2) < 0.15 * np.pi * (k * 4.0) ** 2
    ys, xs = np.nonzero(bump)
    assert xs.max() - xs.min() > 2.5 * (ys.max() - ys.min())  # elongated like the bump, not a disk


def test_half_max_outline_skips_a_blob_that_does_not_stand_out():
    z = np.zeros((60, 60))
    z[25:35, 25:35] = -1.0  # a pit where the blob claims a bump
    blobs = Blobs(np.array([[30.0, 30.0]]), np.array([2.0]), np.array([5.0]))
    assert not half_max_outline(z, blobs, 1.5, smooth=0.0).any()


def test_close_pairs_match_all_pairs_distances():
    rng = np.random.default_rng(8)
    a, b = rng.uniform(0, 100, (60, 2)), rng.uniform(0, 100, (40, 2))
    a[0] = b[0]  # distance 0 counts
    ra, rb = rng.uniform(1, 15, 60), rng.uniform(1, 15, 40)
    d = np.hypot(*(a[:, None] - b[None]).transpose(2, 0, 1))
    i, j = close_pairs(a, b, rb)
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == set(zip(*np.nonzero(d <= rb[None]), strict=True))
    i, j = close_pairs(a, b, rb, ra)
    both = d <= np.maximum(ra[:, None], rb[None])
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == set(zip(*np.nonzero(both), strict=True))
    assert (0, 0) in set(zip(i.tolist(), j.tolist(), strict=True))
