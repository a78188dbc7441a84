"""Texture descriptors of square windows on a regular grid over the whole image.

Every window (side ``window``, centres about every ``stride`` px, all inside the image) gives:

- intensity: Hann-weighted mean and standard deviation (Z-contrast: Au vs support);
- radial profile: log of the window's power spectrum averaged over rings of one cycle per window
  (lattice spacing, amorphous vs vacuum), the same for any orientation of the lattice;
- angular harmonics: ``|sum P e^{i n theta}| / sum P`` for n = 2, 4, 6 over three radial bands, and
  the log peak-to-mean power per band (lattice symmetry and crystallinity, rotation-invariant).

Windows are cut from one strided view and transformed with batched FFTs; the reductions are
matrix products, so nothing loops over windows in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from samiam.errors import ParameterError

HARMONICS = (2, 4, 6)
N_BANDS = 3
MAX_RADIAL_BINS = 24
# windows per FFT batch: bounds memory at about chunk * window^2 * 12 bytes
_CHUNK = 4096


@dataclass
class GridDescriptors:
    """Descriptors of the windows of one image.

    Attributes:
        features: (rows, cols, d) float32 descriptors.
        groups: name of each descriptor group and its column slice, e.g. ``{"intensity": slice(0, 2)}``.
        window: window side (px).
        stride: nominal distance between window centres (px).
        shape: (H, W) of the image.
        centre_y: (rows,) pixel row of each grid row's window centre.
        centre_x: (cols,) pixel column of each grid column's window centre.
    """

    features: np.ndarray
    groups: dict[str, slice]
    window: int
    stride: int
    shape: tuple[int, int]
    centre_y: np.ndarray
    centre_x: np.ndarray


def _spectral_weights(window: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Ring-average matrix, band-harmonic matrices and the number of radial bins for a window."""
    fy = np.fft.fftfreq(window)[:, None] * window
    fx = np.fft.rfftfreq(window)[None, :] * window
    rad = np.hypot(fy, fx).ravel()
    theta = np.arctan2(fy, fx + 0 * fy).ravel()
    r_max = window // 2
    n_bins = min(MAX_RADIAL_BINS, r_max - 1)
    edges = np.linspace(1.0, r_max, n_bins + 1)
    which = np.digitize(rad, edges) - 1
    ring = np.zeros((rad.size, n_bins), np.float32)
    ok = (which >= 0) & (which < n_bins)
    ring[np.nonzero(ok)[0], which[ok]] = 1.0
    ring /= np.maximum(ring.sum(0, keepdims=True), 1.0)
    band_edges = np.linspace(1.0, r_max, N_BANDS + 1)
    band = np.digitize(rad, band_edges) - 1
    member = np.stack([(band == b) for b in range(N_BANDS)], 1).astype(np.float32)  # (K, B)
    cos = np.stack([np.cos(n * theta) for n in HARMONICS], 1).astype(np.float32)  # (K, N)
    sin = np.stack([np.sin(n * theta) for n in HARMONICS], 1).astype(np.float32)
    # (K, B*N): weight of each frequency in the harmonic n of band b
    hc = (member[:, :, None] * cos[:, None, :]).reshape(rad.size, -1)
    hs = (member[:, :, None] * sin[:, None, :]).reshape(rad.size, -1)
    return (
        torch.from_numpy(ring),
        torch.from_numpy(np.concatenate([hc, hs, member], 1)),
        torch.from_numpy(member),
        n_bins,
    )


def window_descriptors(image: np.ndarray, window: int, stride: int) -> GridDescriptors:
    """Descriptors of every window on a grid of the image.

    Args:
        image: HxW float image (values in [0, 1]).
        window: even window side in px (>= 8).
        stride: distance between window centres in px (>= 1, <= window).

    Returns:
        The grid of descriptors.

    Raises:
        ParameterError: bad window/stride, or an image smaller than the window.
    """
    if image.ndim != 2:
        raise ParameterError(f"expected a 2-D image, got shape {image.shape}")
    if window < 8 or window % 2:
        raise ParameterError(f"window must be an even number of pixels >= 8, got {window}")
    if not 1 <= stride <= window:
        raise ParameterError(f"stride must be in [1, window={window}], got {stride}")
    h, w = image.shape
    if min(h, w) < window:
        raise ParameterError(f"image {w}x{h} px is smaller than the {window} px texture window")
    # windows lie inside the image (no padding: a mirrored border is a texture of its own);
    # their origins are evenly spread from 0 to side - window, about ``stride`` apart
    oy = _origins(h, window, stride)
    ox = _origins(w, window, stride)
    rows, cols = len(oy), len(ox)
    view = np.lib.stride_tricks.sliding_window_view(np.ascontiguousarray(image, dtype=np.float32), (window, window))
    hann1 = torch.hann_window(window, periodic=False, dtype=torch.float32)
    hann = hann1[:, None] * hann1[None, :]
    hsum = hann.sum()
    h2sum = (hann**2).sum()
    ring, harm, member, n_bins = _spectral_weights(window)
    n_h = len(HARMONICS) * N_BANDS
    feats = []
    rows_per = max(1, _CHUNK // cols)  # bands of grid rows keep the copied windows bounded in memory
    with torch.no_grad():
        for r0 in range(0, rows, rows_per):
            block = view[oy[r0 : r0 + rows_per]][:, ox]  # (r, cols, window, window) copy of those windows only
            patches = torch.from_numpy(np.ascontiguousarray(block)).reshape(-1, window, window)
            mean = (patches * hann).sum((1, 2)) / hsum
            centred = (patches - mean[:, None, None]) * hann
            sd = torch.sqrt(torch.clamp((centred * patches - centred * mean[:, None, None]).sum((1, 2)) / hsum, min=0))
            f = torch.fft.rfft2(centred)
            power = (f.real**2 + f.imag**2).reshape(len(patches), -1) / h2sum
            radial = torch.log(power @ ring + 1e-10)
            hw = power @ harm  # (L, 2*n_h + B)
            band_sum = hw[:, 2 * n_h :]  # (L, B)
            denom = band_sum.repeat_interleave(len(HARMONICS), 1) + 1e-12
            amp = torch.sqrt(hw[:, :n_h] ** 2 + hw[:, n_h : 2 * n_h] ** 2) / denom
            counts = member.sum(0)
            peak = torch.stack(
                [torch.where(member[:, b].bool()[None, :], power, torch.zeros(())).amax(1) for b in range(N_BANDS)], 1
            )
            peakiness = torch.log((peak + 1e-12) / (band_sum / counts + 1e-12))
            feats.append(torch.cat([mean[:, None], sd[:, None], radial, amp, peakiness], 1))
    out = torch.cat(feats, 0).reshape(rows, cols, -1).numpy().astype(np.float32)
    groups = {
        "intensity": slice(0, 2),
        "radial": slice(2, 2 + n_bins),
        "angular": slice(2 + n_bins, 2 + n_bins + n_h + N_BANDS),
    }
    return GridDescriptors(out, groups, window, stride, (h, w), oy + window // 2, ox + window // 2)


def _origins(side: int, window: int, stride: int) -> np.ndarray:
    """Window origins from 0 to ``side - window``, evenly spread, about ``stride`` apart."""
    n = max(1, int(np.ceil((side - window) / stride)) + 1)
    return np.rint(np.linspace(0, side - window, n)).astype(np.int64)
