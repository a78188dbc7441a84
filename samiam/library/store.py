"""The material library: per named material, raw crop embeddings and a few statistics, in one file.

File format (JSON, one document)::

    {"format": "samiam-material-library", "version": 1,
     "encoder": "fft", "crop_size": 60, "pixel_size_nm": 0.017 | null,
     "samiam_version": "...", "created": "...", "updated": "...",
     "materials": [{"name": "Ge", "features": {"dtype": "float32", "shape": [n, d], "data": BASE64},
                    "sizes": [60, 60, ..., 36], "stats": {...}, "sources": ["a.png", ...]}, ...]}

Features are the encoder's *raw* outputs (never z-scored per image), so crops of different images
are comparable; the classifier fits its own normalisation on the library (``samiam.library.classify``).
Arrays are stored as base64 of little-endian float32, exact and compact.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from samiam.errors import InputError, ParameterError

FORMAT = "samiam-material-library"
VERSION = 1
UNKNOWN = "unknown"

# Pixel-size units understood when converting to nanometres.
_UNIT_TO_NM = {
    "nm": 1.0,
    "nanometer": 1.0,
    "nanometre": 1.0,
    "a": 0.1,
    "å": 0.1,
    "angstrom": 0.1,
    "ångström": 0.1,
    "angstroem": 0.1,
    "pm": 1e-3,
    "um": 1e3,
    "µm": 1e3,
    "μm": 1e3,
    "micron": 1e3,
}


def pixel_size_nm(size: float | None, unit: str | None) -> float | None:
    """Pixel size in nanometres, or None when the size or its unit is unknown.

    Args:
        size: pixel size in ``unit``.
        unit: e.g. ``nm``, ``Å``/``A``/``angstrom``, ``pm``, ``µm``.
    """
    if size is None or unit is None or not np.isfinite(size) or size <= 0:
        return None
    factor = _UNIT_TO_NM.get(unit.strip().lower())
    return None if factor is None else float(size) * factor


@dataclass
class MaterialEntry:
    """One named material of a library.

    Attributes:
        name: the material's name (as it appears in outputs).
        features: (n_crops, d) float32 raw encoder features of its example crops.
        sizes: (n_crops,) side of each crop in library pixels (a rung of the crop-size ladder).
        stats: summary statistics (intensity mean/std, lattice periodicity) for people and reports.
        sources: the example files it was learnt from.
    """

    name: str
    features: np.ndarray
    sizes: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sizes = np.asarray(self.sizes, dtype=int).reshape(-1)
        if self.features.ndim != 2 or len(self.sizes) != len(self.features):
            raise ValueError(f"material '{self.name}': {len(self.sizes)} crop sizes for {self.features.shape} features")


@dataclass
class Library:
    """A set of named materials learnt from labelled examples.

    Attributes:
        encoder: texture encoder the features come from (``fft``, ``stats``, ``timm:NAME``).
        crop_size: crop side m in pixels at the library's pixel size.
        pixel_size_nm: pixel size the crops were taken at (None if the examples had none); crops
            of a calibrated image are resampled to it before encoding.
        materials: entries by name, in learning order.
        created: ISO time of creation.
        updated: ISO time of the last change.
        samiam_version: version that wrote it.
    """

    encoder: str
    crop_size: int
    pixel_size_nm: float | None = None
    materials: dict[str, MaterialEntry] = field(default_factory=dict)
    created: str = ""
    updated: str = ""
    samiam_version: str = ""

    @property
    def names(self) -> list[str]:
        return list(self.materials)

    @property
    def sizes(self) -> list[int]:
        """Crop sides present in the library (its crop-size ladder), largest first."""
        found = {int(v) for m in self.materials.values() for v in np.unique(m.sizes)}
        return sorted(found, reverse=True)

    @property
    def n_features(self) -> int:
        for m in self.materials.values():
            return int(m.features.shape[1])
        return 0

    def training_set(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All crops' raw features, their material index (into ``names``) and their side."""
        if not self.materials:
            return np.zeros((0, 0), np.float32), np.zeros(0, int), np.zeros(0, int)
        x = np.concatenate([m.features for m in self.materials.values()]).astype(np.float32)
        y = np.concatenate([np.full(len(m.features), k) for k, m in enumerate(self.materials.values())])
        sizes = np.concatenate([m.sizes for m in self.materials.values()])
        return x, y, sizes

    def add(self, entry: MaterialEntry) -> None:
        """Add a material, or append crops to the material of the same name.

        Raises:
            ParameterError: the feature width differs from the library's.
        """
        if entry.name == UNKNOWN:
            raise ParameterError(f"'{UNKNOWN}' is reserved for masks that match no material; rename it")
        if self.materials and entry.features.shape[1] != self.n_features:
            raise ParameterError(
                f"material '{entry.name}': {entry.features.shape[1]} features per crop, the library has "
                f"{self.n_features} (encoder {self.encoder})"
            )
        old = self.materials.get(entry.name)
        if old is None:
            self.materials[entry.name] = entry
            return
        n_old, n_new = len(old.features), len(entry.features)
        stats = dict(old.stats)
        for key, value in entry.stats.items():  # crop-weighted mean of numeric statistics
            if isinstance(value, (int, float)) and isinstance(stats.get(key), (int, float)):
                stats[key] = (stats[key] * n_old + value * n_new) / max(n_old + n_new, 1)
            else:
                stats.setdefault(key, value)
        stats["n_crops"] = n_old + n_new
        self.materials[entry.name] = MaterialEntry(
            name=entry.name,
            features=np.concatenate([old.features, entry.features]),
            sizes=np.concatenate([old.sizes, entry.sizes]),
            stats=stats,
            sources=old.sources + [s for s in entry.sources if s not in old.sources],
        )

    def merge(self, other: Library) -> None:
        """Add every material of ``other`` (same encoder and crop size required).

        Raises:
            ParameterError: the libraries were built with different encoders, crop sizes or pixel sizes.
        """
        if (other.encoder, other.crop_size) != (self.encoder, self.crop_size):
            raise ParameterError(
                f"cannot combine a library of encoder {other.encoder}, crop {other.crop_size} px with one of "
                f"encoder {self.encoder}, crop {self.crop_size} px"
            )
        if (other.pixel_size_nm is None) != (self.pixel_size_nm is None) or (
            other.pixel_size_nm is not None and abs(other.pixel_size_nm / self.pixel_size_nm - 1) > 1e-3
        ):
            raise ParameterError(
                f"cannot combine libraries at pixel sizes {other.pixel_size_nm} and {self.pixel_size_nm} nm"
            )
        for entry in other.materials.values():
            self.add(entry)


