import numpy as np

from samiam.boost.crops import crop_side_for_image, sample_crops
from samiam.masks import MaskRecord


def test_every_crop_lies_inside_its_mask():
    rng = np.random.default_rng(0)
    img = rng.random((120, 140)).astype(np.float32)
    yy, xx = np.mgrid[:120, :140]
    disc = (yy - 60) ** 2 + (xx - 50) ** 2 < 40**2
    band = (yy > 10) & (yy < 30) & (xx > 95)
    recs = [MaskRecord.from_mask(disc), MaskRecord.from_mask(band)]
    cs = sample_crops(img, recs, side=24, per_mask=30, min_side=8, seed=1)
    assert cs.sizes[0] == 24 and 8 <= cs.sizes[1] < 24  # the thin band gets smaller crops
    masks = [disc, band]
    for crop, owner, (cy, cx) in zip(cs.crops, cs.owner, cs.centres, strict=True):
        s = crop.shape[0]
        top, left = cy - s // 2, cx - s // 2
        assert masks[owner][top : top + s, left : left + s].all()
        np.testing.assert_array_equal(crop, img[top : top + s, left : left + s])
    assert (cs.owner == 0).sum() == 30


def test_thin_masks_get_no_crops_and_sampling_is_seeded():
    img = np.zeros((50, 50), np.float32)
    line = np.zeros((50, 50), bool)
    line[20:23, :] = True
    square = np.zeros((50, 50), bool)
    square[25:50, 0:25] = True
    recs = [MaskRecord.from_mask(line), MaskRecord.from_mask(square)]
    a = sample_crops(img, recs, 16, 5, 8, seed=3)
    b = sample_crops(img, recs, 16, 5, 8, seed=3)
    assert a.sizes[0] == 0 and set(a.owner.tolist()) == {1}
    np.testing.assert_array_equal(a.centres, b.centres)


def test_crop_side_is_capped_for_small_images():
    assert crop_side_for_image(1024, 1024, 60, 16) == 60
    assert crop_side_for_image(128, 200, 60, 16) == 32
    assert crop_side_for_image(40, 40, 60, 16) == 16
