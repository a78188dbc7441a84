"""Write samiam's outputs atomically: masks JSON, uint16 label map, overlay PNG.

The file layer itself (``atomic_write``, ``write_json``, ``check_writable_dir``) is
``samiam.io.files``: import those from there.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from samiam.errors import InputError
from samiam.io.files import atomic_write, write_json
from samiam.segmentation import Segmentation

# The outputs of one image, in the order they are written: the masks JSON goes last, so its
# presence marks a complete result (``--resume``).
OUTPUT_SUFFIXES = {"raw": ".raw.json", "labels": ".labels.png", "overlay": ".overlay.png", "masks": ".masks.json"}


def output_paths(outdir: str | Path, stem: str) -> dict[str, Path]:
    """The paths of one image's outputs, by kind (the keys of ``OUTPUT_SUFFIXES``).

    Args:
        outdir: output folder.
        stem: file name stem.

    Returns:
        ``{"raw": <outdir>/<stem>.raw.json, "labels": ..., "overlay": ..., "masks": ...}``.
    """
    return {kind: Path(outdir) / f"{stem}{suffix}" for kind, suffix in OUTPUT_SUFFIXES.items()}


class StreamedList:
    """A list value of ``write_json_streamed``: its items come from ``items()`` while the file is written.

    Args:
        items: returns a fresh iterator of JSON-able items each time it is called.
    """

    def __init__(self, items: Callable[[], Iterable[Any]]) -> None:
        self.items = items

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items())


def _dump(value: Any, level: int) -> str:
    """``value`` as ``json.dumps(..., indent=1)`` writes it at nesting ``level`` (one space per level)."""
    return json.dumps(value, indent=1).replace("\n", "\n" + " " * level)


def _write_streamed(f: Any, doc: dict[str, Any]) -> None:
    if not doc:
        f.write("{}")
        return
    f.write("{")
    for i, (key, value) in enumerate(doc.items()):
        f.write(("," if i else "") + "\n " + json.dumps(key) + ": ")
        if not isinstance(value, StreamedList):
            f.write(_dump(value, 1))
            continue
        n = 0
        for n, item in enumerate(value, 1):
            f.write(("," if n > 1 else "[") + "\n  " + _dump(item, 2))
        f.write("\n ]" if n else "[]")
    f.write("\n}")


def write_json_streamed(path: str | Path, doc: dict[str, Any]) -> Path:
    """Write a JSON object atomically, its ``StreamedList`` values item by item (never all in memory).

    The file is the same, byte for byte, as ``write_json`` of the document with those lists made.

    Args:
        path: the final file.
        doc: a JSON-able dict; any top-level value may be a ``StreamedList``.

    Returns:
        The final path.

    Raises:
        TypeError: ``doc`` is not a dict.
        OutputError: the folder cannot be written.
    """
    if not isinstance(doc, dict):
        raise TypeError(f"expected a dict, got {type(doc).__name__}")

    def write(p: Path) -> None:
        with open(p, "w", encoding="utf-8") as f:
            _write_streamed(f, doc)

    return atomic_write(path, write)


def read_masks_json(path: str | Path) -> Segmentation:
    """Read a ``<stem>.masks.json`` / ``<stem>.raw.json`` file.

    Raises:
        InputError: missing file or not a samiam masks document.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        return Segmentation.from_json(doc)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: not a samiam masks JSON ({type(exc).__name__}: {exc})") from None


def _write_png(path: Path, array: np.ndarray) -> None:
    import cv2

    ok, buf = cv2.imencode(".png", array)
    if not ok:
        raise OSError("PNG encoding failed")
    path.write_bytes(buf.tobytes())


def write_png(path: str | Path, array: np.ndarray) -> Path:
    """Write a uint8/uint16 grey or RGB array as PNG, atomically (RGB order in, not BGR)."""
    arr = array[:, :, ::-1] if array.ndim == 3 else array
    return atomic_write(path, lambda p: _write_png(p, np.ascontiguousarray(arr)))


