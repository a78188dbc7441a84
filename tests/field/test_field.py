"""The dense material field on synthetic lattices made here (samiam.synth.stem)."""

from __future__ import annotations

import numpy as np
import pytest

from samiam.errors import ParameterError
from samiam.field import FieldConfig, material_field
from samiam.field.build import saturated_pixels
from samiam.field.cluster import valley_ratio
from samiam.field.lattice import estimate_lattice
from samiam.synth.stem import Lattice, _noisy, render_material

SIDE = 256


def _lattice(spacing: float, name: str = "sq") -> Lattice:
    return Lattice(name, (spacing, 0.0), (0.0, spacing), ((0, 0, 1.0),), sigma=spacing / 6)


def _image(parts: list[np.ndarray], seed: int = 0) -> np.ndarray:
    img = _noisy(np.concatenate(parts, 1), np.random.default_rng(seed), dose=40.0, read_noise=0.02)
    return ((img - img.min()) / (img.max() - img.min())).astype(np.float32)


def _mean_matched(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return b * (a.mean() / b.mean())


def test_lattice_period_is_measured() -> None:
    rng = np.random.default_rng(1)
    img = _image([render_material(_lattice(10.0), SIDE, SIDE, rng)])
    est = estimate_lattice(img)
    assert est.period_px == pytest.approx(10.0, rel=0.1)


def test_no_lattice_in_noise() -> None:
    noise = np.random.default_rng(2).normal(0.5, 0.1, (SIDE, SIDE)).astype(np.float32)
    assert estimate_lattice(noise).period_px is None


def test_two_spacings_with_equal_mean_separate() -> None:
    rng = np.random.default_rng(3)
    left = render_material(_lattice(8.0), SIDE, SIDE // 2, rng)
    right = _mean_matched(left, render_material(_lattice(14.0), SIDE, SIDE // 2, rng))
    img = _image([left, right])
    assert abs(img[:, : SIDE // 2].mean() - img[:, SIDE // 2 :].mean()) < 0.02  # only texture differs
    f = material_field(img)
    assert f.n_materials == 2
    a = np.bincount(f.labels[:, : SIDE // 2 - 24].ravel(), minlength=2)
    b = np.bincount(f.labels[:, SIDE // 2 + 24 :].ravel(), minlength=2)
    assert a.argmax() != b.argmax()
    assert a.max() / a.sum() > 0.9 and b.max() / b.sum() > 0.9


def test_one_lattice_in_two_orientations_is_one_material() -> None:
    rng = np.random.default_rng(4)
    lat = Lattice("hex", (10.0, 0.0), (5.0, 8.66), sigma=1.7)
    img = _image([render_material(lat, SIDE, SIDE // 2, rng), render_material(lat, SIDE, SIDE // 2, rng, angle=0.5)])
    assert material_field(img).n_materials == 1


def test_one_lattice_gives_one_material() -> None:
    rng = np.random.default_rng(5)
    img = _image([render_material(_lattice(11.0), SIDE, SIDE, rng)])
    f = material_field(img)
    assert f.n_materials == 1
    assert (f.labels == 0).all()


def test_given_k_is_respected() -> None:
    rng = np.random.default_rng(3)
    left = render_material(_lattice(8.0), SIDE, SIDE // 2, rng)
    img = _image([left, _mean_matched(left, render_material(_lattice(14.0), SIDE, SIDE // 2, rng))])
    three = material_field(img, 3)
    assert 2 <= three.n_materials <= 3  # never more than asked; a cluster that wins no pixel is dropped
    assert material_field(img, 1).n_materials == 1


def test_valley_ratio_tells_one_cloud_from_two() -> None:
    rng = np.random.default_rng(7)
    cloud = rng.normal(0, 1, (4000, 3))
    left, right = cloud[cloud[:, 0] < 0], cloud[cloud[:, 0] >= 0]  # one cloud cut in two
    one = valley_ratio(left, np.ones(len(left)), right, np.ones(len(right)))
    a, b = rng.normal(0, 1, (2000, 3)), rng.normal(0, 1, (2000, 3)) + [8, 0, 0]
    two = valley_ratio(a, np.ones(2000), b, np.ones(2000))
    assert one > 0.6 and two < 0.05  # a cut cloud has no dip (0.5 merges), two clouds a deep one


def test_saturated_pixels_join_the_material_they_resemble() -> None:
    rng = np.random.default_rng(8)
    dim = 0.3 * rng.random((SIDE, SIDE // 2))  # amorphous, dark
    bright = render_material(_lattice(10.0), SIDE, SIDE // 2, rng)
    bright = 0.6 + 0.4 * bright / bright.max()
    raw = _image([dim, bright])
    raw[96:160, 160:224] = 1.0  # a clipped particle core inside the bright crystal
    sat = saturated_pixels(raw)
    assert sat[96:160, 160:224].all() and sat[:, :128].mean() < 0.01
    f = material_field(raw, saturated=sat)
    dark = np.bincount(f.labels[:, :100].ravel()).argmax()
    core = f.labels[104:152, 168:216]
    assert (f.labels >= 0).all()  # no gap where the detector clipped
    assert not (core == dark).any()  # the clipped core joins a bright material, not the dark support


def test_descriptor_scales_are_checked() -> None:
    with pytest.raises(ParameterError, match="scale"):
        FieldConfig(scale="zscore").validate()


@pytest.mark.parametrize(
    "kw",
    [{"periods": 0.5}, {"window": 7}, {"stride_frac": 0.0}, {"k0": 1}, {"merge_valley": 1.5}, {"smooth_cells": -1}],
)
def test_bad_parameters_are_refused(kw: dict) -> None:
    with pytest.raises(ParameterError):
        FieldConfig(**kw).validate()


def test_bad_input_is_refused() -> None:
    with pytest.raises(ParameterError, match="2-D"):
        material_field(np.zeros((4, 32, 32), np.float32))
    with pytest.raises(ParameterError, match="smaller than"):
        from samiam.field.descriptors import window_descriptors

        window_descriptors(np.zeros((20, 20), np.float32), 32, 8)
