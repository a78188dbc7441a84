"""The public API: segment a micrograph (SAM masks + booster) and re-boost saved raw masks."""

from __future__ import annotations

import hashlib
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from samiam import __version__
from samiam.boost.config import BoostConfig
from samiam.boost.pipeline import boost_masks, image_field
from samiam.cache import FeatureCache
from samiam.field.build import MaterialField, saturated_pixels
from samiam.generate.config import GeneratorConfig
from samiam.io.micrograph import Micrograph
from samiam.masks import MaskRecord
from samiam.models.build import LoadedModel
from samiam.segmentation import Segmentation


@dataclass
class SegmentConfig:
    """Everything that decides a segmentation result."""

    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    boost: BoostConfig = field(default_factory=BoostConfig)

    def validate(self) -> SegmentConfig:
        self.generator.validate()
        self.boost.validate()
        return self


def generator_mode(model: LoadedModel, cfg: GeneratorConfig) -> str:
    """``points`` for point-capable models, ``boxes`` otherwise (unless forced)."""
    if cfg.mode != "auto":
        return cfg.mode
    return "points" if model.point_prompts else "boxes"


def _generate_one(
    model: LoadedModel,
    rgb: np.ndarray,
    cfg: GeneratorConfig,
    progress: Callable[[int], None] | None,
    boxes: np.ndarray | None = None,
) -> list[MaskRecord]:
    if generator_mode(model, cfg) == "points":
        from samiam.generate.points import generate_point_grid

        return generate_point_grid(model, rgb, cfg, progress)
    from samiam.generate.boxes import generate_box_grid

    return generate_box_grid(model, rgb, cfg, progress, boxes)


def generate_masks(
    mic: Micrograph,
    model: LoadedModel,
    cfg: GeneratorConfig,
    progress: Callable[[int], None] | None = None,
    *,
    cache: FeatureCache | None = None,
    info: dict[str, Any] | None = None,
    boxes: np.ndarray | None = None,
) -> list[MaskRecord]:
    """Run the mask generator suited to the model on one micrograph, tile by tile if it is large.

    Args:
        mic: the image.
        model: the loaded SAM-family model.
        cfg: generator settings (``tile``/``halo``/``join_iou`` decide the tiling).
        progress: called with the number of prompts done (box grid only).
        cache: embedding/decoder cache to read and fill, or None.
        info: if given, receives ``tiling`` (and ``cache``) facts for the run record.
        boxes: box prompts placed from the field for an untiled image (None: the blind grid;
            tiled images always use the grid of each tile).

    Returns:
        Raw mask records of the whole image.
    """
    from samiam.generate.tiling import check_halo, generate_tiled, tile_side

    session = cache.session(model, cfg.stability_score_offset) if cache is not None else None
    run_model = session.model if session is not None else model
    side = tile_side(cfg.tile, model.image_size, mic.height, mic.width)
    grey = np.clip(mic.image * 255.0 + 0.5, 0, 255).astype(np.uint8)  # as Micrograph.to_uint8_rgb
    if side is not None:
        boxes = None
    key, hit = None, None
    tiling: dict[str, Any]
    if session is not None:  # the whole result, for re-runs that change only the booster
        placed = None if boxes is None else hashlib.sha256(np.ascontiguousarray(boxes, np.float32)).hexdigest()
        params = {"mode": generator_mode(model, cfg), "tile": side, **cfg.to_dict(), "placed_boxes": placed}
        key = session.result_key(grey, params)
        hit = session.load_result(key)
    if hit is not None:
        records, tiling = hit
    elif side is None:
        records = _generate_one(run_model, np.repeat(grey[:, :, None], 3, axis=2), cfg, progress, boxes)
        tiling = {"tiles": 1, "tile": None}
    else:
        check_halo(side, cfg.halo)
        records, tiling = generate_tiled(
            grey, lambda rgb: _generate_one(run_model, rgb, cfg, progress), side, cfg.halo, cfg.join_iou
        )
    if session is not None and key is not None and hit is None:  # stored after the tiles, never half
        session.store_result(key, records, tiling)
    if info is not None:
        info["tiling"] = tiling
        if session is not None:
            info["cache"] = session.record()
    return records


