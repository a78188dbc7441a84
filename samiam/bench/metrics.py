"""Score the predicted masks of one image against a ground-truth label map.

Plain numpy (OpenCV only for the boundary erosion); no torch.

Notation, per image: ``V`` = valid pixels (label > 0; label 0 = ignore, and ignored pixels are
removed from every mask before anything is counted), ``G_r`` = pixels of ground-truth region ``r``
(one region per label value), ``M_n`` = predicted mask ``n`` restricted to ``V``,
``IoU(n, r) = |M_n & G_r| / |M_n | G_r|``, ``S_r = {n : IoU(n, r) >= 0.05}`` (the masks matched to
region ``r``), ``U_r`` = union of the masks in ``S_r``.

Metrics of the SAM-I-Am paper (W. Abebe, J. Strube, L. Guo, N. R. Tallent, O. Bel, S. Spurgeon,
C. Doty, A. Jannesari, "SAM-I-Am: Semantic Boosting for Zero-shot Atomic-Scale Electron Micrograph
Segmentation", arXiv:2404.06638, 2024), per region ``r``:

- ``miou``: mean of ``IoU(n, r)`` over ``S_r``; 0 when ``S_r`` is empty.
- ``false_positive``: ``sum_{n in S_r} IoU(n, r) - max_{n in S_r} IoU(n, r)``: the IoU mass of the
  matched masks other than the best one (independent of mask order); 0 when ``S_r`` is empty.
- ``recall``: ``|U_r & G_r| / |G_r|``; 0 when ``S_r`` is empty.
- ``precision``: ``|U_r & G_r| / |U_r|``; 0 when ``S_r`` is empty.

Only the paper's abstract and its reported quantities (mean IoU, mean false-positive masks, per
image difficulty class) could be consulted while writing this module, not its evaluation code:
the 5 % matching threshold, the false-positive measure and the recall/precision of the union of
matched masks are the definitions stated above, chosen to match the paper's description; where the
paper's code differs (for instance by not excluding ignored pixels, or by counting false-positive
masks instead of summing their IoU), numbers are not directly comparable.

The same four on boundaries (``boundary_*``): every mask and region is replaced by its boundary
band ``B(X)`` (``samiam.bench.boundary``, Cheng et al. 2021: width ``d = round(0.02 * diagonal)``,
image border counts as boundary), IoU by Boundary IoU, over the same matched set ``S_r`` (matching
uses the mask IoU, so the boundary numbers say how well the matched masks follow the region's
edge). ``B(M_n)`` is taken after removing ignored pixels, so a band of ignored pixels along an
interface is treated identically in prediction and ground truth.

Standard metrics:

- ``best_iou`` / ``best_boundary_iou``: ``max_n IoU(n, r)`` (0 without masks).
- ``hungarian_iou``: IoU of the mask assigned to ``r`` by a one-to-one assignment maximising the
  total IoU (``scipy.optimize.linear_sum_assignment``); 0 when ``r`` gets no mask. Its image mean
  is the one-to-one matched mIoU.
- per image: ``n_pred`` (masks given), ``n_regions``, ``n_unmatched`` (masks matched to no region).

Image means are over regions, optionally weighted by region difficulty (``difficulty_weights``,
e.g. ``PAPER_DIFFICULTY_WEIGHTS``; regions of unknown difficulty weigh 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from samiam.bench.boundary import DEFAULT_RATIO, boundary_width, mask_boundary

MATCH_IOU = 0.05
# Easy:hard region weights 10:1 as given for the paper's weighted scores.
PAPER_DIFFICULTY_WEIGHTS: dict[str, float] = {"easy": 10.0, "hard": 1.0}

REGION_METRICS = (
    "miou",
    "recall",
    "precision",
    "false_positive",
    "boundary_miou",
    "boundary_recall",
    "boundary_precision",
    "boundary_false_positive",
    "best_iou",
    "best_boundary_iou",
    "hungarian_iou",
)
IMAGE_COUNTS = ("n_pred", "n_regions", "n_unmatched")

_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], np.int64)


def _popcount(packed: np.ndarray) -> int:
    return int(_POPCOUNT[packed].sum())


@dataclass
class RegionScore:
    """Every metric of one ground-truth region (see the module docstring for the formulas)."""

    label: int
    name: str
    difficulty: str | None
    area: int
    n_matched: int
    miou: float
    recall: float
    precision: float
    false_positive: float
    boundary_miou: float
    boundary_recall: float
    boundary_precision: float
    boundary_false_positive: float
    best_iou: float
    best_boundary_iou: float
    hungarian_iou: float

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ImageScore:
    """Scores of one image: per region, plus counts.

    Attributes:
        regions: one ``RegionScore`` per ground-truth region, in label order.
        n_pred: number of predicted masks.
        n_unmatched: predicted masks with IoU < the match threshold against every region.
        boundary_width: boundary band width ``d`` used, in pixels.
        difficulty_weights: region weights by difficulty used for the image means, or None.
    """

    regions: list[RegionScore]
    n_pred: int
    n_unmatched: int
    boundary_width: int
    difficulty_weights: dict[str, float] | None = field(default=None)

    @property
    def n_regions(self) -> int:
        return len(self.regions)

    def _weights(self) -> np.ndarray:
        if not self.difficulty_weights:
            return np.ones(len(self.regions))
        return np.array([self.difficulty_weights.get(r.difficulty or "", 1.0) for r in self.regions], float)

    def mean(self, metric: str) -> float:
        """Weighted mean of one region metric over the regions (NaN for an image without regions)."""
        if metric not in REGION_METRICS:
            raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(REGION_METRICS)}")
        if not self.regions:
            return float("nan")
        values = np.array([getattr(r, metric) for r in self.regions], float)
        w = self._weights()
        return float((values * w).sum() / w.sum())

    def summary(self) -> dict[str, float]:
        """Image means of every region metric plus the counts (``hungarian_miou`` = mean hungarian_iou)."""
        out: dict[str, float] = {m: self.mean(m) for m in REGION_METRICS}
        out["hungarian_miou"] = out.pop("hungarian_iou")
        out.update(n_pred=self.n_pred, n_regions=self.n_regions, n_unmatched=self.n_unmatched)
        return out


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"expected a 2-D label map, got shape {labels.shape}")
    if labels.dtype == bool:
        return labels.astype(np.int32)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"expected an integer label map, got dtype {labels.dtype}")
    return labels


def _region_stats(compact: np.ndarray, n_regions: int, d: int) -> tuple[np.ndarray, ...]:
    """Areas, boundary label map, boundary areas and packed region masks/boundaries."""
    area = np.bincount(compact.ravel(), minlength=n_regions + 1)[1:]
    blabels = np.zeros_like(compact)
    packed_g, packed_bg = [], []
    for r in range(1, n_regions + 1):  # one erosion per region (few), not per pair
        g = compact == r
        b = mask_boundary(g, d)
        blabels[b] = r
        packed_g.append(np.packbits(g.ravel()))
        packed_bg.append(np.packbits(b.ravel()))
    barea = np.bincount(blabels.ravel(), minlength=n_regions + 1)[1:]
    return area, blabels, barea, np.array(packed_g), np.array(packed_bg)


def _union_overlap(packed_masks: np.ndarray, rows: np.ndarray, packed_region: np.ndarray) -> tuple[int, int]:
    """Return ``(|U & region|, |U|)`` for U = union of the selected packed masks."""
    union = np.bitwise_or.reduce(packed_masks[rows], axis=0)
    return _popcount(union & packed_region), _popcount(union)


def _matched_stats(iou: np.ndarray, matched: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per region: number matched, mean matched IoU (0 if none), sum minus max of matched IoU."""
    vals = np.where(matched, iou, 0.0)
    n = matched.sum(axis=0)
    total = vals.sum(axis=0)
    best = vals.max(axis=0) if vals.shape[0] else np.zeros(vals.shape[1])
    mean = np.divide(total, n, out=np.zeros_like(total), where=n > 0)
    return n, mean, total - best


