"""Parameters of the mask generators (one dataclass, recorded in every run record)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from samiam.errors import ParameterError

# (pred_iou_thresh, stability_score_thresh) per generator mode. Points: segment-anything's
# defaults. Boxes: measured for LiteMedSAM on the synthetic cross-sections (benchmarks/README.md),
# whose predicted IoU and stability run lower than SAM's.
DEFAULT_THRESHOLDS = {"points": (0.88, 0.95), "boxes": (0.0, 0.0)}


@dataclass
class GeneratorConfig:
    """Mask generator settings.

    Point grid (segment-anything's ``SamAutomaticMaskGenerator``, point-capable models):
        points_per_side, points_per_batch, crop_n_layers, crop_n_points_downscale_factor.
    Box grid (box-only models such as LiteMedSAM):
        box_scales: box sides as fractions of the image's short side.
        box_overlap: overlap of neighbouring boxes of one scale (0.5 = stride of half a box).
        box_batch: prompts decoded together.
        box_placement: ``field`` (with ``--method fused``: the finest scale only where the material
            field sees a boundary, ``samiam.field.prompts``) or ``grid`` (every box of every scale).
    Shared filters:
        pred_iou_thresh, stability_score_thresh, stability_score_offset, box_nms_thresh,
        min_mask_region_area (pixels; holes/islands smaller than this are cleaned).
    Large images (``samiam/generate/tiling.py``):
        tile: tile side in pixels; None = auto (8 x the model's input side: 2048 px for
            LiteMedSAM, 8192 px for SAM), 0 = off (the whole image in one pass). Images no larger
            than the tile are processed in one pass; box scales are fractions of the tile.
        halo: context around each tile's core; neighbouring tiles overlap by at least 2 x halo.
        join_iou: masks cut by a tile border are joined when their IoU in the overlap is >= this.
    """

    mode: str = "auto"  # auto | points | boxes
    points_per_side: int = 32
    points_per_batch: int = 64
    crop_n_layers: int = 0
    crop_n_points_downscale_factor: int = 1
    box_scales: tuple[float, ...] = (0.5, 0.25, 0.125)
    box_overlap: float = 0.5
    box_batch: int = 32
    box_placement: str = "field"
    pred_iou_thresh: float | None = None  # None: the mode's default (DEFAULT_THRESHOLDS)
    stability_score_thresh: float | None = None
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    min_mask_region_area: int = 0
    tile: int | None = None
    halo: int = 128
    join_iou: float = 0.5

    def validate(self) -> GeneratorConfig:
        """Check ranges; return self.

        Raises:
            ParameterError: a value outside its range.
        """
        if self.box_placement not in ("field", "grid"):
            raise ParameterError(f"box placement must be field or grid, got '{self.box_placement}'")
        if self.mode not in ("auto", "points", "boxes"):
            raise ParameterError(f"generator mode must be auto, points or boxes, got '{self.mode}'")
        if self.points_per_side < 1:
            raise ParameterError(f"points-per-side must be >= 1, got {self.points_per_side}")
        if not self.box_scales or any(not 0 < s <= 1 for s in self.box_scales):
            raise ParameterError(f"box scales must be in (0, 1], got {list(self.box_scales)}")
        if not 0 <= self.box_overlap < 1:
            raise ParameterError(f"box overlap must be in [0, 1), got {self.box_overlap}")
        if self.tile is not None and self.tile != 0 and self.tile < 64:
            raise ParameterError(f"tile must be 'auto' (None), 0 (off) or >= 64 pixels, got {self.tile}")
        if self.halo < 0 or (self.tile and self.halo > self.tile // 4):
            limit = f"[0, tile/4] = [0, {self.tile // 4}]" if self.tile else ">= 0"
            raise ParameterError(f"halo must be in {limit}, got {self.halo}")
        if not 0 < self.join_iou <= 1:
            raise ParameterError(f"join-iou must be in (0, 1], got {self.join_iou}")
        for name in ("pred_iou_thresh", "stability_score_thresh", "box_nms_thresh"):
            v = getattr(self, name)
            if v is not None and not 0 <= v <= 1:
                raise ParameterError(f"{name.replace('_', '-')} must be in [0, 1], got {v}")
        return self

    def thresholds(self, mode: str) -> tuple[float, float]:
        """(pred_iou_thresh, stability_score_thresh) for ``mode``, defaults filled in."""
        iou, stab = DEFAULT_THRESHOLDS[mode]
        return (
            iou if self.pred_iou_thresh is None else self.pred_iou_thresh,
            stab if self.stability_score_thresh is None else self.stability_score_thresh,
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["box_scales"] = list(self.box_scales)
        return d
