"""Tiled mask generation for images larger than the model sees well, with masks stitched across tiles.

The image is covered by overlapping square tiles. Each tile owns a *core* (the tiles' cores
partition the image; a core border lies in the middle of the overlap of two neighbours, so every
core has at least ``halo`` pixels of context on its inner sides). The generator runs on each tile;
each tile mask is cut to the tile's core, which removes the duplicates that neighbouring tiles
produce for the same object. A mask cut by a core border is joined with its continuation in the
neighbouring tile: both tiles see the whole overlap band, so the two masks of one object agree
there. Two pieces are joined when each is the other's best match in the band and their IoU there is
at least ``join_iou`` (a union-find over all neighbouring tile pairs, diagonals included, so an
object crossing a tile corner also comes out as one mask).

Memory stays bounded by one tile: tile masks are decoded one at a time, cores are kept as COCO RLE
of the whole image (built from the cropped array, never from a dense H x W mask), and band masks as
RLE of the band only. The run-length arithmetic is vectorised numpy; joins use pycocotools' RLE IoU.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from samiam.errors import ParameterError
from samiam.masks import MaskRecord, decode_rle_box, encode_rle, encode_rle_window, rle_for_coco, rle_for_json  # noqa: F401

# auto tile side = 8 x the model's input side (2048 px for LiteMedSAM, 8192 for SAM): on labelled synthetic
# cross-sections LiteMedSAM kept its quality down to 8x downsampling and lost it at 16x
# (benchmarks/large/RESULTS.md, tile study)
AUTO_TILE_FACTOR = 8
MIN_TILE = 64


@dataclass(frozen=True)
class Tile:
    """One tile: its pixel window and the core it owns (both in image coordinates, end-exclusive).

    Attributes:
        index: position in the tile list (row-major).
        row: tile row.
        col: tile column.
        y0, x0, y1, x1: the tile window.
        cy0, cx0, cy1, cx1: the core window (inside the tile window).
    """

    index: int
    row: int
    col: int
    y0: int
    x0: int
    y1: int
    x1: int
    cy0: int
    cx0: int
    cy1: int
    cx1: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.y1 - self.y0, self.x1 - self.x0


def parse_tile(value: str | int | None) -> int | None:
    """Parse a tile setting (``--tile`` on the command line): ``auto`` → None, ``off`` → 0, else a side in pixels.

    Raises:
        ParameterError: anything else.
    """
    if value is None:
        return None
    text = str(value).strip().lower()
    if text == "auto":
        return None
    if text in ("off", "none", "0"):
        return 0
    try:
        side = int(text)
    except ValueError:
        raise ParameterError(f"tile must be 'auto', 'off' or a side in pixels, got '{value}'") from None
    if side < MIN_TILE:
        raise ParameterError(f"tile must be at least {MIN_TILE} pixels (or 'auto'/'off'), got {side}")
    return side


def tile_side(tile: int | None, model_input: int, height: int, width: int) -> int | None:
    """The tile side to use for an image, or None when it is processed in one piece.

    Args:
        tile: configured side; None = auto (``AUTO_TILE_FACTOR`` x the model input), 0 = off.
        model_input: side of the model's square input (256 for LiteMedSAM, 1024 for SAM).
        height: image height.
        width: image width.

    Returns:
        The side, or None when tiling is off or the image fits in one tile.
    """
    side = AUTO_TILE_FACTOR * model_input if tile is None else tile
    if side == 0 or max(height, width) <= side:
        return None
    return side


def check_halo(tile: int, halo: int) -> None:
    """Check that ``halo`` leaves cores of at least half a tile.

    Raises:
        ParameterError: it does not.
    """
    if not 0 <= halo <= tile // 4:
        raise ParameterError(f"halo must be in [0, tile/4] = [0, {tile // 4}] for tile {tile}, got {halo}")


def _starts_and_borders(n: int, tile: int, halo: int) -> tuple[list[int], list[int]]:
    """Tile starts along one axis (evenly spread, overlap >= 2 * halo) and the core borders."""
    if n <= tile:
        return [0], [0, n]
    step = tile - 2 * halo
    count = math.ceil((n - tile) / step) + 1
    starts = np.rint(np.linspace(0, n - tile, count)).astype(int).tolist()
    # each core border sits in the middle of the overlap of two neighbouring tiles
    borders = [0] + [(starts[i + 1] + starts[i] + tile) // 2 for i in range(count - 1)] + [n]
    return starts, borders


def plan_tiles(height: int, width: int, tile: int, halo: int) -> list[Tile]:
    """Cover an image with overlapping tiles whose cores partition it.

    Args:
        height: image height.
        width: image width.
        tile: tile side (tiles are ``min(tile, side)`` along a short axis).
        halo: context around each core; neighbouring tiles overlap by at least ``2 * halo``.

    Returns:
        Tiles in row-major order.

    Raises:
        ParameterError: a halo that leaves cores narrower than half a tile.
    """
    if tile < MIN_TILE:
        raise ParameterError(f"tile side must be at least {MIN_TILE} pixels, got {tile}")
    check_halo(tile, halo)
    ys, by = _starts_and_borders(height, tile, halo)
    xs, bx = _starts_and_borders(width, tile, halo)
    tiles = []
    for r, y in enumerate(ys):
        for c, x in enumerate(xs):
            tiles.append(
                Tile(
                    len(tiles),
                    r,
                    c,
                    y,
                    x,
                    min(y + tile, height),
                    min(x + tile, width),
                    by[r],
                    bx[c],
                    by[r + 1],
                    bx[c + 1],
                )
            )
    return tiles


def neighbour_pairs(tiles: list[Tile]) -> list[tuple[int, int, tuple[int, int, int, int]]]:
    """Pairs of overlapping tiles (8-neighbourhood) with their overlap window ``(y0, x0, y1, x1)``."""
    by_pos = {(t.row, t.col): t for t in tiles}
    pairs = []
    for t in tiles:
        for dr, dc in ((0, 1), (1, -1), (1, 0), (1, 1)):
            n = by_pos.get((t.row + dr, t.col + dc))
            if n is None:
                continue
            win = (max(t.y0, n.y0), max(t.x0, n.x0), min(t.y1, n.y1), min(t.x1, n.x1))
            if win[0] < win[2] and win[1] < win[3]:
                pairs.append((t.index, n.index, win))
    return pairs


@dataclass
class Piece:
    """A tile mask cut to its tile's core.

    Attributes:
        tile: tile index.
        rle: the core part as RLE of the whole image.
        area: pixels in the core part.
        bbox: ``[x, y, w, h]`` of the core part in image coordinates.
        score: the tile mask's score.
        extra: the tile mask's extra facts, prompt shifted to image coordinates.
        bands: per neighbour pair index, the tile mask inside that pair's overlap (RLE of the overlap).
    """

    tile: int
    rle: dict[str, Any]
    area: int
    bbox: list[int]
    score: float
    extra: dict[str, Any]
    bands: dict[int, dict[str, Any]] = field(default_factory=dict)


def _shift_prompt(extra: dict[str, Any], dy: int, dx: int) -> dict[str, Any]:
    out = dict(extra)
    prompt = extra.get("prompt")
    if isinstance(prompt, dict):
        p = dict(prompt)
        if "box" in p:
            x1, y1, x2, y2 = p["box"]
            p["box"] = [x1 + dx, y1 + dy, x2 + dx, y2 + dy]
        if "point" in p:
            x, y = p["point"]
            p["point"] = [x + dx, y + dy]
        out["prompt"] = p
    return out


def cut_to_core(
    records: list[MaskRecord],
    tile: Tile,
    pairs: list[tuple[int, int, tuple[int, int, int, int]]],
    height: int,
    width: int,
) -> list[Piece]:
    """Cut one tile's masks (tile coordinates) to the tile's core; keep their overlap bands.

    Args:
        records: the generator's masks for this tile.
        tile: the tile.
        pairs: all neighbour pairs (``neighbour_pairs``); the bands of those touching this tile are kept.
        height: image height.
        width: image width.

    Returns:
        One piece per mask with a non-empty core part.
    """
    mine = [(k, win) for k, (a, b, win) in enumerate(pairs) if tile.index in (a, b)]
    ky0, kx0 = tile.cy0 - tile.y0, tile.cx0 - tile.x0
    ky1, kx1 = tile.cy1 - tile.y0, tile.cx1 - tile.x0
    pieces = []
    for rec in records:
        m = rec.decode()
        core = m[ky0:ky1, kx0:kx1]
        area = int(np.count_nonzero(core))
        if area == 0:
            continue  # the object lies in the halo: the neighbour owning that core reports it
        rows = np.flatnonzero(core.any(axis=1))
        cols = np.flatnonzero(core.any(axis=0))
        bbox = [
            int(tile.cx0 + cols[0]),
            int(tile.cy0 + rows[0]),
            int(cols[-1] - cols[0] + 1),
            int(rows[-1] - rows[0] + 1),
        ]
        bands = {}
        for k, (wy0, wx0, wy1, wx1) in mine:
            band = m[wy0 - tile.y0 : wy1 - tile.y0, wx0 - tile.x0 : wx1 - tile.x0]
            if band.any():
                bands[k] = encode_rle(band)
        pieces.append(
            Piece(
                tile.index,
                encode_rle_window(core, tile.cy0, tile.cx0, height, width),
                area,
                bbox,
                float(rec.score),
                _shift_prompt(rec.extra, tile.y0, tile.x0),
                bands,
            )
        )
    return pieces


def _find(parent: np.ndarray, i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = int(parent[i])
    return i


def join_pieces(
    pieces: list[Piece], pairs: list[tuple[int, int, tuple[int, int, int, int]]], join_iou: float
) -> tuple[np.ndarray, int]:
    """Group pieces that continue each other across tile borders.

    For every neighbour pair, the band masks of the two tiles' pieces are compared with one RLE IoU
    call; a piece is joined with its mutual best match when their band IoU is >= ``join_iou``.

    Args:
        pieces: all pieces.
        pairs: neighbour pairs (indices into them are the keys of ``Piece.bands``).
        join_iou: minimum IoU in the overlap band.

    Returns:
        (group id per piece, number of joins made).
    """
    parent = np.arange(len(pieces))
    by_tile: dict[int, list[int]] = {}
    for i, p in enumerate(pieces):
        by_tile.setdefault(p.tile, []).append(i)
    joins = 0
    for k, (ta, tb, _) in enumerate(pairs):
        a = [i for i in by_tile.get(ta, []) if k in pieces[i].bands]
        b = [i for i in by_tile.get(tb, []) if k in pieces[i].bands]
        if not a or not b:
            continue
        iou = np.asarray(
            mask_utils.iou(
                [rle_for_coco(pieces[i].bands[k]) for i in a],
                [rle_for_coco(pieces[j].bands[k]) for j in b],
                [0] * len(b),
            ),
            dtype=np.float64,
        ).reshape(len(a), len(b))
        best_b = iou.argmax(axis=1)
        best_a = iou.argmax(axis=0)
        mutual = np.flatnonzero((best_a[best_b] == np.arange(len(a))) & (iou.max(axis=1) >= join_iou))
        for ia in mutual:
            ra, rb = _find(parent, a[ia]), _find(parent, b[best_b[ia]])
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
                joins += 1
    groups = np.array([_find(parent, i) for i in range(len(pieces))], dtype=np.int64)
    return groups, joins


def merge_groups(pieces: list[Piece], groups: np.ndarray) -> list[MaskRecord]:
    """One mask record per group: the union of its (disjoint) core pieces.

    Score and predicted IoU/stability are area-weighted means; the prompt is the largest piece's;
    ``extra["tiles"]`` lists the tiles the mask spans.
    """
    out: list[MaskRecord] = []
    if not pieces:
        return out
    order = np.argsort(groups, kind="stable")
    for idx in np.split(order, np.flatnonzero(np.diff(groups[order])) + 1):
        members = [pieces[i] for i in idx]
        largest = max(members, key=lambda p: p.area)
        if len(members) == 1:
            rle = dict(largest.rle)
            bbox = list(largest.bbox)
        else:
            merged = mask_utils.merge([rle_for_coco(p.rle) for p in members], intersect=False)
            rle = rle_for_json(merged)
            bbox = [int(round(v)) for v in mask_utils.toBbox(merged)]
        area = sum(p.area for p in members)
        weights = np.array([p.area for p in members], np.float64) / area
        extra = dict(largest.extra)
        for key in ("predicted_iou", "stability_score"):
            vals = [p.extra.get(key) for p in members]
            if all(v is not None for v in vals):
                extra[key] = round(float(np.dot(weights, vals)), 4)
        extra["tiles"] = sorted({p.tile for p in members})
        score = float(np.dot(weights, [p.score for p in members]))
        out.append(MaskRecord(rle=rle, bbox=bbox, area=int(area), score=score, extra=extra))
    return out


def generate_tiled(
    grey: np.ndarray,
    generate_tile: Callable[[np.ndarray], list[MaskRecord]],
    tile: int,
    halo: int,
    join_iou: float,
) -> tuple[list[MaskRecord], dict[str, Any]]:
    """Run a mask generator tile by tile and stitch the masks into masks of the whole image.

    Args:
        grey: H x W uint8 image (the generator gets H' x W' x 3 RGB tiles of it).
        generate_tile: the generator for one tile; returns records in tile coordinates.
        tile: tile side.
        halo: context around each tile's core.
        join_iou: minimum band IoU to join two pieces across a border.

    Returns:
        (mask records of the whole image, tiling facts for the run record).
    """
    if grey.ndim != 2 or grey.dtype != np.uint8:
        raise ValueError(f"expected an H x W uint8 image, got {grey.dtype} {grey.shape}")
    height, width = grey.shape
    tiles = plan_tiles(height, width, tile, halo)
    pairs = neighbour_pairs(tiles)
    pieces: list[Piece] = []
    raw_per_tile = []
    for t in tiles:
        window = grey[t.y0 : t.y1, t.x0 : t.x1]
        records = generate_tile(np.repeat(window[:, :, None], 3, axis=2))
        raw_per_tile.append(len(records))
        pieces.extend(cut_to_core(records, t, pairs, height, width))
    groups, joins = join_pieces(pieces, pairs, join_iou)
    merged = merge_groups(pieces, groups)
    info = {
        "tile": tile,
        "halo": halo,
        "join_iou": join_iou,
        "tiles": len(tiles),
        "grid": [tiles[-1].row + 1, tiles[-1].col + 1],
        "tile_masks": int(sum(raw_per_tile)),
        "core_pieces": len(pieces),
        "joins": joins,
        "masks": len(merged),
    }
    return merged, info
