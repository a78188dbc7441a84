"""Each geometric rule on hand-built masks (64 x 64 canvas)."""

import numpy as np

from samiam.boost.config import BoostConfig
from samiam.boost.geometry import containment_matrix, geometric_filter, remove_islands
from samiam.masks import MaskRecord

H = W = 64


def rect(y0, y1, x0, x1, score=0.9):
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return MaskRecord.from_mask(m, score=score)


CFG = BoostConfig(min_area_frac=0.0, island_min_frac=0.0)


def test_containment_matrix_exact():
    a, b = rect(0, 10, 0, 10), rect(0, 10, 5, 15)
    c = containment_matrix([a, b])
    np.testing.assert_allclose(c, [[1.0, 0.5], [0.5, 1.0]])


def test_tiny_child_is_dropped_but_a_large_child_stays():
    parent = rect(0, 40, 0, 40)  # 1600 px
    tiny = rect(5, 13, 5, 13)  # 64 px = 4% of parent
    big = rect(20, 40, 0, 20)  # 400 px = 25%
    kept, rep = geometric_filter([parent, tiny, big], H * W, CFG)
    assert rep.tiny_child == [1]
    assert [k.area for k in kept] == [1600, 400]


def test_compound_parent_is_dropped():
    parent = rect(0, 40, 0, 40)
    left = rect(0, 40, 0, 20)
    right = rect(0, 40, 20, 32)  # children cover 32/40 = 80% > 70%
    kept, rep = geometric_filter([parent, left, right], H * W, CFG)
    assert rep.compound == [0]
    assert sorted(k.area for k in kept) == [480, 800]


def test_parent_only_partly_covered_is_kept():
    parent = rect(0, 40, 0, 40)
    left = rect(0, 40, 0, 20)  # 50% < 70%
    kept, rep = geometric_filter([parent, left], H * W, CFG)
    assert rep.compound == [] and len(kept) == 2


def test_compound_uses_the_union_not_the_sum():
    parent = rect(0, 40, 0, 40)
    a = rect(0, 40, 0, 22)
    b = rect(0, 40, 6, 28)  # a and b overlap (16 of 22 columns): union 70%, sum 110% of the parent
    kept, rep = geometric_filter([parent, a, b], H * W, CFG)
    assert rep.compound == [] and len(kept) == 3
    c = rect(0, 40, 7, 29)  # one more column: union 72.5% > 70%
    kept, rep = geometric_filter([parent, a, c], H * W, CFG)
    assert rep.compound == [0]


def test_redundant_pair_keeps_the_better_score():
    a = rect(0, 30, 0, 30, score=0.8)
    b = rect(0, 30, 0, 29, score=0.95)  # 97% mutual overlap
    kept, rep = geometric_filter([a, b], H * W, CFG)
    assert rep.redundant == [0]
    assert len(kept) == 1 and kept[0].score == 0.95


def test_too_small_masks_are_dropped():
    kept, rep = geometric_filter([rect(0, 2, 0, 2), rect(10, 50, 10, 50)], H * W, BoostConfig(min_area_frac=0.01))
    assert rep.too_small == [0] and len(kept) == 1


def test_small_islands_are_removed():
    m = np.zeros((H, W), bool)
    m[0:30, 0:30] = True  # main part: 900 px
    m[50:52, 50:52] = True  # island: 4 px
    rec = MaskRecord.from_mask(m)
    cleaned, removed = remove_islands(rec, 0.05)
    assert removed == 1 and cleaned.area == 900 and not cleaned.decode()[51, 51]
    # two big parts both stay (the former island now lies inside the second one)
    m[40:64, 40:64] = True
    cleaned, removed = remove_islands(MaskRecord.from_mask(m), 0.05)
    assert removed == 0 and cleaned.area == 900 + 24 * 24
