"""The STEM defect model folder: class model + finder parameters (``samiam defects train --modality stem``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from samiam import __version__
from samiam.defects.stem.classes import StemClasses
from samiam.defects.stem.pipeline import StemParams
from samiam.errors import ModelError
from samiam.io.files import atomic_write, write_json

FORMAT_NAME = "samiam-stem-defect-model"
FORMAT_VERSION = 1
FILES = {"config": "config.json", "classes": "classes.npz"}


@dataclass
class StemModel:
    """What ``samiam defects run --modality stem --model`` re-uses.

    Attributes:
        classes: the fitted class model.
        params: the finder parameters it was trained with.
        config: the config JSON (versions, training images, selection).
        path: folder it was loaded from, if any.
    """

    classes: StemClasses
    params: StemParams
    config: dict = field(default_factory=dict)
    path: Path | None = None


def model_kind(folder: str | Path) -> str | None:
    """ "stem" for a STEM model folder, "stm" for an STM one, None when the folder has no config."""
    cfg = Path(folder) / FILES["config"]
    if not cfg.is_file():
        return None
    try:
        name = json.loads(cfg.read_text()).get("format")
    except (OSError, ValueError):
        return None
    return "stem" if name == FORMAT_NAME else "stm"


def save_stem_model(model: StemModel, folder: str | Path) -> Path:
    """Write the model folder (config JSON last: its presence marks a complete model)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def _npz(p: Path) -> None:
        with open(p, "wb") as fh:
            np.savez(fh, **model.classes.to_npz())

    atomic_write(folder / FILES["classes"], _npz)
    cfg = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "samiam_version": __version__,
        "parameters": model.params.to_dict(),
        "class_names": model.classes.names,
        "class_selection": model.classes.selection,
        **model.config,
    }
    write_json(folder / FILES["config"], cfg)
    return folder


def load_stem_model(folder: str | Path) -> StemModel:
    """Load a STEM model folder.

    Raises:
        ModelError: missing folder or files, another format or format version.
    """
    folder = Path(folder)
    cfg_path = folder / FILES["config"]
    if not cfg_path.is_file():
        raise ModelError(f"{folder}: not a model folder (no {FILES['config']})")
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{cfg_path}: unreadable ({exc})") from None
    if cfg.get("format") != FORMAT_NAME:
        raise ModelError(f"{folder}: expected a STEM defect model ('{FORMAT_NAME}'), got '{cfg.get('format')}'")
    if cfg.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{folder}: expected format version {FORMAT_VERSION}, got {cfg.get('format_version')}")
    try:
        with np.load(folder / FILES["classes"]) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{folder / FILES['classes']}: unreadable ({exc})") from None
    classes = StemClasses(
        arrays["centres"],
        arrays["mean"],
        arrays["scale"],
        float(arrays["spread"]),
        list(cfg.get("class_names", [])),
        cfg.get("class_selection", {}),
    )
    params = StemParams(**cfg.get("parameters", {}))
    return StemModel(classes, params, cfg, folder)
