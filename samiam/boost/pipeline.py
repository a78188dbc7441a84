"""The semantic booster end to end: filter → crops → encode → cluster → merge."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from samiam.boost.config import BoostConfig
from samiam.boost.crops import crop_side_for_image, sample_crops
from samiam.boost.encoders import make_encoder
from samiam.boost.geometry import geometric_filter
from samiam.boost.merge import cluster_crops, merge_by_material, vote
from samiam.masks import MaskRecord


def boost_masks(
    image: np.ndarray, records: list[MaskRecord], cfg: BoostConfig, encoder: Any = None
) -> tuple[list[MaskRecord], dict[str, Any]]:
    """Turn raw SAM masks into one disjoint mask per material.

    Args:
        image: HxW float image in [0, 1] (crops are taken from it).
        records: raw masks of that image.
        cfg: booster settings.
        encoder: a prepared encoder (crops → features); built from ``cfg.encoder`` if None.

    Returns:
        (final masks with ``material`` ids, info dict: counts, materials chosen, timings).
    """
    cfg.validate()
    h, w = image.shape
    timings: dict[str, float] = {}
    t = time.perf_counter()
    kept, report = geometric_filter(records, h * w, cfg)
    timings["filter"] = time.perf_counter() - t
    info: dict[str, Any] = {
        "raw_masks": len(records),
        "filtered_masks": len(kept),
        "dropped": report.to_dict(),
    }
    if not kept:
        info.update(materials=0, materials_reason="no masks left after the filter", timings=timings)
        return [], info

    t = time.perf_counter()
    side = crop_side_for_image(h, w, cfg.crop_size, cfg.min_crop_size)
    crops = sample_crops(image, kept, side, cfg.crops_per_mask, cfg.min_crop_size, cfg.seed)
    timings["crops"] = time.perf_counter() - t
    info["crop_size"] = side
    info["crops"] = len(crops.crops)
    if not crops.crops:
        info.update(materials=0, materials_reason="no mask wide enough for a crop", timings=timings)
        return [], info

    t = time.perf_counter()
    enc = encoder if encoder is not None else make_encoder(cfg.encoder, cfg.encoder_weights)
    feats = enc(crops.crops)
    timings["encode"] = time.perf_counter() - t

    t = time.perf_counter()
    n_voting = int(np.unique(crops.owner).size)
    clustering = cluster_crops(feats, cfg.materials, cfg.max_materials, cfg.seed, n_voting)
    winner, conf = vote(crops.owner, clustering.labels, len(kept), clustering.n_clusters)
    timings["cluster"] = time.perf_counter() - t

    t = time.perf_counter()
    final = merge_by_material(kept, winner, conf, (h, w))
    timings["merge"] = time.perf_counter() - t
    info.update(
        materials=len(final),
        materials_reason=clustering.reason,
        silhouette={str(k): round(v, 4) for k, v in clustering.scores.items()},
        masks_without_crops=int((winner < 0).sum()),
        timings={k: round(v, 4) for k, v in timings.items()},
    )
    return final, info
