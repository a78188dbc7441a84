"""The lattice a STEM image shows, from its own spectrum: period and the Bragg-peak mask."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from samiam.errors import InputError
from samiam.field.lattice import estimate_lattice

# A Fourier coefficient belongs to the lattice when its (3x3-summed) power exceeds the noise
# floor (median power at high frequency) this many times: noise alone reaches ~5x once in 10^5.
BRAGG_FACTOR = 30.0
# The slow background kept with the lattice: frequencies below this fraction of the lattice's.
# At 0.5 a 3-column-wide blur of each point defect stayed in the bulk (vacancies 30 % shallower).
DC_FRACTION = 0.2
# Each Bragg peak is widened so the bulk follows lattice distortions (drift, scan wobble) slower
# than this many periods; wider peaks follow faster distortions but keep more of each point defect.
# 24 had the best F1 on the synthetic benchmark (vs 48 and a fixed 1-px widening; STEM_RESULTS.md).
DISTORTION_PERIODS = 24.0


@dataclass
class StemLattice:
    """The lattice of one image.

    Attributes:
        period_px: period (px) of the strongest peak of the radial spectrum.
        strength: log-power excess of that peak over the spectrum's background.
        bragg: bool HxW (unshifted FFT layout) mask of the lattice's Fourier coefficients, DC included.
        n_peaks: connected Bragg peaks outside the DC region.
        area_fraction: fraction of the spectrum in the Bragg mask, DC region excluded.
    """

    period_px: float
    strength: float
    bragg: np.ndarray
    n_peaks: int
    area_fraction: float


def bragg_mask(image: np.ndarray, period_px: float, factor: float = BRAGG_FACTOR) -> tuple[np.ndarray, int, float]:
    """Fourier coefficients of the lattice: power above ``factor`` x the high-frequency noise floor.

    Args:
        image: HxW float image.
        period_px: lattice period (px), to size the DC region kept for the slowly varying background.
        factor: threshold over the noise floor.

    Returns:
        (bool HxW mask in FFT layout, number of peaks outside the DC region, their area fraction).
    """
    h, w = image.shape
    f = np.fft.fft2(image - image.mean())
    power = ndi.uniform_filter(f.real**2 + f.imag**2, 3, mode="wrap") * 9
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    r = np.hypot(fy, fx)
    floor = float(np.median(power[r > 0.35])) + 1e-30
    peaks = power > factor * floor
    dc = r < DC_FRACTION / period_px  # slower than a few periods: background, thickness, not the lattice
    peaks &= ~dc
    labels, n = ndi.label(np.fft.fftshift(peaks))
    area = float(peaks.mean())
    grow = max(1, int(round(min(h, w) / (DISTORTION_PERIODS * period_px))))
    mask = ndi.binary_dilation(np.fft.fftshift(peaks), iterations=grow)
    return np.fft.ifftshift(mask) | dc, int(n), area


def find_lattice(image: np.ndarray, source: str = "<array>") -> StemLattice:
    """Period and Bragg mask of an atomic-resolution image.

    Args:
        image: HxW float image.
        source: name for error messages.

    Returns:
        The lattice.

    Raises:
        InputError: no clear lattice (no spectral peak above the background, or fewer than 4 Bragg peaks).
    """
    if image.ndim != 2 or min(image.shape) < 32:
        raise InputError(f"{source}: expected a 2-D image of at least 32x32 px, got shape {image.shape}")
    est = estimate_lattice(image)
    hint = (
        "STEM defect finding needs an atomic-resolution image of one crystal (columns on a lattice); "
        "for STM height maps use --modality stm"
    )
    if est.period_px is None:
        raise InputError(f"{source}: no clear lattice peak in the spectrum (excess {est.strength:.2f}); {hint}")
    if est.period_px < 3.0:
        raise InputError(f"{source}: lattice period {est.period_px:.1f} px is too fine to resolve columns; {hint}")
    mask, n, area = bragg_mask(image, est.period_px)
    if n < 4:  # a 2-D lattice shows at least two pairs of peaks; stripes or one texture show one pair
        raise InputError(f"{source}: no clear lattice ({n} Bragg peak(s); a 2-D crystal shows >= 4); {hint}")
    return StemLattice(float(est.period_px), float(est.strength), mask, n, area)
