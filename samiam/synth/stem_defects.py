"""Synthetic HAADF-STEM images of one crystal with labelled point defects (tests and benchmarks).

Columns are Gaussian probe spots at sub-pixel positions (bilinear splat, then one blur), with
intensities from the lattice basis. Point defects: a vacancy is a darker column, a heavy
substitution a brighter column, an interstitial a faint extra column at the emptiest site of the
cell. Scan effects: a slow linear drift (shear), per-line jitter, Poisson counts at a given dose
and Gaussian read noise.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage as ndi

STEM_DEFECT_KINDS = ("vacancy", "substitution", "interstitial")


@dataclass(frozen=True)
class StemCrystal:
    """A projected crystal.

    Attributes:
        name: lattice name.
        a: first lattice vector (dx, dy) in pixels; ``b`` the second.
        basis: (u, v, intensity) of each column in the cell (fractional coordinates).
        sigma: probe width (px).
    """

    name: str
    a: tuple[float, float]
    b: tuple[float, float]
    basis: tuple[tuple[float, float, float], ...]
    sigma: float = 1.4


CRYSTALS: dict[str, StemCrystal] = {
    "square": StemCrystal("square", (10.0, 0.0), (0.0, 10.0), ((0.0, 0.0, 1.0),), sigma=1.5),
    # MoS2-like honeycomb: Mo columns (bright) and S2 columns (dimmer), a = 11 px (NN 6.35 px)
    "hexagonal": StemCrystal(
        "hexagonal", (11.0, 0.0), (5.5, 9.526), ((0.0, 0.0, 1.0), (1 / 3, 1 / 3, 0.55)), sigma=1.3
    ),
    # perovskite-like centred rectangle: A columns at the corners, dimmer B columns at the centre
    "rectangular": StemCrystal("rectangular", (9.0, 0.0), (0.0, 13.0), ((0.0, 0.0, 1.0), (0.5, 0.5, 0.6)), sigma=1.4),
}


@dataclass
class SyntheticStem:
    """A synthetic HAADF image and its truth.

    Attributes:
        image: float32 HxW image in counts / dose (mean column peak ~ 1).
        positions: (N, 2) float (x, y) of every labelled defect.
        kinds: the kind of each defect (see ``STEM_DEFECT_KINDS``).
        columns: (M, 2) float (x, y) of every lattice column inside the image (drift included).
        spacing: nearest-neighbour column distance (px).
        params: the generator's arguments.
    """

    image: np.ndarray
    positions: np.ndarray
    kinds: list[str]
    columns: np.ndarray
    spacing: float
    params: dict = field(default_factory=dict)

    def write_csv(self, path: str | Path) -> Path:
        """Write ``x,y,kind,spacing_px`` (one row per defect) and return the path."""
        path = Path(path)
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["x", "y", "kind", "spacing_px"])
            for (x, y), k in zip(self.positions, self.kinds, strict=True):
                w.writerow([f"{x:.3f}", f"{y:.3f}", k, f"{self.spacing:.4f}"])
        return path


def read_truth_csv(path: str | Path) -> tuple[np.ndarray, list[str], float]:
    """Read a truth CSV written by ``SyntheticStem.write_csv``: (positions (N, 2), kinds, spacing)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    pos = np.array([[float(r["x"]), float(r["y"])] for r in rows], np.float64).reshape(-1, 2)
    spacing = float(rows[0]["spacing_px"]) if rows else float("nan")
    return pos, [r["kind"] for r in rows], spacing


def interstitial_site(crystal: StemCrystal) -> tuple[float, float]:
    """Fractional position in the cell farthest from every column (the emptiest site)."""
    a, b = np.array(crystal.a), np.array(crystal.b)
    u, v = np.meshgrid(np.linspace(0, 1, 61), np.linspace(0, 1, 61))
    pts = u.ravel()[:, None] * a + v.ravel()[:, None] * b
    cols = np.array(
        [(fu + i) * a + (fv + j) * b for fu, fv, _ in crystal.basis for i in (-1, 0, 1, 2) for j in (-1, 0, 1, 2)]
    )
    d = np.sqrt(((pts[:, None, :] - cols[None]) ** 2).sum(-1)).min(1)
    k = int(np.argmax(d))
    return float(u.ravel()[k]), float(v.ravel()[k])


