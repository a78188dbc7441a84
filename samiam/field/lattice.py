"""The lattice period an image shows, from its own power spectrum, and the window it implies."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter

from samiam.errors import ParameterError


@dataclass
class LatticeEstimate:
    """Period of the strongest lattice peak of the whole image.

    Attributes:
        period_px: period in pixels of the strongest peak of the radial spectrum, or None when
            the spectrum shows no peak above its background (amorphous or noise).
        strength: log-power excess of that peak over the spectrum's smooth background.
        period_nm: the period in nm when the file gives a pixel size, else None.
    """

    period_px: float | None
    strength: float
    period_nm: float | None = None


# A peak must stand this far (natural log) above the median-filtered spectrum to count as a lattice:
# e (2.7x) in power; white noise gives excesses below ~0.6 on 256-1024 px images.
MIN_PEAK_EXCESS = 1.0


def radial_spectrum(image: np.ndarray) -> np.ndarray:
    """Radially averaged power spectrum (Hann-windowed), indexed by frequency in cycles per short side."""
    h, w = image.shape
    win = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    f = np.fft.rfft2((image - image.mean()) * win)
    power = (f.real**2 + f.imag**2).astype(np.float64)
    side = min(h, w)
    fy = np.fft.fftfreq(h)[:, None] * side
    fx = np.fft.rfftfreq(w)[None, :] * side
    r = np.rint(np.hypot(fy, fx)).astype(np.int64).ravel()
    sums = np.bincount(r, power.ravel())
    counts = np.bincount(r)
    n = side // 2
    return sums[:n] / np.maximum(counts[:n], 1)


def estimate_lattice(image: np.ndarray, pixel_size_nm: float | None = None) -> LatticeEstimate:
    """Find the strongest lattice period of an image.

    Args:
        image: HxW float image.
        pixel_size_nm: pixel size in nm if known (only reported).

    Returns:
        The estimate (``period_px`` None when no peak stands out).
    """
    if image.ndim != 2 or min(image.shape) < 16:
        raise ParameterError(f"expected a 2-D image of at least 16x16 px, got shape {image.shape}")
    prof = radial_spectrum(image.astype(np.float32))
    logp = np.log(prof + 1e-20)
    excess = logp - median_filter(logp, size=9, mode="nearest")
    lo = 4  # periods longer than a quarter of the image are not a texture
    excess[:lo] = -np.inf
    k = int(np.argmax(excess))
    strength = float(excess[k])
    if not np.isfinite(strength) or strength < MIN_PEAK_EXCESS:
        return LatticeEstimate(None, max(strength, 0.0) if np.isfinite(strength) else 0.0)
    period = min(image.shape) / k
    return LatticeEstimate(period, strength, period * pixel_size_nm if pixel_size_nm else None)


def window_for(estimate: LatticeEstimate, shape: tuple[int, int], periods: float, lo: int = 24, hi: int = 96) -> int:
    """Window side (even, px) covering ``periods`` lattice periods, clipped to [lo, min(hi, side/4)].

    Without a lattice the window is the image's short side / 16 (clipped the same way).
    """
    side = min(shape)
    hi = max(lo, 2 * (min(hi, side // 4) // 2))
    w = periods * estimate.period_px if estimate.period_px else side / 16
    return int(np.clip(2 * round(w / 2), lo, hi))
