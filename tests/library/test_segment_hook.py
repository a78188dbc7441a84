"""The one-call hook for ``samiam segment --library/--fill``."""

from __future__ import annotations

import numpy as np

from samiam.boost.config import BoostConfig
from samiam.boost.pipeline import boost_masks
from samiam.library import boost_with_library
from samiam.masks import MaskRecord
from tests.library.conftest import fragments, name_of_region, stack

CFG = BoostConfig(min_area_frac=0.0)


def _raw(lab):
    recs, _ = fragments(lab)
    # a compound parent covering two fragments: the geometric filter must drop it
    parent = MaskRecord.from_mask(recs[0].decode() | recs[1].decode(), score=0.95)
    return recs + [parent]


def test_without_library_it_is_the_unsupervised_booster():
    img, lab, _ = stack(("square", "hexagonal", "vacuum"), 101)
    raw = _raw(lab)
    final, info = boost_with_library(img, raw, CFG)
    ref, ref_info = boost_masks(img, raw, CFG)
    assert [r.rle for r in final] == [r.rle for r in ref] and info["materials"] == ref_info["materials"]
    assert "fill" not in info


def test_with_library_masks_are_filtered_named_and_filled(learnt):
    lib, *_ = learnt
    img, lab, names = stack(("vacuum", "square", "hexagonal"), 102)
    raw = _raw(lab)
    final, info = boost_with_library(img, raw, CFG, lib, fill=False)
    assert info["dropped"]["compound"] == 1 and info["raw_masks"] == len(raw)
    assert {n: name_of_region(final, lab == k) for k, n in enumerate(names, 1)} == {n: n for n in names}
    assert info["library"]["materials"] == lib.names and "filter" in info["timings"]
    half = raw[::2]
    sparse, _ = boost_with_library(img, half, CFG, lib, fill=False)
    filled, finfo = boost_with_library(img, half, CFG, lib, fill=True)
    cover = lambda recs: np.logical_or.reduce([r.decode() for r in recs]).mean()  # noqa: E731
    assert cover(filled) > cover(sparse) + 0.2
    assert finfo["fill"]["prototypes"] == "library" and finfo["fill"]["filled_pixels"] > 0
    assert sorted(r.material for r in filled) == sorted(names)
