"""Labelled dataset loaders for the benchmark: folders of label maps, COCO JSON, SAM-I-Am label sets.

Every loader yields ``Sample``s: the image path, an int32 label map (0 = ignore, k > 0 = region
k; regions of one material share a label), the material name and difficulty class per label,
and image-level groups (layout, difficulty) for the report. Problems with single images (missing
label, size mismatch, corrupt file) are collected in ``Dataset.problems`` -- one line each, naming
the file -- and the other images are still yielded. Problems that leave nothing to score (no such
folder, no images at all, an unreadable COCO file) raise ``InputError``.

Layouts (``open_dataset`` detects which):

(a) ``DATASET/images/<stem>.<ext>`` + ``DATASET/labels/<stem>.{png,tif,tiff,npy}`` label maps, with
    an optional ``DATASET/meta.json``: ``{stem: {"names": [name of label 1, name of label 2, ...],
    "layout": str, "difficulty": str | [per label] | {name: str}}}``.
(b) a COCO instances JSON (``DATASET`` is the .json file, or a folder holding ``annotations.json``);
    images are looked up in ``images/`` next to the JSON, else beside it. One label per category;
    pixels claimed by two categories and ``iscrowd`` pixels are ignored. Optional ``meta.json``
    next to the JSON, keyed by image stem; a category or image may carry a ``"difficulty"`` key.
(c) the public SAM-I-Am STEM label set: ``DATASET/labels_merged/<image>/...-tag-<Material>-<k>.png``,
    one binary PNG per material mask (materials such as Ge, SrTiO3, PtC, Vac). Masks of one
    material merge into one label (label ids follow the sorted material names of the whole set);
    pixels in two materials' masks or in none are ignored. The image is looked up as
    ``DATASET/images/<image>.*``, ``DATASET/<image>.*``, then an image file without ``-tag-``
    inside ``labels_merged/<image>/``. Optional ``DATASET/meta.json`` keyed by ``<image>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from samiam.errors import InputError, ParameterError
from samiam.io.micrograph import Micrograph
from samiam.io.read import SUPPORTED_SUFFIXES, read_micrograph

LABEL_SUFFIXES = (".png", ".tif", ".tiff", ".npy")
TAG_PATTERN = re.compile(r"-tag-(?P<material>.+?)(?:-(?P<k>\d+))?$")


@dataclass
class Sample:
    """One labelled image.

    Attributes:
        stem: image name without suffix (used for prediction files).
        image_path: the image file, or None where it was not needed and not found.
        labels: HxW int32 label map, 0 = ignore.
        names: material name per label value.
        difficulty: difficulty class per label value (may be empty).
        groups: image-level groups for the report, e.g. ``{"layout": "stack"}``.
        micrograph: the image, read when the dataset was opened with ``read_images=True``.
    """

    stem: str
    image_path: Path | None
    labels: np.ndarray
    names: dict[int, str]
    difficulty: dict[int, str] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)
    micrograph: Micrograph | None = None


@dataclass
class _Labelled:
    labels: np.ndarray
    names: dict[int, str]
    difficulty: dict[int, str] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)


@dataclass
class _Entry:
    stem: str
    image_path: Path | None
    label_source: Path
    load: Callable[[], _Labelled]


@dataclass
class Dataset:
    """A labelled set: entries load lazily; per-image problems are collected, not raised.

    Attributes:
        root: the dataset path given.
        layout: ``"folders"``, ``"coco"`` or ``"samiam-labels"``.
        entries: the images found (after ``limit``).
        problems: one line per problem found so far (filled further while iterating).
        read_images: whether images are read (and their size checked) while iterating.
    """

    root: Path
    layout: str
    entries: list[_Entry]
    problems: list[str] = field(default_factory=list)
    read_images: bool = True

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Sample]:
        return (s for s in self.samples() if s is not None)

    def samples(self) -> Iterator[Sample | None]:
        """Yield one item per entry: its ``Sample``, or None when it failed (problem recorded)."""
        for entry in self.entries:
            yield self._load(entry)

    def _load(self, entry: _Entry) -> Sample | None:
        try:
            lab = entry.load()
        except InputError as exc:
            self.problems.append(str(exc))
            return None
        micrograph = None
        if self.read_images:
            if entry.image_path is None:
                self.problems.append(f"{entry.label_source}: no image file found for '{entry.stem}'")
                return None
            try:
                micrograph = read_micrograph(entry.image_path)
            except InputError as exc:
                self.problems.append(str(exc))
                return None
            if (micrograph.height, micrograph.width) != lab.labels.shape:
                h, w = lab.labels.shape
                self.problems.append(
                    f"{entry.label_source}: label map is {w}x{h} pixels but image {entry.image_path} is "
                    f"{micrograph.width}x{micrograph.height}"
                )
                return None
        return Sample(
            stem=entry.stem,
            image_path=entry.image_path,
            labels=lab.labels,
            names=lab.names,
            difficulty=lab.difficulty,
            groups=lab.groups,
            micrograph=micrograph,
        )


# ---------------------------------------------------------------------------------------- helpers


def read_label_map(path: Path) -> np.ndarray:
    """Read a single-channel integer label map (PNG 8/16-bit, TIFF, .npy) as int32.

    Raises:
        InputError: missing, empty, undecodable, multi-channel or non-integer file.
    """
    if not path.is_file():
        raise InputError(f"{path}: no such label file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: label file is empty")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif suffix in (".tif", ".tiff"):
            import tifffile

            arr = tifffile.imread(path)
        else:
            import cv2

            arr = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED)
            if arr is None:
                raise ValueError("not a decodable image (truncated or corrupt?)")
    except Exception as exc:  # readers raise many types for corrupt files
        raise InputError(f"{path}: cannot read label map ({exc})") from None
    arr = np.asarray(arr)
    if arr.ndim != 2:
        raise InputError(f"{path}: expected a single-channel 2-D label map, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr.astype(np.int32)
    if not np.issubdtype(arr.dtype, np.integer):
        whole = np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))
        if not whole:
            raise InputError(f"{path}: expected integer labels, got {arr.dtype} values that are not whole numbers")
    return arr.astype(np.int32)


def _read_meta(path: Path, problems: list[str]) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text())
        if not isinstance(meta, dict):
            raise ValueError("expected an object keyed by image name")
        return meta
    except (OSError, ValueError) as exc:
        problems.append(f"{path}: ignored, not a readable meta JSON ({exc})")
        return {}


def _apply_meta(lab: _Labelled, info: dict[str, Any]) -> _Labelled:
    """Fill names, difficulty and groups of one image from its meta entry."""
    names = info.get("names")
    if isinstance(names, list):
        lab.names.update({k: str(n) for k, n in enumerate(names, start=1)})
    if isinstance(info.get("layout"), str):
        lab.groups["layout"] = info["layout"]
    diff = info.get("difficulty")
    labels_present = [int(v) for v in np.unique(lab.labels) if v > 0]
    if isinstance(diff, str):
        lab.groups["difficulty"] = diff
        lab.difficulty.update({k: diff for k in labels_present})
    elif isinstance(diff, list):
        lab.difficulty.update({k: str(v) for k, v in enumerate(diff, start=1)})
    elif isinstance(diff, dict):
        by_name = {v: k for k, v in lab.names.items()}
        for key, value in diff.items():
            k = by_name.get(key, int(key) if str(key).isdigit() else None)
            if k is not None:
                lab.difficulty[k] = str(value)
    return lab


def _failed(stem: str, source: Path, message: str) -> _Entry:
    """An entry that reports ``source: message`` when loaded (so ``limit`` applies to it too)."""

    def load() -> _Labelled:
        raise InputError(f"{source}: {message}")

    return _Entry(stem, None, source, load)


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUPPORTED_SUFFIXES
    )


def _find_image(stem: str, folders: list[Path]) -> Path | None:
    for folder in folders:
        if folder.is_dir():
            for p in _image_files(folder):
                if p.stem == stem:
                    return p
    return None


# ------------------------------------------------------------------------------ (a) folders layout


def _open_folders(root: Path, problems: list[str]) -> list[_Entry]:
    images_dir, labels_dir = root / "images", root / "labels"
    if not labels_dir.is_dir():
        raise InputError(f"{root}: has images/ but no labels/ folder")
    images = _image_files(images_dir)
    if not images:
        raise InputError(f"{images_dir}: no images (expected files with suffix {', '.join(SUPPORTED_SUFFIXES)})")
    meta = _read_meta(root / "meta.json", problems)
    label_files: dict[str, list[Path]] = {}
    for p in sorted(labels_dir.iterdir()):
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in LABEL_SUFFIXES:
            label_files.setdefault(p.stem, []).append(p)
    image_stems = {p.stem for p in images}
    entries = []
    for stem in sorted(set(label_files) - image_stems):
        entries.append(_failed(stem, label_files[stem][0], f"label map without an image in {images_dir}"))
    for image in images:
        candidates = label_files.get(image.stem)
        if not candidates:
            entries.append(_failed(image.stem, image, f"no label map {labels_dir}/{image.stem}.{{png,tif,npy}}"))
            continue
        label_path = candidates[0]

        def load(label_path: Path = label_path, stem: str = image.stem) -> _Labelled:
            labels = read_label_map(label_path)
            ids = [int(v) for v in np.unique(labels) if v > 0]
            lab = _Labelled(labels=labels, names={k: f"label {k}" for k in ids})
            info = meta.get(stem)
            return _apply_meta(lab, info) if isinstance(info, dict) else lab

        entries.append(_Entry(image.stem, image, label_path, load))
    return entries


# ------------------------------------------------------------------------------------- (b) COCO


def _coco_mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    from pycocotools import mask as mask_utils

    from samiam.masks import rle_for_coco

    if isinstance(segmentation, list) and not segmentation:
        return np.zeros((height, width), bool)
    if isinstance(segmentation, list):  # polygons
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation, dict):
        rle = rle_for_coco(segmentation)
    else:
        raise ValueError(f"unknown segmentation type {type(segmentation).__name__}")
    mask = mask_utils.decode(rle)
    if mask.shape != (height, width):
        raise ValueError(f"mask is {mask.shape[1]}x{mask.shape[0]}, image declared {width}x{height}")
    return mask.astype(bool)


def _open_coco(json_path: Path, problems: list[str]) -> list[_Entry]:
    try:
        doc = json.loads(json_path.read_text())
        images, annotations, categories = doc["images"], doc["annotations"], doc["categories"]
    except FileNotFoundError:
        raise InputError(f"{json_path}: no such file") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"{json_path}: not a COCO instances JSON with images, annotations and categories ({exc})"
        ) from None
    if not images:
        raise InputError(f"{json_path}: lists no images")
    cats = sorted(categories, key=lambda c: c["id"])
    label_of = {c["id"]: k for k, c in enumerate(cats, start=1)}
    names = {k: str(c.get("name", f"category {c['id']}")) for k, c in zip(label_of.values(), cats, strict=True)}
    cat_difficulty = {label_of[c["id"]]: str(c["difficulty"]) for c in cats if "difficulty" in c}
    by_image: dict[Any, list[dict]] = {}
    for ann in annotations:
        by_image.setdefault(ann.get("image_id"), []).append(ann)
    folder = json_path.parent
    search = [folder / "images", folder]
    meta = _read_meta(folder / "meta.json", problems)
    entries = []
    for img in images:
        file_name = str(img.get("file_name", ""))
        stem = Path(file_name).stem
        image_path = next((d / file_name for d in search if (d / file_name).is_file()), None)

        def load(img: dict = img, stem: str = stem) -> _Labelled:
            try:
                height, width = int(img["height"]), int(img["width"])
            except (KeyError, TypeError, ValueError):
                raise InputError(f"{json_path}: image '{img.get('file_name')}' has no height/width") from None
            labels = np.zeros((height, width), np.int32)
            clash = np.zeros((height, width), bool)
            for ann in by_image.get(img.get("id"), []):
                try:
                    k = label_of[ann["category_id"]]
                    mask = _coco_mask(ann["segmentation"], height, width)
                except (KeyError, ValueError, TypeError, IndexError) as exc:
                    raise InputError(
                        f"{json_path}: annotation {ann.get('id')} of image '{img.get('file_name')}' "
                        f"is unusable ({type(exc).__name__}: {exc})"
                    ) from None
                if ann.get("iscrowd"):
                    clash |= mask
                    continue
                clash |= mask & (labels > 0) & (labels != k)
                labels[mask & (labels == 0)] = k
            labels[clash] = 0
            present = {int(v) for v in np.unique(labels) if v > 0}
            lab = _Labelled(
                labels=labels,
                names={k: n for k, n in names.items() if k in present},
                difficulty={k: v for k, v in cat_difficulty.items() if k in present},
            )
            if isinstance(img.get("difficulty"), str):
                lab.groups["difficulty"] = img["difficulty"]
                lab.difficulty.update({k: img["difficulty"] for k in present if k not in lab.difficulty})
            info = meta.get(stem)
            if isinstance(info, dict):  # COCO categories name the labels; meta adds layout/difficulty
                lab = _apply_meta(lab, {k: v for k, v in info.items() if k != "names"})
            return lab

        entries.append(_Entry(stem, image_path, json_path, load))
    return entries


# ---------------------------------------------------------------------------- (c) SAM-I-Am labels


def material_of(mask_file: Path) -> str | None:
    """Return the material of a ``...-tag-<Material>-<k>.png`` file name, or None."""
    match = TAG_PATTERN.search(mask_file.stem)
    return match.group("material") if match else None


def _open_samiam_labels(root: Path, problems: list[str]) -> list[_Entry]:
    merged = root / "labels_merged"
    folders = sorted(p for p in merged.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise InputError(f"{merged}: no per-image label folders")
    tagged: dict[Path, list[tuple[str, Path]]] = {}
    for folder in folders:
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".png")
        tagged[folder] = [(m, p) for p in files if (m := material_of(p)) is not None]
    materials = sorted({m for pairs in tagged.values() for m, _ in pairs})
    label_of = {m: k for k, m in enumerate(materials, start=1)}
    meta = _read_meta(root / "meta.json", problems)
    entries = []
    for folder in folders:
        pairs = tagged[folder]
        if not pairs:
            entries.append(_failed(folder.name, folder, "no '...-tag-<Material>-<k>.png' mask files"))
            continue
        inner = [p for p in _image_files(folder) if "-tag-" not in p.name]
        image_path = _find_image(folder.name, [root / "images", root]) or (inner[0] if inner else None)

        def load(folder: Path = folder, pairs: list[tuple[str, Path]] = pairs) -> _Labelled:
            labels: np.ndarray | None = None
            clash: np.ndarray | None = None
            for material, path in pairs:
                mask = read_label_map(path) > 0
                if labels is None:
                    labels, clash = np.zeros(mask.shape, np.int32), np.zeros(mask.shape, bool)
                if mask.shape != labels.shape:
                    raise InputError(
                        f"{path}: mask is {mask.shape[1]}x{mask.shape[0]} pixels, other masks of "
                        f"{folder.name} are {labels.shape[1]}x{labels.shape[0]}"
                    )
                k = label_of[material]
                clash |= mask & (labels > 0) & (labels != k)
                labels[mask & (labels == 0)] = k
            assert labels is not None and clash is not None
            labels[clash] = 0
            present = {int(v) for v in np.unique(labels) if v > 0}
            lab = _Labelled(labels=labels, names={k: m for m, k in label_of.items() if k in present})
            info = meta.get(folder.name)
            if isinstance(info, dict):  # file names name the labels; meta adds layout/difficulty
                lab = _apply_meta(lab, {k: v for k, v in info.items() if k != "names"})
            return lab

        entries.append(_Entry(folder.name, image_path, folder, load))
    return entries


# ------------------------------------------------------------------------------------------ entry


def detect_layout(path: Path) -> str:
    """Return ``"coco"``, ``"samiam-labels"`` or ``"folders"`` for a dataset path.

    Raises:
        InputError: the path does not exist or has none of the known layouts.
    """
    if not path.exists():
        raise InputError(f"{path}: no such dataset file or folder")
    if path.is_file():
        if path.suffix.lower() == ".json":
            return "coco"
        raise InputError(f"{path}: expected a dataset folder or a COCO .json file")
    if (path / "labels_merged").is_dir():
        return "samiam-labels"
    if (path / "images").is_dir():
        return "folders"
    if (path / "annotations.json").is_file():
        return "coco"
    raise InputError(
        f"{path}: not a labelled dataset; expected images/ + labels/, labels_merged/, or a COCO annotations.json"
    )


def open_dataset(path: str | Path, *, read_images: bool = True, limit: int | None = None) -> Dataset:
    """Open a labelled dataset in any of the three layouts (see the module docstring).

    Args:
        path: dataset folder, or a COCO .json file.
        read_images: read each image while iterating (needed to segment; also checks its size
            against the label map). With False, images need not exist.
        limit: keep only the first ``limit`` images (sorted by name).

    Returns:
        The dataset; iterate it for ``Sample``s, then read ``problems``.

    Raises:
        InputError: nothing in ``path`` can be scored.
    """
    path = Path(path)
    layout = detect_layout(path)
    problems: list[str] = []
    if layout == "coco":
        json_path = path if path.is_file() else path / "annotations.json"
        entries = _open_coco(json_path, problems)
    elif layout == "samiam-labels":
        entries = _open_samiam_labels(path, problems)
    else:
        entries = _open_folders(path, problems)
    entries.sort(key=lambda e: e.stem)
    if limit is not None:
        if limit < 1:
            raise ParameterError(f"limit must be >= 1, got {limit}")
        entries = entries[:limit]
    return Dataset(root=path, layout=layout, entries=entries, problems=problems, read_images=read_images)