def palette(n: int, seed: int = 7) -> np.ndarray:
    """Return ``n`` distinct, bright RGB colours (uint8, deterministic)."""
    base = np.array(
        [
            [230, 25, 75],
            [60, 180, 75],
            [255, 225, 25],
            [0, 130, 200],
            [245, 130, 48],
            [145, 30, 180],
            [70, 240, 240],
            [240, 50, 230],
            [210, 245, 60],
            [250, 190, 212],
            [0, 128, 128],
            [220, 190, 255],
        ],
        np.uint8,
    )
    if n <= len(base):
        return base[:n]
    rng = np.random.default_rng(seed)
    extra = rng.integers(40, 256, size=(n - len(base), 3)).astype(np.uint8)
    return np.concatenate([base, extra])


def render_overlay(image: np.ndarray, seg: Segmentation, alpha: float = 0.45) -> np.ndarray:
    """Draw coloured masks and their outlines over a [0, 1] grey image, with a legend.

    Args:
        image: HxW float image in [0, 1].
        seg: the masks to draw; masks of one material share a colour.
        alpha: fill opacity.

    Returns:
        HxWx3 uint8 RGB image.
    """
    import cv2

    grey = np.clip(image * 255, 0, 255).astype(np.uint8)
    rgb = np.repeat(grey[:, :, None], 3, axis=2).astype(np.float32)
    keys = []
    for rec in seg.masks:
        key = rec.material if rec.material is not None else f"mask {len(keys) + 1}"
        if key not in keys:
            keys.append(key)
    colours = palette(max(len(keys), 1))
    outline = np.zeros(grey.shape, np.uint8)
    out = rgb.copy()
    thick = max(1, round(max(grey.shape) / 400))
    for k, rec in enumerate(seg.masks):
        key = rec.material if rec.material is not None else f"mask {k + 1}"
        c = colours[keys.index(key)].astype(np.float32)
        m = rec.decode()
        out[m] = (1 - alpha) * out[m] + alpha * c
        contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        outline[:] = 0
        cv2.drawContours(outline, contours, -1, 1, thick)
        out[outline.astype(bool)] = c
    out = np.clip(out, 0, 255).astype(np.uint8)
    # legend, top-left
    scale = max(0.4, max(grey.shape) / 1400)
    y = int(22 * scale) + 4
    for key, c in zip(keys, colours, strict=False):
        label = str(key) if isinstance(key, str) else f"material {key}"
        cv2.rectangle(out, (6, y - int(14 * scale)), (6 + int(14 * scale), y), tuple(int(v) for v in c), -1)
        cv2.putText(
            out,
            label,
            (12 + int(16 * scale), y),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5 * scale,
            (255, 255, 255),
            max(1, int(scale)),
            cv2.LINE_AA,
        )
        y += int(22 * scale) + 2
    return out


def write_segmentation(
    seg: Segmentation, image: np.ndarray, outdir: str | Path, stem: str, *, raw: Segmentation | None = None
) -> dict[str, Path]:
    """Write ``<stem>.masks.json``, ``.labels.png``, ``.overlay.png`` (and ``.raw.json``).

    Args:
        seg: the final segmentation.
        image: the normalised HxW image, for the overlay.
        outdir: output folder (created if needed).
        stem: file name stem.
        raw: the generator's masks before boosting, if any.

    Returns:
        Map of output kind to path.
    """
    target = output_paths(outdir, stem)
    paths: dict[str, Path] = {}
    if raw is not None:
        paths["raw"] = write_json(target["raw"], raw.to_json())
    paths["labels"] = write_png(target["labels"], seg.label_map())
    paths["overlay"] = write_png(target["overlay"], render_overlay(image, seg))
    # the masks JSON goes last: its presence marks a complete result (used by --resume)
    paths["masks"] = write_json(target["masks"], seg.to_json())
    return paths
