"""Crop embeddings comparable across images: raw encoder features at the library's pixel size.

The booster z-scores features per image, which is right for clustering one image but makes
features of different images incomparable; here features stay raw and the classifier fits its
normalisation on the library. When both the library and the image know their pixel size, a
lattice spacing is brought to the same frequency in both: for the ``fft`` descriptor by moving
its radial profile onto the library's frequency axis (``rescale_spectrum``; measured better than
resampling pixels, which filters the detector noise and changes its spectrum), for other encoders
by resampling the crops.

Crop sides come from a fixed *ladder* (the crop size and 0.8, 0.6, 0.4 of it): the spectral
descriptor of a crop depends on its side (frequency resolution, window), so a 30 px crop of a
lattice is far from the 60 px crops of the same lattice. A mask too thin for the full side gets
crops of the largest ladder side that fits, and they are compared only with library crops of that
side.
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


LADDER = (1.0, 0.8, 0.6, 0.4)


def ladder_sizes(crop_size: int, min_size: int) -> list[int]:
    """Crop sides of a library: ``LADDER`` fractions of ``crop_size`` >= ``min_size``, largest first."""
    sizes = sorted({int(round(crop_size * f)) for f in LADDER if round(crop_size * f) >= min_size}, reverse=True)
    return sizes or [int(crop_size)]


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


def rescale_spectrum(features: np.ndarray, scale: float) -> np.ndarray:
    """Move ``fft`` descriptors of crops at an image's pixel size onto the library's frequency axis.

    A lattice of period ``d`` has frequency ``px / d`` cycles/pixel, so the image's radial profile
    ``P(f)`` becomes ``P(f / scale)`` at the library's pixel size (``scale`` = library pixel size /
    image pixel size). The log radial profile is interpolated at the shifted bin centres (edge
    values beyond the ends) and renormalised to unit total; the symmetry harmonics and intensity
    columns do not depend on the pixel size. White noise has a flat profile, which this leaves flat
    (resampling the pixels instead would filter the noise and change its spectrum).

    Args:
        features: (n, FFT_WIDTH) raw ``fft`` features.
        scale: library pixel size / image pixel size.

    Returns:
        (n, FFT_WIDTH) features on the library's axis.
    """
    if abs(scale - 1.0) < 1e-3 or features.shape[1] != FFT_WIDTH:
        return features
    nr = N_RADIAL - 1
    centres = (np.arange(nr) + 1.5) * 0.5 / N_RADIAL
    out = features.astype(np.float64, copy=True)
    logp = out[:, :nr]
    # vectorised 1-D interpolation of every row at the same query points
    q = np.clip(centres / scale, centres[0], centres[-1])
    j = np.clip(np.searchsorted(centres, q) - 1, 0, nr - 2)
    t = (q - centres[j]) / (centres[j + 1] - centres[j])
    moved = logp[:, j] * (1 - t) + logp[:, j + 1] * t
    p = np.exp(moved)
    out[:, :nr] = np.log(p / p.sum(1, keepdims=True) * np.exp(logp).sum(1, keepdims=True))
    return out.astype(np.float32)


def calibrated(encoder_name: str, enc: Encoder, scale: float) -> tuple[Encoder, float]:
    """How to compare an image's crops with a library at another pixel size.

    ``fft``: crops at the image's own pixels, descriptors moved onto the library's frequency axis
    (``rescale_spectrum``); other encoders: crops resampled to the library's pixel size.

    Args:
        encoder_name: the library's encoder.
        enc: that encoder.
        scale: library pixel size / image pixel size (1 = same or unknown).

    Returns:
        (encoder to apply to the image's crops, pixel scale to sample them at).
    """
    if abs(scale - 1.0) < 1e-3:
        return enc, 1.0
    if encoder_name == "fft":
        return (lambda crops: rescale_spectrum(enc(crops), scale)), 1.0
    return enc, scale


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
        out = side if c.shape[0] == img_side else max(4, int(round(c.shape[0] / scale)))
        resized.append(resample(c, out))
    return CropSet(crops=resized, owner=cs.owner, sizes=cs.sizes, centres=cs.centres)


def resample(crop: np.ndarray, side: int) -> np.ndarray:
    """Resize a square crop to ``side`` (area interpolation when shrinking, cubic when enlarging)."""
    if crop.shape[0] == side:
        return crop.astype(np.float32)
    interp = cv2.INTER_AREA if side < crop.shape[0] else cv2.INTER_CUBIC
    return cv2.resize(crop, (side, side), interpolation=interp).astype(np.float32)


def sample_ladder_crops(
    image: np.ndarray,
    records: list[MaskRecord],
    sizes: list[int],
    per_mask: int,
    seed: int,
    scale: float = 1.0,
    all_sizes: bool = False,
) -> tuple[CropSet, np.ndarray]:
    """Crops of ladder sides inside each mask.

    Args:
        image: HxW float image.
        records: masks.
        sizes: ladder sides (library pixels), largest first.
        per_mask: crops per mask (and per side with ``all_sizes``).
        seed: sampling seed.
        scale: ``library pixel size / image pixel size``.
        all_sizes: crops at every side that fits (learning); else only at the largest one (naming).

    Returns:
        (the crops with their owners, (n_crops,) side of each crop in library pixels).
    """
    crops: list[np.ndarray] = []
    owner: list[np.ndarray] = []
    centres: list[np.ndarray] = []
    side_of: list[np.ndarray] = []
    best = np.zeros(len(records), int)
    todo = np.arange(len(records))
    for side in sizes:
        if todo.size == 0:
            break
        cs = sample_scaled_crops(image, [records[i] for i in todo], side, per_mask, side, seed, scale)
        crops.extend(cs.crops)
        owner.append(todo[cs.owner])
        centres.append(cs.centres)
        side_of.append(np.full(len(cs.crops), side))
        got = todo[cs.sizes > 0]
        best[got] = np.where(best[got] == 0, side, best[got])
        if not all_sizes:
            todo = todo[cs.sizes == 0]
    return (
        CropSet(
            crops=crops,
            owner=np.concatenate(owner) if owner else np.zeros(0, int),
            sizes=best,
            centres=np.concatenate(centres) if centres else np.zeros((0, 2), int),
        ),
        np.concatenate(side_of) if side_of else np.zeros(0, int),
    )


def build_encoder(name: str, weights: str | None = None) -> Encoder:
    """The booster's encoder of that name (``samiam.boost.encoders.make_encoder``)."""
    return make_encoder(name, weights)


def periodicity_px(crops: list[np.ndarray], pad: int = 4, min_contrast: float = 8.0) -> float | None:
    """Dominant lattice period in pixels: peak of the mean radial power spectrum of the crops.

    Each windowed crop is zero-padded ``pad`` times, so the radial profile is sampled finely
    (bins of 1 / (pad * side) cycles/pixel) and the period is not limited to ``side / k``.

    Args:
        crops: square crops (sides may differ; the most common side is used).
        pad: zero-padding factor.
        min_contrast: the peak must exceed this multiple of the profile's median and lie inside the
            profile (no sharp peak, e.g. vacuum or amorphous material: None).

    Returns:
        Period in pixels, or None without crops or without a clear spectral peak.
    """
    if not crops:
        return None
    sides, counts = np.unique([c.shape[0] for c in crops], return_counts=True)
    s = int(sides[counts.argmax()])
    stack = np.stack([c for c in crops if c.shape[0] == s]).astype(np.float64)
    win = np.outer(np.hanning(s), np.hanning(s))
    n = pad * s
    spec = np.fft.rfft2((stack - stack.mean(axis=(1, 2), keepdims=True)) * win, s=(n, n))
    power = (np.abs(spec) ** 2).mean(0)
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.rfftfreq(n)[None, :]
    rbin = np.rint(np.sqrt(fy**2 + fx**2) * n).astype(int)
    lo = 2 * pad  # periods longer than half the crop are not lattice spacings
    ok = (rbin >= lo) & (rbin <= n // 2)
    prof = np.bincount(rbin[ok], weights=power[ok], minlength=n // 2 + 1) / np.maximum(
        np.bincount(rbin[ok], minlength=n // 2 + 1), 1
    )
    prof = prof[lo:]
    k = int(prof.argmax())
    if k == 0 or prof[k] < min_contrast * np.median(prof):  # at the edge: low-frequency tail, no peak
        return None
    return float(n / (k + lo))
