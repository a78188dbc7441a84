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
    return rle_for_json(mask_utils.encode(np.asfortranarray(mask.astype(np.uint8))))


def rle_for_coco(rle: dict[str, Any]) -> dict[str, Any]:
    """The RLE as pycocotools' functions take it: compressed ``counts`` as bytes (a new dict).

    Args:
        rle: COCO RLE with counts as str, bytes, or an uncompressed list.

    Returns:
        ``{"size": [H, W], "counts": bytes}``.
    """
    counts = rle["counts"]
    if isinstance(counts, list):
        h, w = rle["size"]
        return mask_utils.frPyObjects(dict(rle), h, w)
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    return {"size": list(rle["size"]), "counts": counts}


def rle_for_json(rle: dict[str, Any]) -> dict[str, Any]:
    """The RLE as samiam keeps and writes it: compressed ``counts`` as str (a new dict).

    Args:
        rle: COCO RLE with compressed counts as bytes (as pycocotools returns) or str.

    Returns:
        ``{"size": [H, W], "counts": str}``.
    """
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    return {"size": [int(v) for v in rle["size"]], "counts": counts}


def decode_rle(rle: dict[str, Any]) -> np.ndarray:
    """Decode a COCO RLE (counts as str or bytes, compressed or as a list) to HxW bool."""
    return mask_utils.decode(rle_for_coco(rle)).view(bool)  # 0/1 uint8 → bool without a copy


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

    def to_dict(self, rle_key: str = "rle") -> dict[str, Any]:
        """The record as a JSON-able dict (``from_dict`` reads it back).

        Args:
            rle_key: the key of the RLE ("segmentation" in masks JSON annotations).

        Returns:
            ``{rle_key: rle, "area", "bbox", "material", "score", "extra"}``.
        """
        return {
            rle_key: self.rle,
            "area": int(self.area),
            "bbox": [int(v) for v in self.bbox],
            "material": self.material,
            "score": float(self.score),
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], rle_key: str = "rle") -> MaskRecord:
        """Rebuild a record from ``to_dict``'s dict (``score`` defaults to 1, ``extra`` to empty).

        Raises:
            KeyError: the RLE, ``bbox`` or ``area`` is missing.
        """
        return cls(
            rle=d[rle_key],
            bbox=list(d["bbox"]),
            area=int(d["area"]),
            score=float(d.get("score", 1.0)),
            material=d.get("material"),
            extra=dict(d.get("extra") or {}),
        )

    def decode(self) -> np.ndarray:
        """Return the dense HxW boolean mask."""
        return decode_rle(self.rle)

    def decode_box(self) -> np.ndarray:
        """Return the mask cropped to its ``bbox`` (h x w bool), decoded once and then cached.

        Stages that look at every mask (islands, crops, merge) use this, so each mask is
        decoded once per run and only its box is kept in memory.
        """
        if self._box is None:
            self._box = decode_rle_box(self.rle, self.bbox)
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


def encode_rle_window(crop: np.ndarray, y0: int, x0: int, height: int, width: int) -> dict[str, Any]:
    """COCO RLE of a whole ``height`` x ``width`` mask that is empty outside ``crop`` placed at (y0, x0).

    Equivalent to ``encode_rle`` of the dense full-size mask, without ever building it: run
    boundaries are computed on the crop, column by column (COCO RLE is column-major), and shifted.

    Args:
        crop: h x w boolean array.
        y0: row of the crop's top-left pixel in the full mask.
        x0: column of the crop's top-left pixel.
        height: full mask height.
        width: full mask width.

    Returns:
        ``{"size": [height, width], "counts": str}``.
    """
    h, w = crop.shape
    if y0 < 0 or x0 < 0 or y0 + h > height or x0 + w > width:
        raise ValueError(f"crop {h}x{w} at ({y0}, {x0}) does not fit in {height}x{width}")
    padded = np.zeros((w, h + 2), np.int8)
    padded[:, 1:-1] = crop.T  # one row per image column, zero-padded above and below
    step = np.diff(padded, axis=1)
    sc, sr = np.nonzero(step == 1)  # run starts (column, row), ordered column-major
    ec, er = np.nonzero(step == -1)  # run ends (exclusive)
    starts = (x0 + sc).astype(np.int64) * height + y0 + sr
    ends = (x0 + ec).astype(np.int64) * height + y0 + er
    if starts.size > 1:  # a run that reaches the bottom continues at the top of the next column
        joined = ends[:-1] == starts[1:]
        starts = np.concatenate([starts[:1], starts[1:][~joined]])
        ends = np.concatenate([ends[:-1][~joined], ends[-1:]])
    bounds = np.empty(2 * starts.size + 2, np.int64)
    bounds[0], bounds[-1] = 0, height * width
    bounds[1:-1:2], bounds[2:-1:2] = starts, ends
    counts = np.diff(bounds)
    if counts.size > 1 and counts[-1] == 0:  # a mask reaching the last pixel: no trailing zero run
        counts = counts[:-1]
    counts = counts.tolist()
    return rle_for_json(mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width))


