"""Build or extend a material library from labelled examples.

An *example* is one image plus named regions. Three sources make examples:

- a label map (0 = ignore, k = material k) with the names of its labels;
- a ``<stem>.masks.json`` whose masks the user has named (``"material": "Ge"``; masks whose
  material is a number, empty or ``unknown`` are ignored);
- Label Studio tasks with brush (``brushlabels``, Label Studio's own RLE) or polygon annotations.

Learning samples crops inside each named region at the library's crop size and pixel size and
stores their raw encoder features with a few statistics (intensity, lattice period).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from samiam.errors import InputError, ParameterError
from samiam.io.micrograph import Micrograph, micrograph_from_array
from samiam.library.features import (
    Encoder,
    build_encoder,
    calibrated,
    ladder_sizes,
    periodicity_px,
    sample_ladder_crops,
    scale_for,
)
from samiam.library.store import UNKNOWN, Library, MaterialEntry, load_library, pixel_size_nm, save_library
from samiam.masks import MaskRecord


@dataclass
class LearnConfig:
    """How examples become library entries (ignored for settings an existing library fixes).

    Attributes:
        encoder: texture encoder (``fft`` offline default, ``stats``, ``timm:NAME``).
        encoder_weights: local weights file for a timm encoder.
        crop_size: crop side in pixels (at the library's pixel size).
        min_crop_size: thinnest region side that still gives crops.
        crops_per_material: crops sampled per material, example and rung of the crop-size ladder.
        seed: crop sampling seed.
    """

    encoder: str = "fft"
    encoder_weights: str | None = None
    crop_size: int = 60
    min_crop_size: int = 16
    crops_per_material: int = 96
    seed: int = 0

    def validate(self) -> LearnConfig:
        """Check ranges; return self.

        Raises:
            ParameterError: a value outside its range.
        """
        if self.crop_size < 8 or self.min_crop_size < 4 or self.min_crop_size > self.crop_size:
            raise ParameterError(
                f"crop size must be >= 8 px and min crop size in [4, crop size], got {self.crop_size}, "
                f"{self.min_crop_size}"
            )
        if self.crops_per_material < 2:
            raise ParameterError(f"crops per material must be >= 2, got {self.crops_per_material}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Example:
    """One labelled image.

    Attributes:
        image: the micrograph (normalised image, pixel size if known).
        regions: material name → HxW boolean region.
        source: where the labels came from (for messages and the library's ``sources``).
    """

    image: Micrograph
    regions: dict[str, np.ndarray]
    source: str


@dataclass
class LearnReport:
    """What learning did: crops per material and example, and regions that gave no crops."""

    added: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _as_micrograph(image: Micrograph | np.ndarray | str | Path, source: str) -> Micrograph:
    if isinstance(image, Micrograph):
        return image
    if isinstance(image, (str, Path)):
        from samiam.io.read import read_micrograph

        return read_micrograph(image)
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        arr = arr[:, :, :3].mean(axis=2)
    return micrograph_from_array(arr.astype(np.float32), source)


def _check_regions(regions: dict[str, np.ndarray], shape: tuple[int, int], source: str) -> dict[str, np.ndarray]:
    out = {}
    for name, region in regions.items():
        name = str(name).strip()
        if not name:
            continue
        if name == UNKNOWN:
            continue  # masks the library could not name are not examples of anything
        if region.shape != shape:
            raise InputError(
                f"{source}: region '{name}' is {region.shape[1]}x{region.shape[0]}, the image is {shape[1]}x{shape[0]}"
            )
        out[name] = out[name] | region if name in out else region.astype(bool)
    if not out:
        raise InputError(f"{source}: no named regions to learn from")
    return out


# ---------------------------------------------------------------------------------------------
# Example sources


def example_from_label_map(
    image: Micrograph | np.ndarray | str | Path,
    labels: np.ndarray | str | Path,
    names: Mapping[int, str] | Sequence[str],
    source: str | None = None,
) -> Example:
    """An example from a label map and the names of its labels.

    Args:
        image: the micrograph, an array, or an image file.
        labels: HxW integer label map (0 = ignore) or an image/.npy file holding one.
        names: name of label k, as a mapping ``{k: name}`` or a sequence (``names[k-1]``); labels
            without a name are ignored.
        source: name for messages (default: the label file or "label map").

    Raises:
        InputError: unreadable labels, size mismatch, non-integer labels, or no named region.
    """
    src = source or (str(labels) if isinstance(labels, (str, Path)) else "label map")
    mic = _as_micrograph(image, src)
    lab = _read_label_map(labels) if isinstance(labels, (str, Path)) else np.asarray(labels)
    if lab.ndim != 2 or lab.dtype.kind not in "iub":
        raise InputError(f"{src}: a label map must be a 2-D integer image, got {lab.dtype} with shape {lab.shape}")
    if lab.shape != mic.image.shape:
        raise InputError(
            f"{src}: label map is {lab.shape[1]}x{lab.shape[0]}, the image {mic.source} is {mic.width}x{mic.height}"
        )
    table = dict(names) if isinstance(names, Mapping) else {k: n for k, n in enumerate(names, start=1)}
    present = [int(v) for v in np.unique(lab) if v > 0]
    regions = {str(table[k]): lab == k for k in present if table.get(k)}
    return Example(mic, _check_regions(regions, mic.image.shape, src), src)


def _read_label_map(path: str | Path) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such label map")
    if path.suffix.lower() == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: not a readable .npy label map ({exc})") from None
    import cv2

    lab = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if lab is None:
        raise InputError(f"{path}: not a readable label image")
    if lab.ndim == 3:
        raise InputError(f"{path}: a label map must be single-channel, got {lab.shape[2]} channels")
    return lab


def _resolve_image(ref: str, near: Path) -> Path:
    p = Path(ref)
    for cand in (p, near / p, near / p.name):
        if cand.is_file():
            return cand
    raise InputError(f"{near}: the image '{ref}' named in the masks file was not found (also looked in {near})")


def example_from_masks_json(path: str | Path, image: Micrograph | np.ndarray | str | Path | None = None) -> Example:
    """An example from a ``<stem>.masks.json`` whose masks carry material names.

    Args:
        path: the masks file.
        image: the image (default: the file named in the document, as given or next to the JSON).

    Raises:
        InputError: unreadable file, image not found or of another size, or no named mask.
    """
    from samiam.io.write import read_masks_json

    path = Path(path)
    seg = read_masks_json(path)
    if image is None:
        image = _resolve_image(seg.file, path.parent)
    mic = _as_micrograph(image, str(path))
    if (mic.height, mic.width) != (seg.height, seg.width):
        raise InputError(
            f"{path}: masks are for {seg.width}x{seg.height}, the image {mic.source} is {mic.width}x{mic.height}"
        )
    regions: dict[str, np.ndarray] = {}
    for rec in seg.masks:
        if isinstance(rec.material, str) and rec.material.strip() and rec.material != UNKNOWN:
            name = rec.material.strip()
            m = rec.decode()
            regions[name] = regions[name] | m if name in regions else m
    if not regions:
        raise InputError(f'{path}: no named masks; set the "material" of the masks to learn from to a name (e.g. "Ge")')
    return Example(mic, _check_regions(regions, (mic.height, mic.width), str(path)), str(path))


def _task_regions(task: dict[str, Any], height: int, width: int, source: str) -> dict[str, np.ndarray]:
    """Named regions of one Label Studio task (brush and polygon results of its annotations)."""
    import cv2

    from samiam.labelstudio.brush_rle import decode_brush_rle

    regions: dict[str, np.ndarray] = {}
    claims = np.zeros((height, width), np.int32)  # how many different names claim each pixel
    annotations = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
    for ann in annotations:
        for res in ann.get("result") or []:
            if not isinstance(res, dict):
                continue
            kind = res.get("type")
            value = res.get("value") or {}
            if kind not in ("brushlabels", "polygonlabels"):
                continue
            labels = value.get(kind) or []
            if not labels:
                continue
            oh, ow = res.get("original_height", height), res.get("original_width", width)
            if (oh, ow) != (height, width):
                raise InputError(f"{source}: annotation is for a {ow}x{oh} image, the image is {width}x{height}")
            if kind == "brushlabels":
                if value.get("format", "rle") != "rle" or not isinstance(value.get("rle"), list):
                    raise InputError(f"{source}: brush result without an 'rle' list")
                try:
                    m = decode_brush_rle(value["rle"], height, width)
                except ValueError as exc:
                    raise InputError(f"{source}: undecodable brush RLE ({exc})") from None
            else:
                pts = np.asarray(value.get("points") or [], float)
                if pts.ndim != 2 or pts.shape[0] < 3 or pts.shape[1] != 2:
                    continue
                poly = np.rint(pts / 100.0 * [width, height]).astype(np.int32)
                canvas = np.zeros((height, width), np.uint8)
                cv2.fillPoly(canvas, [poly], 1)
                m = canvas.astype(bool)
            name = str(labels[0]).strip()
            if name in regions:
                regions[name] |= m
            else:
                regions[name] = m
    if not regions:
        return {}
    for m in regions.values():
        claims += m
    # pixels painted with two different names are ambiguous: learn from neither
    return {k: m & (claims == 1) for k, m in regions.items()}


ImageFor = Callable[[dict[str, Any]], "Micrograph | np.ndarray | str | Path"]


def _default_image_for(task: dict[str, Any]) -> Micrograph | np.ndarray | str | Path:
    data = task.get("data") or {}
    for key in ("image", *data):
        ref = data.get(key)
        if isinstance(ref, str) and Path(ref).is_file():
            return ref
    raise InputError(
        f"task {task.get('id', '?')}: no local image file in its data "
        f"({', '.join(map(str, data)) or 'empty'}); "
        "pass image_for= to resolve Label Studio URLs"
    )


def examples_from_labelstudio(
    tasks: list[dict[str, Any]], image_for: ImageFor | None = None, source: str = "Label Studio"
) -> list[Example]:
    """Examples from Label Studio tasks with brush (or polygon) annotations.

    Args:
        tasks: task dicts (``data`` and ``annotations`` with ``result`` lists), as in an export or a
            webhook payload (``{"task": ..., "annotation": ...}`` items are accepted too).
        image_for: returns the task's image (Micrograph, array, or local path); default: the
            first ``data`` value that is an existing local file.
        source: name for messages.

    Returns:
        One example per task that has labelled regions (tasks without any are skipped).

    Raises:
        InputError: malformed tasks, size mismatches, undecodable brushes, or no labelled task.
    """
    if not isinstance(tasks, list):
        raise InputError(f"{source}: expected a list of tasks, got {type(tasks).__name__}")
    image_for = image_for or _default_image_for
    out = []
    for i, task in enumerate(tasks):
        if not isinstance(task, dict):
            raise InputError(f"{source}: task {i} is not an object")
        if "task" in task and "annotation" in task:  # webhook payload shape
            task = {**task["task"], "annotations": [task["annotation"]]}
        name = f"{source} task {task.get('id', i)}"
        if not any((a or {}).get("result") for a in task.get("annotations") or []):
            continue
        mic = _as_micrograph(image_for(task), name)
        regions = _task_regions(task, mic.height, mic.width, name)
        if regions:
            out.append(Example(mic, _check_regions(regions, (mic.height, mic.width), name), name))
    if not out:
        raise InputError(f"{source}: no task with brush or polygon annotations")
    return out


def read_labelstudio_export(path: str | Path) -> list[dict[str, Any]]:
    """Read a Label Studio JSON export (a list of tasks).

    Raises:
        InputError: missing file, invalid JSON or not a list of tasks.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a Label Studio JSON export ({exc})") from None
    if isinstance(doc, dict) and "annotations" in doc:  # one task (or a samiam masks document)
        doc = [doc]
    if not isinstance(doc, list) or not all(isinstance(t, dict) for t in doc):
        raise InputError(f"{path}: not a Label Studio JSON export (expected a list of tasks)")
    return doc


# ---------------------------------------------------------------------------------------------
# Learning


def new_library(cfg: LearnConfig, pixel_nm: float | None = None) -> Library:
    """An empty library with the settings of ``cfg``."""
    cfg.validate()
    return Library(encoder=cfg.encoder, crop_size=cfg.crop_size, pixel_size_nm=pixel_nm)


def learn_examples(
    examples: Sequence[Example],
    cfg: LearnConfig | None = None,
    library: Library | None = None,
    encoder: Encoder | None = None,
) -> tuple[Library, LearnReport]:
    """Add examples to a library (a new one if None).

    The library's pixel size is that of the first calibrated example of a new library; features of
    other calibrated examples are brought to it (``samiam.library.features.calibrated``). An
    existing library keeps its encoder and crop size.

    Args:
        examples: labelled images.
        cfg: crop and encoder settings.
        library: library to extend (changed in place), or None.
        encoder: prepared encoder (built from the library's encoder if None).

    Returns:
        (the library, what was added).

    Raises:
        InputError: no example gave any crop (all regions thinner than the minimum crop).
    """
    cfg = (cfg or LearnConfig()).validate()
    if library is None:
        first_px = next(
            (
                pixel_size_nm(e.image.pixel_size, e.image.pixel_unit)
                for e in examples
                if pixel_size_nm(e.image.pixel_size, e.image.pixel_unit)
            ),
            None,
        )
        library = new_library(cfg, first_px)
    enc = encoder or build_encoder(library.encoder, cfg.encoder_weights)
    report = LearnReport()
    for ex in examples:
        px = pixel_size_nm(ex.image.pixel_size, ex.image.pixel_unit)
        px_scale = scale_for(library.pixel_size_nm, px)
        enc_ex, scale = calibrated(library.encoder, enc, px_scale)
        names = list(ex.regions)
        recs = [MaskRecord.from_mask(ex.regions[n]) for n in names]
        sides = ladder_sizes(library.crop_size, min(cfg.min_crop_size, library.crop_size))
        crops, crop_sides = sample_ladder_crops(
            ex.image.image, recs, sides, cfg.crops_per_material, cfg.seed, scale, all_sizes=True
        )
        if not crops.crops:
            report.skipped.extend(f"{ex.source}: {n}" for n in names)
            continue
        feats = enc_ex(crops.crops)
        for k, name in enumerate(names):
            mine = np.flatnonzero(crops.owner == k)
            if mine.size < 2:
                report.skipped.append(f"{ex.source}: {name}")
                continue
            largest = crop_sides[mine].max()
            period = periodicity_px([crops.crops[i] for i in mine if crop_sides[i] == largest])
            if period is not None:  # crops at the image's pixels (scale 1) or the library's: to library pixels
                period *= scale / px_scale
            region_px = ex.image.image[ex.regions[name]]
            stats = {
                "n_crops": int(mine.size),
                "intensity_mean": round(float(region_px.mean()), 4),
                "intensity_std": round(float(region_px.std()), 4),
                "period_px": None if period is None else round(period, 3),
                "period_nm": None
                if period is None or library.pixel_size_nm is None
                else round(period * library.pixel_size_nm, 4),
                "area_px": int(ex.regions[name].sum()),
            }
            library.add(
                MaterialEntry(name=name, features=feats[mine], sizes=crop_sides[mine], stats=stats, sources=[ex.source])
            )
            report.added.append(
                {
                    "source": ex.source,
                    "material": name,
                    "crops": int(mine.size),
                    "largest_crop": int(largest),
                    "period_px": stats["period_px"],
                }
            )
    if not library.materials:
        raise InputError(
            f"no crops could be taken from the examples: every labelled region is thinner than {cfg.min_crop_size} px"
        )
    return library, report


def update_library_from_tasks(
    library_path: str | Path,
    tasks: list[dict[str, Any]],
    image_for: ImageFor | None = None,
    cfg: LearnConfig | None = None,
) -> Library:
    """Build or extend the library file from annotated Label Studio tasks (the backend's ``fit``).

    Args:
        library_path: the library file (created if missing, extended otherwise; written atomically).
        tasks: Label Studio tasks with brush/polygon annotations (export or webhook shape).
        image_for: resolves a task to its image, e.g.
            ``lambda t: resolver.load(t["data"]["image"]).micrograph``.
        cfg: learning settings for a new library.

    Returns:
        The saved library.

    Raises:
        InputError: unreadable library or tasks, nothing labelled.
        OutputError: the library cannot be written.
    """
    library_path = Path(library_path)
    library = load_library(library_path) if library_path.exists() else None
    examples = examples_from_labelstudio(tasks, image_for)
    library, _ = learn_examples(examples, cfg, library)
    save_library(library, library_path)
    return library
