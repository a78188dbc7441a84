"""Fusion of SAM masks with the dense material field (``--method fused``).

SAM gives outlines, the field gives semantics:

1. the geometric filter runs as for the crop booster;
2. each kept mask is compared with the field inside it: when one material holds at least
   ``purity`` of its pixels the mask is *pure* and all its pixels take that material (its outline
   replaces the field's blurred boundary); otherwise it straddles materials and is split along the
   field (its pixels keep the field's labels);
3. pure masks are painted from the largest to the smallest, so that small masks, sharper near
   interfaces, win where masks overlap;
4. pixels outside every pure mask take the field's material where the field's posterior is at
   least ``min_confidence``; the rest stay unsegmented.

The output semantics are the booster's: one disjoint mask per material, gaps allowed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samiam.errors import ParameterError
from samiam.field.build import MaterialField
from samiam.masks import MaskRecord


@dataclass
class FusionReport:
    """What the fusion did (run record)."""

    pure_masks: int
    split_masks: int
    covered_by_masks: float
    filled_from_field: float
    unsegmented: float

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def fuse_masks_with_field(
    records: list[MaskRecord],
    field: MaterialField,
    *,
    purity: float = 0.8,
    min_confidence: float = 0.5,
) -> tuple[np.ndarray, FusionReport]:
    """Label map of materials from filtered SAM masks and the field.

    Args:
        records: masks after the geometric filter.
        field: the image's material field.
        purity: fraction of a mask's pixels one material must hold for the mask to be pure.
        min_confidence: field posterior from which a pixel outside the pure masks is assigned.

    Returns:
        ((H, W) int map, -1 = unsegmented, k = material index of the field; the report).

    Raises:
        ParameterError: a threshold outside (0, 1], or masks of another image size.
    """
    if not 0.0 < purity <= 1.0:
        raise ParameterError(f"fusion purity must be in (0, 1], got {purity}")
    if not 0.0 <= min_confidence <= 1.0:
        raise ParameterError(f"fusion min confidence must be in [0, 1], got {min_confidence}")
    shape = field.labels.shape
    for r in records:
        if r.shape != shape:
            raise ParameterError(f"mask of size {r.shape} does not fit the {shape} image")
    k = field.n_materials
    owner = np.full(shape, -1, np.int64)
    pure = split = 0
    for r in sorted(records, key=lambda r: -r.area):  # small masks painted last win overlaps
        x, y, w, h = r.bbox
        inside = r.decode_box()
        lab = field.labels[y : y + h, x : x + w][inside]
        counts = np.bincount(lab, minlength=k)
        if counts.sum() and counts.max() >= purity * inside.sum():
            owner[y : y + h, x : x + w][inside] = int(counts.argmax())
            pure += 1
        else:
            split += 1
    covered = owner >= 0
    take = ~covered & (field.confidence >= min_confidence)
    owner[take] = field.labels[take]
    n = float(owner.size)
    report = FusionReport(pure, split, covered.sum() / n, take.sum() / n, (owner < 0).sum() / n)
    return owner, report
