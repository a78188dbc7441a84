"""STM defects in the Label Studio backend: named defect rectangles, learnt from the labelled tasks.

With a defect model (``samiam serve labelstudio --defect-model M``), the backend answers automatic
predictions of a project that has a ``RectangleLabels`` control with one rectangle per detected
defect. Rectangles users draw and label (``ANNOTATION_CREATED``/``UPDATED`` webhooks) become few-shot
examples (``samiam.defects.naming``); once the labelled tasks hold at least one example, every
predicted rectangle carries the name of the nearest example class (``unknown`` is left out of the
prediction); before that, the model's unsupervised class (``class k``).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from samiam.io.micrograph import Micrograph

RECTANGLE_TYPE = "rectanglelabels"


def rectangle_results(result: Any, from_name: str, to_name: str, include_unknown: bool = False) -> list[dict]:
    """Label Studio ``rectanglelabels`` regions of a ``DefectResult`` (percent coordinates).

    Args:
        result: the analysis of one image (``samiam.defects.run_defects``).
        from_name: the ``RectangleLabels`` control name.
        to_name: the image tag name.
        include_unknown: also return defects named ``unknown``.

    Returns:
        One region per defect, labelled with its few-shot name, else ``class k``.
    """
    from samiam.defects.naming import UNKNOWN

    h, w = result.detection.mask.shape
    out = []
    for inst in result.detection.instances:
        label = inst.name if inst.name is not None else f"class {inst.cls}"
        if inst.name == UNKNOWN and not include_unknown:
            continue
        x, y, bw, bh = inst.bbox
        score = inst.probability if inst.name is None else 1.0 / (1.0 + float(inst.name_distance or 0.0))
        out.append(
            {
                "id": uuid.uuid4().hex[:10],
                "from_name": from_name,
                "to_name": to_name,
                "type": RECTANGLE_TYPE,
                "original_width": int(w),
                "original_height": int(h),
                "image_rotation": 0,
                "value": {
                    "x": 100.0 * x / w,
                    "y": 100.0 * y / h,
                    "width": 100.0 * bw / w,
                    "height": 100.0 * bh / h,
                    "rotation": 0,
                    "rectanglelabels": [label],
                },
                "score": round(float(score), 4),
            }
        )
    return out


class DefectNamer:
    """A defect model and the few-shot examples collected from labelled tasks (thread-safe).

    Args:
        model: the loaded defect model (``samiam.defects.load_model``).
        params: analysis parameters (``DefectParams``).
    """

    def __init__(self, model: Any, params: Any = None) -> None:
        from samiam.defects import DefectParams

        self.model = model
        self.params = params or DefectParams()
        self._examples: dict[str, list] = {}  # task key -> its examples (a relabelled task replaces its own)
        self._images: dict[str, Micrograph] = {}
        self._prototypes = None
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        with self._lock:
            return [] if self._prototypes is None else list(self._prototypes.names)

    def add_tasks(self, tasks: list[dict], image_for: Callable[[dict], Micrograph]) -> list[str]:
        """Take the labelled rectangles of ``tasks`` as examples and rebuild the prototypes.

        Args:
            tasks: Label Studio tasks or webhook payloads (``{"task": ..., "annotation": ...}``).
            image_for: the micrograph of a task.

        Returns:
            The class names now known.
        """
        from samiam.defects.naming import examples_from_tasks
        from samiam.defects.pipeline import learn_prototypes

        new: dict[str, list] = {}
        images: dict[str, Micrograph] = {}

        def key_for(task: dict) -> Path:
            key = f"task-{task.get('id', len(images))}"
            images[key] = image_for(task)
            return Path(key)

        for task in tasks:
            exs = examples_from_tasks([task], key_for, "Label Studio")
            if exs:
                new[str(exs[0].file)] = exs
        if not new:
            return self.names
        with self._lock:
            self._examples.update(new)
            self._images.update(images)
            examples = [e for exs in self._examples.values() for e in exs]
            known = dict(self._images)
        protos = learn_prototypes(examples, self.model, self.params, "Label Studio tasks", read=lambda p: known[str(p)])
        with self._lock:
            self._prototypes = protos
        return list(protos.names)

    def predict(self, mg: Micrograph, from_name: str, to_name: str) -> list[dict]:
        """Rectangles of the defects of one image, named once examples are known."""
        from samiam.defects import run_defects

        with self._lock:
            protos = self._prototypes
        return rectangle_results(run_defects(mg, self.model, self.params, protos), from_name, to_name)