def _encode_array(a: np.ndarray) -> dict[str, Any]:
    a = np.ascontiguousarray(a, dtype="<f4")
    return {"dtype": "float32", "shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode("ascii")}


def _decode_array(doc: dict[str, Any]) -> np.ndarray:
    shape = tuple(int(v) for v in doc["shape"])
    if doc.get("dtype") != "float32" or len(shape) != 2:
        raise ValueError(f"features must be a 2-D float32 array, got {doc.get('dtype')} {list(shape)}")
    a = np.frombuffer(base64.b64decode(doc["data"], validate=True), dtype="<f4")
    if a.size != shape[0] * shape[1]:
        raise ValueError(f"features hold {a.size} values, shape says {list(shape)}")
    if not np.isfinite(a).all():
        raise ValueError("features contain NaN or infinite values")
    return a.reshape(shape).astype(np.float32)


def library_to_json(lib: Library) -> dict[str, Any]:
    """The library as a JSON-ready document (see the module docstring)."""
    from samiam import __version__

    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return {
        "format": FORMAT,
        "version": VERSION,
        "encoder": lib.encoder,
        "crop_size": int(lib.crop_size),
        "pixel_size_nm": lib.pixel_size_nm,
        "samiam_version": __version__,
        "created": lib.created or now,
        "updated": now,
        "materials": [
            {
                "name": m.name,
                "features": _encode_array(m.features),
                "sizes": [int(v) for v in m.sizes],
                "stats": m.stats,
                "sources": m.sources,
            }
            for m in lib.materials.values()
        ],
    }


def library_from_json(doc: Any, source: str = "<library>") -> Library:
    """Rebuild a library from its JSON document, checking format and version.

    Raises:
        InputError: not a library, a different format version, or damaged content.
    """
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(f'{source}: not a samiam material library (no "format": "{FORMAT}")')
    version = doc.get("version")
    if version != VERSION:
        raise InputError(
            f"{source}: material library format version {version!r}, this samiam reads version {VERSION}; "
            "rebuild it with 'samiam materials learn'"
        )
    try:
        lib = Library(
            encoder=str(doc["encoder"]),
            crop_size=int(doc["crop_size"]),
            pixel_size_nm=None if doc.get("pixel_size_nm") is None else float(doc["pixel_size_nm"]),
            created=str(doc.get("created", "")),
            updated=str(doc.get("updated", "")),
            samiam_version=str(doc.get("samiam_version", "")),
        )
        for m in doc["materials"]:
            lib.add(
                MaterialEntry(
                    name=str(m["name"]),
                    features=_decode_array(m["features"]),
                    sizes=np.asarray(m["sizes"], dtype=int),
                    stats=dict(m.get("stats", {})),
                    sources=list(m.get("sources", [])),
                )
            )
    except (KeyError, TypeError, ValueError, ParameterError) as exc:
        raise InputError(f"{source}: damaged material library ({type(exc).__name__}: {exc})") from None
    if not lib.materials:
        raise InputError(f"{source}: the material library holds no materials")
    if lib.crop_size < 4:
        raise InputError(f"{source}: damaged material library (crop size {lib.crop_size} px)")
    return lib


def load_library(path: str | Path) -> Library:
    """Read a library file.

    Args:
        path: the file written by ``save_library`` / ``samiam materials learn``.

    Returns:
        The library.

    Raises:
        InputError: missing, unreadable, not JSON, not a library, wrong version or damaged.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such material library") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the material library ({exc})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: not a samiam material library (invalid JSON: {exc.msg}, line {exc.lineno})"
        ) from None
    return library_from_json(doc, str(path))


def save_library(lib: Library, path: str | Path) -> Path:
    """Write a library atomically.

    Raises:
        ParameterError: the library holds no materials.
        OutputError: the file cannot be written.
    """
    from samiam.io.files import write_json

    if not lib.materials:
        raise ParameterError(f"{path}: nothing to save, the library holds no materials")
    return write_json(path, library_to_json(lib))
