"""The semantic booster end to end.

``method``: ``crops`` (filter → crops → encode → cluster → merge, the paper's booster), ``fused``
(filter → the dense material field → fusion, ``samiam.boost.fuse``) or ``field`` (the field alone).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from samiam.boost.config import BoostConfig
from samiam.boost.crops import crop_side_for_image, sample_crops
from samiam.boost.encoders import make_encoder
from samiam.boost.fuse import fuse_masks_with_field
from samiam.boost.geometry import geometric_filter
from samiam.boost.merge import cluster_crops, materials_from_owner, merge_by_material, vote
from samiam.field.build import MaterialField, material_field
from samiam.masks import MaskRecord


def boost_masks(
    image: np.ndarray,
    records: list[MaskRecord],
    cfg: BoostConfig,
    encoder: Any = None,
    *,
    field: MaterialField | None = None,
    saturated: np.ndarray | None = None,
    pixel_size_nm: float | None = None,
) -> tuple[list[MaskRecord], dict[str, Any]]:
    """Turn raw SAM masks into one disjoint mask per material, by ``cfg.method``.

    Args:
        image: HxW float image in [0, 1] (crops and the field are taken from it).
        records: raw masks of that image (unused by ``field``).
        cfg: booster settings.
        encoder: a prepared encoder (crops → features); built from ``cfg.encoder`` if None.
        field: the image's material field if already computed (``fused``/``field``).
        saturated: (H, W) bool saturated detector pixels (``samiam.field.build.saturated_pixels``).
        pixel_size_nm: pixel size when the file gives one (reported with the lattice period).

    Returns:
        (final masks with ``material`` ids, info dict: counts, materials chosen, timings).
    """
    cfg.validate()
    if cfg.method != "crops":
        return boost_with_field(image, records, cfg, field=field, saturated=saturated, pixel_size_nm=pixel_size_nm)
    return boost_with_crops(image, records, cfg, encoder)


def image_field(
    image: np.ndarray, cfg: BoostConfig, saturated: np.ndarray | None = None, pixel_size_nm: float | None = None
) -> MaterialField:
    """The material field of an image with the booster's settings (K, bound, seed)."""
    return material_field(
        image,
        cfg.materials,
        cfg.field,
        max_materials=cfg.max_materials,
        pixel_size_nm=pixel_size_nm,
        seed=cfg.seed,
        saturated=saturated,
    )


def boost_with_field(
    image: np.ndarray,
    records: list[MaskRecord],
    cfg: BoostConfig,
    *,
    field: MaterialField | None = None,
    saturated: np.ndarray | None = None,
    pixel_size_nm: float | None = None,
) -> tuple[list[MaskRecord], dict[str, Any]]:
    """``fused``: filtered SAM masks take their material from the field; ``field``: the field alone."""
    h, w = image.shape
    timings: dict[str, float] = {}
    t = time.perf_counter()
    if field is None:
        field = image_field(image, cfg, saturated, pixel_size_nm)
    timings["field"] = time.perf_counter() - t
    info: dict[str, Any] = {"method": cfg.method, "raw_masks": len(records), "field": field.info}
    if cfg.method == "fused" and records:
        t = time.perf_counter()
        kept, report = geometric_filter(records, h * w, cfg)
        timings["filter"] = time.perf_counter() - t
        t = time.perf_counter()
        owner, fusion = fuse_masks_with_field(
            kept, field, purity=cfg.fusion_purity, min_confidence=cfg.fusion_min_confidence
        )
        timings["fuse"] = time.perf_counter() - t
        info.update(filtered_masks=len(kept), dropped=report.to_dict(), fusion=fusion.to_dict())
    else:
        owner = np.where(field.confidence >= cfg.fusion_min_confidence, field.labels, -1)
    final = materials_from_owner(owner, lambda c: (float(field.confidence[owner == c].mean()), {"field_material": c}))
    info.update(
        materials=len(final),
        materials_reason=field.info.get("materials_reason"),
        timings={k: round(v, 4) for k, v in timings.items()},
    )
    return final, info


def boost_with_crops(
    image: np.ndarray, records: list[MaskRecord], cfg: BoostConfig, encoder: Any = None
) -> tuple[list[MaskRecord], dict[str, Any]]:
    """The paper's booster: filter → crops → encode → cluster → vote → merge."""
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
