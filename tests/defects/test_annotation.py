import numpy as np

from samiam.defects.annotation import annotation_mask, fill_masked
from samiam.defects.prepare import prepare_heights
from samiam.synth.stm import synthetic_stm


def as_grey_export(heights: np.ndarray) -> np.ndarray:
    """The topograph exported as an 8-bit image (0..255 grey levels), as JPEG/PNG exports are."""
    lo, hi = np.percentile(heights, [0.5, 99.5])
    return np.rint(np.clip((heights - lo) / (hi - lo), 0, 1) * 254).astype(np.float32)


def burn_scale_bar(grey: np.ndarray, value: float) -> np.ndarray:
    """Draw a scale bar and a few 'letters' in ``value`` near the bottom right, like exported images."""
    out = grey.copy()
    h, w = out.shape
    out[h - 20 : h - 18, w // 2 : w - 10] = value
    for k in range(4):  # four small glyphs under the bar
        x0 = w // 2 + 20 + 14 * k
        out[h - 13 : h - 5, x0 : x0 + 2] = value
        out[h - 13 : h - 11, x0 : x0 + 7] = value
    return out


def test_scale_bar_and_text_are_found_and_defects_are_not():
    im = synthetic_stm(192, n_defects=8, step=False, seed=11)
    grey = burn_scale_bar(as_grey_export(im.heights), 255.0)
    mask = annotation_mask(grey)
    h, w = grey.shape
    assert mask[h - 19, w // 2 + 5 : w - 15].all()  # the bar
    assert mask[h - 9, w // 2 + 20]  # a glyph
    assert not mask[im.defect_mask].any()
    assert mask.mean() < 0.05


def test_measured_heights_without_annotation_give_an_empty_mask():
    for seed in range(3):
        assert not annotation_mask(synthetic_stm(128, seed=seed).heights).any()
    assert not annotation_mask(as_grey_export(synthetic_stm(128, seed=3).heights)).any()


def test_annotation_is_filled_before_flattening_and_excluded():
    im = synthetic_stm(192, n_defects=4, step=False, seed=12)
    grey = burn_scale_bar(as_grey_export(im.heights), 0.0)
    prepared = prepare_heights(grey, "export.png", detect=False)
    assert prepared.annotation is not None and prepared.annotation.any()
    assert prepared.exclude[prepared.annotation].all()
    # the filled bar does not leave a deep trench in the normalised heights
    assert np.abs(prepared.heights[prepared.annotation]).max() < 6.0


def test_fill_masked_copies_the_nearest_pixel():
    values = np.arange(25, dtype=float).reshape(5, 5)
    mask = np.zeros((5, 5), bool)
    mask[2, 2] = True
    out = fill_masked(values, mask)
    assert out[2, 2] in {7.0, 11.0, 13.0, 17.0}
    assert np.array_equal(out[~mask], values[~mask])
