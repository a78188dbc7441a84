from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile

from samiam.errors import InputError
from samiam.io.read import expand_inputs, read_micrograph


def _ramp(h=64, w=80):
    return np.add.outer(np.arange(h), np.arange(w)).astype(np.float64)


def test_png_8_and_16_bit(tmp_path: Path):
    a8 = (_ramp() % 256).astype(np.uint8)
    a16 = (_ramp() * 300).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "a8.png"), a8)
    cv2.imwrite(str(tmp_path / "a16.png"), a16)
    m8 = read_micrograph(tmp_path / "a8.png")
    m16 = read_micrograph(tmp_path / "a16.png")
    assert m8.dtype == "uint8" and m16.dtype == "uint16"
    assert m16.raw.max() == a16.max()  # raw keeps the 16-bit values
    assert m8.image.dtype == np.float32 and 0 <= m8.image.min() and m8.image.max() <= 1
    assert (m8.height, m8.width) == (64, 80)


def test_rgb_png_becomes_grey(tmp_path: Path):
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:, 16:, 1] = 200
    cv2.imwrite(str(tmp_path / "c.png"), rgb)
    m = read_micrograph(tmp_path / "c.png")
    assert m.image.shape == (32, 32)
    assert m.image[:, 20].mean() > m.image[:, 4].mean()


def test_float_tiff_npy_and_jpeg(tmp_path: Path):
    f = _ramp().astype(np.float32) * 1e-3
    tifffile.imwrite(tmp_path / "f.tif", f)
    np.save(tmp_path / "f.npy", f.astype(np.float64))
    cv2.imwrite(str(tmp_path / "f.jpg"), (_ramp() % 256).astype(np.uint8))
    for name in ("f.tif", "f.npy", "f.jpg"):
        m = read_micrograph(tmp_path / name)
        assert m.image.shape == (64, 80)
    np.testing.assert_allclose(read_micrograph(tmp_path / "f.npy").raw, f, rtol=1e-6)


def test_stack_needs_frame(tmp_path: Path):
    stack = np.stack([_ramp(), _ramp()[::-1], _ramp() * 2]).astype(np.float32)
    tifffile.imwrite(tmp_path / "s.tif", stack, photometric="minisblack")
    with pytest.raises(InputError, match="stack of 3 frames"):
        read_micrograph(tmp_path / "s.tif")
    m = read_micrograph(tmp_path / "s.tif", frame=1)
    np.testing.assert_allclose(m.raw, stack[1])
    with pytest.raises(InputError, match="frame 5"):
        read_micrograph(tmp_path / "s.tif", frame=5)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\nnot really"), "not a decodable"),
        (lambda p: cv2.imwrite(str(p), np.zeros((1, 1), np.uint8)), "at least"),
        (lambda p: cv2.imwrite(str(p), np.full((40, 40), 7, np.uint8)), "constant"),
    ],
    ids=["missing", "empty", "corrupt", "1x1", "constant"],
)
def test_bad_png(tmp_path: Path, make, message):
    p = tmp_path / "bad.png"
    make(p)
    with pytest.raises(InputError, match=message) as err:
        read_micrograph(p)
    assert str(p) in str(err.value)


def test_truncated_png(tmp_path: Path):
    p = tmp_path / "t.png"
    cv2.imwrite(str(p), (_ramp(200, 200) % 256).astype(np.uint8))
    p.write_bytes(p.read_bytes()[:300])
    with pytest.raises(InputError, match="not a decodable"):
        read_micrograph(p)


def test_nan_and_3d_npy(tmp_path: Path):
    a = _ramp()
    a[3, 4] = np.nan
    np.save(tmp_path / "nan.npy", a)
    with pytest.raises(InputError, match="NaN"):
        read_micrograph(tmp_path / "nan.npy")
    np.save(tmp_path / "cube.npy", np.zeros((4, 5, 6, 7)))
    with pytest.raises(InputError, match="2-D image"):
        read_micrograph(tmp_path / "cube.npy")


def test_unsupported_suffix_and_folder(tmp_path: Path):
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(InputError, match="unsupported file type"):
        read_micrograph(tmp_path / "x.txt")
    with pytest.raises(InputError, match="is a folder"):
        read_micrograph(tmp_path)


def test_expand_inputs(tmp_path: Path):
    cv2.imwrite(str(tmp_path / "b.png"), (_ramp() % 256).astype(np.uint8))
    cv2.imwrite(str(tmp_path / "a.png"), (_ramp() % 256).astype(np.uint8))
    (tmp_path / "notes.txt").write_text("x")
    files = expand_inputs([tmp_path, tmp_path / "missing.png"])
    assert [f.name for f in files] == ["a.png", "b.png", "missing.png"]
