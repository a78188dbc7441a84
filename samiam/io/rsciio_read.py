"""Gatan, Velox and HyperSpy files through RosettaSciIO (the maintained reader of HyperSpy)."""

from __future__ import annotations

from pathlib import Path

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


def read_with_rsciio(path: Path) -> tuple[np.ndarray, float | None, str | None, dict]:
    """Read the first 2-D image signal of a microscope file.

    Args:
        path: a .dm3/.dm4/.emd/.hspy/.hdf5 file.

    Returns:
        (array, pixel size or None, pixel unit or None, metadata dict).

    Raises:
        InputError: unreadable file, or no image signal in it.
    """
    import importlib

    try:
        plugin = importlib.import_module(_PLUGINS[path.suffix.lower()])
    except ImportError as exc:
        raise InputError(f"{path}: reading this format needs rosettasciio ({exc})") from None
    try:
        signals = plugin.file_reader(str(path))
    except Exception as exc:
        raise InputError(f"{path}: could not read as {path.suffix} ({type(exc).__name__}: {exc})") from None
    for sig in signals:
        data = np.asarray(sig["data"])
        if data.ndim >= 2:
            axes = sig.get("axes", [])
            scale, unit = None, None
            if axes:
                scale = axes[-1].get("scale")
                unit = axes[-1].get("units")
                unit = None if unit in (None, "", "<undefined>") else str(unit)
            title = sig.get("metadata", {}).get("General", {}).get("title", "")
            return data, (float(scale) if scale else None), unit, {"title": title, "reader": "rsciio"}
    raise InputError(f"{path}: contains no 2-D image signal")
