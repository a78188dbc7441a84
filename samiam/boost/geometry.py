"""Geometric filter: drop tiny children, compound parents, redundant duplicates, small islands.

All pairwise overlaps come from one call to pycocotools' RLE IoU in "crowd" mode, which returns
``|a ∩ b| / |a|`` for every pair at once, computed on the run-length encodings (with a
bounding-box prefilter) — no dense N x H x W array and no Python loop over pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from samiam.boost.config import BoostConfig
from samiam.masks import MaskRecord, encode_rle_window, rle_for_coco


def containment_matrix(records: list[MaskRecord]) -> np.ndarray:
    """``C[i, j] = |m_i ∩ m_j| / |m_i|`` for all pairs (1 on the diagonal).

    Args:
        records: N masks of one image.

    Returns:
        (N, N) float64 matrix.
    """
    n = len(records)
    if n == 0:
        return np.zeros((0, 0))
    rles = [rle_for_coco(r.rle) for r in records]
    # iscrowd=True for the "ground truth" side gives intersection / area(detection).
    c = np.asarray(mask_utils.iou(rles, rles, [1] * n), dtype=np.float64).reshape(n, n)
    np.fill_diagonal(c, 1.0)
    return c


@dataclass
class FilterReport:
    """Why each dropped mask was dropped (indices into the input list)."""

    too_small: list[int] = field(default_factory=list)
    redundant: list[int] = field(default_factory=list)
    tiny_child: list[int] = field(default_factory=list)
    compound: list[int] = field(default_factory=list)
    islands_removed: int = 0

    def to_dict(self) -> dict:
        return {
            "too_small": len(self.too_small),
            "redundant": len(self.redundant),
            "tiny_child": len(self.tiny_child),
            "compound": len(self.compound),
            "island_parts_removed": self.islands_removed,
        }


def _union_cover(records: list[MaskRecord], parent: int, children: np.ndarray) -> float:
    """Fraction of ``parent`` covered by the union of ``children`` (exact, on RLE)."""
    rles = [rle_for_coco(records[int(k)].rle) for k in children]
    union = mask_utils.merge(rles, intersect=False)
    inter = mask_utils.merge([union, rle_for_coco(records[parent].rle)], intersect=True)
    return float(mask_utils.area(inter)) / max(records[parent].area, 1)


def remove_islands(record: MaskRecord, min_frac: float) -> tuple[MaskRecord, int]:
    """Remove connected parts smaller than ``min_frac`` of the mask's area.

    Args:
        record: the mask.
        min_frac: minimum part size as a fraction of the mask's area.

    Returns:
        (cleaned record, number of parts removed).
    """
    box = record.decode_box()
    n, lab, stats, _ = cv2.connectedComponentsWithStats(box.astype(np.uint8), connectivity=8)
    if n <= 2:
        return record, 0
    areas = stats[1:, cv2.CC_STAT_AREA]
    small = np.flatnonzero(areas < min_frac * areas.sum()) + 1
    if small.size == 0 or small.size == n - 1:
        return record, 0
    x, y, _, _ = record.bbox
    kept = box & ~np.isin(lab, small)  # encoded in place: no full-size array for large images
    rows, cols = np.flatnonzero(kept.any(axis=1)), np.flatnonzero(kept.any(axis=0))
    bbox = [x + int(cols[0]), y + int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]
    height, width = record.shape
    cleaned = MaskRecord(
        rle=encode_rle_window(kept, y, x, height, width),
        bbox=bbox,
        area=int(kept.sum()),
        score=record.score,
        material=record.material,
        extra=record.extra,
    )
    return cleaned, int(small.size)


def geometric_filter(
    records: list[MaskRecord], image_area: int, cfg: BoostConfig
) -> tuple[list[MaskRecord], FilterReport]:
    """Apply the SAM-I-Am geometric rules to raw masks.

    Order: too-small masks; redundant pairs (mutual containment > ``redundant_overlap``, keep the
    higher score, then the larger); compound parents (covered > ``compound_cover`` by the union of
    their children); tiny children (< ``child_min_frac`` of a remaining parent); islands.
    Compound parents go before tiny children so that a grid of small masks tiling a large mixed
    mask removes the large one, rather than the large one removing the small ones.

    Args:
        records: raw masks.
        image_area: H * W.
        cfg: thresholds.

    Returns:
        (kept masks, report of what was dropped).
    """
    rep = FilterReport()
    n = len(records)
    if n == 0:
        return [], rep
    area = np.array([r.area for r in records], np.float64)
    score = np.array([r.score for r in records], np.float64)
    alive = area >= cfg.min_area_frac * image_area
    rep.too_small = np.flatnonzero(~alive).tolist()
    c = containment_matrix(records)

    # Redundant pairs: both directions above the threshold. Rank by (score, area): lower rank goes.
    rank = np.lexsort((area, score))  # ascending
    pos = np.empty(n, int)
    pos[rank] = np.arange(n)
    mutual = (c > cfg.redundant_overlap) & (c.T > cfg.redundant_overlap)
    np.fill_diagonal(mutual, False)
    for i in rank:  # weakest first; few iterations, each a row of booleans
        if not alive[i]:
            continue
        stronger = mutual[i] & alive & (pos > pos[i])
        if stronger.any():
            alive[i] = False
            rep.redundant.append(int(i))

    # Parent/child relations among the survivors: child j inside larger parent i.
    is_child = (c >= cfg.child_containment) & (area[:, None] < area[None, :])  # [child, parent]
    is_child &= alive[:, None] & alive[None, :]

    # Compound parents first: a parent tiled (> compound_cover) by its children is their union,
    # not a region of its own. Tiny children count towards the tiling.
    for p in np.flatnonzero(is_child.any(axis=0)):
        kids = np.flatnonzero(is_child[:, p])
        # cheap upper bound first: the sum of the children's overlaps with the parent
        if (c[kids, p] * area[kids]).sum() / area[p] <= cfg.compound_cover:
            continue
        if _union_cover(records, int(p), kids) > cfg.compound_cover:
            alive[p] = False
            rep.compound.append(int(p))
    is_child &= alive[None, :]

    # Tiny children of the remaining parents are noise on that parent.
    drop_tiny = (is_child & (area[:, None] < cfg.child_min_frac * area[None, :])).any(axis=1)
    rep.tiny_child = np.flatnonzero(drop_tiny & alive).tolist()
    alive &= ~drop_tiny

    kept = []
    for i in np.flatnonzero(alive):
        rec, removed = remove_islands(records[i], cfg.island_min_frac)
        rep.islands_removed += removed
        kept.append(rec)
    return kept, rep
