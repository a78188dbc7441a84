"""Microscope formats: HyperSpy/EMD (RosettaSciIO), 16/32-bit TIFF stacks, calibration, frames; real files."""

from pathlib import Path

import numpy as np
import pytest
import tifffile

from samiam.errors import InputError
from samiam.io.read import count_frames, read_micrograph
from samiam.synth.stem import stack_cross_section

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "stem-real"


def _stack(n=3, h=48, w=64) -> np.ndarray:
    return np.stack([stack_cross_section(h, w, seed=s)[0] for s in range(n)]).astype(np.float32)


def _signal(data: np.ndarray, scale: float = 0.05, units: str = "nm", spectrum: bool = False) -> dict:
    """A signal dictionary as RosettaSciIO's writers take it."""
    names = ["t", "y", "x"][-data.ndim :] if not spectrum else ["y", "x", "E"]
    axes = []
    for k, (name, size) in enumerate(zip(names, data.shape, strict=True)):
        nav = (data.ndim == 3 and k == 0) if not spectrum else k < 2
        axes.append(
            {
                "name": name,
                "size": size,
                "offset": 0.0,
                "navigate": nav,
                "scale": scale if not nav or spectrum else 1.0,
                "units": ("eV" if name == "E" else units) if not nav or spectrum else "s",
            }
        )
    return {
        "data": data,
        "axes": axes,
        "metadata": {"General": {"title": "fixture"}, "Signal": {"signal_type": ""}, "_HyperSpy": {}},
        "original_metadata": {},
        "tmp_parameters": {},
        "attributes": {"_lazy": False},
        "package_info": {"name": "samiam-tests", "version": "0"},
        "learning_results": {},
        "models": {},
    }


def _write_hspy(path: Path, sig: dict) -> Path:
    pytest.importorskip("h5py")
    from rsciio.hspy import file_writer

    file_writer(str(path), sig, show_progressbar=False)
    return path


def test_hspy_stack_frames_and_calibration(tmp_path: Path):
    data = _stack()
    p = _write_hspy(tmp_path / "s.hspy", _signal(data, 0.05, "nm"))
    assert count_frames(p) == 3
    with pytest.raises(InputError, match="stack of 3 frames"):
        read_micrograph(p)
    m = read_micrograph(p, frame=1)
    np.testing.assert_array_equal(m.raw, data[1])
    assert (m.pixel_size, m.pixel_unit) == (0.05, "nm") and m.meta["reader"] == "rsciio"
    with pytest.raises(InputError, match="frame 7 requested, the stack has 3 frames"):
        read_micrograph(p, frame=7)
    q = _write_hspy(tmp_path / "one.hdf5", _signal(data[0], 0.2, "Å"))
    m = read_micrograph(q)
    assert m.image.shape == (48, 64) and (m.pixel_size, m.pixel_unit) == (0.2, "Å") and count_frames(q) == 1


def test_uncalibrated_axes_give_no_pixel_size(tmp_path: Path):
    sig = _signal(_stack(1)[0], 1.0, "<undefined>")
    m = read_micrograph(_write_hspy(tmp_path / "u.hspy", sig))
    assert m.pixel_size is None and m.pixel_unit is None


def test_spectrum_image_is_not_an_image(tmp_path: Path):
    cube = np.random.default_rng(0).random((20, 24, 50)).astype(np.float32)
    p = _write_hspy(tmp_path / "eels.hspy", _signal(cube, spectrum=True))
    with pytest.raises(InputError, match="no 2-D image signal"):
        read_micrograph(p)


