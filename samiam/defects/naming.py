"""Few-shot named defect classes: a few labelled boxes per class -> prototypes -> a name for every defect.

Pure functions, in the order they are used:
1. ``read_examples``: boxes with a label and an image, from a CSV (``label,x,y,width,height,filename``,
   as the WSe2 ``boxes.csv``) or a Label Studio JSON export of rectangle labels;
2. ``check_examples``: the example images exist and at least one is among the images analysed;
3. ``example_instances``: the detected defect each box holds (or one made from the box);
4. ``build_prototypes``: per class, the mean of its examples' class features (AE2 latent + shape
   descriptors, standardised like the model's mixture), and the distance beyond which a defect
   is ``unknown``, calibrated from the examples' own spread;
5. ``assign_names``: nearest prototype and its distance, or ``unknown``.

When the class names are physical attribute words (``Large Bright Peak``, ...), the prototypes
also carry an ``attributes.AttributeRule`` and the pipeline names defects by their sign,
amplitude and size instead (``attributes``: measured better on the WSe2 set, NAMING.md).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samiam.defects.attributes import AttributeRule
from samiam.defects.instances import DefectInstance
from samiam.errors import InputError, ParameterError

UNKNOWN = "unknown"
COLUMNS = ("label", "x", "y", "width", "height", "filename")
# Label Studio stores uploads as "<8 hex digits>-<original name>"
_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")


@dataclass
class Example:
    """One labelled box.

    Attributes:
        label: class name.
        box: [x, y, width, height] in pixels.
        file: the image the box is on (resolved path).
    """

    label: str
    box: tuple[float, float, float, float]
    file: Path


@dataclass
class Prototypes:
    """Named prototypes in the model's class-feature space.

    Attributes:
        names: class names, one per prototype.
        centres: (K, d) standardised mean feature of each class's examples.
        threshold: a defect farther than this from every prototype is ``unknown``.
        n_examples: examples per class.
        source: the examples file.
        rule: how the threshold was set (for the run record).
        attributes: when the class names are physical attribute words (``Large Bright Peak``),
            the rule that names defects by their sign, amplitude and size instead
            (``attributes.build_attribute_rule``), else None.
    """

    names: list[str]
    centres: np.ndarray
    threshold: float
    n_examples: list[int]
    source: str = ""
    rule: str = ""
    attributes: AttributeRule | None = None

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "names": self.names,
            "n_examples": self.n_examples,
            "unknown_threshold": None if not np.isfinite(self.threshold) else round(float(self.threshold), 4),
            "threshold_rule": self.rule,
            "method": "attributes" if self.attributes is not None else "nearest prototype",
            "attributes": self.attributes.to_dict() if self.attributes is not None else None,
        }


def _resolve(ref: str, folder: Path) -> Path:
    p = Path(ref)
    return p if p.is_absolute() else folder / p


def _number(value: str | None, column: str, where: str) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{where}: column '{column}' must be a number, got {value!r}") from None
    if not np.isfinite(v):
        raise InputError(f"{where}: column '{column}' must be finite, got {value!r}")
    return v


def read_examples_csv(path: Path) -> list[Example]:
    """Examples from a CSV with the columns ``label,x,y,width,height,filename`` (extra columns ignored)."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in reader.fieldnames or []]
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise InputError(
                    f"{path}: missing column(s) {', '.join(missing)}; expected the columns {','.join(COLUMNS)}, "
                    f"got {','.join(header) or 'none'}"
                )
            rows = [{(k or "").strip(): v for k, v in row.items()} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: not a readable CSV ({exc})") from None
    out = []
    for i, row in enumerate(rows, start=2):
        where = f"{path}, line {i}"
        label = (row.get("label") or "").strip()
        if not label:
            raise InputError(f"{where}: empty label")
        box = tuple(_number(row.get(c), c, where) for c in ("x", "y", "width", "height"))
        if box[2] <= 0 or box[3] <= 0:
            raise InputError(f"{where}: width and height must be > 0, got {box[2]:g} and {box[3]:g}")
        name = (row.get("filename") or "").strip()
        if not name:
            raise InputError(f"{where}: empty filename")
        out.append(Example(label, box, _resolve(name, path.parent)))  # type: ignore[arg-type]
    return out


def _task_file(task: dict, folder: Path) -> Path:
    """The local image of a Label Studio task: its data path as given, or its file name next to the export."""
    data = task.get("data") or {}
    ref = (
        data.get("image")
        if isinstance(data.get("image"), str)
        else next((v for v in data.values() if isinstance(v, str)), None)
    )
    if ref is None:
        raise InputError(f"task {task.get('id', '?')}: no image reference in its data")
    name = ref.split("?")[0].rstrip("/").split("/")[-1]
    for cand in (Path(ref), folder / ref, folder / name, folder / _UPLOAD_PREFIX.sub("", name)):
        if cand.is_file():
            return cand
    return folder / _UPLOAD_PREFIX.sub("", name)


def examples_from_tasks(tasks: list, file_for: Callable[[dict], Path], source: str) -> list[Example]:
    """Examples from Label Studio tasks with ``rectanglelabels`` results (export or webhook payloads).

    Coordinates are percent of ``original_width``/``original_height`` (converted with
    ``labelstudio.interactive.rectangle_to_box``, rotation included).

    Args:
        tasks: task dicts (``{"task": ..., "annotation": ...}`` webhook items are accepted too).
        file_for: the image (path or key) of a task.
        source: name for messages.

    Returns:
        The examples (tasks without rectangles give none).

    Raises:
        InputError: a rectangle without a label, size or numeric coordinates.
    """
    from samiam.labelstudio.interactive import rectangle_to_box

    out = []
    for task in tasks:
        if not isinstance(task, dict):
            raise InputError(f"{source}: a task is not an object")
        if "task" in task and "annotation" in task:  # webhook payload shape
            task = {**task["task"], "annotations": [task["annotation"]]}
        results = [
            r
            for a in task.get("annotations") or []
            if isinstance(a, dict) and not a.get("was_cancelled")
            for r in a.get("result") or []
            if isinstance(r, dict) and r.get("type") == "rectanglelabels"
        ]
        if not results:
            continue
        file = file_for(task)
        for r in results:
            v = r.get("value") or {}
            labels = v.get("rectanglelabels") or []
            ow, oh = r.get("original_width"), r.get("original_height")
            where = f"{source}: task {task.get('id', '?')}"
            if not labels or not isinstance(ow, int) or not isinstance(oh, int):
                raise InputError(f"{where}: a rectangle without a label or without original_width/original_height")
            nums = [_number(v.get(k), k, where) for k in ("x", "y", "width", "height")]
            x1, y1, x2, y2 = rectangle_to_box(*nums, float(v.get("rotation") or 0.0), ow, oh)
            out.append(Example(str(labels[0]).strip(), (float(x1), float(y1), float(x2 - x1), float(y2 - y1)), file))
    return out


def read_examples_labelstudio(path: Path) -> list[Example]:
    """Examples from a Label Studio JSON export with ``rectanglelabels`` results (``examples_from_tasks``).

    The task's image is its data path, or the file of that name (without Label Studio's upload
    prefix) next to the export.
    """
    from samiam.library.learn import read_labelstudio_export

    out = examples_from_tasks(read_labelstudio_export(path), lambda t: _task_file(t, path.parent), str(path))
    if not out:
        raise InputError(f"{path}: no rectangle labels (RectangleLabels results) in the export")
    return out


def read_examples(path: str | Path) -> list[Example]:
    """Labelled example boxes from a CSV or a Label Studio JSON export (by the file's suffix).

    Raises:
        InputError: missing or unreadable file, bad columns or values, no example.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such examples file")
    out = read_examples_labelstudio(path) if path.suffix.lower() == ".json" else read_examples_csv(path)
    if not out:
        raise InputError(f"{path}: no example rows")
    return out


def check_examples(examples: list[Example], images: list[Path], source: str) -> None:
    """Every example image exists and at least one is among ``images`` (by path or file name).

    Raises:
        InputError: an example names a file that does not exist, or none names a given image.
    """
    for ex in examples:
        if not ex.file.is_file():
            raise InputError(f"{source}: unknown filename {ex.file.name!r} (no file {ex.file})")
    given = {p.resolve() for p in images} | {p.name for p in images}
    if not any(ex.file.resolve() in given or ex.file.name in given for ex in examples):
        names = sorted({ex.file.name for ex in examples})
        raise InputError(
            f"{source}: names none of the {len(images)} given image(s) (it names {', '.join(names[:3])}"
            + (", ..." if len(names) > 3 else "")
            + ")"
        )


def box_instance(box: tuple[float, float, float, float], heights: np.ndarray, ring: int = 4) -> DefectInstance:
    """A defect instance made from a labelled box: its ellipse, centroid, area and contrast."""
    h, w = heights.shape
    x, y, bw, bh = box
    cx, cy = x + bw / 2, y + bh / 2
    yy, xx = np.ogrid[:h, :w]
    inside = ((xx - cx) / max(bw / 2, 0.5)) ** 2 + ((yy - cy) / max(bh / 2, 0.5)) ** 2 <= 1
    ring_m = (((xx - cx) / (bw / 2 + ring)) ** 2 + ((yy - cy) / (bh / 2 + ring)) ** 2 <= 1) & ~inside
    if not inside.any():
        inside = np.zeros((h, w), bool)
        inside[int(np.clip(cy, 0, h - 1)), int(np.clip(cx, 0, w - 1))] = True
    contrast = float(heights[inside].mean() - (np.median(heights[ring_m]) if ring_m.any() else 0.0))
    x0, y0 = int(max(0, np.floor(x))), int(max(0, np.floor(y)))
    return DefectInstance(
        id=0,
        bbox=[x0, y0, int(min(w, np.ceil(x + bw))) - x0, int(min(h, np.ceil(y + bh))) - y0],
        centroid=[float(np.clip(cx, 0, w - 1)), float(np.clip(cy, 0, h - 1))],
        area=int(inside.sum()),
        contrast=contrast,
    )


def example_instances(
    boxes: list[tuple[float, float, float, float]], instances: list[DefectInstance], heights: np.ndarray
) -> list[DefectInstance]:
    """For each box, the detected instance whose centroid lies in it nearest its centre, else one made from the box."""
    from samiam.defects.scoring import centroid_in_boxes

    if not boxes:
        return []
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    cents = np.array([d.centroid for d in instances], np.float64).reshape(-1, 2)
    inside = centroid_in_boxes(cents, b)  # (n_instances, n_boxes)
    centre = b[:, :2] + b[:, 2:] / 2
    dist = np.linalg.norm(cents[:, None, :] - centre[None], axis=2) if len(cents) else np.zeros((0, len(b)))
    dist = np.where(inside, dist, np.inf)
    out = []
    for j, box in enumerate(boxes):  # a few example boxes
        if len(cents) and np.isfinite(dist[:, j]).any():
            out.append(instances[int(dist[:, j].argmin())])
        else:
            out.append(box_instance(box, heights))
    return out


# the spread below which a feature's differences are not amplified further (feature units: the shape
# descriptors are logs, so 0.25 is a 28 % change of amplitude or area): a feature that barely varied
# in the training set (e.g. every training defect of one size) must not decide every name alone
MIN_SPREAD = 0.25


def standardise(features: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Features in the model's standardised class-feature space (spreads floored at ``MIN_SPREAD``)."""
    return (np.asarray(features, np.float64) - mean) / np.maximum(std, MIN_SPREAD)


def build_prototypes(features: np.ndarray, labels: list[str], source: str = "") -> Prototypes:
    """Class prototypes and the ``unknown`` distance from standardised example features.

    The prototype of a class is the mean of its examples. The threshold comes from the examples'
    own spread: the largest distance from a prototype to its nearest other prototype (a defect
    farther from every example than the classes are from each other is none of them), and, where
    classes have two or more examples, at least twice the 90th percentile of the leave-one-out
    distances of examples to their own class (the within-class spread). With one class of one
    example nothing bounds it: every defect gets that name.

    Args:
        features: (N, d) standardised features of the example defects.
        labels: N class names.
        source: examples file (for messages and the record).

    Returns:
        The prototypes.

    Raises:
        ParameterError: no examples, or features and labels of different lengths.
    """
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or len(x) != len(labels) or len(x) == 0:
        raise ParameterError(f"expected N >= 1 feature rows and N labels, got {x.shape} and {len(labels)}")
    names = sorted(set(labels))
    lab = np.array(labels)
    centres = np.stack([x[lab == n].mean(0) for n in names])
    counts = [int((lab == n).sum()) for n in names]
    parts, rule = [], []
    if len(names) > 1:
        d = np.linalg.norm(centres[:, None] - centres[None], axis=2)
        np.fill_diagonal(d, np.inf)
        parts.append(float(d.min(1).max()))
        rule.append("largest nearest-other-prototype distance")
    within = []
    for n in names:  # a few classes with a few examples
        xs = x[lab == n]
        if len(xs) < 2:
            continue
        for i in range(len(xs)):
            rest = np.delete(xs, i, axis=0).mean(0)
            within.append(float(np.linalg.norm(xs[i] - rest)))
    if within:
        parts.append(2.0 * float(np.percentile(within, 90)))
        rule.append("2 x 90th percentile of leave-one-out within-class distances")
    threshold = max(parts) if parts else float("inf")
    return Prototypes(names, centres, threshold, counts, source, "max of: " + "; ".join(rule) if rule else "none")


def assign_names(features: np.ndarray, prototypes: Prototypes) -> tuple[list[str], np.ndarray]:
    """Nearest prototype of each standardised feature row, or ``unknown`` beyond the threshold.

    Returns:
        (names, (N,) distance to the nearest prototype).
    """
    x = np.asarray(features, np.float64).reshape(-1, prototypes.centres.shape[1])
    if len(x) == 0:
        return [], np.zeros(0)
    d = np.linalg.norm(x[:, None] - prototypes.centres[None], axis=2)
    j = d.argmin(1)
    dist = d[np.arange(len(x)), j]
    names = [prototypes.names[k] if dk <= prototypes.threshold else UNKNOWN for k, dk in zip(j, dist, strict=True)]
    return names, dist
