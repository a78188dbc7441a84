"""Make ``import torchvision`` work when its compiled ops do not match the installed torch.

The pinned torchvision 0.28.0 wheel is CUDA-built; on a CPU-only torch its ``_C`` extension
does not load and ``import torchvision`` (hence ``segment_anything`` and ``timm``) fails with
``operator torchvision::nms does not exist``. ``install()`` registers ``torchvision::nms`` (and
``qnms``) with a pure-torch kernel *only* when the native op is absent after trying to load
the extension, so it is inert wherever the native ops load.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch

_LIBRARY: torch.library.Library | None = None  # keeps the registration alive
_STATE: str | None = None


def _op_exists(name: str) -> bool:
    try:
        getattr(torch.ops.torchvision, name)
    except (AttributeError, RuntimeError):
        return False
    return True


def _try_load_native() -> bool:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    for folder in spec.submodule_search_locations:
        for lib in sorted(Path(folder).glob("_C*.so")) + sorted(Path(folder).glob("_C*.pyd")):
            try:
                torch.ops.load_library(str(lib))
            except Exception:
                return False
            return _op_exists("nms")
    return False


def nms_reference(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression in plain torch (same contract as torchvision.ops.nms).

    Args:
        boxes: (N, 4) boxes as (x1, y1, x2, y2).
        scores: (N,) scores.
        iou_threshold: boxes overlapping a kept box by more than this IoU are dropped.

    Returns:
        int64 indices of kept boxes, by decreasing score.
    """
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    b = boxes[order].double()
    area = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    lt = torch.maximum(b[:, None, :2], b[None, :, :2])
    rb = torch.minimum(b[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)
    iou = inter / (area[:, None] + area[None, :] - inter).clamp(min=1e-12)
    over = (iou > iou_threshold).cpu().numpy()
    n = over.shape[0]
    suppressed = np.zeros(n, bool)
    keep = []
    for i in range(n):  # greedy: one vectorised row update per kept box
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= over[i]
    return order[torch.as_tensor(keep, dtype=torch.int64, device=boxes.device)]


def install() -> str:
    """Ensure ``torchvision::nms`` exists before torchvision is imported.

    Returns:
        ``"native"`` if torchvision's compiled ops are (or can be) loaded, ``"shim"`` if the
        pure-torch kernel was registered, ``"late"`` if torchvision was already imported
        without it (nothing can be done then).
    """
    global _LIBRARY, _STATE
    if _STATE is not None:
        return _STATE
    if _op_exists("nms") or _try_load_native():
        _STATE = "native"
        return _STATE
    if "torchvision" in sys.modules:
        _STATE = "late"
        return _STATE
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.impl("nms", nms_reference, "CompositeExplicitAutograd")
    lib.impl(
        "qnms",
        lambda d, s, t: nms_reference(d.dequantize(), s.dequantize(), t),
        "CompositeExplicitAutograd",
    )
    _LIBRARY = lib
    import torchvision.ops.boxes as tv_boxes

    # torchvision.ops.nms asserts that *all* compiled ops loaded; only nms is provided here,
    # so relax that check for the boxes module alone (roi_align & co. still raise).
    tv_boxes._assert_has_ops = _assert_nms_registered
    _STATE = "shim"
    return _STATE


def _assert_nms_registered() -> None:
    if not _op_exists("nms"):
        raise RuntimeError("torchvision::nms is not registered")
