"""Dense completion: gaps take the material whose texture they show; real gaps stay empty."""

from __future__ import annotations

import numpy as np
import pytest

from samiam.boost.config import BoostConfig
from samiam.errors import ParameterError
from samiam.library import UNKNOWN, FillConfig, fill_unsegmented, name_masks
from samiam.masks import MaskRecord
from tests.library.conftest import fragments, stack

CFG = BoostConfig(min_area_frac=0.0)


def _share(final, region, name) -> float:
    """Fraction of ``region`` inside the final mask(s) named ``name``."""
    hit = np.zeros(region.shape, bool)
    for r in final:
        if r.material == name:
            hit |= r.decode()
    return float((hit & region).sum() / region.sum())


def _check_disjoint(final):
    total = np.zeros(final[0].shape, int)
    for r in final:
        total += r.decode()
    assert total.max() == 1


@pytest.fixture(scope="module")
def gappy():
    """A stack with every other fragment dropped, named with the library."""
    img, lab, names = stack(("hexagonal", "dumbbell", "vacuum", "square"), 61)
    recs, _ = fragments(lab)
    return img, lab, names, recs[::2]


def test_library_fill_completes_known_materials_and_leaves_the_unseen_gap(learnt, gappy):
    lib, *_ = learnt
    img, lab, names, half = gappy
    named, _ = name_masks(img, half, lib, CFG)
    before = {n: _share(named, lab == k, n) for k, n in enumerate(names, 1) if n != "dumbbell"}
    filled = fill_unsegmented(img, named, lib, CFG)
    _check_disjoint(filled)
    for k, n in enumerate(names, 1):
        if n == "dumbbell":
            # unseen lattice: only the image's own unknown mask may grow into it, no library material
            region = lab == k
            for r in filled:
                if r.material != UNKNOWN:
                    assert (r.decode() & region).sum() < 0.02 * region.sum(), r.material
        else:
            after = _share(filled, lab == k, n)
            assert after > max(0.85, before[n] + 0.2), (n, before[n], after)
    # filled pixels never change the masks' existing pixels
    for old in named:
        new = next(
            r
            for r in filled
            if r.material == old.material and r.extra.get("unknown_group") == old.extra.get("unknown_group")
        )
        assert (new.decode() >= old.decode()).all()


def test_fill_without_library_uses_the_image_own_masks():
    img, lab, names = stack(("square", "vacuum", "hexagonal"), 71)
    recs, truth = fragments(lab)
    keep = [i for i in range(len(recs)) if i % 2 == 0]
    # stand-in for the booster's output: one numbered material per ground-truth region
    final = []
    for k in range(1, len(names) + 1):
        m = np.zeros(lab.shape, bool)
        for i in keep:
            if truth[i] == k:
                m |= recs[i].decode()
        final.append(MaskRecord.from_mask(m, material=k))
    filled = fill_unsegmented(img, final, None, CFG)
    assert [r.material for r in filled] == [1, 2, 3]
    _check_disjoint(filled)
    for k in range(1, len(names) + 1):
        region = lab == k
        assert (filled[k - 1].decode() & region).sum() / region.sum() > 0.85
        # what was added lies (almost) only in the right region
        added = filled[k - 1].decode() & ~final[k - 1].decode()
        assert (added & region).sum() > 0.95 * added.sum()


def test_an_interface_band_with_an_unseen_phase_stays_empty_without_library():
    img, lab, names = stack(("square", "rect", "hexagonal"), 81)
    # masks only for square and hexagonal: the rect band in between is a real gap
    final = [MaskRecord.from_mask(lab == 1, material=1), MaskRecord.from_mask(lab == 3, material=2)]
    filled = fill_unsegmented(img, final, None, CFG)
    gap = lab == 2
    taken = sum(int((r.decode() & gap).sum()) for r in filled)
    assert taken < 0.15 * gap.sum()


def test_nothing_to_fill_and_settings():
    img, lab, _ = stack(("square", "vacuum"), 91)
    full = [MaskRecord.from_mask(lab == 1, material=1), MaskRecord.from_mask(lab == 2, material=2)]
    assert fill_unsegmented(img, full, None, CFG) == full
    assert fill_unsegmented(img, [], None, CFG) == []
    with pytest.raises(ParameterError, match="stride"):
        FillConfig(stride_frac=2.0).validate()
