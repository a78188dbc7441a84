"""Gatan, Velox and HyperSpy files through RosettaSciIO (the maintained reader of HyperSpy).

Files are opened lazily (dask), so counting the frames of a stack or reading one frame does not
load the whole file. The image signal is the first one with two signal (non-navigation) axes
(an image, or a stack of images along navigation axes); spectra and spectrum images are skipped.
The pixel size is the scale of the last signal axis (x), with its unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from samiam.errors import InputError

_PLUGINS = {
    ".dm3": "rsciio.digitalmicrograph",
    ".dm4": "rsciio.digitalmicrograph",
    ".emd": "rsciio.emd",
    ".hspy": "rsciio.hspy",
    ".hdf5": "rsciio.hspy",
    ".h5": "rsciio.hspy",
}
_SPECTRAL_UNITS = {"ev", "kev", "mev", "1/nm", "1/å", "1/a", "nm^-1"}
_UNDEFINED = (None, "", "<undefined>", "<t.Undefined>")


@dataclass
class ImageSignal:
    """The image signal found in a microscope file.

    Attributes:
        data: array (numpy or dask), shape (..., H, W): leading axes are frames.
        pixel_size: x scale, None when the file has no calibration.
        pixel_unit: unit of ``pixel_size``, None when undefined.
        title: the signal's title.
        titles: titles of all signals in the file (for messages).
    """

    data: Any
    pixel_size: float | None
    pixel_unit: str | None
    title: str
    titles: list[str]

    @property
    def frames(self) -> int:
        """Number of 2-D frames (1 for a single image)."""
        return int(np.prod(self.data.shape[:-2])) if len(self.data.shape) > 2 else 1


def _read_signals(path: Path) -> list[dict]:
    import importlib

    try:
        plugin = importlib.import_module(_PLUGINS[path.suffix.lower()])
    except ImportError as exc:
        raise InputError(f"{path}: reading this format needs rosettasciio and h5py ({exc})") from None
    try:
        if path.suffix.lower() == ".emd":  # Velox: images only (not spectra); other EMD: everything
            try:
                signals = plugin.file_reader(str(path), lazy=True, select_type="image")
            except Exception:
                signals = []
            if signals:
                return signals
        return plugin.file_reader(str(path), lazy=True)
    except Exception as exc:
        raise InputError(f"{path}: could not read as {path.suffix} ({type(exc).__name__}: {exc})") from None


def _is_image(sig: dict) -> bool:
    shape = tuple(sig["data"].shape)
    if len(shape) < 2:
        return False
    axes = sig.get("axes", [])
    signal_axes = [a for a in axes if not a.get("navigate", False)]
    if len(axes) == len(shape) and len(signal_axes) == 2:
        return True
    if len(signal_axes) == 1 or any(str(a.get("units", "")).lower() in _SPECTRAL_UNITS for a in signal_axes[-1:]):
        return False  # a spectrum (image)
    return True  # no navigation information (e.g. some EMD files): last two axes are the image


def _calibration(sig: dict) -> tuple[float | None, str | None]:
    axes = sig.get("axes", [])
    if not axes:
        return None, None
    x = axes[-1]
    unit = x.get("units")
    unit = None if unit in _UNDEFINED else str(unit)
    scale = x.get("scale")
    try:
        scale = float(scale) if scale is not None else None
    except (TypeError, ValueError):
        scale = None
    if scale is None or scale <= 0 or (unit is None and scale == 1.0):
        return None, unit  # an uncalibrated axis reads as scale 1 without a unit
    return scale, unit


def open_image_signal(path: Path) -> ImageSignal:
    """Open a .dm3/.dm4/.emd/.hspy/.hdf5 file lazily and find its image signal.

    Raises:
        InputError: unreadable file, or no image signal in it.
    """
    signals = _read_signals(path)
    titles = [str(s.get("metadata", {}).get("General", {}).get("title", "")) for s in signals]
    for sig, title in zip(signals, titles, strict=True):
        if _is_image(sig):
            size, unit = _calibration(sig)
            return ImageSignal(sig["data"], size, unit, title, titles)
    shapes = ", ".join(str(tuple(s["data"].shape)) for s in signals) or "none"
    raise InputError(f"{path}: contains no 2-D image signal (signals: {shapes})")


def read_with_rsciio(path: Path, frame: int | None = None) -> tuple[np.ndarray, float | None, str | None, dict]:
    """Read the image signal of a microscope file (one frame of it if ``frame`` is given).

    Args:
        path: a .dm3/.dm4/.emd/.hspy/.hdf5 file.
        frame: frame of a stack to read (leading axes flattened); None reads everything.

    Returns:
        (array, pixel size or None, pixel unit or None, metadata dict).

    Raises:
        InputError: unreadable file, no image signal, or a frame outside the stack.
    """
    sig = open_image_signal(path)
    data = sig.data
    meta: dict[str, Any] = {"title": sig.title, "reader": "rsciio"}
    if len(sig.titles) > 1:
        meta["signals"] = sig.titles
    if frame is not None and len(data.shape) > 2:
        if not 0 <= frame < sig.frames:
            raise InputError(f"{path}: frame {frame} requested, the stack has {sig.frames} frames")
        data = data.reshape((sig.frames, *data.shape[-2:]))[frame]
    elif len(data.shape) > 3:
        data = data.reshape((sig.frames, *data.shape[-2:]))
    try:
        arr = np.asarray(data.compute() if hasattr(data, "compute") else data)
    except Exception as exc:
        raise InputError(f"{path}: could not read the image data ({type(exc).__name__}: {exc})") from None
    return arr, sig.pixel_size, sig.pixel_unit, meta
