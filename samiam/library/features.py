"""Crop embeddings comparable across images: crops at the library's pixel size, raw encoder features.

The booster z-scores features per image, which is right for clustering one image but makes
features of different images incomparable; here features stay raw and the classifier fits its
normalisation on the library. When both the library and the image know their pixel size, crops
are resampled to the library's pixel size, so a lattice spacing has the same frequency in both.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from samiam.boost.crops import CropSet, sample_crops
from samiam.boost.encoders import HARMONICS, N_RADIAL, make_encoder
from samiam.masks import MaskRecord

Encoder = Callable[[list[np.ndarray]], np.ndarray]

# Columns of the ``fft`` descriptor (samiam.boost.encoders.fft_features): log radial profile,
# angular harmonics, log total power, then 5 absolute intensity statistics.
FFT_SPECTRAL_SHAPE = N_RADIAL - 1 + len(HARMONICS)
FFT_WIDTH = FFT_SPECTRAL_SHAPE + 1 + 5


def feature_columns(encoder: str, n_features: int, use_intensity: bool) -> np.ndarray:
    """Columns of the raw features the classifier uses.

    For ``fft`` without intensity: only the spectral shape (radial profile and symmetry
    harmonics), which does not depend on the image's contrast. Every column otherwise.

    Args:
        encoder: encoder name.
        n_features: width of the raw features.
        use_intensity: keep the absolute intensity/power columns.
    """
    if encoder == "fft" and not use_intensity and n_features == FFT_WIDTH:
        return np.arange(FFT_SPECTRAL_SHAPE)
    return np.arange(n_features)


def scale_for(library_px_nm: float | None, image_px_nm: float | None) -> float:
    """Image pixels per library pixel of one crop side (1 when either pixel size is unknown)."""
    if library_px_nm is None or image_px_nm is None:
        return 1.0
    return float(library_px_nm / image_px_nm)


def sample_scaled_crops(
    image: np.ndarray,
    records: list[MaskRecord],
    side: int,
    per_mask: int,
    min_side: int,
    seed: int,
    scale: float = 1.0,
) -> CropSet:
    """``sample_crops`` at the library's pixel size.

    Crops of ``side * scale`` image pixels are taken inside each mask and resampled by ``1 / scale``
    (area interpolation when shrinking), so they show what ``side`` library pixels show.

    Args:
        image: HxW float image.
        records: masks to sample in.
        side: crop side at the library's pixel size.
        per_mask: crops per mask.
        min_side: smallest crop side (library pixels).
        seed: sampling seed.
        scale: ``library pixel size / image pixel size``.

    Returns:
        The crops (resampled) with their owners and centres in image pixels.
    """
    if abs(scale - 1.0) < 0.02:
        return sample_crops(image, records, side, per_mask, min_side, seed)
    img_side = max(4, int(round(side * scale)))
    img_min = max(4, int(round(min_side * scale)))
    cs = sample_crops(image, records, img_side, per_mask, img_min, seed)
    resized = []
    for c in cs.crops:
        out = max(4, int(round(c.shape[0] / scale)))
        interp = cv2.INTER_AREA if out < c.shape[0] else cv2.INTER_CUBIC
        resized.append(cv2.resize(c, (out, out), interpolation=interp).astype(np.float32))
    return CropSet(crops=resized, owner=cs.owner, sizes=cs.sizes, centres=cs.centres)


def build_encoder(name: str, weights: str | None = None) -> Encoder:
    """The booster's encoder of that name (``samiam.boost.encoders.make_encoder``)."""
    return make_encoder(name, weights)


def periodicity_px(crops: list[np.ndarray]) -> float | None:
    """Dominant lattice period in pixels: peak of the mean radial power spectrum of the crops.

    Args:
        crops: square crops (sides may differ; the most common side is used).

    Returns:
        Period in pixels, or None without crops or without a spectral peak above the noise.
    """
    if not crops:
        return None
    sides, counts = np.unique([c.shape[0] for c in crops], return_counts=True)
    s = int(sides[counts.argmax()])
    stack = np.stack([c for c in crops if c.shape[0] == s]).astype(np.float64)
    win = np.outer(np.hanning(s), np.hanning(s))
    power = (np.abs(np.fft.rfft2((stack - stack.mean(axis=(1, 2), keepdims=True)) * win)) ** 2).mean(0)
    fy = np.fft.fftfreq(s)[:, None]
    fx = np.fft.rfftfreq(s)[None, :]
    r = np.sqrt(fy**2 + fx**2)
    rbin = np.rint(r * s).astype(int)
    ok = (rbin >= 2) & (rbin <= s // 2)  # periods from s/2 down to 2 px
    prof = np.bincount(rbin[ok], weights=power[ok]) / np.maximum(np.bincount(rbin[ok]), 1)
    prof[:2] = 0
    k = int(prof.argmax())
    if k < 2 or prof[k] < 4 * np.median(prof[2:]):
        return None
    return float(s / k)
