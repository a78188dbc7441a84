"""The STEM model folder."""

import numpy as np
import pytest

from samiam.defects.stem.classes import fit_classes
from samiam.defects.stem.model import StemModel, load_stem_model, model_kind, save_stem_model
from samiam.defects.stem.pipeline import StemParams
from samiam.errors import ModelError


def test_round_trip_predicts_the_same(tmp_path):
    rng = np.random.default_rng(0)
    desc = np.concatenate([rng.normal(c, 0.05, (20, 3)) for c in (-1, 0, 1)])
    classes = fit_classes(desc, np.repeat([0, 1, 2], 20), max_classes=5)
    assert classes.n_classes == 3
    save_stem_model(StemModel(classes, StemParams(column_threshold=4.5)), tmp_path / "m")
    back = load_stem_model(tmp_path / "m")
    assert back.params.column_threshold == 4.5
    assert np.array_equal(back.classes.predict(desc)[0], classes.predict(desc)[0])
    assert model_kind(tmp_path / "m") == "stem"
    assert model_kind(tmp_path) is None


def test_not_a_stem_model_is_a_model_error(tmp_path):
    (tmp_path / "config.json").write_text('{"format": "samiam-defect-model"}')
    assert model_kind(tmp_path) == "stm"
    with pytest.raises(ModelError, match="STEM defect model"):
        load_stem_model(tmp_path)
