"""Choosing STEM or STM per file."""

import pytest

from samiam.defects.modality import choose_modality
from samiam.errors import InputError, ParameterError


@pytest.mark.parametrize(
    "name,kind",
    [
        ("a.dm3", "stem"),
        ("a.DM4", "stem"),
        ("a.emd", "stem"),
        ("a.sxm", "stm"),
        ("a.npy", "stm"),
        ("a_0001.Z_mtrx", "stm"),
    ],
)
def test_suffix_decides(name, kind):
    got, why = choose_modality(name)
    assert got == kind and why


def test_bare_png_needs_modality_and_says_so():
    with pytest.raises(InputError, match="--modality stem or --modality stm"):
        choose_modality("scan.png")


@pytest.mark.parametrize("meta", [{"title": "HAADF 1024"}, {"detector": {"name": "ADF"}}, {"mode": "STEM"}])
def test_metadata_decides_a_png_or_tiff(meta):
    assert choose_modality("a.tif", meta)[0] == "stem"
    assert "metadata" in choose_modality("a.tif", meta)[1]


def test_words_inside_other_words_do_not_count():
    with pytest.raises(InputError):
        choose_modality("a.png", {"title": "shadfield systematic"})


def test_requested_overrides_and_model_hint():
    assert choose_modality("a.npy", requested="stem") == ("stem", "--modality stem")
    assert choose_modality("a.png", model_kind="stm")[0] == "stm"
    assert choose_modality("a.png", model_kind="stem")[0] == "stem"
    with pytest.raises(ParameterError, match="expected one of"):
        choose_modality("a.png", requested="afm")
