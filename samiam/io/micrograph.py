"""The ``Micrograph`` type: a normalised 2-D image plus where it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from samiam.errors import InputError

MIN_SIDE = 16


@dataclass
class Micrograph:
    """One 2-D image ready for segmentation.

    Attributes:
        image: float32 HxW in [0, 1], contrast-normalised by robust percentiles.
        raw: float32 HxW with the file's original values (heights, counts) for stages
            that need physical units (the STM defect stage).
        source: the file it was read from (or a name for in-memory images).
        dtype: the file's original dtype, e.g. ``"uint16"``.
        pixel_size: pixel size if the file says it, else None.
        pixel_unit: unit of ``pixel_size`` (e.g. ``"nm"``), else None.
        meta: free-form reader metadata (frame index, channel handling, ...).
    """

    image: np.ndarray
    raw: np.ndarray
    source: str
    dtype: str
    pixel_size: float | None = None
    pixel_unit: str | None = None
    meta: dict = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def stem(self) -> str:
        return Path(self.source).stem

    def to_uint8_rgb(self) -> np.ndarray:
        """Return the normalised image as HxWx3 uint8 (the input SAM models expect)."""
        grey = np.clip(self.image * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)


def normalise(values: np.ndarray, low_pct: float = 0.5, high_pct: float = 99.5) -> np.ndarray:
    """Map values to [0, 1] using robust percentiles, clipping the tails.

    Args:
        values: finite 2-D array.
        low_pct: percentile mapped to 0.
        high_pct: percentile mapped to 1.

    Returns:
        float32 array of the same shape in [0, 1].
    """
    lo, hi = np.percentile(values, [low_pct, high_pct])
    if hi <= lo:  # heavy-tailed or nearly constant: fall back to min/max
        lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return np.zeros(values.shape, np.float32)
    out = (values.astype(np.float64) - lo) / (hi - lo)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def micrograph_from_array(
    array: np.ndarray,
    source: str = "<array>",
    *,
    pixel_size: float | None = None,
    pixel_unit: str | None = None,
    meta: dict | None = None,
) -> Micrograph:
    """Validate a 2-D (or HxWx3/4 colour) array and wrap it as a ``Micrograph``.

    Args:
        array: image values; colour images are converted to luminance.
        source: name used in error messages and outputs.
        pixel_size: physical pixel size, if known.
        pixel_unit: unit of ``pixel_size``.
        meta: extra reader metadata.

    Returns:
        The validated, normalised micrograph.

    Raises:
        InputError: for stacks, tiny, constant or non-finite images.
    """
    arr = np.asarray(array)
    dtype = str(arr.dtype)
    if arr.ndim == 3 and arr.shape[2] in (3, 4) and arr.shape[0] > 4:
        rgb = arr[:, :, :3].astype(np.float64)
        arr = rgb @ np.array([0.299, 0.587, 0.114])
    elif arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise InputError(
            f"{source}: expected a 2-D image (or HxWx3 colour), got an array of shape "
            f"{tuple(np.asarray(array).shape)}; for stacks choose one frame"
        )
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{source}: expected numeric pixel values, got dtype {arr.dtype}")
    if min(arr.shape) < MIN_SIDE:
        raise InputError(
            f"{source}: image is {arr.shape[1]}x{arr.shape[0]} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed"
        )
    arr = arr.astype(np.float32)
    finite = np.isfinite(arr)
    if not finite.all():
        n_bad = int((~finite).sum())
        raise InputError(f"{source}: {n_bad} pixel(s) are NaN or infinite; expected finite values")
    if float(arr.max()) == float(arr.min()):
        raise InputError(f"{source}: image is constant (every pixel = {float(arr.min()):g})")
    return Micrograph(
        image=normalise(arr),
        raw=arr,
        source=source,
        dtype=dtype,
        pixel_size=pixel_size,
        pixel_unit=pixel_unit,
        meta=dict(meta or {}),
    )
