"""Per-image maps from AE1: reconstruction-error map and K-means character map of sliding windows."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi
from threadpoolctl import threadpool_limits

from samiam.defects.autoencoder import PatchAutoencoder
from samiam.defects.patches import WindowGrid, window_grid, windows
from samiam.errors import ParameterError


@dataclass
class MapParams:
    """Parameters of the maps.

    Attributes:
        stride: step (px) between sliding windows; smaller is finer and slower.
        batch_size: windows per forward pass.
        error_sigma: Gaussian sigma (px) smoothing the error map.
        error_mode: ``"signed"``: the per-pixel mean of the signed residual (input - reconstruction)
            over the covering windows is smoothed, then its magnitude taken, so pixel noise
            averages out and a coherent, unreconstructed bump or pit remains; ``"rms"``: the
            per-pixel root mean squared residual, then smoothed.
        k_min: smallest number of character clusters tried.
        k_max: largest number of character clusters tried.
        k_sample: windows used to score each K (silhouette).
    """

    stride: int = 16
    batch_size: int = 1024
    error_sigma: float = 3.0
    error_mode: str = "signed"
    k_min: int = 2
    k_max: int = 8
    k_sample: int = 1000

    def check(self, patch: int) -> None:
        """Raise ParameterError for out-of-range values."""
        if not 1 <= self.stride <= patch:
            raise ParameterError(f"stride must be between 1 and the patch side {patch}, got {self.stride}")
        if self.batch_size < 1:
            raise ParameterError(f"batch size must be >= 1, got {self.batch_size}")
        if self.error_sigma < 0:
            raise ParameterError(f"error smoothing sigma must be >= 0, got {self.error_sigma}")
        if self.error_mode not in ("signed", "rms"):
            raise ParameterError(f"error mode must be 'signed' or 'rms', got '{self.error_mode}'")
        if not 2 <= self.k_min <= self.k_max:
            raise ParameterError(f"need 2 <= k_min <= k_max, got k_min={self.k_min}, k_max={self.k_max}")


@dataclass
class DefectMaps:
    """Maps of one image.

    Attributes:
        error: float32 HxW reconstruction-error map (see ``MapParams.error_mode``), in units of
            the image's robust height sigma.
        residual: float32 HxW mean signed residual (input - reconstruction) before smoothing.
        character: int32 HxW character cluster per pixel (majority vote of covering windows).
        window_labels: int32 (ny, nx) cluster of each window.
        latents: float32 (ny*nx, latent) AE1 latents of the windows.
        grid: the window grid over the image reflect-padded by (patch - stride) on every side.
        k: number of character clusters.
        k_scores: silhouette score of every K tried.
    """

    error: np.ndarray
    residual: np.ndarray
    character: np.ndarray
    window_labels: np.ndarray
    latents: np.ndarray
    grid: WindowGrid
    k: int
    k_scores: dict[int, float] = field(default_factory=dict)


def encode_windows(
    model: PatchAutoencoder, image: np.ndarray, grid: WindowGrid, batch_size: int, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """Run the autoencoder over every window of the grid.

    Args:
        model: AE1 in eval mode.
        image: HxW normalised heights.
        grid: the window grid.
        batch_size: windows per forward pass.
        device: torch device.

    Returns:
        (latents (N, latent) float32, mean signed residual (H, W) float32, root mean squared
        residual (H, W) float32), the means taken per pixel over all windows covering it.
    """
    wins = windows(image, grid)
    p = grid.size
    resid = torch.empty((grid.count, p * p), dtype=torch.float32)
    latents = torch.empty((grid.count, model.latent), dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        for i in range(0, grid.count, batch_size):
            x = torch.from_numpy(np.array(wins[i : i + batch_size], np.float32)).unsqueeze(1)
            x = x - x.mean(dim=(2, 3), keepdim=True)
            x = x.to(device)
            recon, z = model(x)
            resid[i : i + len(x)] = (x - recon).flatten(1).cpu()
            latents[i : i + len(x)] = z.cpu()
        cols = resid.T.unsqueeze(0)  # (1, P*P, N)
        size = grid.padded_shape
        count = F.fold(torch.ones_like(cols), size, kernel_size=p, stride=grid.stride).clamp(min=1)
        signed = (F.fold(cols, size, kernel_size=p, stride=grid.stride) / count)[0, 0].numpy()
        rms = (F.fold(cols**2, size, kernel_size=p, stride=grid.stride) / count)[0, 0].sqrt().numpy()
    h, w = grid.shape
    return latents.numpy(), np.ascontiguousarray(signed[:h, :w]), np.ascontiguousarray(rms[:h, :w])


def vote_windows(labels: np.ndarray, grid: WindowGrid, k: int) -> np.ndarray:
    """Per-pixel majority vote of the labels of all windows covering each pixel.

    Uses an integral image over the window grid, so the cost is O(K x H x W), independent of the
    window size.

    Args:
        labels: int (ny, nx) window labels in [0, k).
        grid: the window grid.
        k: number of labels.

    Returns:
        int32 HxW labels (ties go to the lower label).
    """
    onehot = (labels[None, :, :] == np.arange(k)[:, None, None]).astype(np.int32)
    integral = np.zeros((k, grid.ny + 1, grid.nx + 1), np.int32)
    integral[:, 1:, 1:] = onehot.cumsum(1).cumsum(2)
    h, w = grid.shape
    s, p = grid.stride, grid.size

    def ranges(n_pix: int, n_win: int) -> tuple[np.ndarray, np.ndarray]:
        pos = np.arange(n_pix)
        first = np.clip(-(-(pos - p + 1) // s), 0, n_win - 1)
        last = np.clip(pos // s, 0, n_win - 1)
        return first, last + 1

    y0, y1 = ranges(h, grid.ny)
    x0, x1 = ranges(w, grid.nx)
    votes = (
        integral[:, y1[:, None], x1[None, :]]
        - integral[:, y0[:, None], x1[None, :]]
        - integral[:, y1[:, None], x0[None, :]]
        + integral[:, y0[:, None], x0[None, :]]
    )
    return votes.argmax(axis=0).astype(np.int32)


def choose_k(latents: np.ndarray, params: MapParams, seed: int) -> tuple[np.ndarray, int, dict[int, float]]:
    """K-means on standardised latents with K chosen by the best silhouette score.

    Each K in [k_min, k_max] is fitted on a random subsample of ``k_sample`` windows and scored by
    the silhouette on that subsample; the winner labels every window.

    Args:
        latents: (N, d) window latents.
        params: map parameters (K range, subsample size).
        seed: random state for the subsample and K-means.

    Returns:
        (labels (N,), chosen K, {K: silhouette}).
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    x = (latents - latents.mean(0)) / (latents.std(0) + 1e-6)
    rng = np.random.default_rng(seed)
    sub = x if len(x) <= params.k_sample else x[rng.choice(len(x), params.k_sample, replace=False)]
    best_k, best_score, best_model, scores = params.k_min, -2.0, None, {}
    for k in range(params.k_min, min(params.k_max, len(sub) - 1) + 1):
        km = KMeans(n_clusters=k, n_init=2, random_state=seed).fit(sub)
        if len(np.unique(km.labels_)) < 2:
            continue
        score = float(silhouette_score(sub, km.labels_))
        scores[k] = score
        if score > best_score:
            best_k, best_score, best_model = k, score, km
    if best_model is None:
        return np.zeros(len(x), np.int32), 1, scores
    return best_model.predict(x).astype(np.int32), best_k, scores


