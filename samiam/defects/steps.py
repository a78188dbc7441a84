"""Find atomic step edges (long, straight-ish gradient ridges), split the image into terraces and level them.

Step edges are the known failure of reconstruction-error defect detectors: a window that straddles a step
reconstructs badly. This module finds them so the defect mask can exclude a band around them, and levels
each terrace with its own plane so the height jump disappears from the image the autoencoder sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from samiam.defects.flatten import robust_plane, robust_sigma


@dataclass
class StepParams:
    """Step-edge detection parameters.

    Attributes:
        smooth: Gaussian sigma (px) applied before the gradient; suppresses the atomic lattice.
        high: hysteresis high threshold, in robust sigmas of the gradient magnitude above its median.
        low: hysteresis low threshold, same units.
        min_length: minimum length of a step (px) as a fraction of the shorter image side.
        min_elongation: minimum ratio of the major to the minor axis of a step component.
        margin: half-width (px) of the band around a step excluded from defects.
        bridge: closing iterations (px) that reconnect a step interrupted by a gap.
        extend: a step end closer to the image border than this fraction of the shorter side is
            prolonged to the border along its direction, so the step separates two terraces.
    """

    smooth: float = 3.0
    high: float = 12.0
    low: float = 4.0
    min_length: float = 0.25
    min_elongation: float = 6.0
    margin: int = 4
    bridge: int = 3
    extend: float = 0.15


@dataclass
class StepEdges:
    """Step edges of one image.

    Attributes:
        edges: bool HxW, ridge cores (gradient >= the component's median) of the accepted step
            components, prolonged to the border where they end near it.
        band: bool HxW, ``edges`` dilated by the margin: excluded from the defect mask.
        terraces: int32 HxW terrace labels (1..n), 0 inside the band.
        n_steps: number of accepted step components.
    """

    edges: np.ndarray
    band: np.ndarray
    terraces: np.ndarray
    n_steps: int


def gradient_magnitude(heights: np.ndarray, smooth: float) -> np.ndarray:
    """Sobel gradient magnitude (height per pixel) of the Gaussian-smoothed heights, minus the median slope.

    Removing the median gradient vector first makes the result blind to any remaining plane tilt
    (a global plane fit on a staircase of terraces leaves every terrace tilted the same way).
    """
    zs = ndi.gaussian_filter(heights, smooth) if smooth > 0 else heights
    gx, gy = ndi.sobel(zs, axis=1) / 8.0, ndi.sobel(zs, axis=0) / 8.0
    mag = np.hypot(gx - np.median(gx), gy - np.median(gy))
    # the reflected border has no normal slope: its anomaly is meaningless, so blank a strip
    edge = min(int(np.ceil(2 * smooth)) + 1, min(heights.shape) // 4)
    fill = float(np.median(mag))
    mag[:edge], mag[-edge:], mag[:, :edge], mag[:, -edge:] = fill, fill, fill, fill
    return mag


def component_shapes(labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Major-axis length and elongation of every labelled component, from second moments.

    Args:
        labels: int HxW labels 1..n (0 = background).
        n: number of components.

    Returns:
        (length, elongation) arrays of shape (n,): length = 4 sqrt(l1) (the full extent of a
        uniform line), elongation = sqrt(l1 / l2) with l1 >= l2 the covariance eigenvalues.
    """
    if n == 0:
        return np.zeros(0), np.zeros(0)
    idx = np.arange(1, n + 1)
    yy, xx = np.indices(labels.shape, dtype=np.float64)
    ones = np.ones(labels.shape)
    cnt = ndi.sum_labels(ones, labels, idx)
    mx = ndi.sum_labels(xx, labels, idx) / cnt
    my = ndi.sum_labels(yy, labels, idx) / cnt
    sxx = ndi.sum_labels(xx * xx, labels, idx) / cnt - mx**2 + 1 / 12
    syy = ndi.sum_labels(yy * yy, labels, idx) / cnt - my**2 + 1 / 12
    sxy = ndi.sum_labels(xx * yy, labels, idx) / cnt - mx * my
    half_trace = (sxx + syy) / 2
    root = np.sqrt(np.maximum(((sxx - syy) / 2) ** 2 + sxy**2, 0))
    l1 = half_trace + root
    l2 = np.maximum(half_trace - root, 1e-6)
    return 4 * np.sqrt(np.maximum(l1, 0)), np.sqrt(l1 / l2)


def _extend_to_border(edges: np.ndarray, component: np.ndarray, max_extend: float) -> None:
    """Draw the prolongation of both ends of one step component up to the image border (in place)."""
    import cv2

    ys, xs = np.nonzero(component)
    pts = np.stack([xs, ys], axis=1).astype(np.float64)
    h, w = edges.shape
    centre = pts.mean(axis=0)
    _, _, vt = np.linalg.svd(pts - centre, full_matrices=False)
    axis = vt[0]
    proj = (pts - centre) @ axis
    canvas = edges.astype(np.uint8)
    for sign in (-1.0, 1.0):
        end_proj = proj.max() if sign > 0 else proj.min()
        tail = pts[np.abs(proj - end_proj) <= 30.0]
        tip = tail[np.argmax(sign * ((tail - centre) @ axis))]
        direction = sign * axis
        if len(tail) >= 5:  # local direction of the last 30 px, oriented outwards
            _, _, vt_tail = np.linalg.svd(tail - tail.mean(axis=0), full_matrices=False)
            local = vt_tail[0] if vt_tail[0] @ direction >= 0 else -vt_tail[0]
            direction = local
        with np.errstate(divide="ignore"):
            steps_x = np.where(
                direction[0] > 0,
                (w - 1 - tip[0]) / direction[0],
                np.where(direction[0] < 0, -tip[0] / direction[0], np.inf),
            )
            steps_y = np.where(
                direction[1] > 0,
                (h - 1 - tip[1]) / direction[1],
                np.where(direction[1] < 0, -tip[1] / direction[1], np.inf),
            )
        dist = float(min(steps_x, steps_y))
        if 0 < dist <= max_extend:
            end = tip + dist * direction
            cv2.line(
                canvas,
                (int(round(tip[0])), int(round(tip[1]))),
                (int(round(end[0])), int(round(end[1]))),
                1,
                thickness=3,
            )
    edges |= canvas.astype(bool)


def detect_steps(heights: np.ndarray, params: StepParams | None = None) -> StepEdges:
    """Find step edges as long, elongated ridges of the smoothed height gradient.

    Point defects also have strong gradients but form short closed rings; rough regions form
    compact blobs. Only components that are both long (``min_length``) and elongated
    (``min_elongation``) count as steps (or scan glitches, which are excluded the same way).

    Args:
        heights: flattened HxW heights.
        params: detection parameters.

    Returns:
        The step edges, their exclusion band and the terrace labels.
    """
    p = params or StepParams()
    grad = gradient_magnitude(heights, p.smooth)
    med, sigma = float(np.median(grad)), robust_sigma(grad)
    sigma = max(sigma, 1e-12)
    low = grad > med + p.low * sigma
    high = grad > med + p.high * sigma
    if p.bridge > 0:  # reconnect a step interrupted where it passes a defect or a noisy line
        low = ndi.binary_closing(low, structure=np.ones((3, 3)), iterations=p.bridge) | low
    labels, n = ndi.label(low, structure=np.ones((3, 3)))
    edges = np.zeros(heights.shape, bool)
    n_steps = 0
    if n:
        idx = np.arange(1, n + 1)
        has_high = ndi.maximum(high, labels, idx).astype(bool)
        # shape of each component's ridge core (gradient >= the component's median): a step's core is
        # a thin continuous line whatever the smoothing (a bright defect on the step does not raise
        # the median), a defect's core stays a ring or a blob
        level = np.concatenate([[np.inf], ndi.median(grad, labels, idx)])
        core = np.where(grad >= level[labels], labels, 0)
        length, elong = component_shapes(core, n)
        min_len = p.min_length * min(heights.shape)
        keep = has_high & (length >= min_len) & (elong >= p.min_elongation)
        n_steps = int(keep.sum())
        if n_steps:
            edges = np.concatenate([[False], keep])[core]
            for lab in np.nonzero(keep)[0] + 1:  # few steps: loop over steps, not pixels
                _extend_to_border(edges, core == lab, p.extend * min(heights.shape))
    if n_steps and p.margin > 0:
        band = ndi.binary_dilation(edges, structure=np.ones((3, 3)), iterations=p.margin)
    else:
        band = edges.copy()
    terraces, _ = ndi.label(~band)
    return StepEdges(edges=edges, band=band, terraces=terraces.astype(np.int32), n_steps=n_steps)


def level_terraces(heights: np.ndarray, steps: StepEdges, min_area: int = 256) -> np.ndarray:
    """Subtract a robust plane per terrace and fill the step band from the nearest terrace pixel.

    Args:
        heights: flattened HxW heights.
        steps: output of ``detect_steps``.
        min_area: terraces smaller than this (px) keep the global levelling.

    Returns:
        float64 HxW heights with every terrace levelled to median 0.
    """
    if steps.n_steps == 0:
        return heights - np.median(heights)
    out = heights.astype(np.float64).copy()
    n = int(steps.terraces.max())
    areas = np.bincount(steps.terraces.ravel(), minlength=n + 1)
    for t in np.nonzero(areas[1:])[0] + 1:  # few terraces: a loop over terraces, not pixels
        sel = steps.terraces == t
        if areas[t] >= min_area:
            out[sel] -= robust_plane(heights, mask=sel)[sel]
        else:
            out[sel] -= np.median(heights[sel])
    if steps.band.any():
        _, (iy, ix) = ndi.distance_transform_edt(steps.band, return_indices=True)
        out = out[iy, ix]
    return out - np.median(out)
