"""Tiling: tile layout, RLE of a placed crop, and masks stitched across tile borders."""

import cv2
import numpy as np
import pytest

from samiam.errors import ParameterError
from samiam.generate.config import GeneratorConfig
from samiam.generate.tiling import (
    decode_rle_box,
    encode_rle_window,
    generate_tiled,
    neighbour_pairs,
    parse_tile,
    plan_tiles,
    tile_side,
)
from samiam.masks import MaskRecord, decode_rle, encode_rle


def components_generator(rgb: np.ndarray) -> list[MaskRecord]:
    """A stand-in for SAM: one mask per connected bright region of the tile (exact and local)."""
    n, lab = cv2.connectedComponents((rgb[:, :, 0] > 127).astype(np.uint8), connectivity=8)
    return [MaskRecord.from_mask(lab == k, score=0.9, extra={"prompt": {"point": [0.0, 0.0]}}) for k in range(1, n)]


def disk(shape, cy, cx, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


@pytest.mark.parametrize("h, w, tile, halo", [(600, 600, 256, 32), (1000, 300, 256, 64), (257, 900, 200, 50)])
def test_cores_partition_the_image_with_halo_context(h, w, tile, halo):
    tiles = plan_tiles(h, w, tile, halo)
    owner = np.zeros((h, w), int)
    for t in tiles:
        assert 0 <= t.y0 <= t.cy0 < t.cy1 <= t.y1 <= h and 0 <= t.x0 <= t.cx0 < t.cx1 <= t.x1 <= w
        assert t.y1 - t.y0 == min(tile, h) and t.x1 - t.x0 == min(tile, w)
        owner[t.cy0 : t.cy1, t.cx0 : t.cx1] += 1
        # inner core sides keep at least `halo` pixels of context
        assert t.cy0 == 0 or t.cy0 - t.y0 >= halo
        assert t.cx0 == 0 or t.cx0 - t.x0 >= halo
        assert t.cy1 == h or t.y1 - t.cy1 >= halo
        assert t.cx1 == w or t.x1 - t.cx1 >= halo
    assert (owner == 1).all()
    for a, b, (y0, x0, y1, x1) in neighbour_pairs(tiles):
        assert y0 < y1 and x0 < x1 and a != b


def test_tile_parameters():
    assert parse_tile("auto") is None and parse_tile("off") == 0 and parse_tile("512") == 512
    with pytest.raises(ParameterError, match="tile must be"):
        parse_tile("big")
    with pytest.raises(ParameterError, match="at least"):
        parse_tile("10")
    assert tile_side(None, 256, 2048, 2048) is None  # fits the auto tile (8 x 256)
    assert tile_side(None, 256, 2049, 800) == 2048
    assert tile_side(0, 256, 8000, 8000) is None
    with pytest.raises(ParameterError, match="halo"):
        plan_tiles(500, 500, 200, 60)
    with pytest.raises(ParameterError, match="halo"):
        GeneratorConfig(tile=256, halo=100).validate()
    with pytest.raises(ParameterError, match="tile"):
        GeneratorConfig(tile=20).validate()


def test_encode_rle_window_matches_dense_encoding():
    rng = np.random.default_rng(0)
    for _ in range(200):
        hh, ww = (int(v) for v in rng.integers(1, 30, 2))
        h, w = int(rng.integers(1, hh + 1)), int(rng.integers(1, ww + 1))
        y0, x0 = int(rng.integers(0, hh - h + 1)), int(rng.integers(0, ww - w + 1))
        crop = rng.random((h, w)) < rng.random()
        full = np.zeros((hh, ww), bool)
        full[y0 : y0 + h, x0 : x0 + w] = crop
        assert encode_rle_window(crop, y0, x0, hh, ww) == encode_rle(full)
    with pytest.raises(ValueError, match="does not fit"):
        encode_rle_window(np.ones((5, 5), bool), 8, 0, 10, 10)


def test_decode_rle_box_matches_dense_decoding():
    rng = np.random.default_rng(1)
    for _ in range(200):
        hh, ww = (int(v) for v in rng.integers(1, 40, 2))
        m = rng.random((hh, ww)) < rng.random()
        if rng.random() < 0.2:
            m[:] = rng.random() < 0.5  # empty and full masks
        x0, y0 = int(rng.integers(0, ww)), int(rng.integers(0, hh))
        w, h = int(rng.integers(0, ww - x0 + 1)), int(rng.integers(0, hh - y0 + 1))
        for rle in (encode_rle(m), {**encode_rle(m), "counts": encode_rle(m)["counts"].encode("ascii")}):
            np.testing.assert_array_equal(decode_rle_box(rle, [x0, y0, w, h]), m[y0 : y0 + h, x0 : x0 + w])
    big = np.zeros((3000, 2000), bool)  # counts beyond 2**20 need several chunks
    big[2500:, 1500:] = True
    np.testing.assert_array_equal(decode_rle_box(encode_rle(big), [1400, 2400, 600, 600]), big[2400:, 1400:])


def test_masks_crossing_tile_borders_come_out_whole():
    h = w = 600
    tiles = plan_tiles(h, w, 256, 32)
    by, bx = tiles[0].cy1, tiles[0].cx1  # first core borders
    objects = [
        disk((h, w), by, bx, 40),  # across a tile corner: four tiles
        disk((h, w), 90, tiles[1].cx1, 30),  # across a vertical border
        disk((h, w), 300, 300, 20) & ~disk((h, w), 300, 300, 8),  # a ring inside one core
        np.zeros((h, w), bool),  # a band across the whole image: all tiles of two rows
    ]
    objects[3][480:530, 5:595] = True
    # two blobs close to a border but apart: must stay two masks
    objects.append(disk((h, w), 450, bx - 14, 10))
    objects.append(disk((h, w), 450, bx + 14, 10))
    image = np.zeros((h, w), np.uint8)
    for m in objects:
        image[m] = 255
    records, info = generate_tiled(image, components_generator, 256, 32, 0.5)
    assert info["tiles"] == 9 and info["joins"] > 0
    assert len(records) == len(objects)
    found = [r.decode() for r in records]
    for m in objects:
        assert any((f == m).all() for f in found), "an object was not reproduced exactly"
    for r, f in zip(records, found, strict=True):
        assert r.area == f.sum() and r.shape == (h, w)
        x, y, bw, bh = r.bbox
        assert f[y : y + bh, x : x + bw].sum() == r.area
    corner = next(r for r, f in zip(records, found, strict=True) if f[by, bx])
    assert len(corner.extra["tiles"]) == 4


def test_no_masks_in_any_tile():
    records, info = generate_tiled(np.zeros((300, 300), np.uint8), components_generator, 128, 16, 0.5)
    assert records == [] and info["masks"] == 0 and info["tiles"] == 9


def test_prompts_are_shifted_to_image_coordinates():
    image = np.zeros((300, 300), np.uint8)
    image[250:280, 250:280] = 255

    def gen(rgb):
        recs = components_generator(rgb)
        for r in recs:
            r.extra["prompt"] = {"box": [0.0, 0.0, 10.0, 10.0]}
        return recs

    records, info = generate_tiled(image, gen, 128, 16, 0.5)
    assert len(records) == 1 and info["tiles"] > 1
    x1, y1, x2, y2 = records[0].extra["prompt"]["box"]
    t = plan_tiles(300, 300, 128, 16)[-1]
    assert (x1, y1) == (t.x0, t.y0) and (x2 - x1, y2 - y1) == (10.0, 10.0)


def test_generate_masks_tiles_a_large_image_with_a_real_model(tiny_model):
    from samiam.io.micrograph import micrograph_from_array
    from samiam.pipeline import generate_masks
    from samiam.synth.stem import stack_cross_section

    img, _, _ = stack_cross_section(300, 300, seed=2)
    mic = micrograph_from_array(img)
    cfg = GeneratorConfig(
        mode="boxes", tile=200, halo=25, box_scales=(0.5,), pred_iou_thresh=0, stability_score_thresh=0
    )
    info: dict = {}
    records = generate_masks(mic, tiny_model, cfg, info=info)
    assert info["tiling"]["tiles"] == 4 and info["tiling"]["tile"] == 200
    assert records and all(r.shape == (300, 300) for r in records)
    assert all(decode_rle(r.rle).sum() == r.area > 0 for r in records)
    info_off: dict = {}
    generate_masks(mic, tiny_model, GeneratorConfig(mode="boxes", tile=0, box_scales=(0.5,)), info=info_off)
    assert info_off["tiling"]["tiles"] == 1
