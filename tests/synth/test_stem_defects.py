"""Synthetic HAADF images with labelled point defects."""

import numpy as np
import pytest

from samiam.synth.stem_defects import (
    CRYSTALS,
    interstitial_site,
    nn_spacing,
    read_truth_csv,
    synthetic_stem_defects,
)


def test_same_seed_same_image_and_truth():
    a = synthetic_stem_defects(128, crystal="hexagonal", n_per_kind=2, seed=4)
    b = synthetic_stem_defects(128, crystal="hexagonal", n_per_kind=2, seed=4)
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.positions, b.positions)
    assert a.kinds == b.kinds


@pytest.mark.parametrize("crystal", sorted(CRYSTALS))
def test_defects_inside_apart_and_of_every_kind(crystal):
    s = synthetic_stem_defects(256, crystal=crystal, n_per_kind=3, seed=1)
    assert sorted(s.kinds) == sorted(["vacancy", "substitution", "interstitial"] * 3)
    assert ((s.positions >= 0) & (s.positions < 256)).all()
    d = np.sqrt(((s.positions[:, None] - s.positions[None]) ** 2).sum(-1)) + np.eye(len(s.positions)) * 1e9
    assert d.min() > 1.5 * s.spacing  # sites 3 spacings apart; an interstitial sits ~1 spacing off its column
    assert s.spacing == pytest.approx(nn_spacing(CRYSTALS[crystal]))


def test_vacancy_darker_substitution_brighter_interstitial_off_lattice():
    clean = dict(size=256, crystal="square", n_per_kind=3, dose=1e6, jitter=0.0, read_noise=0.0, seed=2)
    s = synthetic_stem_defects(**clean)
    ref = synthetic_stem_defects(**clean, kinds=())
    for (x, y), kind in zip(s.positions, s.kinds, strict=True):
        v, r = s.image[int(round(y)), int(round(x))], ref.image[int(round(y)), int(round(x))]
        if kind == "vacancy":
            assert v < 0.7 * r
        elif kind == "substitution":
            assert v > 1.5 * r
        else:
            assert v > r + 0.2  # an extra column where the bulk has none
    d = np.sqrt(((s.positions[:, None] - s.columns[None]) ** 2).sum(-1)).min(1)
    inter = np.array(s.kinds) == "interstitial"
    assert (d[inter] > 0.5 * s.spacing).all() and (d[~inter] < 0.1).all()


def test_defect_free_and_csv_round_trip(tmp_path):
    assert len(synthetic_stem_defects(128, kinds=()).positions) == 0
    s = synthetic_stem_defects(256, n_per_kind=2, seed=3)
    pos, kinds, spacing = read_truth_csv(s.write_csv(tmp_path / "t.csv"))
    assert np.allclose(pos, s.positions, atol=1e-3) and kinds == s.kinds
    assert spacing == pytest.approx(s.spacing, abs=1e-4)


def test_interstitial_site_is_the_cell_centre_of_a_square_lattice():
    assert interstitial_site(CRYSTALS["square"]) == pytest.approx((0.5, 0.5))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="crystal"):
        synthetic_stem_defects(64, crystal="cubic")
    with pytest.raises(ValueError, match="kinds"):
        synthetic_stem_defects(64, kinds=("antisite",))