def _rle_counts(rle: dict[str, Any]) -> np.ndarray:
    """Run lengths of a COCO RLE (compressed str/bytes counts or a list), decoded with numpy.

    The compressed form (pycocotools' ``rleToString``) writes each count as 5-bit chunks + 48,
    bit 0x20 = more chunks follow, bit 0x10 of the last chunk = negative; counts from the fourth
    on are stored as differences to the count two places before.
    """
    counts = rle["counts"]
    if isinstance(counts, list):
        return np.asarray(counts, np.int64)
    raw = bytes(rle_for_coco(rle)["counts"])
    if not raw:
        return np.zeros(0, np.int64)
    b = np.frombuffer(raw, np.uint8).astype(np.int64) - 48
    ends = np.flatnonzero((b & 0x20) == 0)  # last chunk of each number
    starts = np.concatenate([[0], ends[:-1] + 1])
    k = np.arange(b.size) - np.repeat(starts, ends - starts + 1)  # chunk index within its number
    x = np.add.reduceat((b & 0x1F) << (5 * k), starts)
    negative = (b[ends] & 0x10) != 0
    x = np.where(negative, x | np.left_shift(-1, 5 * (ends - starts + 1)), x)
    out = x.copy()
    out[1::2] = np.cumsum(x[1::2])  # counts[i] += counts[i - 2] for i > 2
    if x.size > 2:
        out[2::2] = np.cumsum(x[2::2])
    return out


def decode_rle_box(rle: dict[str, Any], bbox: list[int]) -> np.ndarray:
    """Decode only the ``bbox`` window of a COCO RLE, without building the full-size mask.

    Cost grows with the number of runs and the box area, not with the image: for a 4096 x 4096
    image this is what makes per-mask work (islands, crops) cheap.

    Args:
        rle: COCO RLE of an H x W mask.
        bbox: ``[x, y, w, h]`` window.

    Returns:
        h x w boolean array, equal to ``decode_rle(rle)[y:y+h, x:x+w]``.
    """
    height, width = (int(v) for v in rle["size"])
    x0, y0, w, h = (int(v) for v in bbox)
    out = np.zeros((w, h + 1), np.int16)  # one row per image column, difference form
    counts = _rle_counts(rle)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    run_start, run_end = bounds[1:-1:2], bounds[2::2]  # runs of ones [start, end)
    n = min(run_start.size, run_end.size)
    run_start, run_end = run_start[:n], run_end[:n]
    keep = (run_end > x0 * height) & (run_start < (x0 + w) * height) & (run_end > run_start)
    run_start, run_end = run_start[keep], run_end[keep]
    if run_start.size and w > 0 and h > 0:
        c0 = np.maximum(run_start // height, x0)
        c1 = np.minimum((run_end - 1) // height, x0 + w - 1)
        per_run = c1 - c0 + 1
        col = np.repeat(c0, per_run) + (np.arange(per_run.sum()) - np.repeat(np.cumsum(per_run) - per_run, per_run))
        s = np.repeat(run_start, per_run)
        e = np.repeat(run_end, per_run)
        r0 = np.clip(np.maximum(s, col * height) - col * height - y0, 0, h)
        r1 = np.clip(np.minimum(e, (col + 1) * height) - col * height - y0, 0, h)
        ok = r1 > r0
        np.add.at(out, (col[ok] - x0, r0[ok]), 1)
        np.add.at(out, (col[ok] - x0, r1[ok]), -1)
    return (np.cumsum(out[:, :h], axis=1) > 0).T.copy() if h > 0 else np.zeros((0, w), bool)