def compute_maps(
    model: PatchAutoencoder,
    image: np.ndarray,
    params: MapParams | None = None,
    *,
    device: torch.device | None = None,
    seed: int = 0,
) -> DefectMaps:
    """Error and character maps of one normalised height map.

    Args:
        model: trained AE1.
        image: HxW normalised heights (see ``prepare.prepare_heights``).
        params: map parameters.
        device: torch device.
        seed: seed for K-means.

    Returns:
        The maps.
    """
    p = params or MapParams()
    p.check(model.patch)
    # reflect-pad so that every pixel, border included, is covered by the same number of windows
    pad = model.patch - p.stride
    h, w = image.shape
    padded = np.pad(image, pad, mode="reflect") if pad else image
    grid = window_grid(padded.shape, model.patch, p.stride)
    latents, signed, rms = encode_windows(model, padded, grid, p.batch_size, device or torch.device("cpu"))
    crop = (slice(pad, pad + h), slice(pad, pad + w))
    signed, rms = signed[crop], rms[crop]
    err = signed if p.error_mode == "signed" else rms
    if p.error_sigma > 0:
        err = ndi.gaussian_filter(err, p.error_sigma)
    err = np.abs(err)
    with threadpool_limits(1):  # small problem: threads only add overhead (and thrash on shared CPUs)
        labels, k, scores = choose_k(latents, p, seed)
    labels = labels.reshape(grid.ny, grid.nx)
    character = vote_windows(labels, grid, max(k, 1))[crop]
    return DefectMaps(err.astype(np.float32), signed, character, labels, latents, grid, k, scores)
