import numpy as np
import pytest

from samiam.synth.stm import synthetic_stm


def test_same_seed_same_image_and_truth_is_consistent():
    a, b = synthetic_stm(96, seed=4), synthetic_stm(96, seed=4)
    assert np.array_equal(a.heights, b.heights) and a.kinds == b.kinds
    assert not np.array_equal(a.heights, synthetic_stm(96, seed=5).heights)
    assert a.heights.dtype == np.float32 and a.heights.shape == (96, 96)
    assert len(a.centres) == len(a.kinds) == 6
    for x, y in a.centres:
        assert a.defect_mask[int(y), int(x)]
        assert not a.step_mask[int(y), int(x)]
    assert a.step_mask.any()


def test_without_step_and_unknown_kind():
    assert not synthetic_stm(64, seed=1, step=False).step_mask.any()
    with pytest.raises(ValueError, match="unknown defect kind"):
        synthetic_stm(64, kinds=("crater",))
