"""Per-image calibration of the defect detector: noise level, atomic spacing and feature scale.

Nothing here is a constant tuned on a data set: every number is measured on the image itself.

- *Noise*: the robust sigma (1.4826 x MAD) of a high-pass residual (heights minus their
  1-px Gaussian smoothing), corrected to the sigma of white noise, per scan line and overall.
- *Atomic spacing*: the strongest lattice period of the image's own power spectrum
  (``samiam.field.lattice.estimate_lattice``), when one stands out and is resolved (>= 3 px).
- *Feature scale*: the half-width at half maximum of the image's radial autocorrelation after
  removing the background (structures larger than 1/16 of the short side). On an image whose
  lattice is resolved it is a fraction of the lattice spacing; on a large scan whose lattice is
  not resolved it is the size of the smallest features the scan shows (the resolution limit,
  or the defects themselves), so defect scales expressed in it carry from a 3 nm to a 1000 nm scan.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage as ndi

from samiam.errors import ParameterError

MAD_TO_SIGMA = 1.4826
# a resolved lattice has a period of at least this many pixels (shorter periods are noise and
# JPEG blocks at the Nyquist limit)
MIN_RESOLVED_PERIOD = 3.0


@dataclass
class Calibration:
    """What one image says about its own noise and scales.

    Attributes:
        noise: white-noise sigma of the heights (their units), over the whole image.
        row_noise: (H,) noise sigma of each scan line (median over 5 lines).
        lines_differ: the scan lines' noise differs (90th / 10th percentile of ``row_noise`` > 1.5).
        spacing: atomic (lattice) spacing in px, or None when the lattice is not resolved.
        feature_scale: autocorrelation half-width (px) of the background-free heights, >= 1.
    """

    noise: float
    row_noise: np.ndarray
    lines_differ: bool
    spacing: float | None
    feature_scale: float

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("row_noise")
        d["row_noise_p10_p90"] = [float(np.percentile(self.row_noise, q)) for q in (10, 90)]
        return d


def _check(heights: np.ndarray) -> np.ndarray:
    z = np.asarray(heights, np.float64)
    if z.ndim != 2 or min(z.shape) < 16:
        raise ParameterError(f"expected a 2-D height map of at least 16x16 px, got shape {z.shape}")
    return z


def _residual_gain(sigma: float) -> float:
    """Std of ``x - gaussian(x, sigma)`` for unit white noise x: sqrt(sum((delta - g)^2))."""
    r = int(np.ceil(4 * sigma))
    t = np.arange(-r, r + 1, dtype=np.float64)
    g1 = np.exp(-0.5 * (t / sigma) ** 2)
    g1 /= g1.sum()
    g = np.outer(g1, g1)
    return float(np.sqrt(1.0 - 2.0 * g[r, r] + (g * g).sum()))


def noise_level(heights: np.ndarray, smooth: float = 1.0, band: int = 5) -> tuple[float, np.ndarray, bool]:
    """White-noise sigma of a height map, overall and per scan line.

    The residual of a ``smooth``-px Gaussian high-pass keeps pixel noise and suppresses terraces,
    tilt and anything wider than a few pixels; its robust sigma (1.4826 x MAD, insensitive to the
    few pixels of defects and edges) divided by the residual's gain for white noise is the
    noise sigma.

    Args:
        heights: HxW heights (rows are scan lines).
        smooth: Gaussian sigma (px) of the high-pass.
        band: running median over this many lines for the per-line noise.

    Returns:
        (noise sigma, (H,) per-line noise sigma, whether the lines differ).
    """
    z = _check(heights)
    res = z - ndi.gaussian_filter(z, smooth, mode="reflect")
    gain = _residual_gain(smooth)
    dev = np.abs(res - np.median(res, axis=1, keepdims=True))
    rows = MAD_TO_SIGMA * np.median(dev, axis=1) / gain
    rows = ndi.median_filter(rows, size=max(1, min(band, len(rows))), mode="reflect")
    overall = MAD_TO_SIGMA * float(np.median(np.abs(res - np.median(res)))) / gain
    lo, hi = np.percentile(rows, [10, 90])
    return overall, rows, bool(hi > 1.5 * max(lo, 1e-12 * max(hi, 1.0)))


def atomic_spacing(heights: np.ndarray) -> float | None:
    """Lattice spacing (px) from the image's own spectrum, or None when no resolved lattice stands out."""
    from samiam.field.lattice import estimate_lattice

    z = _check(heights)
    est = estimate_lattice(z)
    # an atomic lattice repeats many times across the image: periods longer than 1/16 of the short
    # side are terraces, moire or the defects' own spacing
    if est.period_px is None or not MIN_RESOLVED_PERIOD <= est.period_px <= min(z.shape) / 16:
        return None
    return float(est.period_px)


def feature_scale(heights: np.ndarray, background: float = 16.0) -> float:
    """Half-width at half maximum (px) of the radial autocorrelation of the background-free heights.

    Args:
        heights: HxW heights.
        background: structures wider than 1/``background`` of the short side are removed first
            (Gaussian high-pass of sigma short side / ``background``).

    Returns:
        The half-width, at least 1 px.
    """
    z = _check(heights)
    h, w = z.shape
    hp = z - ndi.gaussian_filter(z, min(h, w) / background, mode="reflect")
    spec = np.fft.rfft2(hp - hp.mean())
    ac = np.fft.irfft2(spec.real**2 + spec.imag**2, hp.shape)
    if not ac[0, 0] > 0:
        return 1.0
    ac /= ac[0, 0]
    r = np.rint(np.hypot(np.fft.fftfreq(h)[:, None] * h, np.fft.fftfreq(w)[None, :] * w)).astype(np.int64).ravel()
    prof = np.bincount(r, ac.ravel()) / np.maximum(np.bincount(r), 1)
    below = np.nonzero(prof[: min(h, w) // 2] < 0.5)[0]
    if len(below) == 0:
        return float(min(h, w) // 2)
    k = int(below[0])  # linear interpolation between the last radius above and the first below half
    if k == 0:
        return 1.0
    a, b = prof[k - 1], prof[k]
    return float(max(1.0, k - 1 + (a - 0.5) / max(a - b, 1e-12)))


def calibrate(heights: np.ndarray) -> Calibration:
    """Measure noise, atomic spacing and feature scale of one (flattened) height map."""
    noise, rows, differ = noise_level(heights)
    return Calibration(noise, rows, differ, atomic_spacing(heights), feature_scale(heights))


@lru_cache(maxsize=32)
def unit_noise_response(sigmas: tuple[float, ...], size: int = 192) -> tuple[float, ...]:
    """Robust sigma of the blob response of unit white noise at each scale (a fixed-seed simulation).

    The blob response is linear in the heights before its square root, so white noise of sigma
    s gives s times these values: the response floor that pure noise of the image's level makes.
    """
    from samiam.defects.blobs import hessian_responses

    rng = np.random.default_rng(0)
    side = max(size, int(8 * max(sigmas)))
    noise = rng.standard_normal((side, side)).astype(np.float32)
    out = []
    for r in hessian_responses(noise, np.asarray(sigmas)):
        c = r[side // 4 : -side // 4, side // 4 : -side // 4]
        out.append(float(MAD_TO_SIGMA * np.median(np.abs(c - np.median(c)))))
    return tuple(out)
