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
            out.extend(
                sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in SUPPORTED_SUFFIXES)
            )
        else:
            out.append(p)
    return out


def _pick_frame(arr: np.ndarray, path: Path, frame: int | None) -> np.ndarray:
    is_colour = arr.ndim == 3 and arr.shape[2] in (3, 4)
    if arr.ndim == 3 and not is_colour and arr.shape[0] > 1:
        if frame is None:
            raise InputError(
                f"{path}: is a stack of {arr.shape[0]} frames of {arr.shape[2]}x{arr.shape[1]}; "
                "choose one with --frame N"
            )
        if not 0 <= frame < arr.shape[0]:
            raise InputError(f"{path}: frame {frame} requested, the stack has {arr.shape[0]} frames")
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


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    try:
        return tifffile.imread(path)
    except Exception as exc:  # tifffile raises many types for corrupt files
        raise InputError(f"{path}: not a readable TIFF ({exc})") from None


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:
        raise InputError(f"{path}: not a readable .npy array ({exc})") from None


def _read_rsciio(path: Path) -> tuple[np.ndarray, float | None, str | None, dict]:
    from samiam.io.rsciio_read import read_with_rsciio

    return read_with_rsciio(path)


def read_micrograph(path: str | Path, frame: int | None = None) -> Micrograph:
    """Read one image file as a ``Micrograph``.

    Args:
        path: a PNG/JPEG/BMP (8/16-bit, grey or colour), TIFF (any dtype; stacks need
            ``frame``), .npy, or a Gatan/Velox/HyperSpy file (.dm3/.dm4/.emd/.hspy/.hdf5).
        frame: frame index for 3-D stacks.

    Returns:
        The validated micrograph, normalised to [0, 1].

    Raises:
        InputError: missing, empty, corrupt, unsupported or unsuitable file.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected an image file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    suffix = path.suffix.lower()
    pixel_size, unit, meta = None, None, {}
    if suffix in RASTER_SUFFIXES:
        arr = _read_raster(path)
    elif suffix in TIFF_SUFFIXES:
        arr = _read_tiff(path)
    elif suffix in NUMPY_SUFFIXES:
        arr = _read_npy(path)
    elif suffix in RSCIIO_SUFFIXES:
        arr, pixel_size, unit, meta = _read_rsciio(path)
    else:
        raise InputError(
            f"{path}: unsupported file type '{path.suffix}'; expected one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    arr = _pick_frame(np.asarray(arr), path, frame)
    if frame is not None:
        meta = {**meta, "frame": frame}
    return micrograph_from_array(arr, str(path), pixel_size=pixel_size, pixel_unit=unit, meta=meta)
