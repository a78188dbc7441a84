"""Point-grid mask generation with segment-anything's ``SamAutomaticMaskGenerator``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from samiam.generate.config import GeneratorConfig
from samiam.masks import MaskRecord
from samiam.models.build import LoadedModel


def generate_point_grid(
    model: LoadedModel,
    image_rgb: np.ndarray,
    cfg: GeneratorConfig,
    progress: Callable[[int], None] | None = None,
) -> list[MaskRecord]:
    """Run SAM's automatic mask generator on an HxWx3 uint8 image.

    Args:
        model: a point-capable model.
        image_rgb: HxWx3 uint8.
        cfg: generator settings.
        progress: unused hook (SAM's generator reports nothing per batch).

    Returns:
        Mask records (COCO RLE) with predicted IoU, stability score and prompt point in ``extra``.
    """
    from segment_anything import SamAutomaticMaskGenerator

    iou_thresh, stab_thresh = cfg.thresholds("points")
    amg = SamAutomaticMaskGenerator(
        model.sam,
        points_per_side=cfg.points_per_side,
        points_per_batch=cfg.points_per_batch,
        pred_iou_thresh=iou_thresh,
        stability_score_thresh=stab_thresh,
        stability_score_offset=cfg.stability_score_offset,
        box_nms_thresh=cfg.box_nms_thresh,
        crop_n_layers=cfg.crop_n_layers,
        crop_n_points_downscale_factor=cfg.crop_n_points_downscale_factor,
        min_mask_region_area=cfg.min_mask_region_area,
        output_mode="coco_rle",
    )
    out = []
    for ann in amg.generate(image_rgb):
        rle = ann["segmentation"]
        out.append(
            MaskRecord(
                rle={"size": list(rle["size"]), "counts": rle["counts"]},
                bbox=[int(round(v)) for v in ann["bbox"]],
                area=int(ann["area"]),
                score=float(ann["predicted_iou"]),
                extra={
                    "predicted_iou": round(float(ann["predicted_iou"]), 4),
                    "stability_score": round(float(ann["stability_score"]), 4),
                    "prompt": {"point": [round(float(v), 1) for v in ann["point_coords"][0]]},
                },
            )
        )
    return out
