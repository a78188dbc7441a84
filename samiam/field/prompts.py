"""Where box prompts go, from the material field: coarse boxes everywhere, fine boxes on boundaries.

The blind box grid spends most of its prompts (225 of 283 on a 1024 px image) on the finest scale,
inside regions the coarse boxes already cover. SAM's sharp outlines matter where materials meet,
so the finest scale keeps only the boxes in which the field sees at least two materials.
"""

from __future__ import annotations

import numpy as np

from samiam.errors import ParameterError
from samiam.generate.boxes import box_grid


def field_prompt_boxes(
    labels: np.ndarray, scales: tuple[float, ...], overlap: float, min_share: float = 0.1
) -> tuple[np.ndarray, dict]:
    """Box prompts placed from a material map.

    Args:
        labels: (H, W) int material map of the field (-1 = none).
        scales: the box scales of the blind grid (fractions of the short side).
        overlap: overlap of neighbouring boxes.
        min_share: a fine box is kept when a second material holds at least this share of it.

    Returns:
        ((N, 4) float32 boxes x1, y1, x2, y2; counts per scale: kept and of the blind grid).
    """
    if labels.ndim != 2:
        raise ParameterError(f"expected a 2-D material map, got shape {labels.shape}")
    if not 0 < min_share < 0.5:
        raise ParameterError(f"min share must be in (0, 0.5), got {min_share}")
    h, w = labels.shape
    finest = min(scales)
    k = int(labels.max()) + 1
    # per-material integral images: the share of each material in any box in O(1)
    onehot = labels[None] == np.arange(max(k, 1))[:, None, None]
    integral = np.pad(onehot.cumsum(1).cumsum(2), ((0, 0), (1, 0), (1, 0)))
    out, counts = [], {}
    for s in sorted(set(scales), reverse=True):
        b = box_grid(h, w, (s,), overlap)
        if s == finest and k > 1:
            x1, y1, x2, y2 = (np.rint(b[:, i]).astype(int) for i in range(4))
            area = np.maximum((x2 - x1) * (y2 - y1), 1)
            share = (integral[:, y2, x2] - integral[:, y1, x2] - integral[:, y2, x1] + integral[:, y1, x1]) / area
            second = np.sort(share, 0)[-2]
            b = b[second >= min_share]
        counts[str(s)] = {"kept": int(len(b)), "grid": int(len(box_grid(h, w, (s,), overlap)))}
        out.append(b)
    return np.concatenate(out).astype(np.float32), counts
