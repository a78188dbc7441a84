"""Texture encoders: turn image crops into feature vectors for clustering.

- ``fft`` (default, offline): a rotation-invariant spectral descriptor of each crop — the
  radial power profile in cycles/pixel (lattice spacings), the magnitudes of the angular
  harmonics of the power (lattice symmetry, independent of grain orientation), and intensity
  statistics (mean, spread, percentiles) that separate vacuum, amorphous and crystalline regions.
  Frequencies are in cycles/pixel, so crops of different sides give comparable features.
- ``stats``: intensity statistics only (a baseline).
- ``timm:NAME``: any timm backbone (pooled features); pretrained weights from a local file
  (``encoder_weights``) or timm's download when reachable, else it fails with a clear message.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import numpy as np
from scipy import fft as scipy_fft
from scipy import sparse

from samiam.errors import ModelError, ParameterError

N_RADIAL = 24
N_ANGLE = 32
HARMONICS = (1, 2, 3, 4)  # of the angle over [0, pi): 2-, 4-, 6-, 8-fold symmetry


def _intensity_stats(stack: np.ndarray) -> np.ndarray:
    """Mean, spread, skewness and the fractions of bright (> mean + 2 sd) and of dark pixels.

    Moments instead of percentiles: same information for clustering, no per-crop sort.
    """
    flat = stack.reshape(len(stack), -1).astype(np.float32)
    mean = flat.mean(1, keepdims=True)
    sd = flat.std(1, keepdims=True) + 1e-6
    z = (flat - mean) / sd
    skew = (z * z * z).mean(1, keepdims=True)  # not z**3: float32 pow is 5x slower
    bright = (z > 2).mean(1, keepdims=True)
    dark = (flat < 0.05).mean(1, keepdims=True)
    return np.concatenate([mean, sd, skew, bright, dark], axis=1)


def _polar_bins(side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    fy = np.fft.fftfreq(side)[:, None]
    fx = np.fft.rfftfreq(side)[None, :]
    r = np.sqrt(fy**2 + fx**2)
    theta = np.mod(np.arctan2(fy, fx), np.pi)
    rbin = np.floor(r / 0.5 * N_RADIAL).astype(int)
    abin = np.minimum((theta / np.pi * N_ANGLE).astype(int), N_ANGLE - 1)
    valid = (rbin >= 1) & (rbin < N_RADIAL)  # drop DC and corners beyond Nyquist
    return rbin, abin, valid


def fft_features(stack: np.ndarray) -> np.ndarray:
    """Spectral + intensity descriptor of same-size square crops.

    Args:
        stack: (n, s, s) float crops.

    Returns:
        (n, N_RADIAL - 1 + len(HARMONICS) + 1 + 5) float32 features.
    """
    n, s, _ = stack.shape
    win = np.outer(np.hanning(s), np.hanning(s)).astype(np.float32)
    centred = (stack - stack.mean(axis=(1, 2), keepdims=True)) * win
    spec = scipy_fft.rfft2(centred, workers=1)  # scipy's pocketfft: 4x faster than numpy's here
    power = spec.real**2 + spec.imag**2  # (n, s, s//2+1)
    rbin, abin, valid = _polar_bins(s)
    flat_bins = (rbin * N_ANGLE + abin)[valid]
    p = power[:, valid]  # (n, n_valid)
    onehot = sparse.csr_matrix(
        (np.ones(flat_bins.size, np.float32), (np.arange(flat_bins.size), flat_bins)),
        shape=(flat_bins.size, N_RADIAL * N_ANGLE),
    )
    grid = np.asarray((onehot.T @ p.T.astype(np.float32)).T)  # power per (radius, angle) bin, all crops
    counts = np.bincount(flat_bins, minlength=N_RADIAL * N_ANGLE).astype(np.float32)
    grid = grid.reshape(n, N_RADIAL, N_ANGLE) / np.maximum(counts.reshape(N_RADIAL, N_ANGLE), 1)
    total = grid[:, 1:].sum(axis=(1, 2)) + 1e-12
    radial = grid[:, 1:].sum(axis=2) / total[:, None]  # spectral shape, contrast-invariant
    ang = grid[:, 1:].sum(axis=1)  # (n, N_ANGLE) power by direction
    harm = np.abs(np.fft.rfft(ang, axis=1))[:, list(HARMONICS)] / (ang.sum(axis=1, keepdims=True) + 1e-12)
    feats = [np.log(radial + 1e-6), harm, np.log(total)[:, None], _intensity_stats(stack)]
    return np.concatenate(feats, axis=1).astype(np.float32)


def stats_features(stack: np.ndarray) -> np.ndarray:
    """Intensity statistics only (see ``_intensity_stats``)."""
    return _intensity_stats(stack).astype(np.float32)


def _by_size(crops: list[np.ndarray], fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply a batch feature function to crops grouped by side; keep the input order."""
    groups: dict[int, list[int]] = defaultdict(list)
    for i, c in enumerate(crops):
        groups[c.shape[0]].append(i)
    out: np.ndarray | None = None
    for idx in groups.values():
        f = fn(np.stack([crops[i] for i in idx]))
        if out is None:
            out = np.zeros((len(crops), f.shape[1]), np.float32)
        out[idx] = f
    return out if out is not None else np.zeros((0, 0), np.float32)


