"""The embedding/decoder cache: identical results on re-runs, hits, invalidation, pruning."""

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from samiam.cache import DILATE, FeatureCache, logit_windows, model_fingerprint
from samiam.errors import OutputError
from samiam.generate.config import GeneratorConfig
from samiam.io.micrograph import micrograph_from_array
from samiam.pipeline import generate_masks
from samiam.synth.stem import stack_cross_section

BOXES = dict(mode="boxes", box_scales=(0.5,), pred_iou_thresh=0, stability_score_thresh=0, tile=0)


@pytest.fixture(scope="module")
def mic():
    img, _, _ = stack_cross_section(200, 200, seed=6)
    return micrograph_from_array(img, "cache-test")


def _run(mic, model, cfg, cache=None):
    info: dict = {}
    recs = generate_masks(mic, model, cfg, cache=cache, info=info)
    return recs, info.get("cache")


def _same(a, b):
    assert [r.rle for r in a] == [r.rle for r in b]
    assert [r.score for r in a] == [r.score for r in b]
    assert [r.extra for r in a] == [r.extra for r in b]


def test_rerun_hits_and_reproduces_masks(tmp_path: Path, tiny_model, mic):
    cfg = GeneratorConfig(**BOXES)
    plain, _ = _run(mic, tiny_model, cfg)
    cache = FeatureCache(tmp_path / "c")
    first, s1 = _run(mic, tiny_model, cfg, cache)
    assert s1["encoder_misses"] == 1 and s1["decoder_misses"] > 0 and s1["decoder_hits"] == 0
    assert s1["result_misses"] == 1 and s1["result_hits"] == 0
    # the same generator settings again: the stored result, no model call at all
    second, s2 = _run(mic, tiny_model, cfg, cache)
    assert s2["result_hits"] == 1 and s2["encoder_hits"] == s2["encoder_misses"] == s2["decoder_misses"] == 0
    _same(plain, first)
    _same(plain, second)
    # new thresholds/NMS: a new result, but every embedding and prompt comes from the cache
    cfg2 = dataclasses.replace(cfg, box_nms_thresh=0.3, pred_iou_thresh=0.2)
    third, s3 = _run(mic, tiny_model, cfg2, cache)
    assert s3["result_misses"] == 1 and s3["encoder_hits"] == 1 and s3["encoder_misses"] == 0
    assert s3["decoder_misses"] == 0 and s3["decoder_hits"] == s1["decoder_misses"]
    _same(third, _run(mic, tiny_model, cfg2)[0])


def test_booster_only_rerun_skips_the_generator(tmp_path: Path, tiny_model, mic):
    from samiam.boost.config import BoostConfig
    from samiam.pipeline import SegmentConfig, segment_micrograph

    cache = FeatureCache(tmp_path / "c")
    cfg = SegmentConfig(generator=GeneratorConfig(**BOXES), boost=BoostConfig(method="fused"))
    raw1, _ = segment_micrograph(mic, tiny_model, cfg, cache=cache)
    cfg2 = SegmentConfig(generator=GeneratorConfig(**BOXES), boost=BoostConfig(method="fused", materials=1))
    raw2, seg2 = segment_micrograph(mic, tiny_model, cfg2, cache=cache)
    assert raw2.run["cache"]["result_hits"] == 1 and raw2.run["cache"]["encoder_hits"] == 0
    _same(raw1.masks, raw2.masks)
    assert raw2.run["tiling"] == raw1.run["tiling"] and seg2.run["boost"]["materials"] == 1


def test_point_generator_through_the_cache(tmp_path: Path, tiny_model, mic):
    cfg = GeneratorConfig(mode="points", points_per_side=4, pred_iou_thresh=0, stability_score_thresh=0, tile=0)
    cache = FeatureCache(tmp_path / "c")
    _run(mic, tiny_model, cfg, cache)
    cfg2 = dataclasses.replace(cfg, box_nms_thresh=0.5)
    again, stats = _run(mic, tiny_model, cfg2, cache)
    assert stats["encoder_hits"] == 1 and stats["decoder_misses"] == 0 and stats["decoder_hits"] > 0
    _same(_run(mic, tiny_model, cfg2)[0], again)


def test_checkpoint_change_invalidates(tmp_path: Path, tiny_model, mic):
    from samiam.models.build import load_model

    cache = FeatureCache(tmp_path / "c")
    cfg = GeneratorConfig(**BOXES)
    _run(mic, tiny_model, cfg, cache)
    other = load_model("tiny-random", device="cpu", seed=1)  # other weights
    assert model_fingerprint(other) != model_fingerprint(tiny_model)
    _, stats = _run(mic, other, cfg, cache)
    assert stats["encoder_hits"] == 0 and stats["decoder_hits"] == 0
    # a verified checkpoint is identified by its SHA-256, not by hashing the weights
    a = dataclasses.replace(tiny_model, sha256="a" * 64)
    b = dataclasses.replace(tiny_model, sha256="b" * 64)
    assert model_fingerprint(a) != model_fingerprint(b) != model_fingerprint(tiny_model)
    assert cache.model_folder(a) != cache.model_folder(b)


