"""Read every supported input format into a ``Micrograph``."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from samiam.errors import InputError
from samiam.io.micrograph import Micrograph, micrograph_from_array

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
TIFF_SUFFIXES = (".tif", ".tiff")
NUMPY_SUFFIXES = (".npy",)
RSCIIO_SUFFIXES = (".dm3", ".dm4", ".emd", ".hspy", ".hdf5", ".h5")
SUPPORTED_SUFFIXES = RASTER_SUFFIXES + TIFF_SUFFIXES + NUMPY_SUFFIXES + RSCIIO_SUFFIXES


def expand_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders into a sorted list of image files.

    Folders contribute their files with a supported suffix (not recursive); files are
    kept as given, even with an unknown suffix, so that reading them reports the problem.

    Args:
        paths: files and/or folders.

    Returns:
        The files, in the order given, folders expanded in sorted order.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in SUPPORTED_SUFFIXES))
        else:
            out.append(p)
    return out


def _is_colour(shape: tuple[int, ...]) -> bool:
    return len(shape) == 3 and shape[2] in (3, 4) and shape[0] > 4


def _frames_of(shape: tuple[int, ...]) -> int:
    """Frames of an array shape: leading axes before H x W (a trailing RGB(A) axis is colour)."""
    if len(shape) <= 2 or _is_colour(shape):
        return 1
    return int(np.prod(shape[:-2]))


def _check_frame(path: Path, frame: int, frames: int) -> None:
    if not 0 <= frame < frames:
        raise InputError(f"{path}: frame {frame} requested, the stack has {frames} frames")


def _pick_frame(arr: np.ndarray, path: Path, frame: int | None) -> np.ndarray:
    is_colour = arr.ndim == 3 and arr.shape[2] in (3, 4)
    if arr.ndim == 3 and not is_colour and arr.shape[0] > 1:
        if frame is None:
            raise InputError(
                f"{path}: is a stack of {arr.shape[0]} frames of {arr.shape[2]}x{arr.shape[1]}; "
                "choose one with frame=N (or read every frame)"
            )
        _check_frame(path, frame, arr.shape[0])
        return arr[frame]
    return arr


def _read_raster(path: Path) -> np.ndarray:
    import cv2

    data = np.frombuffer(path.read_bytes(), np.uint8)
    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise InputError(f"{path}: not a decodable {path.suffix.lstrip('.').upper()} image (truncated or corrupt?)")
    if arr.ndim == 3:  # OpenCV gives BGR(A); report RGB(A)
        arr = arr[:, :, [2, 1, 0] + ([3] if arr.shape[2] == 4 else [])]
    return arr


_UNIT_NAMES = {"micron": "µm", "\\u00B5m": "µm", "um": "µm", "angstrom": "Å", "a": "Å"}


def _tiff_calibration(tf) -> tuple[float | None, str | None]:  # noqa: ANN001
    """Pixel size from ImageJ metadata, FEI/Thermo metadata or a centimetre resolution tag."""
    page = tf.pages.first if hasattr(tf.pages, "first") else tf.pages[0]
    tag = page.tags.get("XResolution")
    per_unit = None
    if tag is not None and tag.value[0] and tag.value[1]:
        per_unit = tag.value[0] / tag.value[1]  # pixels per unit
    ij = tf.imagej_metadata or {}
    if ij.get("unit") and per_unit:
        unit = str(ij["unit"])
        return 1.0 / per_unit, _UNIT_NAMES.get(unit.lower(), unit)
    fei = getattr(tf, "fei_metadata", None) or {}
    width = fei.get("Scan", {}).get("PixelWidth") if isinstance(fei.get("Scan"), dict) else None
    if width:
        return float(width) * 1e9, "nm"
    unit_tag = page.tags.get("ResolutionUnit")
    if unit_tag is not None and int(unit_tag.value) == 3 and per_unit:  # centimetre
        return 1e7 / per_unit, "nm"
    return None, None  # no tag, or dots per inch (a display setting, not a pixel size)


def _read_tiff(path: Path, frame: int | None = None) -> tuple[np.ndarray, float | None, str | None]:
    """Read a TIFF (one frame of a stack when ``frame`` is given, memory-mapped if possible)."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            shape = tuple(tf.series[0].shape)
            size, unit = _tiff_calibration(tf)
            frames = _frames_of(shape)
            if frame is not None and frames > 1:
                _check_frame(path, frame, frames)
                try:
                    stack = tifffile.memmap(path, mode="r", series=0)
                except (ValueError, OSError):
                    stack = tf.series[0].asarray()
                return np.array(stack.reshape((frames, *shape[-2:]))[frame]), size, unit
            arr = tf.series[0].asarray()
            if arr.ndim > 3 and not _is_colour(arr.shape):
                arr = arr.reshape((frames, *arr.shape[-2:]))
            return arr, size, unit
    except InputError:
        raise
    except Exception as exc:  # tifffile raises many types for corrupt files
        raise InputError(f"{path}: not a readable TIFF ({exc})") from None


