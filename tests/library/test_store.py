"""Library file: round trip, version check, damaged files, pixel-size units."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from samiam.errors import InputError, ParameterError
from samiam.library.store import (
    FORMAT,
    VERSION,
    Library,
    MaterialEntry,
    load_library,
    pixel_size_nm,
    save_library,
)


def _lib(n: int = 5) -> Library:
    rng = np.random.default_rng(0)
    lib = Library(encoder="fft", crop_size=60, pixel_size_nm=0.0169)
    ge = rng.normal(size=(n, 7)).astype(np.float32)
    lib.add(MaterialEntry("Ge", ge, np.full(n, 60), {"period_px": 7.5}, ["a.png"]))
    lib.add(MaterialEntry("vacuum", rng.normal(size=(n + 2, 7)).astype(np.float32), [60] * n + [36, 36], {}, ["a.png"]))
    return lib


def test_round_trip_keeps_features_exactly(tmp_path: Path):
    lib = _lib()
    path = save_library(lib, tmp_path / "lib.json")
    back = load_library(path)
    assert back.names == ["Ge", "vacuum"]
    assert back.encoder == "fft" and back.crop_size == 60 and back.pixel_size_nm == pytest.approx(0.0169)
    for name in back.names:
        np.testing.assert_array_equal(back.materials[name].features, lib.materials[name].features)
        np.testing.assert_array_equal(back.materials[name].sizes, lib.materials[name].sizes)
    assert back.materials["Ge"].stats["period_px"] == 7.5 and back.materials["Ge"].sources == ["a.png"]
    doc = json.loads(path.read_text())
    assert doc["format"] == FORMAT and doc["version"] == VERSION


def test_adding_a_known_material_appends_crops_and_sources():
    lib = _lib(4)
    lib.add(MaterialEntry("Ge", np.ones((3, 7), np.float32), [48] * 3, {"period_px": 9.5}, ["b.png"]))
    ge = lib.materials["Ge"]
    assert ge.features.shape == (7, 7) and ge.sources == ["a.png", "b.png"]
    assert ge.stats["period_px"] == pytest.approx((7.5 * 4 + 9.5 * 3) / 7) and ge.stats["n_crops"] == 7
    x, y, sizes = lib.training_set()
    assert x.shape == (13, 7) and np.bincount(y).tolist() == [7, 6]
    assert sizes.tolist() == [60] * 4 + [48] * 3 + [60] * 4 + [36, 36]


def test_mismatched_width_and_reserved_name_are_refused():
    lib = _lib()
    with pytest.raises(ParameterError, match="features per crop"):
        lib.add(MaterialEntry("Si", np.zeros((3, 8), np.float32), [60] * 3))
    with pytest.raises(ParameterError, match="reserved"):
        lib.add(MaterialEntry("unknown", np.zeros((3, 7), np.float32), [60] * 3))
    with pytest.raises(ValueError, match="crop sizes"):
        MaterialEntry("Si", np.zeros((3, 7), np.float32), [60] * 2)


def test_wrong_version_names_file_and_versions(tmp_path: Path):
    path = save_library(_lib(), tmp_path / "lib.json")
    doc = json.loads(path.read_text())
    doc["version"] = VERSION + 1
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError) as exc:
        load_library(path)
    msg = str(exc.value)
    assert str(path) in msg and f"version {VERSION + 1}" in msg and f"reads version {VERSION}" in msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "invalid JSON"),
        ('{"format": "something-else"}', "not a samiam material library"),
        ("[1, 2]", "not a samiam material library"),
        ("", "invalid JSON"),
    ],
)
def test_corrupt_files_give_one_clear_error(tmp_path: Path, content: str, expected: str):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InputError, match=expected) as exc:
        load_library(path)
    assert str(path) in str(exc.value)


def test_damaged_arrays_and_truncation_are_detected(tmp_path: Path):
    path = save_library(_lib(), tmp_path / "lib.json")
    doc = json.loads(path.read_text())
    doc["materials"][0]["features"]["shape"] = [99, 7]
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="damaged material library"):
        load_library(path)
    doc = json.loads(save_library(_lib(), tmp_path / "lib.json").read_text())
    doc["materials"][1]["sizes"] = doc["materials"][1]["sizes"][:-1]
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="damaged material library.*crop sizes"):
        load_library(path)
    good = save_library(_lib(), tmp_path / "good.json").read_text()
    path.write_text(good[: len(good) // 2])
    with pytest.raises(InputError, match="invalid JSON"):
        load_library(path)


def test_missing_library_and_empty_save(tmp_path: Path):
    with pytest.raises(InputError, match="no such material library"):
        load_library(tmp_path / "nope.json")
    with pytest.raises(ParameterError, match="no materials"):
        save_library(Library(encoder="fft", crop_size=60), tmp_path / "empty.json")
    assert not (tmp_path / "empty.json").exists()


@pytest.mark.parametrize(
    ("size", "unit", "nm"),
    [
        (0.17, "Å", 0.017),
        (0.17, "A", 0.017),
        (0.02, "nm", 0.02),
        (20.0, "pm", 0.02),
        (1.0, "px", None),
        (None, "nm", None),
        (0.1, None, None),
        (-1.0, "nm", None),
    ],
)
def test_pixel_size_units(size, unit, nm):
    got = pixel_size_nm(size, unit)
    assert (got is None) if nm is None else got == pytest.approx(nm)