def score_image(
    masks: Iterable[np.ndarray],
    labels: np.ndarray,
    *,
    names: Mapping[int, str] | None = None,
    difficulty: Mapping[int, str] | None = None,
    difficulty_weights: Mapping[str, float] | None = None,
    match_iou: float = MATCH_IOU,
    boundary_ratio: float = DEFAULT_RATIO,
) -> ImageScore:
    """Score predicted masks against a ground-truth label map (all metrics of the module docstring).

    Masks are consumed one at a time (each is reduced to counts and a bit-packed copy), so an
    iterable that decodes RLE lazily keeps memory at about 2 bits per pixel per mask. All
    mask-vs-region overlaps come from one ``bincount`` of the label map per mask, the unions of
    matched masks from bitwise OR-reductions: no loop over pairs of full-resolution masks.

    Args:
        masks: HxW boolean masks (an (N, H, W) array or any iterable of 2-D arrays).
        labels: HxW integer label map; 0 (and negative values) = ignore, k > 0 = region k.
        names: region name per label value (default ``"label k"``).
        difficulty: difficulty class per label value (e.g. ``"easy"``/``"hard"``), optional.
        difficulty_weights: weight per difficulty class for the image means, optional.
        match_iou: IoU from which a mask counts as matched to a region (paper: 0.05).
        boundary_ratio: boundary band width as a fraction of the image diagonal (0.02).

    Returns:
        The image's ``ImageScore``.

    Raises:
        ValueError: a mask whose shape differs from the label map, or a label map that is not 2-D
            integer.
    """
    labels = _check_labels(labels)
    height, width = labels.shape
    valid = labels > 0
    region_ids = np.unique(labels[valid])
    n_regions = int(region_ids.size)
    compact = np.zeros(labels.shape, np.int32)
    compact[valid] = np.searchsorted(region_ids, labels[valid]) + 1
    d = boundary_width(height, width, boundary_ratio)
    g_area, blabels, g_barea, packed_g, packed_bg = _region_stats(compact, n_regions, d)

    inter, area, binter, barea, packed_m, packed_b = [], [], [], [], [], []
    for k, mask in enumerate(masks):
        m = np.asarray(mask)
        if m.shape != labels.shape:
            raise ValueError(f"mask {k} has shape {m.shape}, the label map has shape {labels.shape}")
        m = m.astype(bool) & valid
        b = mask_boundary(m, d)
        inter.append(np.bincount(compact[m], minlength=n_regions + 1)[1:])
        binter.append(np.bincount(blabels[b], minlength=n_regions + 1)[1:])
        area.append(int(np.count_nonzero(m)))
        barea.append(int(np.count_nonzero(b)))
        packed_m.append(np.packbits(m.ravel()))
        packed_b.append(np.packbits(b.ravel()))
    n_pred = len(area)
    shape = (n_pred, n_regions)
    inter_a = np.array(inter, np.int64).reshape(shape)
    binter_a = np.array(binter, np.int64).reshape(shape)
    area_a = np.array(area, np.int64)
    barea_a = np.array(barea, np.int64)
    iou = inter_a / (area_a[:, None] + g_area[None, :] - inter_a)
    biou = binter_a / (barea_a[:, None] + g_barea[None, :] - binter_a)

    matched = iou >= match_iou
    n_matched, miou, fp = _matched_stats(iou, matched)
    _, bmiou, bfp = _matched_stats(biou, matched)
    best = iou.max(axis=0) if n_pred else np.zeros(n_regions)
    bbest = biou.max(axis=0) if n_pred else np.zeros(n_regions)
    hungarian = np.zeros(n_regions)
    if n_pred and n_regions:
        rows, cols = linear_sum_assignment(iou, maximize=True)
        hungarian[cols] = iou[rows, cols]

    n_bytes = (height * width + 7) // 8
    packed_m_a = np.array(packed_m, np.uint8).reshape(n_pred, n_bytes)
    packed_b_a = np.array(packed_b, np.uint8).reshape(n_pred, n_bytes)
    names = names or {}
    difficulty = difficulty or {}
    regions = []
    for r, label in enumerate(region_ids):  # per region (few), vectorised over masks and pixels
        rows = np.flatnonzero(matched[:, r])
        rec = prec = brec = bprec = 0.0
        if rows.size:
            hit, covered = _union_overlap(packed_m_a, rows, packed_g[r])
            bhit, bcovered = _union_overlap(packed_b_a, rows, packed_bg[r])
            rec, prec = hit / g_area[r], hit / covered
            brec, bprec = bhit / g_barea[r], (bhit / bcovered if bcovered else 0.0)
        label = int(label)
        regions.append(
            RegionScore(
                label=label,
                name=str(names.get(label, f"label {label}")),
                difficulty=difficulty.get(label),
                area=int(g_area[r]),
                n_matched=int(n_matched[r]),
                miou=float(miou[r]),
                recall=float(rec),
                precision=float(prec),
                false_positive=float(fp[r]),
                boundary_miou=float(bmiou[r]),
                boundary_recall=float(brec),
                boundary_precision=float(bprec),
                boundary_false_positive=float(bfp[r]),
                best_iou=float(best[r]),
                best_boundary_iou=float(bbest[r]),
                hungarian_iou=float(hungarian[r]),
            )
        )
    n_unmatched = int((~matched.any(axis=1)).sum()) if n_pred else 0
    return ImageScore(
        regions=regions,
        n_pred=n_pred,
        n_unmatched=n_unmatched,
        boundary_width=d,
        difficulty_weights=dict(difficulty_weights) if difficulty_weights else None,
    )
