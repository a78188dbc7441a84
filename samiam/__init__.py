"""samiam: segment atomic-resolution micrographs into one mask per material, and find their defects.

The public API (everything a script needs; the rest of the package is internal)::

    import samiam

    mic = samiam.read_micrograph("image.dm3")
    model = samiam.load_model("auto")                       # SAM checkpoint or offline LiteMedSAM
    raw, seg = samiam.segment_micrograph(mic, model)        # default: the dense material field
    field = samiam.material_field(mic.image)                # the field alone, no model
    seg2 = samiam.boost_segmentation(mic, raw, samiam.BoostConfig(materials=3))
    result = samiam.run_benchmark(samiam.BenchmarkOptions(...))
    defects = samiam.run_defects(height_map, samiam.load_defect_model("model/"), samiam.DefectParams())

Names are imported on first use, so ``import samiam`` stays fast and does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> (module, attribute)
_API: dict[str, tuple[str, str]] = {
    "read_micrograph": ("samiam.io.read", "read_micrograph"),
    "Micrograph": ("samiam.io.micrograph", "Micrograph"),
    "load_model": ("samiam.models.build", "load_model"),
    "LoadedModel": ("samiam.models.build", "LoadedModel"),
    "segment_micrograph": ("samiam.pipeline", "segment_micrograph"),
    "boost_segmentation": ("samiam.pipeline", "boost_segmentation"),
    "SegmentConfig": ("samiam.pipeline", "SegmentConfig"),
    "GeneratorConfig": ("samiam.generate.config", "GeneratorConfig"),
    "BoostConfig": ("samiam.boost.config", "BoostConfig"),
    "Segmentation": ("samiam.segmentation", "Segmentation"),
    "material_field": ("samiam.field.build", "material_field"),
    "FieldConfig": ("samiam.field.build", "FieldConfig"),
    "MaterialField": ("samiam.field.build", "MaterialField"),
    "run_benchmark": ("samiam.bench.runner", "run_benchmark"),
    "BenchmarkOptions": ("samiam.bench.runner", "BenchmarkOptions"),
    "score_image": ("samiam.bench.metrics", "score_image"),
    "run_defects": ("samiam.defects.pipeline", "run_defects"),
    "train_defect_model": ("samiam.defects.pipeline", "train_defect_model"),
    "DefectParams": ("samiam.defects.pipeline", "DefectParams"),
    "load_defect_model": ("samiam.defects.store", "load_model"),
    "read_stm": ("samiam.defects.readers", "read_stm"),
}

__all__ = ["__version__", *sorted(_API)]


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562)."""
    if name not in _API:
        raise AttributeError(f"module 'samiam' has no attribute {name!r}")
    module, attr = _API[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
