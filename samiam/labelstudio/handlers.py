"""The Label Studio ML backend protocol, framework-free: JSON payload in, JSON document out.

Endpoints (``samiam.labelstudio.app`` maps them to HTTP):

* ``health()`` — ``GET /health``: ``{"status": "UP", ...}``.
* ``setup(payload)`` — ``POST /setup`` with ``project``, ``schema`` (the labelling config),
  ``hostname``, ``access_token``: checks the config and answers ``{"model_version": ...}``.
* ``predict(payload)`` — ``POST /predict`` with ``tasks``, ``label_config``, ``project`` and
  ``params.context``. With a context (the user's clicks/boxes of the smart tools) the first task
  gets one SAM mask; without one every task is segmented automatically (boosted), one brush
  region per material. Answers ``{"results": [one prediction per task], "model_version": ...}``.
* ``webhook(payload)`` — ``POST /webhook``: training events are acknowledged and ignored.
* ``versions()`` — ``GET/POST /versions``: ``{"versions": [model_version]}``.

Malformed requests raise ``RequestError`` subclasses carrying the HTTP status to answer with.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

from samiam import __version__
from samiam.errors import SamiamError
from samiam.labelstudio.brush_rle import encode_brush_rle
from samiam.labelstudio.config import BRUSH_TYPE, PROMPT_TYPES, ControlTag, LabelConfig, parse_label_config
from samiam.labelstudio.defects import DefectNamer
from samiam.labelstudio.errors import ImageUnreadableError, RequestError
from samiam.labelstudio.images import ImageResolver, LoadedImage
from samiam.labelstudio.interactive import InteractiveSegmenter, Prompts, rectangle_to_box
from samiam.labelstudio.lru import LRUCache
from samiam.models.build import LoadedModel
from samiam.pipeline import SegmentConfig, segment_micrograph
from samiam.segmentation import Segmentation

log = logging.getLogger("samiam.labelstudio")

NEGATIVE_LABELS = frozenset({"negative", "background", "neg", "exclude", "-"})
MAX_TASKS = 1000


def _region_id() -> str:
    return uuid.uuid4().hex[:10]


def brush_result(
    mask: np.ndarray, label: str | None, control: ControlTag, to_name: str, score: float | None = None
) -> dict[str, Any]:
    """One ``brushlabels`` result region in Label Studio's JSON format.

    Args:
        mask: HxW bool mask.
        label: the brush label (None: no label).
        control: the ``BrushLabels`` control (``from_name``).
        to_name: the image tag name.
        score: model confidence, if any.

    Returns:
        The result dict with ``value.format = "rle"`` and ``value.rle`` in Label Studio's brush RLE.
    """
    h, w = mask.shape
    region: dict[str, Any] = {
        "id": _region_id(),
        "from_name": control.name,
        "to_name": to_name,
        "type": BRUSH_TYPE,
        "original_width": int(w),
        "original_height": int(h),
        "image_rotation": 0,
        "value": {"format": "rle", "rle": encode_brush_rle(mask), "brushlabels": [label] if label else []},
        "readonly": False,
    }
    if score is not None:
        region["score"] = round(float(score), 4)
    return region


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise RequestError(f"context: {what} must be a number, got {value!r}")
    return float(value)


@dataclass
class Context:
    """The smart-tool regions of an interactive request, still in Label Studio's percent units.

    Attributes:
        to_name: the image tag the regions are drawn on.
        label: the label chosen for the first positive prompt that has one (None: none chosen).
        points: (N, 2) point positions in percent.
        point_labels: (N,) 1 = positive, 0 = negative.
        rectangle: ``(x, y, width, height, rotation)`` in percent / degrees, or None.
        size: ``(original_width, original_height)`` Label Studio reported, if any.
    """

    to_name: str
    label: str | None
    points: np.ndarray
    point_labels: np.ndarray
    rectangle: tuple[float, float, float, float, float] | None
    size: tuple[int, int] | None

    def to_pixels(self, width: int, height: int) -> Prompts:
        """SAM prompts in pixels for an image of ``width`` x ``height``."""
        pts = self.points * np.array([width, height], np.float32) / 100.0
        box = rectangle_to_box(*self.rectangle, width, height) if self.rectangle else None
        return Prompts(points=pts.astype(np.float32), point_labels=self.point_labels, box=box)


def parse_context(items: Any) -> Context:
    """Parse ``params.context.result`` (KeyPointLabels / RectangleLabels regions).

    A point is negative when ``is_positive`` is false or, without that key, when its label is
    one of ``negative``, ``background``, ``neg``, ``exclude``, ``-``. Rectangles are positive.

    Args:
        items: the list of regions.

    Returns:
        The parsed context.

    Raises:
        RequestError: not a list, empty, an unsupported region type, missing or non-numeric
            coordinates, regions on two images, or two rectangles.
    """
    if not isinstance(items, list) or not items:
        raise RequestError("params.context.result must be a non-empty list of regions")
    points: list[tuple[float, float]] = []
    polarity: list[int] = []
    rectangle = None
    chosen: str | None = None
    to_name: str | None = None
    size = None
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("value"), dict):
            raise RequestError(f"context.result[{i}] must be an object with a 'value' object")
        kind = str(item.get("type", "")).lower()
        if kind not in PROMPT_TYPES:
            raise RequestError(
                f"unsupported control tag '{item.get('type')}' in context.result[{i}]; samiam takes "
                "KeyPointLabels (points) and RectangleLabels (boxes) as prompts"
            )
        item_to = item.get("to_name")
        if not isinstance(item_to, str) or not item_to:
            raise RequestError(f"context.result[{i}] has no 'to_name'")
        if to_name is not None and item_to != to_name:
            raise RequestError(f"context regions are on two images ('{to_name}' and '{item_to}')")
        to_name = item_to
        if (
            size is None
            and isinstance(item.get("original_width"), int)
            and isinstance(item.get("original_height"), int)
        ):
            size = (item["original_width"], item["original_height"])
        value = item["value"]
        names = value.get(kind) if kind.endswith("labels") else None
        if names is not None and (not isinstance(names, list) or not all(isinstance(v, str) for v in names)):
            raise RequestError(f"context.result[{i}].value.{kind} must be a list of label names")
        label = names[0] if names else None
        x, y = _number(value.get("x"), "x"), _number(value.get("y"), "y")
        if kind.startswith("keypoint"):
            if "is_positive" in item:
                positive = bool(item["is_positive"])
            else:
                positive = label is None or label.strip().lower() not in NEGATIVE_LABELS
            points.append((x, y))
            polarity.append(1 if positive else 0)
        else:
            if rectangle is not None:
                raise RequestError("more than one rectangle in the context; SAM takes one box per mask")
            w, h = _number(value.get("width"), "width"), _number(value.get("height"), "height")
            if w <= 0 or h <= 0:
                raise RequestError(f"context.result[{i}]: rectangle of zero size ({w} x {h} percent)")
            rectangle = (x, y, w, h, _number(value.get("rotation", 0), "rotation"))
            positive = True
        if positive and chosen is None and label is not None:
            chosen = label
    return Context(
        to_name=to_name,
        label=chosen,
        points=np.asarray(points, np.float32).reshape(-1, 2),
        point_labels=np.asarray(polarity, np.int32),
        rectangle=rectangle,
        size=size,
    )


class LabelStudioBackend:
    """State and logic of one backend process: the model, the caches and the image resolver.

    Args:
        model: the loaded SAM-family model.
        segment_config: settings of the automatic (boosted) segmentation.
        resolver: where task images come from (default: from the environment).
        embedding_cache: image embeddings kept for interactive prompts.
        result_cache: automatic segmentations kept (same image + settings → no recomputation).
        materials_from_config: with ``materials = auto``, cap the number of materials at the
            number of labels of the ``BrushLabels`` control, so every region gets a config label.
        defects: STM defect mode (``labelstudio.defects.DefectNamer``): automatic predictions of a
            project with a ``RectangleLabels`` control are defect rectangles, named after the
            rectangles labelled so far (webhooks).
    """

    def __init__(
        self,
        model: LoadedModel,
        segment_config: SegmentConfig | None = None,
        resolver: ImageResolver | None = None,
        embedding_cache: int = 8,
        result_cache: int = 16,
        materials_from_config: bool = True,
        defects: DefectNamer | None = None,
    ) -> None:
        self.model = model
        self.defects = defects
        self.segment_config = (segment_config or SegmentConfig()).validate()
        self.resolver = resolver or ImageResolver.from_env()
        self.interactive = InteractiveSegmenter(model, embedding_cache)
        self.results: LRUCache[Segmentation] = LRUCache(result_cache)
        self.materials_from_config = materials_from_config
        self._schemas: dict[str, str] = {}
        self._schemas_lock = threading.Lock()

    @property
    def model_version(self) -> str:
        """Version string stored with predictions (Label Studio skips tasks predicted by it)."""
        return f"samiam-{__version__}-{self.model.name}"

    # -- endpoints ----------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``GET /health``."""
        return {
            "status": "UP",
            "model_class": "samiam",
            "model_version": self.model_version,
            "model": self.model.name,
            "point_prompts": self.model.point_prompts,
        }

    def setup(self, payload: Any) -> dict[str, Any]:
        """``POST /setup``: remember the project's config, adopt host/token, answer the model version."""
        payload = self._object(payload)
        schema = payload.get("schema")
        if schema is not None:
            config = parse_label_config(schema)
            if self._rectangles(config) is None:
                config.brush_for()  # a project we cannot answer is reported at connection time
            project = payload.get("project")
            if project is not None:
                with self._schemas_lock:
                    self._schemas[str(project)] = schema
        self.resolver.adopt_setup(payload.get("hostname"), payload.get("access_token"))
        return {"model_version": self.model_version}

    def versions(self, payload: Any = None) -> dict[str, Any]:
        """``GET|POST /versions``."""
        return {"versions": [self.model_version]}

    def webhook(self, payload: Any) -> dict[str, Any]:
        """``POST /webhook``: with a material library (``--library``), annotations update it (``fit``).

        ANNOTATION_CREATED / ANNOTATION_UPDATED events carrying brush annotations are added to the
        library file, so the next automatic prediction names materials with what was just labelled.
        Without a library, or for other events, the event is acknowledged and ignored.
        """
        payload = self._object(payload)
        action = payload.get("action")
        if not isinstance(action, str) or not action:
            raise RequestError("webhook payload needs an 'action' (e.g. ANNOTATION_CREATED)")
        if self.defects is not None and action in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED"):
            try:
                names = self.defects.add_tasks([payload], lambda t: self._any_image(t).micrograph)
            except SamiamError as exc:
                raise RequestError(f"could not learn defect classes from the annotation: {exc}") from None
            return {"status": "updated", "action": action, "defect_classes": names}
        library = self.segment_config.boost.library
        if not library:
            return {
                "status": "ignored",
                "action": action,
                "reason": "no material library configured (start the backend with a library)",
            }
        if action not in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED"):
            return {"status": "ignored", "action": action, "reason": "only annotation events update the library"}
        from samiam.library import update_library_from_tasks

        def image_for(task: dict[str, Any]) -> Any:
            data = task.get("data") or {}
            ref = data.get("image") or next((v for v in data.values() if isinstance(v, str)), None)
            if ref is None:
                raise RequestError("the task has no image reference in 'data'")
            return self.resolver.load(ref).micrograph

        try:
            lib = update_library_from_tasks(library, [payload], image_for=image_for)
        except SamiamError as exc:
            raise RequestError(f"could not update the library {library}: {exc}") from None
        self.results.clear()  # cached automatic predictions used the old library
        return {"status": "updated", "action": action, "library": library, "materials": sorted(lib.names)}

    def predict(self, payload: Any) -> dict[str, Any]:
        """``POST /predict``: interactive mask (with context) or automatic materials (without).

        Returns:
            ``{"results": [prediction per task], "model_version": str}``; a prediction is
            ``{"result": [regions], "score": float, "model_version": str}``.

        Raises:
            RequestError: (or a subclass) for anything malformed or unreadable in the request.
        """
        payload = self._object(payload)
        tasks = payload.get("tasks")
        if not isinstance(tasks, list) or not tasks:
            raise RequestError("no tasks: the request needs a non-empty 'tasks' list")
        if len(tasks) > MAX_TASKS:
            raise RequestError(f"{len(tasks)} tasks in one request; at most {MAX_TASKS} are accepted")
        for i, task in enumerate(tasks):
            if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
                raise RequestError(f"tasks[{i}] must be an object with a 'data' object")
        config = parse_label_config(self._label_config(payload))
        params = payload.get("params") or {}
        if not isinstance(params, dict):
            raise RequestError(f"'params' must be an object, got {type(params).__name__}")
        context = params.get("context")
        if context is not None and not isinstance(context, dict):
            raise RequestError(f"params.context must be an object, got {type(context).__name__}")
        interactive = bool(context and context.get("result"))
        results = []
        for task in tasks[:1] if interactive else tasks:
            try:
                if interactive:
                    results.append(self._predict_interactive(task, config, context["result"]))
                else:
                    results.append(self._predict_automatic(task, config))
            except RequestError as exc:
                raise type(exc)(f"task {task.get('id', '?')}: {exc}") from None
        return {"results": results, "model_version": self.model_version}

    # -- helpers ------------------------------------------------------------------------------------

    @staticmethod
    def _object(payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise RequestError(f"the request body must be a JSON object, got {type(payload).__name__}")
        return payload

    def _label_config(self, payload: dict[str, Any]) -> str:
        config = payload.get("label_config")
        if config:
            return config
        with self._schemas_lock:
            known = self._schemas.get(str(payload.get("project")))
        if known:
            return known
        raise RequestError("no 'label_config' in the request and none known from /setup for this project")

    def _task_image(self, task: dict[str, Any], config: LabelConfig, to_name: str) -> LoadedImage:
        tag = config.image(to_name)
        ref = task["data"].get(tag.value_key)
        if ref is None:
            raise RequestError(
                f"no data key '{tag.value_key}' (the <Image name=\"{tag.name}\"> reads "
                f"${tag.value_key}); data keys: {', '.join(task['data']) or 'none'}"
            )
        return self.resolver.load(ref)

    def _predict_interactive(self, task: dict[str, Any], config: LabelConfig, items: Any) -> dict[str, Any]:
        context = parse_context(items)  # malformed context fails before the image is fetched
        config.image(context.to_name)
        control = config.brush_for(context.to_name, context.label)
        label = context.label if context.label is not None else (control.labels[0] if control.labels else None)
        image = self._task_image(task, config, context.to_name)
        mic = image.micrograph
        if context.size is not None and context.size != (mic.width, mic.height):
            log.warning(
                "task %s: Label Studio says the image is %sx%s, the file is %dx%d; using the file",
                task.get("id"),
                *context.size,
                mic.width,
                mic.height,
            )
        mask, score = self.interactive.segment(image, context.to_pixels(mic.width, mic.height))
        regions = [brush_result(mask, label, control, context.to_name, score)] if mask.any() else []
        return {"result": regions, "score": round(score, 4), "model_version": self.model_version}

    def _automatic_config(self, n_labels: int) -> SegmentConfig:
        cfg = copy.deepcopy(self.segment_config)
        if self.materials_from_config and cfg.boost.materials == 0 and n_labels > 0:
            cfg.boost.max_materials = max(1, min(cfg.boost.max_materials, n_labels))
        return cfg.validate()

    def segment_image(self, image: LoadedImage, n_labels: int) -> Segmentation:
        """Boosted segmentation of an image, cached per image content, model and settings."""
        cfg = self._automatic_config(n_labels)
        key = (
            image.digest,
            self.model.name,
            json.dumps({"g": cfg.generator.to_dict(), "b": cfg.boost.to_dict()}, sort_keys=True, default=str),
        )

        def compute() -> Segmentation:
            try:
                return segment_micrograph(image.micrograph, self.model, cfg, boost=True)[1]
            except SamiamError as exc:
                raise ImageUnreadableError(f"{image.micrograph.source}: {exc}") from None

        return self.results.get_or_compute(key, compute)

    def _rectangles(self, config: LabelConfig) -> tuple[str, str] | None:
        """(RectangleLabels control, image tag) that defect predictions go to, in defect mode."""
        if self.defects is None:
            return None
        image_names = {t.name for t in config.images}
        for c in config.controls:
            if c.type == "rectanglelabels":
                for n in c.to_names:
                    if n in image_names:
                        return c.name, n
        return None

    def _any_image(self, task: dict[str, Any]) -> LoadedImage:
        data = task.get("task", task).get("data") or {}
        ref = data.get("image") or next((v for v in data.values() if isinstance(v, str)), None)
        if ref is None:
            raise RequestError("the task has no image reference in 'data'")
        return self.resolver.load(ref)

    def _predict_automatic(self, task: dict[str, Any], config: LabelConfig) -> dict[str, Any]:
        rect = self._rectangles(config)
        if rect is not None and self.defects is not None:
            image = self._task_image(task, config, rect[1])
            regions = self.defects.predict(image.micrograph, *rect)
            score = float(np.mean([r["score"] for r in regions])) if regions else 0.0
            return {"result": regions, "score": round(score, 4), "model_version": self.model_version}
        control = config.brush_for()
        image_names = {t.name for t in config.images}
        to_name = next(n for n in control.to_names if n in image_names)
        image = self._task_image(task, config, to_name)
        seg = self.segment_image(image, len(control.labels))
        return self.materials_prediction(seg, control, to_name)

    def materials_prediction(self, seg: Segmentation, control: ControlTag, to_name: str) -> dict[str, Any]:
        """One brush region per material of a boosted segmentation.

        Material ``k`` (1-based, the booster's order) gets the ``k``-th label of the control;
        materials beyond the control's labels (or all, if it has none) are named ``material k``.
        A material that already has a name (a string) keeps it; masks without a material are
        one region each.
        """
        groups: dict[int | str, list[int]] = {}
        for i, rec in enumerate(seg.masks):
            material = rec.material if isinstance(rec.material, int | str) else -(i + 1)
            groups.setdefault(material, []).append(i)
        regions, scores = [], []
        order = sorted(groups, key=lambda m: (isinstance(m, str), m if isinstance(m, str) else abs(m)))
        for material in order:
            mask = np.zeros((seg.height, seg.width), bool)
            for i in groups[material]:
                mask |= seg.masks[i].decode()
            if not mask.any():
                continue
            if isinstance(material, str):
                label = material
            elif 0 < material <= len(control.labels):
                label = control.labels[material - 1]
            else:
                label = f"material {abs(material)}"
            score = float(np.mean([seg.masks[i].score for i in groups[material]]))
            regions.append(brush_result(mask, label, control, to_name, score))
            scores.append(score)
        return {
            "result": regions,
            "score": round(float(np.mean(scores)), 4) if scores else 0.0,
            "model_version": self.model_version,
        }
