"""Synthetic HAADF-STEM cross-sections with known labels (fixtures, examples, benchmarks).

Atom columns are Gaussian spots on a lattice (rendered by placing deltas and blurring, so a
4096 x 4096 image costs well under a second); amorphous materials are random spots; vacuum is
noise only. Scan noise: Poisson counts plus Gaussian read noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Lattice:
    """A projected structure.

    Attributes:
        name: material name used in labels.
        a: first lattice vector (dx, dy) in pixels; ``b`` the second.
        basis: fractional positions of columns in the cell with their intensities.
        sigma: probe width (px).
        amorphous: random column positions at the lattice's density instead of a lattice.
    """

    name: str
    a: tuple[float, float]
    b: tuple[float, float]
    basis: tuple[tuple[float, float, float], ...] = ((0.0, 0.0, 1.0),)
    sigma: float = 1.6
    amorphous: bool = False


LATTICES: dict[str, Lattice] = {
    "square": Lattice("square", (11.0, 0.0), (0.0, 11.0), ((0, 0, 1.0), (0.5, 0.5, 0.45))),
    "hexagonal": Lattice("hexagonal", (9.0, 0.0), (4.5, 7.794)),
    "dumbbell": Lattice("dumbbell", (14.0, 0.0), (0.0, 10.0), ((0, 0, 0.8), (0.22, 0.0, 0.8))),
    "rect": Lattice("rect", (7.0, 0.0), (0.0, 13.0), ((0, 0, 1.0),), sigma=1.3),
    "amorphous": Lattice("amorphous", (8.0, 0.0), (0.0, 8.0), ((0, 0, 0.35),), sigma=1.8, amorphous=True),
    "vacuum": Lattice("vacuum", (1.0, 0.0), (0.0, 1.0), ((0, 0, 0.0),)),
}


def render_material(
    lattice: Lattice,
    height: int,
    width: int,
    rng: np.random.Generator,
    angle: float = 0.0,
    shift: tuple = (0, 0),
) -> np.ndarray:
    """Render one material filling an HxW canvas (before noise), peak column ~ its intensity."""
    canvas = np.zeros((height, width), np.float32)
    if lattice.name == "vacuum":
        return canvas
    if lattice.amorphous:
        cell = abs(lattice.a[0] * lattice.b[1] - lattice.a[1] * lattice.b[0])
        n = int(height * width / cell)
        ys = rng.integers(0, height, n)
        xs = rng.integers(0, width, n)
        np.add.at(canvas, (ys, xs), lattice.basis[0][2] * rng.uniform(0.6, 1.4, n).astype(np.float32))
    else:
        a = np.array(lattice.a)
        b = np.array(lattice.b)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        a, b = rot @ a, rot @ b
        span = int(np.ceil(1.5 * max(height, width) / min(np.linalg.norm(a), np.linalg.norm(b)))) + 2
        i, j = np.meshgrid(np.arange(-span, span), np.arange(-span, span))
        for fu, fv, inten in lattice.basis:
            pos = (i[..., None] + fu) * a + (j[..., None] + fv) * b + np.array([width / 2, height / 2]) + shift
            x = np.rint(pos[..., 0]).astype(int).ravel()
            y = np.rint(pos[..., 1]).astype(int).ravel()
            ok = (x >= 0) & (x < width) & (y >= 0) & (y < height)
            np.add.at(canvas, (y[ok], x[ok]), inten)
    k = int(6 * lattice.sigma) | 1
    canvas = cv2.GaussianBlur(canvas, (k, k), lattice.sigma) * (2 * np.pi * lattice.sigma**2)
    return canvas


def _noisy(clean: np.ndarray, rng: np.random.Generator, dose: float, read_noise: float) -> np.ndarray:
    counts = rng.poisson(np.clip(clean, 0, None) * dose + 2.0).astype(np.float32)
    img = counts / dose + rng.normal(0, read_noise, clean.shape).astype(np.float32)
    return img


def stack_cross_section(
    height: int = 512,
    width: int = 512,
    materials: tuple[str, ...] = ("square", "hexagonal", "amorphous", "vacuum"),
    fractions: tuple[float, ...] | None = None,
    seed: int = 0,
    dose: float = 40.0,
    read_noise: float = 0.04,
    wavy: float = 0.02,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A film stack: horizontal bands of materials (bottom to top as listed), wavy interfaces.

    Args:
        height: image height.
        width: image width.
        materials: names from ``LATTICES``, from the bottom band up.
        fractions: band heights (sum 1); equal if None.
        seed: random seed.
        dose: electron dose scale (higher = less Poisson noise).
        read_noise: Gaussian noise sigma.
        wavy: interface waviness as a fraction of the height.

    Returns:
        (image float32 in [0, 1], labels uint8 with 1.. = index in ``materials`` + 1, names).
    """
    rng = np.random.default_rng(seed)
    n = len(materials)
    fr = np.asarray(fractions if fractions is not None else [1.0 / n] * n, float)
    bounds = np.concatenate([[0], np.cumsum(fr / fr.sum())]) * height
    xs = np.arange(width)
    labels = np.zeros((height, width), np.uint8)
    yy = np.arange(height)[:, None]
    lower = np.full(width, float(height))
    for k in range(n):
        top = height - bounds[k + 1]
        if k < n - 1:
            top = top + wavy * height * np.sin(2 * np.pi * xs / width * rng.uniform(0.5, 2) + rng.uniform(0, 6.28))
        else:
            top = np.zeros(width)
        band = (yy >= top[None, :]) & (yy < lower[None, :])
        labels[band] = k + 1
        lower = top
    clean = np.zeros((height, width), np.float32)
    for k, name in enumerate(materials):
        layer = render_material(LATTICES[name], height, width, rng, angle=rng.uniform(-0.05, 0.05))
        clean[labels == k + 1] = layer[labels == k + 1]
    img = _noisy(clean, rng, dose, read_noise)
    lo, hi = np.percentile(img, [0.5, 99.5])
    return np.clip((img - lo) / (hi - lo), 0, 1).astype(np.float32), labels, list(materials)


