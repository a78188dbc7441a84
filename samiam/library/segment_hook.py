"""One call for ``samiam segment``: geometric filter → library naming (or unsupervised merge) → fill."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from samiam.boost.config import BoostConfig
from samiam.boost.geometry import geometric_filter
from samiam.boost.pipeline import boost_masks
from samiam.library.classify import LibraryClassifier, NamingConfig, name_masks
from samiam.library.fill import FillConfig, fill_unsegmented
from samiam.library.store import Library
from samiam.masks import MaskRecord


def boost_with_library(
    image: np.ndarray,
    records: list[MaskRecord],
    cfg: BoostConfig,
    library: Library | None = None,
    fill: bool = False,
    *,
    pixel_size_nm: float | None = None,
    naming: NamingConfig | None = None,
    fill_cfg: FillConfig | None = None,
    encoder: Any = None,
) -> tuple[list[MaskRecord], dict[str, Any]]:
    """Turn raw masks into final masks: named by a library when given, optionally densely completed.

    Without a library this is ``samiam.boost.pipeline.boost_masks`` (numbered materials); with one,
    the masks left by the geometric filter are named by ``name_masks``. ``fill`` then assigns
    unsegmented pixels (``fill_unsegmented``; prototypes: the library, else the image's own masks).

    Args:
        image: HxW float image in [0, 1].
        records: raw masks of that image.
        cfg: booster settings.
        library: material library, or None for unsupervised merging.
        fill: run dense completion.
        pixel_size_nm: the image's pixel size in nm when known (``samiam.library.pixel_size_nm(
            mic.pixel_size, mic.pixel_unit)``); crops are then resampled to the library's pixel size.
        naming: matching settings (defaults if None).
        fill_cfg: completion settings (defaults if None).
        encoder: prepared encoder of ``cfg.encoder``, reused across images; ignored when a library
            built with another encoder is given (the library's encoder is built instead).

    Returns:
        (final disjoint masks, info dict for the run record: the booster's or the naming's info,
        plus ``library`` and ``fill`` entries).
    """
    cfg.validate()
    naming = (naming or NamingConfig()).validate()
    if library is not None and library.encoder != cfg.encoder:
        encoder = None
    if library is None:
        final, info = boost_masks(image, records, cfg, encoder)
        clf = None
    else:
        h, w = image.shape
        t = time.perf_counter()
        kept, report = geometric_filter(records, h * w, cfg)
        filter_time = time.perf_counter() - t
        clf = LibraryClassifier(library, naming)
        final, info = name_masks(
            image,
            kept,
            library,
            cfg,
            naming=naming,
            pixel_size_nm=pixel_size_nm,
            encoder=encoder,
            classifier=clf,
        )
        info["raw_masks"] = len(records)
        info["dropped"] = report.to_dict()
        info.setdefault("timings", {})["filter"] = round(filter_time, 4)
        info["library"] = {
            "materials": library.names,
            "encoder": library.encoder,
            "crop_size": library.crop_size,
            "pixel_size_nm": library.pixel_size_nm,
            "image_pixel_size_nm": pixel_size_nm,
        }
    if fill:
        fill_cfg = (fill_cfg or FillConfig()).validate()
        t = time.perf_counter()
        before = sum(r.area for r in final)
        final = fill_unsegmented(
            image,
            final,
            library,
            cfg,
            fill=fill_cfg,
            naming=naming,
            pixel_size_nm=pixel_size_nm,
            encoder=encoder,
            classifier=clf,
        )
        after = sum(r.area for r in final)
        info["fill"] = {
            **fill_cfg.to_dict(),
            "prototypes": "library" if library is not None else "own masks",
            "filled_pixels": int(after - before),
            "coverage": round(after / float(image.size), 4),
        }
        info.setdefault("timings", {})["fill"] = round(time.perf_counter() - t, 4)
        info["materials"] = len(final)
    return final, info
