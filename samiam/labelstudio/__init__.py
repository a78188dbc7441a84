"""Label Studio ML backend: SAM-assisted (points, boxes) and automatic (one region per material) labelling.

Start it with ``samiam serve labelstudio`` or build the WSGI app with
``create_app(LabelStudioBackend(load_model(...)))``; see ``docs/labelstudio.md``.
"""

from samiam.labelstudio.app import BackgroundServer, app_from_env, create_app, serve
from samiam.labelstudio.brush_rle import decode_brush_rle, encode_brush_rle
from samiam.labelstudio.handlers import LabelStudioBackend

__all__ = [
    "BackgroundServer",
    "LabelStudioBackend",
    "app_from_env",
    "create_app",
    "decode_brush_rle",
    "encode_brush_rle",
    "serve",
]
