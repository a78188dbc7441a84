"""Patches of a normalised height map: sliding windows for inference, random samples for training."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samiam.errors import InputError


@dataclass
class WindowGrid:
    """Sliding windows laid over a (padded) image.

    Attributes:
        size: window side (px).
        stride: step between windows (px).
        ny: windows along y.
        nx: windows along x.
        padded_shape: (H, W) of the padded image the windows tile exactly.
        shape: (H, W) of the original image.
    """

    size: int
    stride: int
    ny: int
    nx: int
    padded_shape: tuple[int, int]
    shape: tuple[int, int]

    @property
    def count(self) -> int:
        return self.ny * self.nx


def window_grid(shape: tuple[int, int], size: int, stride: int) -> WindowGrid:
    """Lay windows of ``size`` every ``stride`` px so that they cover the whole image.

    Args:
        shape: (H, W) of the image.
        size: window side.
        stride: window step, 1 <= stride <= size.

    Returns:
        The grid; the image is padded at the bottom/right to ``padded_shape``.
    """
    h, w = shape
    if min(h, w) < size:
        raise InputError(f"image is {w}x{h} px; the {size}x{size} px patches need at least {size}x{size}")
    ny = -(-(h - size) // stride) + 1
    nx = -(-(w - size) // stride) + 1
    return WindowGrid(size, stride, ny, nx, ((ny - 1) * stride + size, (nx - 1) * stride + size), (h, w))


def pad_to_grid(image: np.ndarray, grid: WindowGrid) -> np.ndarray:
    """Reflect-pad ``image`` at the bottom/right to the grid's padded shape."""
    ph, pw = grid.padded_shape
    h, w = image.shape
    return np.pad(image, ((0, ph - h), (0, pw - w)), mode="reflect")


def windows(image: np.ndarray, grid: WindowGrid) -> np.ndarray:
    """All windows of the grid as a read-only view of shape (ny*nx, size, size), row-major."""
    padded = np.ascontiguousarray(pad_to_grid(image, grid), dtype=np.float32)
    view = np.lib.stride_tricks.sliding_window_view(padded, (grid.size, grid.size))
    view = view[:: grid.stride, :: grid.stride]
    return view.reshape(grid.count, grid.size, grid.size)


def sample_patches(
    image: np.ndarray, size: int, count: int, rng: np.random.Generator, centres: np.ndarray | None = None
) -> np.ndarray:
    """Random square patches of ``image`` (float32, (count, size, size)).

    Args:
        image: HxW normalised heights.
        size: patch side.
        count: number of patches.
        rng: random generator (seeded by the caller).
        centres: optional (M, 2) int array of (y, x) pixels to centre patches on (sampled
            with replacement); None samples uniformly over the image.

    Returns:
        The patches; the image is reflect-padded so patches near the border are complete.
    """
    h, w = image.shape
    if centres is None:
        picked = np.stack([rng.integers(0, h, count), rng.integers(0, w, count)], axis=1)
    else:
        picked = centres[rng.integers(0, len(centres), count)]
    return patches_at(image, size, picked)


def patches_at(image: np.ndarray, size: int, centres: np.ndarray, mode: str = "reflect") -> np.ndarray:
    """Patches of ``image`` centred on the (y, x) pixels ``centres`` ((N, 2) int), padded by ``np.pad`` ``mode``."""
    half = size // 2
    padded = np.pad(image.astype(np.float32), half, mode=mode)
    view = np.lib.stride_tricks.sliding_window_view(padded, (size, size))
    return np.ascontiguousarray(view[centres[:, 0], centres[:, 1]])


def centre_patches(patches: np.ndarray) -> np.ndarray:
    """Subtract each patch's mean, so the autoencoder sees local contrast, not the terrace level."""
    return patches - patches.mean(axis=(-2, -1), keepdims=True)
