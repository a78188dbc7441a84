"""The STEM finder end to end on synthetic images: defects found, told apart, none where there are none."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from samiam.defects.stem.classes import fit_classes
from samiam.defects.stem.instances import PSEUDO_LABELS, descriptors, pseudo_labels
from samiam.defects.stem.pipeline import StemParams, detect_stem
from samiam.errors import InputError, ParameterError
from samiam.synth.stem_defects import synthetic_stem_defects


def _matched(s, det):
    d, idx = cKDTree(det.defects.xy).query(s.positions)
    return d < 0.5 * s.spacing, idx


@pytest.mark.parametrize("crystal", ["square", "hexagonal"])
def test_vacancy_and_substitution_found_and_told_apart(crystal):
    s = synthetic_stem_defects(256, crystal=crystal, kinds=("vacancy", "substitution"), n_per_kind=3, dose=100, seed=7)
    det = detect_stem(s.image)
    ok, idx = _matched(s, det)
    assert ok.all(), (s.positions[~ok], s.kinds)
    assert len(det.defects) <= len(s.positions) + 1
    pseudo = [PSEUDO_LABELS[p] for p in pseudo_labels(det.defects)[idx]]
    assert pseudo == [f"{k}-like" for k in s.kinds]
    classes = fit_classes(descriptors(det.defects), pseudo_labels(det.defects), max_classes=4)
    cls, _, _ = classes.predict(descriptors(det.defects)[idx])
    kinds = np.array(s.kinds)
    assert set(cls[kinds == "vacancy"]).isdisjoint(cls[kinds == "substitution"])


def test_interstitial_found_off_lattice():
    s = synthetic_stem_defects(256, crystal="square", kinds=("interstitial",), n_per_kind=3, dose=100, seed=8)
    det = detect_stem(s.image)
    ok, idx = _matched(s, det)
    assert ok.all()
    assert not det.defects.on_lattice[idx].any()


@pytest.mark.parametrize("crystal,seed", [("square", 1), ("hexagonal", 2), ("rectangular", 3)])
def test_defect_free_lattice_gives_no_defects(crystal, seed):
    s = synthetic_stem_defects(256, crystal=crystal, kinds=(), dose=100, seed=seed)
    det = detect_stem(s.image)
    assert len(det.defects) == 0
    assert len(det.columns.xy) > 300


@pytest.mark.parametrize(
    "image",
    [
        np.random.default_rng(0).normal(size=(256, 256)),  # noise
        np.add.outer(np.linspace(0, 1, 256), np.linspace(0, 1, 256)),  # a ramp
    ],
    ids=["noise", "ramp"],
)
def test_non_lattice_image_is_a_clear_input_error(image):
    with pytest.raises(InputError, match="lattice"):
        detect_stem(image, "x.png")


def test_amorphous_spots_are_not_a_lattice():
    rng = np.random.default_rng(1)
    img = np.zeros((256, 256))
    img[rng.integers(0, 256, 900), rng.integers(0, 256, 900)] = 1.0
    from scipy.ndimage import gaussian_filter

    img = rng.poisson(gaussian_filter(img, 1.5) * 400 + 5) / 400.0
    with pytest.raises(InputError, match="lattice"):
        detect_stem(img, "amorphous.png")


def test_bad_parameters_are_refused():
    with pytest.raises(ParameterError, match="reference"):
        StemParams(reference="median").check()
    with pytest.raises(ParameterError, match="thresholds"):
        StemParams(column_threshold=0).check()
