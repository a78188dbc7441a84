"""Texture merge on a synthetic two-lattice image made by samiam's own generator."""

import numpy as np
import pytest

from samiam.boost.config import BoostConfig
from samiam.boost.merge import cluster_crops, merge_by_material, vote
from samiam.boost.pipeline import boost_masks
from samiam.masks import MaskRecord
from samiam.synth.stem import grid_fragments


@pytest.mark.parametrize("materials", [2, 0], ids=["given", "auto"])
def test_fragments_of_two_lattices_merge_into_two_materials(two_lattice_image, materials):
    img, lab = two_lattice_image
    recs, truth = grid_fragments(lab)
    assert len(recs) >= 8 and set(truth) == {1, 2}
    final, info = boost_masks(
        img, recs, BoostConfig(method="crops", materials=materials, crop_size=32, min_area_frac=0.0)
    )
    assert info["materials"] == 2, info
    # each final mask is exactly the union of the fragments of one lattice
    for region in (1, 2):
        union = np.zeros(lab.shape, bool)
        for r, t in zip(recs, truth, strict=True):
            if t == region:
                union |= r.decode()
        assert any((f.decode() == union).all() for f in final), f"region {region} not recovered"
    # disjoint
    total = sum(f.decode().astype(int) for f in final)
    assert total.max() == 1
    assert [f.material for f in final] == [1, 2]


def test_one_lattice_is_one_material():
    from samiam.synth.stem import stack_cross_section

    img, lab, _ = stack_cross_section(256, 256, materials=("hexagonal", "hexagonal"), seed=5, wavy=0.0)
    recs, _ = grid_fragments(lab)
    final, info = boost_masks(img, recs, BoostConfig(method="crops", materials=0, crop_size=32, min_area_frac=0.0))
    assert info["materials"] == 1, info


def test_vote_majority_and_missing():
    owner = np.array([0, 0, 0, 1, 1])
    labels = np.array([1, 1, 0, 0, 0])
    winner, frac = vote(owner, labels, n_masks=3, n_clusters=2)
    assert winner.tolist() == [1, 0, -1]
    np.testing.assert_allclose(frac, [2 / 3, 1.0, 0.0])


def test_overlaps_resolved_by_confidence_then_size():
    a = np.zeros((20, 20), bool)
    a[:, :12] = True
    b = np.zeros((20, 20), bool)
    b[:, 8:] = True
    recs = [MaskRecord.from_mask(a), MaskRecord.from_mask(b)]
    out = merge_by_material(recs, np.array([0, 1]), np.array([0.6, 0.9]), (20, 20))
    masks = {r.area: r.decode() for r in out}
    assert sorted(masks) == [8 * 20, 12 * 20]  # b (more confident) keeps the overlap
    assert masks[12 * 20][:, 8:].all()


def test_given_k_clusters_are_returned():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (50, 3)), rng.normal(5, 0.1, (50, 3))])
    c = cluster_crops(x, 2, 6, 0, n_masks=10)
    assert c.n_clusters == 2 and len(set(c.labels[:50])) == 1 and c.labels[0] != c.labels[-1]
    auto = cluster_crops(x, 0, 6, 0, n_masks=10)
    assert auto.n_clusters == 2 and 2 in auto.scores
