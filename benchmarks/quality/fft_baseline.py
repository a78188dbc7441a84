"""The plain windowed-FFT K-means baseline (the pySTEM recipe), without SAM: a reference row.

43 px Hann window on a grid, log power spectrum, PCA to 5 components plus the window's mean and
standard deviation (standardised), K-means with the true K, nearest-neighbour upsampling of the
grid labels. Kept in benchmarks/ on purpose: it is a yardstick, not a samiam method.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

WINDOW = 43
STRIDE = 8


def fft_baseline(image: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Label map (H, W) with values 0..k-1 from windowed-FFT K-means.

    Args:
        image: HxW float image.
        k: number of clusters (the true number of materials).
        seed: K-means seed.
    """
    h, w = image.shape
    half = WINDOW // 2
    pad = np.pad(image.astype(np.float32), half, mode="reflect")
    ys = np.arange(0, h, STRIDE)
    xs = np.arange(0, w, STRIDE)
    win = np.outer(np.hanning(WINDOW), np.hanning(WINDOW)).astype(np.float32)
    view = np.lib.stride_tricks.sliding_window_view(pad, (WINDOW, WINDOW))[ys][:, xs]
    patches = view.reshape(-1, WINDOW, WINDOW)
    mean = patches.mean((1, 2))
    sd = patches.std((1, 2))
    spec = np.log(np.abs(np.fft.rfft2((patches - mean[:, None, None]) * win)) ** 2 + 1e-8).reshape(len(patches), -1)
    comps = PCA(5, random_state=seed).fit_transform(spec)
    feats = np.column_stack([comps, mean, sd])
    feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-9)
    labels = KMeans(k, n_init=4, random_state=seed).fit_predict(feats).reshape(len(ys), len(xs))
    iy = np.clip(np.rint((np.arange(h)) / STRIDE).astype(int), 0, len(ys) - 1)
    ix = np.clip(np.rint((np.arange(w)) / STRIDE).astype(int), 0, len(xs) - 1)
    return labels[iy][:, ix]