def _read_npy(path: Path, frame: int | None = None) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False, mmap_mode="r")
    except Exception as exc:
        raise InputError(f"{path}: not a readable .npy array ({exc})") from None
    if frame is not None and arr.ndim == 3 and _frames_of(arr.shape) > 1:
        _check_frame(path, frame, arr.shape[0])
        return np.array(arr[frame])
    return np.array(arr)


def _read_rsciio(path: Path, frame: int | None) -> tuple[np.ndarray, float | None, str | None, dict]:
    from samiam.io.rsciio_read import read_with_rsciio

    return read_with_rsciio(path, frame)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected an image file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")


def count_frames(path: str | Path) -> int:
    """Number of 2-D frames in a file: 1 for an image, N for a stack (read from the header only).

    Raises:
        InputError: missing, empty, unreadable or unsupported file.
    """
    path = Path(path)
    _check_file(path)
    suffix = path.suffix.lower()
    if suffix in TIFF_SUFFIXES:
        import tifffile

        try:
            with tifffile.TiffFile(path) as tf:
                return _frames_of(tuple(tf.series[0].shape))
        except Exception as exc:
            raise InputError(f"{path}: not a readable TIFF ({exc})") from None
    if suffix in NUMPY_SUFFIXES:
        try:
            shape = np.load(path, allow_pickle=False, mmap_mode="r").shape
        except Exception as exc:
            raise InputError(f"{path}: not a readable .npy array ({exc})") from None
        return _frames_of(shape) if len(shape) == 3 else 1
    if suffix in RSCIIO_SUFFIXES:
        from samiam.io.rsciio_read import open_image_signal

        return open_image_signal(path).frames
    if suffix in RASTER_SUFFIXES:
        return 1
    raise InputError(f"{path}: unsupported file type '{path.suffix}'; expected one of {', '.join(SUPPORTED_SUFFIXES)}")


def read_micrograph(path: str | Path, frame: int | None = None) -> Micrograph:
    """Read one image file as a ``Micrograph``.

    Args:
        path: a PNG/JPEG/BMP (8/16-bit, grey or colour), TIFF (8/16/32-bit integer or float;
            stacks need ``frame``), .npy, or a Gatan/Velox/HyperSpy file (.dm3/.dm4/.emd/.hspy/.hdf5).
        frame: frame index for stacks (only that frame is read where the format allows).

    Returns:
        The validated micrograph, normalised to [0, 1].

    Raises:
        InputError: missing, empty, corrupt, unsupported or unsuitable file.
    """
    path = Path(path)
    _check_file(path)
    suffix = path.suffix.lower()
    pixel_size, unit, meta = None, None, {}
    if suffix in RASTER_SUFFIXES:
        arr = _read_raster(path)
    elif suffix in TIFF_SUFFIXES:
        arr, pixel_size, unit = _read_tiff(path, frame)
    elif suffix in NUMPY_SUFFIXES:
        arr = _read_npy(path, frame)
    elif suffix in RSCIIO_SUFFIXES:
        arr, pixel_size, unit, meta = _read_rsciio(path, frame)
    else:
        raise InputError(
            f"{path}: unsupported file type '{path.suffix}'; expected one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    arr = _pick_frame(np.asarray(arr), path, frame)
    if frame is not None:
        meta = {**meta, "frame": frame}
    return micrograph_from_array(arr, str(path), pixel_size=pixel_size, pixel_unit=unit, meta=meta)
