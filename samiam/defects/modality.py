"""Which defect stage an image belongs to: STEM (HAADF/ADF intensity) or STM (height map)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from samiam.errors import InputError, ParameterError

MODALITIES = ("auto", "stem", "stm")
STEM_SUFFIXES = (".dm3", ".dm4", ".emd")
STM_SUFFIXES = (".sxm", ".npy")
STEM_WORDS = re.compile(r"(?<![A-Za-z])(HAADF|ADF|DF|STEM)(?![A-Za-z])", re.IGNORECASE)


def _strings(meta: Any) -> list[str]:
    """Every key and string value of nested metadata."""
    if isinstance(meta, dict):
        return [s for k, v in meta.items() for s in (str(k), *_strings(v))]
    if isinstance(meta, list | tuple):
        return [s for v in meta for s in _strings(v)]
    return [meta] if isinstance(meta, str) else []


def choose_modality(
    path: str | Path, metadata: dict | None = None, requested: str = "auto", model_kind: str | None = None
) -> tuple[str, str]:
    """Pick the defect stage of one file.

    Args:
        path: the image file.
        metadata: reader metadata (e.g. ``Micrograph.meta``), searched for HAADF/ADF/STEM words.
        requested: "auto", "stem" or "stm" (``--modality``).
        model_kind: "stem"/"stm" when a ``--model`` folder was given: decides files nothing else decides.

    Returns:
        ("stem" | "stm", the reason in words).

    Raises:
        ParameterError: ``requested`` is not a modality.
        InputError: auto cannot tell (e.g. a PNG without metadata and no model).
    """
    if requested not in MODALITIES:
        raise ParameterError(f"--modality: expected one of {', '.join(MODALITIES)}, got '{requested}'")
    if requested != "auto":
        return requested, f"--modality {requested}"
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in STEM_SUFFIXES:
        return "stem", f"{suffix} is an electron-microscope format"
    if suffix in STM_SUFFIXES:
        return "stm", f"{suffix} holds a height map"
    if suffix.endswith("_mtrx"):
        return "stm", "Omicron MATRIX file"
    words = {m.group(1).upper() for s in _strings(metadata or {}) for m in STEM_WORDS.finditer(s)}
    if words:
        return "stem", f"metadata says {', '.join(sorted(words))}"
    if model_kind in ("stem", "stm"):
        return model_kind, f"the --model folder is a{'' if model_kind == 'stem' else 'n'} {model_kind.upper()} model"
    raise InputError(
        f"{p}: cannot tell STEM from STM for a '{suffix}' file without HAADF/ADF metadata; "
        "give --modality stem or --modality stm"
    )
