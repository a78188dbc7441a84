"""Known models: names, families, official URLs and SHA-256 (from ``weights/manifest.json``)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from samiam.errors import ModelError

MANIFEST = Path(__file__).resolve().parents[2] / "weights" / "manifest.json"


@dataclass(frozen=True)
class ModelSpec:
    """One known checkpoint.

    Attributes:
        name: the model name users type (``vit_b``, ``litemedsam``...).
        family: ``sam``, ``mobile_sam`` or ``litemedsam`` (decides the builder).
        url: official download URL, or None when it cannot be downloaded by samiam.
        filename: file name in the cache.
        sha256: expected SHA-256 of the file, or None when unknown (user-given files).
        size: expected size in bytes, or None.
        point_prompts: whether the model answers point prompts (else box prompts only).
    """

    name: str
    family: str
    url: str | None
    filename: str
    sha256: str | None
    size: int | None
    point_prompts: bool


@lru_cache(maxsize=1)
def load_manifest() -> dict[str, ModelSpec]:
    """Read the manifest of known checkpoints."""
    if not MANIFEST.exists():
        raise ModelError(f"{MANIFEST}: model manifest missing; install samiam from its source tree (pip install -e .)")
    doc = json.loads(MANIFEST.read_text())
    return {
        name: ModelSpec(
            name=name,
            family=m["family"],
            url=m.get("url"),
            filename=m["filename"],
            sha256=m.get("sha256"),
            size=m.get("size"),
            point_prompts="points" in m.get("prompts", []),
        )
        for name, m in doc["models"].items()
    }


def model_names() -> list[str]:
    """Names accepted by ``--model`` (plus ``auto``)."""
    return list(load_manifest())


def get_spec(name: str) -> ModelSpec:
    """Return the spec of a known model.

    Raises:
        ModelError: unknown name, listing the known ones.
    """
    specs = load_manifest()
    if name not in specs:
        raise ModelError(f"unknown model '{name}'; expected one of: auto, {', '.join(specs)}")
    return specs[name]


def cache_dir() -> Path:
    """Folder for downloaded checkpoints: ``$SAMIAM_CACHE`` or ``$XDG_CACHE_HOME/samiam/weights``."""
    env = os.environ.get("SAMIAM_CACHE")
    if env:
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")).expanduser()
    return base / "samiam" / "weights"