def particle_on_support(
    height: int = 512,
    width: int = 512,
    particle: str = "square",
    support: str = "amorphous",
    seed: int = 0,
    dose: float = 40.0,
    read_noise: float = 0.04,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A crystalline particle (rotated lattice) on a support at the bottom, vacuum above.

    Returns:
        (image in [0, 1], labels: 1 = particle, 2 = support, 3 = vacuum, names).
    """
    rng = np.random.default_rng(seed)
    labels = np.full((height, width), 3, np.uint8)
    support_top = int(height * rng.uniform(0.62, 0.72))
    labels[support_top:] = 2
    cy = support_top - int(0.12 * height)
    cx = int(width * rng.uniform(0.35, 0.65))
    r = int(min(height, width) * rng.uniform(0.18, 0.24))
    yy, xx = np.mgrid[:height, :width]
    blob = ((yy - cy) / (r * 1.0)) ** 2 + ((xx - cx) / (r * 1.25)) ** 2 <= 1.0
    labels[blob] = 1
    clean = np.zeros((height, width), np.float32)
    for k, (name, angle) in enumerate(((particle, rng.uniform(0.2, 0.6)), (support, 0.0)), start=1):
        layer = render_material(LATTICES[name], height, width, rng, angle=angle)
        clean[labels == k] = layer[labels == k]
    img = _noisy(clean, rng, dose, read_noise)
    lo, hi = np.percentile(img, [0.5, 99.5])
    return np.clip((img - lo) / (hi - lo), 0, 1).astype(np.float32), labels, [particle, support, "vacuum"]


def grid_fragments(labels: np.ndarray, block: int = 48) -> tuple[list, np.ndarray]:
    """Square grid blocks lying wholly inside one region each: what a fragmenting generator gives.

    Args:
        labels: HxW label map.
        block: block side in pixels.

    Returns:
        (mask records, label of each block's region).
    """
    from samiam.masks import MaskRecord

    recs, truth = [], []
    h, w = labels.shape
    for y in range(0, h - block + 1, block):
        for x in range(0, w - block + 1, block):
            vals = np.unique(labels[y : y + block, x : x + block])
            if len(vals) == 1:
                m = np.zeros((h, w), bool)
                m[y : y + block, x : x + block] = True
                recs.append(MaskRecord.from_mask(m, score=0.9))
                truth.append(int(vals[0]))
    return recs, np.array(truth)
