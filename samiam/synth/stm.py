"""Synthetic STM topographs: hexagonal lattice + point defects of a few kinds + an atomic step edge.

Used by the tests and the examples: every image comes with its truth (defect mask, centres,
kinds, step-edge pixels), and the same seed gives the same image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DEFECT_KINDS = ("adatom", "vacancy", "dimer")


@dataclass
class SyntheticSTM:
    """A synthetic height map and its truth.

    Attributes:
        heights: float32 HxW heights (nm), with tilt and scan-line offsets like a raw scan.
        defect_mask: bool HxW pixels where a defect changes the height by more than 20 % of its amplitude.
        centres: (N, 2) float defect centres (x, y).
        kinds: the kind of each defect (see ``DEFECT_KINDS``).
        step_mask: bool HxW pixels within 2 px of the step line (all False without a step).
        params: the generator's arguments.
    """

    heights: np.ndarray
    defect_mask: np.ndarray
    centres: np.ndarray
    kinds: list[str]
    step_mask: np.ndarray
    params: dict = field(default_factory=dict)


def hex_lattice(shape: tuple[int, int], period: float, angle: float) -> np.ndarray:
    """Sum of three cosines at 120 degrees: a hexagonal lattice in [-1, 1]."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    k = 4 * np.pi / (np.sqrt(3) * period)
    out = np.zeros(shape)
    for a in (angle, angle + 2 * np.pi / 3, angle + 4 * np.pi / 3):
        out += np.cos(k * (xx * np.cos(a) + yy * np.sin(a)))
    return out / 3.0


def _place(
    rng: np.random.Generator, n: int, shape: tuple[int, int], margin: int, min_dist: float, avoid: np.ndarray | None
) -> np.ndarray:
    h, w = shape
    pts: list[tuple[float, float]] = []
    for _ in range(2000):  # rejection sampling of a handful of centres
        if len(pts) == n:
            break
        x, y = rng.uniform(margin, w - margin), rng.uniform(margin, h - margin)
        if avoid is not None and avoid[int(y), int(x)]:
            continue
        if all((x - px) ** 2 + (y - py) ** 2 >= min_dist**2 for px, py in pts):
            pts.append((x, y))
    return np.array(pts, np.float64).reshape(-1, 2)


def synthetic_stm(
    size: int = 128,
    *,
    n_defects: int = 6,
    kinds: tuple[str, ...] = DEFECT_KINDS,
    step: bool = True,
    period: float = 6.0,
    corrugation: float = 0.02,
    defect_height: float = 0.08,
    step_height: float = 0.3,
    noise: float = 0.004,
    line_noise: float = 0.01,
    tilt: float = 0.002,
    seed: int = 0,
) -> SyntheticSTM:
    """Make one synthetic STM topograph.

    Args:
        size: image side (px).
        n_defects: number of point defects.
        kinds: defect kinds to draw from (``adatom`` bump, ``vacancy`` pit, ``dimer`` elongated bump pair).
        step: add a straight step edge across the image (upper terrace on one side).
        period: lattice period (px).
        corrugation: lattice amplitude (nm).
        defect_height: defect amplitude (nm).
        step_height: step height (nm).
        noise: white-noise sigma (nm).
        line_noise: sigma of a random offset per scan line (nm).
        tilt: plane tilt (nm per px) along x and y.
        seed: random seed.

    Returns:
        The image and its truth.
    """
    bad = [k for k in kinds if k not in DEFECT_KINDS]
    if bad:
        raise ValueError(f"unknown defect kind(s) {bad}; expected some of {DEFECT_KINDS}")
    rng = np.random.default_rng(seed)
    shape = (size, size)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    z = corrugation * hex_lattice(shape, period, rng.uniform(0, np.pi / 3))
    step_mask = np.zeros(shape, bool)
    avoid = None
    if step:
        # a line through a point near the centre, at a random angle
        theta = rng.uniform(0.2, np.pi - 0.2)
        cx, cy = size / 2 + rng.uniform(-size / 8, size / 8), size / 2 + rng.uniform(-size / 8, size / 8)
        dist = (xx - cx) * np.sin(theta) - (yy - cy) * np.cos(theta)
        z += step_height * 0.5 * (1 + np.tanh(dist / 0.8))
        step_mask = np.abs(dist) <= 2.0
        avoid = np.abs(dist) < 16.0
    centres = _place(rng, n_defects, shape, margin=10, min_dist=14.0, avoid=avoid)
    kinds_out = [str(kinds[i]) for i in rng.integers(0, len(kinds), len(centres))]
    bump_total = np.zeros(shape)
    for (x, y), kind in zip(centres, kinds_out, strict=True):  # a few defects: loop over defects
        r2 = (xx - x) ** 2 + (yy - y) ** 2
        if kind == "adatom":
            bump = defect_height * np.exp(-r2 / (2 * 2.0**2))
        elif kind == "vacancy":
            bump = -defect_height * np.exp(-r2 / (2 * 2.5**2))
        else:
            a = rng.uniform(0, np.pi)
            dx, dy = 2.5 * np.cos(a), 2.5 * np.sin(a)
            bump = (
                0.8
                * defect_height
                * (
                    np.exp(-((xx - x - dx) ** 2 + (yy - y - dy) ** 2) / (2 * 1.6**2))
                    + np.exp(-((xx - x + dx) ** 2 + (yy - y + dy) ** 2) / (2 * 1.6**2))
                )
            )
        bump_total += bump
    defect_mask = np.abs(bump_total) > 0.2 * defect_height
    z += bump_total
    z += tilt * (xx + 0.5 * yy)
    z += rng.normal(0, line_noise, size)[:, None]
    z += rng.normal(0, noise, shape)
    params = {
        "size": size,
        "n_defects": n_defects,
        "kinds": list(kinds),
        "step": step,
        "period": period,
        "corrugation": corrugation,
        "defect_height": defect_height,
        "step_height": step_height,
        "noise": noise,
        "line_noise": line_noise,
        "tilt": tilt,
        "seed": seed,
    }
    return SyntheticSTM(z.astype(np.float32), defect_mask, centres, kinds_out, step_mask, params)