def test_tile_settings_change_invalidates(tmp_path: Path, tiny_model):
    img, _, _ = stack_cross_section(300, 300, seed=7)
    big = micrograph_from_array(img, "big")
    cache = FeatureCache(tmp_path / "c")
    cfg = GeneratorConfig(**{**BOXES, "tile": 200, "halo": 25})
    _, s1 = _run(big, tiny_model, cfg, cache)
    assert s1["encoder_misses"] == 4
    _, s2 = _run(big, tiny_model, dataclasses.replace(cfg, box_nms_thresh=0.5), cache)
    assert s2["encoder_hits"] == 4 and s2["encoder_misses"] == 0
    cfg2 = dataclasses.replace(cfg, tile=160, halo=20)  # other tile windows: other encoder inputs
    recs, s3 = _run(big, tiny_model, cfg2, cache)
    assert s3["encoder_misses"] >= 8 and s3["encoder_hits"] <= 1  # only the (0, 0) corner window could repeat
    _same(recs, _run(big, tiny_model, cfg2)[0])


def test_result_key_covers_pixels_settings_and_code(tmp_path: Path, tiny_model, monkeypatch):
    import samiam.cache as cache_mod

    session = FeatureCache(tmp_path / "c").session(tiny_model)
    img = np.zeros((20, 30), np.uint8)
    key = session.result_key(img, {"a": 1})
    assert session.result_key(img.copy(), {"a": 1}) == key
    img2 = img.copy()
    img2[3, 4] = 1
    assert session.result_key(img2, {"a": 1}) != key
    assert session.result_key(img, {"a": 2}) != key
    monkeypatch.setattr(cache_mod, "generator_code_hash", lambda: "other code")
    assert session.result_key(img, {"a": 1}) != key


def test_logit_windows_keep_everything_near_the_threshold():
    low = torch.full((2, 1, 32, 32), -50.0)
    low[0, 0, 10:12, 20:25] = 3.0
    low[0, 0, 9, 19] = -5.0  # inside the margin: kept
    win = logit_windows(low, 0.0, 8.0)
    assert win[0, 0].tolist() == [9 - DILATE, 12 + DILATE, 19 - DILATE, 25 + DILATE]
    assert win[1, 0].tolist() == [0, 0, 0, 0]  # nothing above threshold - margin


def test_larger_stability_offset_needs_new_entries(tmp_path: Path, tiny_model, mic):
    cache = FeatureCache(tmp_path / "c")
    cfg = GeneratorConfig(**BOXES)
    _run(mic, tiny_model, cfg, cache)
    wide = dataclasses.replace(cfg, stability_score_offset=20.0)  # beyond the stored logit margin
    recs, stats = _run(mic, tiny_model, wide, cache)
    assert stats["encoder_hits"] == 1 and stats["decoder_hits"] == 0 and stats["decoder_misses"] > 0
    _same(recs, _run(mic, tiny_model, wide)[0])


def test_corrupt_entry_is_recomputed(tmp_path: Path, tiny_model, mic):
    cache = FeatureCache(tmp_path / "c")
    cfg = GeneratorConfig(**BOXES)
    first, _ = _run(mic, tiny_model, cfg, cache)
    for f in (tmp_path / "c").rglob("embedding.npy"):
        f.write_bytes(b"\x93NUMPY garbage")
    for k, f in enumerate(sorted((tmp_path / "c").rglob("*.npz"))):
        data = f.read_bytes()  # a truncated archive, or garbage
        f.write_bytes(data[: len(data) // 2] if k % 2 == 0 else b"PK garbage")
    for f in (tmp_path / "c").rglob("results/*/*.json"):
        f.write_text('{"records": [')
    again, stats = _run(mic, tiny_model, cfg, cache)
    assert stats["result_misses"] == 1 and stats["encoder_misses"] == 1 and stats["decoder_misses"] > 0
    _same(first, again)


def test_prune_removes_least_recently_used(tmp_path: Path, tiny_model):
    cache = FeatureCache(tmp_path / "c")
    cfg = GeneratorConfig(**BOXES)
    for seed in (1, 2, 3):
        img, _, _ = stack_cross_section(160, 160, seed=seed)
        _run(micrograph_from_array(img, f"s{seed}"), tiny_model, cfg, cache)
    entries = sorted((tmp_path / "c").rglob("embedding.npy"))
    results = sorted((tmp_path / "c").rglob("results/*/*.json"))
    assert len(entries) == 3 and len(results) == 3
    for k, e in enumerate(entries):  # make the ages explicit: the first embedding is the oldest entry
        os.utime(e.parent, (1000 + k, 1000 + k))
    for r in results:
        os.utime(r, (5000, 5000))
    oldest = sum(p.stat().st_size for p in entries[0].parent.rglob("*") if p.is_file())
    assert cache.prune(max_bytes=cache.size_bytes() - oldest // 2) == 1
    left = sorted((tmp_path / "c").rglob("embedding.npy"))
    assert left == entries[1:] and len(list((tmp_path / "c").rglob("results/*/*.json"))) == 3
    assert cache.prune(max_bytes=0) == 5 and cache.size_bytes() == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
def test_unwritable_cache_folder(tmp_path: Path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(OutputError, match="cache folder is not writable"):
        FeatureCache(ro / "sub").check()


def test_cache_folder_that_is_a_file(tmp_path: Path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OutputError, match="cache folder is not writable"):
        FeatureCache(f).check()


def test_default_folder_follows_the_environment(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SAMIAM_FEATURE_CACHE", str(tmp_path / "env"))
    assert FeatureCache().root == tmp_path / "env"
    assert np.isfinite(FeatureCache().max_bytes)
