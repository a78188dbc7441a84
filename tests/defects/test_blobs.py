import numpy as np
from scipy import ndimage as ndi

from samiam.defects.blobs import (
    BlobParams,
    Blobs,
    blob_mask,
    detect_blobs,
    gate_blobs,
    hessian_responses,
    lattice_period,
)
from samiam.defects.flatten import flatten_heights, robust_sigma
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