class TimmEncoder:
    """Pooled features of a timm backbone on crops resized to its input size."""

    def __init__(self, name: str, weights: str | None = None, device: str | None = None, batch: int = 64):
        import os

        import timm
        import torch

        import samiam.models  # noqa: F401  (torchvision shim before timm)
        from samiam.models.device import pick_device

        self.device = pick_device(device)
        self.batch = batch
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # fail fast instead of retrying without network
        try:
            if weights:
                model = timm.create_model(name, pretrained=False, num_classes=0)
                state = torch.load(weights, map_location="cpu", weights_only=True)
                missing, _ = model.load_state_dict(state, strict=False)
                if len(missing) > len(state) // 2:
                    raise ModelError(f"{weights}: does not fit timm model '{name}' ({len(missing)} missing keys)")
            else:
                model = timm.create_model(name, pretrained=True, num_classes=0)
        except ModelError:
            raise
        except RuntimeError as exc:
            if "Unknown model" in str(exc):
                raise ParameterError(f"unknown timm model '{name}'") from None
            raise ModelError(
                f"timm:{name}: pretrained weights not available offline ({str(exc).splitlines()[0]}); "
                "give a local file with --encoder-weights"
            ) from None
        except Exception as exc:
            raise ModelError(
                f"timm:{name}: pretrained weights not available ({type(exc).__name__}); "
                "give a local file with --encoder-weights"
            ) from None
        self.model = model.eval().to(self.device)
        cfg = model.pretrained_cfg or {}
        self.size = int((cfg.get("input_size") or (3, 224, 224))[-1])
        self.mean = np.array(cfg.get("mean", (0.485, 0.456, 0.406)), np.float32)[:, None, None]
        self.std = np.array(cfg.get("std", (0.229, 0.224, 0.225)), np.float32)[:, None, None]

    def __call__(self, crops: list[np.ndarray]) -> np.ndarray:
        import cv2
        import torch

        feats = []
        for start in range(0, len(crops), self.batch):
            batch = np.stack(
                [
                    cv2.resize(c, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
                    for c in crops[start : start + self.batch]
                ]
            )
            x = (np.repeat(batch[:, None], 3, axis=1) - self.mean) / self.std
            with torch.no_grad():
                f = self.model(torch.from_numpy(x.astype(np.float32)).to(self.device))
            feats.append(f.float().cpu().numpy())
        return np.concatenate(feats) if feats else np.zeros((0, 0), np.float32)


def make_encoder(
    name: str, weights: str | None = None, device: str | None = None
) -> Callable[[list[np.ndarray]], np.ndarray]:
    """Return a function mapping a list of crops to an (n, d) feature array.

    Args:
        name: ``fft``, ``stats`` or ``timm:MODEL``.
        weights: local weights file for timm encoders.
        device: torch device for timm encoders.

    Raises:
        ParameterError: unknown encoder name.
    """
    if name == "fft":
        return lambda crops: _by_size(crops, fft_features)
    if name == "stats":
        return lambda crops: _by_size(crops, stats_features)
    if name.startswith("timm:") and len(name) > 5:
        return TimmEncoder(name[5:], weights, device)
    raise ParameterError(f"unknown encoder '{name}'; expected fft, stats or timm:MODEL_NAME")
