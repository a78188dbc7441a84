"""Label Studio ML backend: SAM-assisted (points, boxes) and automatic (one region per material) labelling.

Start it with ``samiam serve labelstudio`` or build the WSGI app with
``create_app(LabelStudioBackend(load_model(...)))``; see ``docs/labelstudio.md``. Names are
imported on first use, so ``samiam.labelstudio.brush_rle`` alone does not load torch or Flask.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BackgroundServer": "samiam.labelstudio.app",
    "app_from_env": "samiam.labelstudio.app",
    "create_app": "samiam.labelstudio.app",
    "serve": "samiam.labelstudio.app",
    "decode_brush_rle": "samiam.labelstudio.brush_rle",
    "encode_brush_rle": "samiam.labelstudio.brush_rle",
    "micrograph_label_config": "samiam.labelstudio.config",
    "LabelStudioBackend": "samiam.labelstudio.handlers",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'samiam.labelstudio' has no attribute '{name}'")