def nn_spacing(crystal: StemCrystal) -> float:
    """Nearest-neighbour distance between columns of the crystal."""
    a, b = np.array(crystal.a), np.array(crystal.b)
    cols = np.array(
        [(fu + i) * a + (fv + j) * b for fu, fv, _ in crystal.basis for i in (-1, 0, 1) for j in (-1, 0, 1)]
    )
    d = np.sqrt(((cols[:, None] - cols[None]) ** 2).sum(-1))
    return float(d[d > 1e-6].min())


def _lattice_columns(
    crystal: StemCrystal, shape: tuple[int, int], angle: float, shift: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Columns covering the image: (positions (M, 2) x, y; intensities (M,); basis index (M,))."""
    h, w = shape
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    a, b = rot @ np.array(crystal.a), rot @ np.array(crystal.b)
    span = int(np.ceil(1.5 * max(h, w) / min(np.linalg.norm(a), np.linalg.norm(b)))) + 2
    i, j = (g.ravel() for g in np.meshgrid(np.arange(-span, span), np.arange(-span, span)))
    pos, inten, cell = [], [], []
    for m, (fu, fv, it) in enumerate(crystal.basis):
        p = (i[:, None] + fu) * a + (j[:, None] + fv) * b + np.array([w / 2, h / 2]) + shift
        pos.append(p)
        inten.append(np.full(len(p), it))
        cell.append(np.full(len(p), m))
    return np.concatenate(pos), np.concatenate(inten), np.concatenate(cell)


def _splat(shape: tuple[int, int], pos: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian spots of peak ``weight`` at sub-pixel positions (bilinear splat, then one blur)."""
    h, w = shape
    canvas = np.zeros((h + 2, w + 2), np.float64)
    x, y = pos[:, 0] + 1, pos[:, 1] + 1
    ok = (x >= 0) & (x < w + 1) & (y >= 0) & (y < h + 1)
    x, y, weight = x[ok], y[ok], weight[ok]
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    for dy, dx, f in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)), (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
        yy, xx = np.clip(y0 + dy, 0, h + 1), np.clip(x0 + dx, 0, w + 1)
        np.add.at(canvas, (yy, xx), weight * f)
    k = int(8 * sigma) | 1
    out = cv2.GaussianBlur(canvas.astype(np.float32), (k, k), sigma) * (2 * np.pi * sigma**2)
    return out[1:-1, 1:-1]


def _pick_sites(rng: np.random.Generator, pos: np.ndarray, n: int, min_dist: float) -> np.ndarray:
    """Indices of ``n`` columns at least ``min_dist`` apart (greedy over a random order)."""
    chosen: list[int] = []
    for k in rng.permutation(len(pos)):  # loop over candidate sites (a few hundred), not pixels
        if len(chosen) == n:
            break
        if not chosen or np.min(np.hypot(*(pos[chosen] - pos[k]).T)) >= min_dist:
            chosen.append(int(k))
    return np.array(chosen, int)


def synthetic_stem_defects(
    size: int = 512,
    *,
    crystal: str = "square",
    n_per_kind: int = 10,
    kinds: tuple[str, ...] = STEM_DEFECT_KINDS,
    dose: float = 60.0,
    jitter: float = 0.3,
    drift: float = 0.01,
    wobble: float = 0.0,
    background: float = 0.1,
    read_noise: float = 0.02,
    vacancy_factor: tuple[float, float] = (0.3, 0.55),
    substitution_factor: tuple[float, float] = (1.7, 2.1),
    interstitial_factor: tuple[float, float] = (0.35, 0.5),
    seed: int = 0,
) -> SyntheticStem:
    """Make one synthetic HAADF image with labelled point defects.

    Args:
        size: image side (px).
        crystal: name in ``CRYSTALS``.
        n_per_kind: defects of each kind.
        kinds: the kinds to place (a subset of ``STEM_DEFECT_KINDS``; empty: a defect-free lattice).
        dose: counts per unit column intensity (Poisson noise; higher is cleaner).
        jitter: standard deviation (px) of the horizontal offset of each scan line.
        drift: slow drift as a shear: x shifts by ``drift * y`` (fraction of the row index).
        wobble: amplitude (px) of a non-linear scan distortion: x shifts by ``wobble * sin(2 pi y / 128 + phase)``.
        background: constant intensity under the columns.
        read_noise: Gaussian noise standard deviation (intensity units).
        vacancy_factor: range of the intensity factor of a vacancy column (darker).
        substitution_factor: range of the intensity factor of a substituted column (brighter).
        interstitial_factor: range of an interstitial column's intensity relative to the basis' brightest column.
        seed: random seed.

    Returns:
        The image and its truth.
    """
    if crystal not in CRYSTALS:
        raise ValueError(f"expected a crystal in {sorted(CRYSTALS)}, got '{crystal}'")
    bad = set(kinds) - set(STEM_DEFECT_KINDS)
    if bad:
        raise ValueError(f"expected kinds from {STEM_DEFECT_KINDS}, got {sorted(bad)}")
    if size < 32 or dose <= 0:
        raise ValueError(f"expected size >= 32 and dose > 0, got size={size}, dose={dose}")
    rng = np.random.default_rng(seed)
    cr = CRYSTALS[crystal]
    angle = rng.uniform(0, np.pi)
    pos, inten, cell = _lattice_columns(cr, (size, size), angle, rng.uniform(-5, 5, 2))
    pos = pos.copy()
    phase = rng.uniform(0, 2 * np.pi)

    def distort(p: np.ndarray) -> np.ndarray:
        """Drift (a shear) and the wobble, along the fast scan axis."""
        return p + np.stack([drift * p[:, 1] + wobble * np.sin(2 * np.pi * p[:, 1] / 128 + phase), 0 * p[:, 1]], 1)

    spacing = nn_spacing(cr)
    margin = 2 * spacing + 4  # detectors may skip about one lattice period at the border
    inside = (pos[:, 0] >= margin) & (pos[:, 0] < size - margin) & (pos[:, 1] >= margin) & (pos[:, 1] < size - margin)
    n_total = n_per_kind * len(kinds)
    inner = np.flatnonzero(inside)
    sites = inner[_pick_sites(rng, pos[inner], n_total, 3.0 * spacing)] if n_total else []
    inten = inten.copy()
    positions, kind_list, extra_pos, extra_int = [], [], [], []
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    a, b = rot @ np.array(cr.a), rot @ np.array(cr.b)
    iu, iv = interstitial_site(cr)
    top = max(it for _, _, it in cr.basis)
    for n, k in enumerate(sites):  # one entry per defect (tens)
        kind = kinds[n % len(kinds)]
        if kind == "vacancy":
            inten[k] *= rng.uniform(*vacancy_factor)
            p = pos[k]
        elif kind == "substitution":
            inten[k] *= rng.uniform(*substitution_factor)
            p = pos[k]
        else:  # the emptiest site of this column's cell
            fu, fv, _ = cr.basis[cell[k]]
            off = (iu - fu) * a + (iv - fv) * b
            p = pos[k] + off
            extra_pos.append(p)
            extra_int.append(top * rng.uniform(*interstitial_factor))
        positions.append(p)
        kind_list.append(kind)
    pos = distort(pos)
    positions = [distort(np.array([p]))[0] for p in positions]
    all_pos = np.concatenate([pos, distort(np.array(extra_pos).reshape(-1, 2))])
    all_int = np.concatenate([inten, np.array(extra_int)])
    clean = _splat((size, size), all_pos, all_int, cr.sigma) + background
    if jitter > 0:  # per-line offset of the fast scan axis
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        xx += rng.normal(0, jitter, size).astype(np.float32)[:, None]
        clean = ndi.map_coordinates(clean, [yy, xx], order=1, mode="nearest")
    img = rng.poisson(np.clip(clean, 0, None) * dose).astype(np.float32) / dose
    img += rng.normal(0, read_noise, img.shape).astype(np.float32)
    cols = pos[inside | ((pos[:, 0] >= 0) & (pos[:, 0] < size) & (pos[:, 1] >= 0) & (pos[:, 1] < size))]
    params = {
        "size": size,
        "crystal": crystal,
        "n_per_kind": n_per_kind,
        "kinds": list(kinds),
        "dose": dose,
        "jitter": jitter,
        "drift": drift,
        "wobble": wobble,
        "seed": seed,
        "angle": float(angle),
    }
    return SyntheticStem(
        img.astype(np.float32), np.array(positions, np.float64).reshape(-1, 2), kind_list, cols, spacing, params
    )
