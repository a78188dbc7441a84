"""Naming masks with a library: consistent names across images, unknown for unseen lattices."""

from __future__ import annotations

import numpy as np
import pytest

from samiam.boost.config import BoostConfig
from samiam.errors import ParameterError
from samiam.library import UNKNOWN, LibraryClassifier, NamingConfig, name_masks
from tests.library.conftest import fragments, name_of_region, stack

CFG = BoostConfig(min_area_frac=0.0)


def _names_per_region(final, lab, names):
    return {n: name_of_region(final, lab == k) for k, n in enumerate(names, start=1)}


@pytest.mark.parametrize(
    ("materials", "seed"),
    [
        (("vacuum", "amorphous", "hexagonal", "square"), 11),  # same lattices, reversed order
        (("hexagonal", "vacuum", "square"), 12),  # a subset, other places
        (("square", "hexagonal", "amorphous", "vacuum"), 13),  # same order, new noise and waviness
    ],
)
def test_names_are_consistent_across_images(learnt, materials, seed):
    lib, *_ = learnt
    img, lab, names = stack(materials, seed)
    recs, _ = fragments(lab)
    final, info = name_masks(img, recs, lib, CFG)
    assert _names_per_region(final, lab, names) == {n: n for n in names}, info["named"]
    assert [r.material for r in final].count(names[0]) == 1  # one mask per name
    assert info["unknown_masks"] == 0


def test_particle_layout_gets_the_same_names(learnt):
    from samiam.synth.stem import particle_on_support

    lib, *_ = learnt
    img, lab, names = particle_on_support(384, 384, particle="hexagonal", support="amorphous", seed=2)
    recs, _ = fragments(lab, block=64, min_area=1200)
    final, _ = name_masks(img, recs, lib, CFG)
    assert _names_per_region(final, lab, names) == {n: n for n in names}


def test_final_masks_are_disjoint_and_carry_distance(learnt):
    lib, *_ = learnt
    img, lab, names = stack(("square", "vacuum"), 21)
    recs, _ = fragments(lab)
    # an extra mask straddling both regions overlaps the fragments
    big = recs[0].decode() | recs[-1].decode()
    from samiam.masks import MaskRecord

    final, _ = name_masks(img, recs + [MaskRecord.from_mask(big, score=0.5)], lib, CFG)
    total = np.zeros(lab.shape, int)
    for r in final:
        total += r.decode()
        assert r.extra["distance"] >= 0 and 0 <= r.extra["confidence"] <= 1
    assert total.max() == 1


@pytest.mark.parametrize("unseen", ["dumbbell", "rect"])
def test_an_unseen_lattice_comes_out_unknown(learnt, unseen):
    lib, *_ = learnt
    img, lab, names = stack(("square", unseen, "vacuum"), 31)
    recs, _ = fragments(lab)
    final, info = name_masks(img, recs, lib, CFG)
    got = _names_per_region(final, lab, names)
    assert got == {"square": "square", unseen: UNKNOWN, "vacuum": "vacuum"}, info["named"]
    unk = [r for r in final if r.material == UNKNOWN]
    assert len(unk) == 1 and unk[0].extra["distance"] > NamingConfig().unknown_distance
    assert unk[0].extra["nearest"] in lib.names


def test_two_unseen_lattices_stay_apart(learnt):
    lib, *_ = learnt
    img, lab, names = stack(("dumbbell", "vacuum", "rect"), 41)
    recs, _ = fragments(lab)
    final, _ = name_masks(img, recs, lib, CFG)
    unknown = [r for r in final if r.material == UNKNOWN]
    assert len(unknown) == 2 and {r.extra["unknown_group"] for r in unknown} == {0, 1}


@pytest.mark.parametrize("method", ["knn", "prototype"])
def test_other_methods_name_an_easy_image(learnt, method):
    lib, *_ = learnt
    img, lab, names = stack(("hexagonal", "square", "vacuum"), 51)
    recs, _ = fragments(lab)
    final, info = name_masks(img, recs, lib, CFG, naming=NamingConfig(method=method))
    assert _names_per_region(final, lab, names) == {n: n for n in names}
    assert info["naming"]["method"] == method


def test_classifier_distance_is_normalised_on_the_library(learnt):
    lib, *_ = learnt
    clf = LibraryClassifier(lib, NamingConfig())
    assert clf.sides == [60, 48, 36, 24]
    x, y, sides = lib.training_set()
    pred = clf.predict(x, sides)
    assert (pred.labels == y).mean() > 0.95
    # library crops sit about as close to their material as its own crops do to each other
    assert np.median(pred.distance) < 1.2


def test_no_masks_and_bad_settings():
    from samiam.library.store import Library, MaterialEntry

    lib = Library(encoder="fft", crop_size=60)
    lib.add(MaterialEntry("a", np.random.default_rng(0).normal(size=(5, 33)).astype(np.float32), [60] * 5))
    final, info = name_masks(np.zeros((64, 64), np.float32), [], lib, CFG)
    assert final == [] and info["materials"] == 0
    with pytest.raises(ParameterError, match="naming method"):
        NamingConfig(method="svm").validate()


@pytest.mark.parametrize("zoom", [1.3, 0.75])
def test_pixel_sizes_bring_another_magnification_to_the_library(zoom):
    """The same lattices at another magnification: named right once both pixel sizes are known."""
    import cv2

    from samiam.io.micrograph import micrograph_from_array
    from samiam.library import example_from_label_map, learn_examples, pixel_size_nm

    img, lab, names = stack(("square", "hexagonal", "amorphous", "vacuum"), 1)
    mic = micrograph_from_array(img, "a.png", pixel_size=0.2, pixel_unit="Å")
    lib, _ = learn_examples([example_from_label_map(mic, lab, names)])
    img2, lab2, names2 = stack(("hexagonal", "square", "vacuum"), 7)
    n = int(round(img2.shape[0] * zoom))
    img2 = cv2.resize(img2, (n, n), interpolation=cv2.INTER_CUBIC if zoom > 1 else cv2.INTER_AREA)
    lab2 = cv2.resize(lab2, (n, n), interpolation=cv2.INTER_NEAREST)
    recs, _ = fragments(lab2, block=int(96 * zoom), min_area=int(2500 * zoom**2))
    off = NamingConfig(unknown_distance=1e9)
    runs = {
        px: name_masks(img2, recs, lib, CFG, naming=off, pixel_size_nm=px)
        for px in (None, pixel_size_nm(0.2 / zoom, "Å"))
    }
    final, info = runs[pixel_size_nm(0.2 / zoom, "Å")]
    assert info["pixel_scale"] == pytest.approx(zoom)
    assert _names_per_region(final, lab2, names2) == {n: n for n in names2}
    plain, _ = runs[None]
    for lattice in ("hexagonal", "square"):
        region = lab2 == names2.index(lattice) + 1
        dist = {
            id(f): next(r.extra["distance"] for r in f if r.material == name_of_region(f, region))
            for f in (plain, final)
        }
        # without pixel sizes the lattice is misnamed, or named from farther away
        assert name_of_region(plain, region) != lattice or dist[id(plain)] > dist[id(final)], lattice
