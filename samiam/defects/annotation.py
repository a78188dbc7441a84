"""Burned-in annotation (scale bars, text, frames) in exported topographs: find it and fill it."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def annotation_mask(
    raw: np.ndarray,
    *,
    tolerance: float = 0.02,
    min_extent: float = 0.15,
    max_fill: float = 0.35,
    merge: int = 8,
    margin: int = 2,
    min_exact: int = 20,
    exact_fraction: float = 0.25,
    sharp: float = 0.1,
) -> np.ndarray:
    """Pixels of burned-in annotation: sparse, extended sets of saturated (extreme-valued) pixels.

    A scale bar with its label, or a frame around the image, is drawn in the darkest or brightest
    grey level, so many of its pixels have exactly the extreme value (measured heights rarely
    repeat their extreme exactly). Pixels within ``tolerance`` x (max - min) of the minimum or maximum are grouped
    (closing gaps of ``merge`` px, so letters join their bar); a group is annotation when its box is
    long (longer side >= ``min_extent`` x the shorter image side) and sparse (the saturated pixels
    fill < ``max_fill`` of the box), which a compact saturated defect or adsorbate is not,
    flat-valued (see ``min_exact`` and ``exact_fraction``) and sharp-edged (see ``sharp``), which
    topography clipped at the ends of the grey scale is not. Physical
    height maps rarely have such sets, so the rule does not fire on them.

    Args:
        raw: HxW heights or grey levels as read.
        tolerance: closeness to the extreme value, as a fraction of the value range.
        min_extent: minimum longer side of the group's box, fraction of the shorter image side.
        max_fill: maximum fraction of the group's box covered by saturated pixels.
        merge: dilation (px) that joins nearby saturated pixels into one group.
        margin: the returned mask is grown by this many px (anti-aliasing, JPEG ringing).
        min_exact: a group needs at least this many pixels exactly at the extreme value...
        exact_fraction: ...and at least this fraction of its saturated pixels exactly at it.
        sharp: median jump from the outline pixels of the group's extreme-valued set to their 3x3
            neighbourhood, as a
            fraction of the value range, that a drawn (sharp-edged) group needs; clipped
            topography fades out gradually.

    Returns:
        bool HxW annotation mask.
    """
    lo, hi = float(raw.min()), float(raw.max())
    tol = tolerance * (hi - lo)
    if not tol > 0:
        return np.zeros(raw.shape, bool)
    out = np.zeros(raw.shape, bool)
    # height jump from each pixel to its brightest / darkest 3x3 neighbour
    jumps = (ndi.maximum_filter(raw, size=3) - raw, raw - ndi.minimum_filter(raw, size=3))
    for (sat, exact), jump in zip(((raw <= lo + tol, raw == lo), (raw >= hi - tol, raw == hi)), jumps, strict=True):
        if exact.sum() < min_exact:
            continue
        grouped = ndi.binary_dilation(sat, iterations=merge) if merge else sat
        labels, n = ndi.label(grouped, structure=np.ones((3, 3)))
        count = np.bincount(labels[sat], minlength=n + 1)
        n_exact = np.bincount(labels[exact], minlength=n + 1)
        rim = exact & ~ndi.binary_erosion(exact, border_value=1)
        edge = np.asarray(ndi.median(jump, np.where(rim, labels, 0), np.arange(1, n + 1)), np.float64)
        for i, sl in enumerate(ndi.find_objects(labels), start=1):  # one entry per group (few)
            hgt, wid = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
            long_sparse = max(hgt, wid) >= min_extent * min(raw.shape) and count[i] < max_fill * hgt * wid
            flat_sharp = n_exact[i] >= max(min_exact, exact_fraction * count[i]) and edge[i - 1] >= sharp * (hi - lo)
            if long_sparse and flat_sharp:
                out |= (labels == i) & sat
    if margin and out.any():
        out = ndi.binary_dilation(out, iterations=margin)
    return out


def fill_masked(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Copy of ``values`` with masked pixels replaced by the nearest unmasked pixel's value."""
    if not mask.any() or mask.all():
        return values.copy()
    idx = ndi.distance_transform_edt(mask, return_distances=False, return_indices=True)
    return values[tuple(idx)]
