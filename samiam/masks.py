"""Mask records kept as COCO RLE, with the conversions every stage needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """Encode a 2-D boolean mask as COCO RLE with ``counts`` as str (JSON-ready).

    Args:
        mask: HxW boolean (or 0/1) array.

    Returns:
        ``{"size": [H, W], "counts": str}``.
    """
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {mask.shape}")
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def decode_rle(rle: dict[str, Any]) -> np.ndarray:
    """Decode a COCO RLE (counts as str or bytes, compressed or as a list) to HxW bool."""
    r = dict(rle)
    if isinstance(r["counts"], list):
        h, w = r["size"]
        r = mask_utils.frPyObjects(r, h, w)
    elif isinstance(r["counts"], str):
        r["counts"] = r["counts"].encode("ascii")
    return mask_utils.decode(r).view(bool)  # 0/1 uint8 → bool without a copy


def bbox_of(mask: np.ndarray) -> list[int]:
    """Return the COCO box ``[x, y, w, h]`` of a mask (zeros for an empty mask)."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if ys.size == 0:
        return [0, 0, 0, 0]
    return [int(xs[0]), int(ys[0]), int(xs[-1] - xs[0] + 1), int(ys[-1] - ys[0] + 1)]


@dataclass
class MaskRecord:
    """One mask: COCO RLE plus the facts every consumer needs without decoding it.

    Attributes:
        rle: COCO RLE with str counts.
        bbox: ``[x, y, w, h]`` in pixels.
        area: number of pixels.
        score: generator confidence (predicted IoU), or a merged mask's mean.
        material: material label (cluster index, or a name from a library), None if raw.
        extra: anything a stage wants to keep (prompt, stability score, source ids).
    """

    rle: dict[str, Any]
    bbox: list[int]
    area: int
    score: float = 1.0
    material: int | str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    _box: np.ndarray | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_mask(cls, mask: np.ndarray, score: float = 1.0, **kw: Any) -> MaskRecord:
        """Build a record from a dense boolean mask."""
        m = mask.astype(bool)
        return cls(rle=encode_rle(m), bbox=bbox_of(m), area=int(m.sum()), score=float(score), **kw)

    def decode(self) -> np.ndarray:
        """Return the dense HxW boolean mask."""
        return decode_rle(self.rle)

    def decode_box(self) -> np.ndarray:
        """Return the mask cropped to its ``bbox`` (h x w bool), decoded once and then cached.

        Stages that look at every mask (islands, crops, merge) use this, so each mask is
        decoded once per run and only its box is kept in memory.
        """
        if self._box is None:
            x, y, w, h = self.bbox
            self._box = np.ascontiguousarray(self.decode()[y : y + h, x : x + w])
        return self._box

    @property
    def shape(self) -> tuple[int, int]:
        h, w = self.rle["size"]
        return int(h), int(w)


def stack_masks(records: list[MaskRecord]) -> np.ndarray:
    """Decode records into an (N, H, W) boolean array (only for small images/tests)."""
    if not records:
        return np.zeros((0, 0, 0), bool)
    return np.stack([r.decode() for r in records])