def test_emd_written_by_rsciio(tmp_path: Path):
    pytest.importorskip("h5py")
    from rsciio.emd import file_writer

    data = _stack(1)[0]
    file_writer(str(tmp_path / "a.emd"), _signal(data, 0.1, "nm"))
    m = read_micrograph(tmp_path / "a.emd")
    np.testing.assert_array_equal(m.raw, data)
    assert (m.pixel_size, m.pixel_unit) == (0.1, "nm")


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32, np.int32, np.float32])
def test_tiff_stacks_of_16_and_32_bit(tmp_path: Path, dtype):
    data = _stack(4)
    values = data * 60000 if np.dtype(dtype).kind in "ui" else data * 1e-3
    arr = values.astype(dtype)
    p = tmp_path / "s.tif"
    tifffile.imwrite(p, arr, photometric="minisblack")
    assert count_frames(p) == 4
    m = read_micrograph(p, frame=2)
    assert m.dtype == np.dtype(dtype).name
    np.testing.assert_array_equal(m.raw, arr[2].astype(np.float32))
    with pytest.raises(InputError, match="choose one with frame=N"):
        read_micrograph(p)


def test_compressed_tiff_stack_frame(tmp_path: Path):
    arr = (_stack(3) * 60000).astype(np.uint16)
    p = tmp_path / "z.tif"
    tifffile.imwrite(p, arr, photometric="minisblack", compression="zlib")  # not memory-mappable
    np.testing.assert_array_equal(read_micrograph(p, frame=1).raw, arr[1])


def test_tiff_calibration(tmp_path: Path):
    arr = (_stack(2) * 60000).astype(np.uint16)
    tifffile.imwrite(
        tmp_path / "ij.tif", arr, imagej=True, resolution=(1 / 0.025, 1 / 0.025), metadata={"unit": "nm", "axes": "TYX"}
    )
    m = read_micrograph(tmp_path / "ij.tif", frame=0)
    assert m.pixel_unit == "nm" and m.pixel_size == pytest.approx(0.025)
    tifffile.imwrite(tmp_path / "cm.tif", arr[0], resolution=(2e6, 2e6), resolutionunit="CENTIMETER")
    m = read_micrograph(tmp_path / "cm.tif")
    assert m.pixel_unit == "nm" and m.pixel_size == pytest.approx(5.0)
    tifffile.imwrite(tmp_path / "dpi.tif", arr[0], resolution=(72, 72), resolutionunit="INCH")
    assert read_micrograph(tmp_path / "dpi.tif").pixel_size is None  # a display setting, not a pixel size


def test_npy_stack_frame_and_count(tmp_path: Path):
    data = _stack(3).astype(np.float64)
    np.save(tmp_path / "s.npy", data)
    assert count_frames(tmp_path / "s.npy") == 3
    np.testing.assert_array_equal(read_micrograph(tmp_path / "s.npy", frame=2).raw, data[2].astype(np.float32))


def test_count_frames_errors(tmp_path: Path):
    with pytest.raises(InputError, match="no such file"):
        count_frames(tmp_path / "nope.dm3")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(InputError, match="unsupported file type"):
        count_frames(tmp_path / "x.txt")
    (tmp_path / "bad.dm4").write_bytes(b"not a gatan file at all")
    with pytest.raises(InputError, match="could not read as .dm4"):
        count_frames(tmp_path / "bad.dm4")


def _real(name: str) -> Path:
    p = REAL / name
    if not p.exists():
        pytest.skip(f"needs {p} (the shared data folder beside the repo), which is absent")
    return p


@pytest.mark.shared
@pytest.mark.parametrize(
    "name, shape, dtype, pixel_size, unit",
    [
        ("MoS2_Se_implanted.dm3", (1024, 1024), "uint32", 0.0126953125, "nm"),
        ("perovskite_ADF_cropped.hdf5", (400, 380), "float16", 0.009326270238006416, None),
        ("nanoparticles_16bit.tiff", (512, 512), "uint16", None, None),
        ("LaO_perovskite.png", (790, 787), "uint8", None, None),
        ("graphene_grain_boundary.npy", (512, 512), "float64", None, None),
    ],
)
def test_real_microscope_files(name, shape, dtype, pixel_size, unit):
    p = _real(name)
    m = read_micrograph(p)
    assert m.image.shape == shape and m.dtype == dtype and count_frames(p) == 1
    assert m.pixel_unit == unit
    assert m.pixel_size == (pytest.approx(pixel_size) if pixel_size is not None else None)
    assert 0.0 <= m.image.min() < m.image.max() <= 1.0 and np.isfinite(m.raw).all()