def _base_run_record(model_info: dict[str, Any], cfg: SegmentConfig) -> dict[str, Any]:
    return {
        "samiam_version": __version__,
        **model_info,
        "generator": cfg.generator.to_dict(),
        "boost": cfg.boost.to_dict(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


@lru_cache(maxsize=4)
def _load_library_at(path: str, mtime_ns: int) -> Any:
    from samiam.library import load_library

    return load_library(path)


def load_library_cached(path: str) -> Any:
    """Load a library once per file version (batches reuse it)."""
    from samiam.errors import InputError

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: material library not found")
    return _load_library_at(str(p.resolve()), p.stat().st_mtime_ns)


def micrograph_field(mic: Micrograph, cfg: BoostConfig) -> MaterialField:
    """The material field of a micrograph (saturation from its raw values, its pixel size)."""
    from samiam.library import pixel_size_nm

    return image_field(mic.image, cfg, saturated_pixels(mic.raw), pixel_size_nm(mic.pixel_size, mic.pixel_unit))


def boost_segmentation(
    raw: Segmentation, mic: Micrograph, cfg: BoostConfig, encoder: Any = None, field: MaterialField | None = None
) -> Segmentation:
    """Boost saved raw masks (``<stem>.raw.json``) of an image.

    Args:
        raw: the generator's masks.
        mic: the image they belong to (same size).
        cfg: booster settings.
        encoder: optional prepared encoder (reuse across images).
        field: the image's material field if already computed (``fused``/``field`` methods).

    Returns:
        The boosted segmentation, with the raw run record extended.
    """
    from samiam.errors import InputError

    if (raw.height, raw.width) != (mic.height, mic.width):
        raise InputError(
            f"{mic.source}: image is {mic.width}x{mic.height} but the raw masks are for "
            f"{raw.width}x{raw.height} ({raw.file})"
        )
    if cfg.library or cfg.fill:
        from samiam.library import boost_with_library, pixel_size_nm

        library = load_library_cached(cfg.library) if cfg.library else None
        masks, info = boost_with_library(
            mic.image,
            raw.masks,
            cfg,
            library,
            cfg.fill,
            pixel_size_nm=pixel_size_nm(mic.pixel_size, mic.pixel_unit),
            encoder=encoder,
        )
    else:
        if cfg.method != "crops" and field is None:
            field = micrograph_field(mic, cfg)
        masks, info = boost_masks(mic.image, raw.masks, cfg, encoder, field=field)
    run = dict(raw.run)
    run["boost"] = cfg.to_dict()
    run["boosted"] = True
    run["booster"] = info
    run["materials_chosen"] = info.get("materials", 0)
    timings = dict(run.get("timings", {}))
    timings.update({f"boost_{k}": v for k, v in info.get("timings", {}).items()})
    run["timings"] = timings
    return Segmentation(file=mic.source, height=mic.height, width=mic.width, masks=masks, run=run)


def segment_micrograph(
    mic: Micrograph,
    model: LoadedModel,
    cfg: SegmentConfig | None = None,
    *,
    boost: bool = True,
    encoder: Any = None,
    progress: Callable[[int], None] | None = None,
    cache: FeatureCache | None = None,
) -> tuple[Segmentation, Segmentation]:
    """Segment one micrograph: generator masks, then (optionally) the booster.

    Args:
        mic: the image.
        model: the loaded model.
        cfg: generator and booster settings (defaults if None).
        boost: run the booster; if False the result is the raw masks.
        encoder: optional prepared texture encoder.
        progress: prompt-progress callback for the generator.
        cache: embedding/decoder cache (re-runs skip the model), or None.

    Returns:
        (raw segmentation, final segmentation); identical objects when ``boost`` is False.
    """
    cfg = (cfg or SegmentConfig()).validate()
    gen_info: dict[str, Any] = {}
    field, boxes = None, None
    method = cfg.boost.method if boost and not cfg.boost.library and not cfg.boost.fill else "crops"
    t = time.perf_counter()
    if method != "crops":
        field = micrograph_field(mic, cfg.boost)
        if (
            method == "fused"
            and cfg.generator.box_placement == "field"
            and generator_mode(model, cfg.generator) == "boxes"
        ):
            from samiam.field.prompts import field_prompt_boxes

            boxes, gen_info["placed_prompts"] = field_prompt_boxes(
                field.labels, tuple(cfg.generator.box_scales), cfg.generator.box_overlap
            )
    field_time = time.perf_counter() - t
    t = time.perf_counter()
    if method == "field":  # no SAM at all
        records: list[MaskRecord] = []
    else:
        records = generate_masks(mic, model, cfg.generator, progress, cache=cache, info=gen_info, boxes=boxes)
    gen_time = time.perf_counter() - t
    run = _base_run_record(model.describe(), cfg)
    run.update(
        generator_mode=generator_mode(model, cfg.generator),
        model_choice=model.reason,
        boosted=False,
        timings={"generate": round(gen_time, 4), "field": round(field_time, 4)},
        input={"file": mic.source, "dtype": mic.dtype, "pixel_size": mic.pixel_size, "pixel_unit": mic.pixel_unit},
        **gen_info,
    )
    raw = Segmentation(file=mic.source, height=mic.height, width=mic.width, masks=records, run=run)
    if not boost:
        return raw, raw
    return raw, boost_segmentation(raw, mic, cfg.boost, encoder, field)
