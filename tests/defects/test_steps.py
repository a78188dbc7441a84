import numpy as np

from samiam.defects.flatten import flatten_heights
from samiam.defects.steps import component_shapes, detect_steps, level_terraces
from samiam.synth.stm import synthetic_stm


def test_step_is_detected_and_its_band_covers_the_true_step():
    im = synthetic_stm(128, seed=5)
    flat = flatten_heights(im.heights)
    steps = detect_steps(flat)
    assert steps.n_steps == 1
    assert steps.band[im.step_mask].mean() > 0.95
    assert steps.band.mean() < 0.25  # a band, not the image
    assert steps.terraces.max() >= 2  # the step splits the image into terraces


def test_terrace_levelling_removes_the_step_height():
    im = synthetic_stm(128, seed=6, n_defects=0)
    flat = flatten_heights(im.heights)
    steps = detect_steps(flat)
    levelled = level_terraces(flat, steps)
    outside = ~steps.band
    # the raw jump is 0.3 nm against a 0.02 nm lattice; after levelling both terraces agree
    labels = steps.terraces[outside]
    big = [t for t in np.unique(labels) if (labels == t).sum() > 500]
    medians = [np.median(levelled[outside][labels == t]) for t in big]
    assert len(big) >= 2
    assert np.ptp(medians) < 0.03


def test_no_step_is_found_on_a_single_terrace():
    im = synthetic_stm(128, seed=7, step=False)
    steps = detect_steps(flatten_heights(im.heights))
    assert steps.n_steps == 0
    assert not steps.band.any()


def test_component_shapes_of_a_line_and_a_square():
    labels = np.zeros((40, 40), int)
    labels[5, 2:38] = 1
    labels[20:30, 20:30] = 2
    length, elong = component_shapes(labels, 2)
    assert length[0] > 30 and elong[0] > 20
    assert elong[1] < 1.1
