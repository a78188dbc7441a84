"""Parameters of the semantic booster (recorded in every run record)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from samiam.errors import ParameterError
from samiam.field.build import FieldConfig

METHODS = ("fused", "crops", "field")


@dataclass
class BoostConfig:
    """Booster settings.

    Geometric filter:
        child_containment: a mask is a *child* of a larger one when at least this fraction of it
            lies inside the larger mask.
        child_min_frac: children smaller than this fraction of their parent are dropped (paper: 5%).
        compound_cover: parents covered more than this by their (kept) children are dropped (70%).
        redundant_overlap: of two masks each covered more than this by the other, the lower-scoring
            one is dropped (90%).
        island_min_frac: connected parts smaller than this fraction of their mask are removed.
        min_area_frac: masks smaller than this fraction of the image are dropped.
    Texture merge:
        crop_size: side m of the square crops (paper: 60 px on 1024 px images); scaled down for
            small images and for thin masks (never below ``min_crop_size``).
        crops_per_mask: K crops sampled per mask.
        encoder: ``fft`` (offline spectral descriptor), ``stats``, or ``timm:NAME``.
        encoder_weights: local weights file for a timm encoder (pretrained download otherwise).
        materials: number of materials, or 0 to choose it automatically.
        max_materials: upper bound for the automatic choice.
        seed: seed for crop sampling and K-means.
    Method (docs/segment.md, benchmarks/quality/RESULTS.md):
        method: ``field`` (the dense field alone, no SAM; the default: it measured best and is
            fastest, benchmarks/quality/METHODS.md), ``fused`` (SAM masks take their material from
            the dense field, impure masks are split along it, the field fills the rest) or
            ``crops`` (the paper's crop booster).
        field: settings of the dense material field (``samiam.field``).
        fusion_purity: share of a mask one field material must hold for the mask to be pure.
        fusion_min_confidence: field posterior from which pixels outside the masks are assigned.
    Named materials (docs/few-shot.md):
        library: a material library file (``samiam materials learn``): masks are named by it
            instead of being clustered; None for unsupervised merging.
        fill: assign unsegmented pixels whose texture matches a material with confidence.
    """

    child_containment: float = 0.9
    child_min_frac: float = 0.05
    compound_cover: float = 0.7
    redundant_overlap: float = 0.9
    island_min_frac: float = 0.05
    min_area_frac: float = 0.0005
    crop_size: int = 60
    min_crop_size: int = 16
    crops_per_mask: int = 16
    encoder: str = "fft"
    encoder_weights: str | None = None
    materials: int = 0
    max_materials: int = 6
    seed: int = 0
    library: str | None = None
    fill: bool = False
    method: str = "field"
    field: FieldConfig = field(default_factory=FieldConfig)
    fusion_purity: float = 0.8
    fusion_min_confidence: float = 0.5

    def validate(self) -> BoostConfig:
        """Check ranges; return self.

        Raises:
            ParameterError: a value outside its range.
        """
        for name in (
            "child_containment",
            "child_min_frac",
            "compound_cover",
            "redundant_overlap",
            "island_min_frac",
            "min_area_frac",
        ):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ParameterError(f"{name.replace('_', '-')} must be in [0, 1], got {v}")
        if self.crop_size < 4 or self.min_crop_size < 4:
            raise ParameterError(f"crop size must be >= 4 px, got {self.crop_size}")
        if self.crops_per_mask < 1:
            raise ParameterError(f"crops-per-mask must be >= 1, got {self.crops_per_mask}")
        if self.materials < 0:
            raise ParameterError(f"materials must be a positive number or 'auto', got {self.materials}")
        if self.max_materials < 1:
            raise ParameterError(f"max-materials must be >= 1, got {self.max_materials}")
        if self.method not in METHODS:
            raise ParameterError(f"method must be one of {', '.join(METHODS)}, got '{self.method}'")
        if not 0 < self.fusion_purity <= 1 or not 0 <= self.fusion_min_confidence <= 1:
            raise ParameterError(
                f"fusion purity must be in (0, 1] and min confidence in [0, 1], got "
                f"{self.fusion_purity}, {self.fusion_min_confidence}"
            )
        self.field.validate()
        return self

    def to_dict(self) -> dict:
        return asdict(self)
