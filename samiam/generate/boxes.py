"""Box-prompt grid mask generation, for models that answer boxes but not points (LiteMedSAM).

A multi-scale grid of square boxes covers the image; every box is one prompt. Masks are
scored and filtered on the decoder's low-resolution logits (predicted IoU, stability), then
de-duplicated by box NMS, and only the survivors are upsampled to full size and RLE-encoded,
so memory stays bounded by one batch of full-size masks.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from samiam.generate.config import GeneratorConfig
from samiam.masks import MaskRecord, bbox_of, encode_rle
from samiam.models.build import LoadedModel


def box_grid(height: int, width: int, scales: tuple[float, ...], overlap: float) -> np.ndarray:
    """Square boxes on a regular grid at several scales, clipped to the image.

    Args:
        height: image height.
        width: image width.
        scales: box side as a fraction of the short image side.
        overlap: fraction of a box shared with its neighbour (stride = side * (1 - overlap)).

    Returns:
        (N, 4) float32 boxes ``x1, y1, x2, y2`` in pixels.
    """
    boxes = []
    short = min(height, width)
    for s in scales:
        side = max(8.0, s * short)
        stride = max(1.0, side * (1.0 - overlap))
        nx = max(1, int(np.ceil((width - side) / stride)) + 1)
        ny = max(1, int(np.ceil((height - side) / stride)) + 1)
        xs = np.linspace(0, max(width - side, 0), nx)
        ys = np.linspace(0, max(height - side, 0), ny)
        gx, gy = np.meshgrid(xs, ys)
        b = np.stack([gx.ravel(), gy.ravel(), gx.ravel() + side, gy.ravel() + side], axis=1)
        b[:, 2] = np.minimum(b[:, 2], width)
        b[:, 3] = np.minimum(b[:, 3], height)
        boxes.append(b)
    return np.concatenate(boxes).astype(np.float32)


def _stability(logits: torch.Tensor, threshold: float, offset: float) -> torch.Tensor:
    hi = (logits > threshold + offset).flatten(1).sum(1).float()
    lo = (logits > threshold - offset).flatten(1).sum(1).float()
    return hi / lo.clamp(min=1)


@torch.no_grad()
def generate_box_grid(
    model: LoadedModel,
    image_rgb: np.ndarray,
    cfg: GeneratorConfig,
    progress: Callable[[int], None] | None = None,
    boxes: np.ndarray | None = None,
) -> list[MaskRecord]:
    """Segment an HxWx3 uint8 image with a grid of box prompts.

    Args:
        model: any SAM-family model (box prompts work for all).
        image_rgb: HxWx3 uint8.
        cfg: generator settings (box_scales, box_overlap, box_batch, filters).
        progress: called with the number of prompts done after each batch.
        boxes: (N, 4) prompt boxes x1, y1, x2, y2 to use instead of the blind grid
            (``samiam.field.prompts.field_prompt_boxes``).

    Returns:
        Mask records with predicted IoU, stability score and prompt box in ``extra``.
    """
    from segment_anything import SamPredictor
    from torchvision.ops import batched_nms

    h, w = image_rgb.shape[:2]
    predictor = SamPredictor(model.sam)
    predictor.set_image(image_rgb)
    sam = model.sam
    iou_thresh, stab_thresh = cfg.thresholds("boxes")
    if boxes is None:
        boxes = box_grid(h, w, tuple(cfg.box_scales), cfg.box_overlap)
    keep_logits, keep_iou, keep_stab, keep_prompt = [], [], [], []
    for start in range(0, len(boxes), cfg.box_batch):
        chunk = torch.as_tensor(boxes[start : start + cfg.box_batch], device=predictor.device)
        tb = predictor.transform.apply_boxes_torch(chunk, (h, w))
        sparse, dense = sam.prompt_encoder(points=None, boxes=tb, masks=None)
        low, iou = sam.mask_decoder(
            image_embeddings=predictor.features,
            image_pe=sam.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
        )
        low, iou = low[:, 0], iou[:, 0]
        stab = _stability(low, sam.mask_threshold, cfg.stability_score_offset)
        ok = (iou >= iou_thresh) & (stab >= stab_thresh)
        keep_logits.append(low[ok].cpu())
        keep_iou.append(iou[ok].cpu())
        keep_stab.append(stab[ok].cpu())
        keep_prompt.append(chunk[ok].cpu())
        if progress is not None:
            progress(len(chunk))
    if not keep_logits or sum(len(x) for x in keep_iou) == 0:
        return []
    logits = torch.cat(keep_logits)
    iou = torch.cat(keep_iou)
    stab = torch.cat(keep_stab)
    prompts = torch.cat(keep_prompt)
    # Boxes of the low-res masks, in low-res pixels: enough for NMS.
    low_bin = logits > sam.mask_threshold
    nonempty = low_bin.flatten(1).any(1)
    logits, iou, stab, prompts, low_bin = (t[nonempty] for t in (logits, iou, stab, prompts, low_bin))
    if len(iou) == 0:
        return []
    rows = low_bin.any(2)
    cols = low_bin.any(1)
    n, lh, lw = low_bin.shape
    ar_h = torch.arange(lh).expand(n, lh)
    ar_w = torch.arange(lw).expand(n, lw)
    y1 = torch.where(rows, ar_h, lh).min(1).values
    y2 = torch.where(rows, ar_h, -1).max(1).values
    x1 = torch.where(cols, ar_w, lw).min(1).values
    x2 = torch.where(cols, ar_w, -1).max(1).values
    lboxes = torch.stack([x1, y1, x2 + 1, y2 + 1], 1).float()
    order = batched_nms(lboxes, iou * stab, torch.zeros(len(iou), dtype=torch.long), cfg.box_nms_thresh)
    input_size = predictor.input_size
    records = []
    for start in range(0, len(order), cfg.box_batch):
        idx = order[start : start + cfg.box_batch]
        full = sam.postprocess_masks(logits[idx][:, None].to(predictor.device), input_size, (h, w))[:, 0]
        full = (full > sam.mask_threshold).cpu().numpy()
        for j, k in enumerate(idx.tolist()):
            m = full[j]
            area = int(m.sum())
            if area == 0 or area < cfg.min_mask_region_area:
                continue
            records.append(
                MaskRecord(
                    rle=encode_rle(m),
                    bbox=bbox_of(m),
                    area=area,
                    score=float(iou[k]),
                    extra={
                        "predicted_iou": round(float(iou[k]), 4),
                        "stability_score": round(float(stab[k]), 4),
                        "prompt": {"box": [round(float(v), 1) for v in prompts[k].tolist()]},
                    },
                )
            )
    return records
