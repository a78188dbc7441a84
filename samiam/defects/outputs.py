"""Write one image's defect outputs: JSON instances + run record, class map, overlay, character and error maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from samiam.defects.pipeline import DefectResult
from samiam.io.files import atomic_write, write_json
from samiam.io.write import palette, write_png

OUTPUT_SUFFIXES = {
    "json": ".defects.json",
    "classes": ".defect_classes.png",
    "overlay": ".defects_overlay.png",
    "character_png": ".character.png",
    "character_npy": ".character.npy",
    "error_png": ".error.png",
    "error_npy": ".error.npy",
}


def write_npy(path: str | Path, array: np.ndarray) -> Path:
    """Write a .npy file atomically."""

    def _write(p: Path) -> None:
        with open(p, "wb") as fh:
            np.save(fh, array)

    return atomic_write(path, _write)


def grey_rgb(heights: np.ndarray, dim: float = 1.0) -> np.ndarray:
    """HxWx3 uint8 grey rendering of normalised heights (robust sigmas, shown over +-4)."""
    g = np.clip((heights / 8.0 + 0.5) * 255 * dim, 0, 255).astype(np.uint8)
    return np.repeat(g[:, :, None], 3, axis=2)


def render_classes(heights: np.ndarray, class_map: np.ndarray, n_classes: int) -> np.ndarray:
    """Defect pixels coloured by class over the dimmed image."""
    out = grey_rgb(heights, dim=0.6)
    colours = palette(max(n_classes, 1))
    sel = class_map >= 0
    out[sel] = colours[np.clip(class_map[sel], 0, len(colours) - 1)]
    return out


def name_colours(names: list[str]) -> dict[str, tuple[int, int, int]]:
    """One colour per few-shot name (sorted), grey for ``unknown``."""
    from samiam.defects.naming import UNKNOWN

    known = sorted({n for n in names if n != UNKNOWN})
    colours = palette(max(len(known), 1))
    out = {n: tuple(int(v) for v in colours[i % len(colours)]) for i, n in enumerate(known)}
    out[UNKNOWN] = (160, 160, 160)
    return out


def render_overlay(heights: np.ndarray, result: DefectResult, n_classes: int) -> np.ndarray:
    """Image with one box per defect, step band tinted.

    Boxes are coloured by class and labelled ``id:class``; with few-shot names, coloured by name,
    labelled ``id:name`` and listed in a legend (name and count) at the top left.
    """
    import cv2

    out = grey_rgb(heights)
    band = result.detection.prepared.steps.band
    out[band] = (0.6 * out[band] + 0.4 * np.array([0, 90, 255])).astype(np.uint8)
    colours = palette(max(n_classes, 1))
    scale = max(0.3, max(heights.shape) / 1600)
    instances = result.detection.instances
    named = [inst.name for inst in instances if inst.name is not None]
    by_name = name_colours(named) if named else {}
    for inst in instances:
        x, y, w, h = inst.bbox
        if inst.name is not None:
            c, text = by_name[inst.name], f"{inst.id}:{inst.name}"
        else:
            c, text = tuple(int(v) for v in colours[max(inst.cls, 0) % len(colours)]), f"{inst.id}:{inst.cls}"
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), c, 1)
        cv2.putText(out, text, (x, max(y - 2, 8)), cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale, c, 1, cv2.LINE_AA)
    if named:
        counts = {n: named.count(n) for n in by_name if n in named}
        step = max(14, int(28 * scale))
        width = max(len(f"{n} ({k})") for n, k in counts.items()) * int(step * 0.55) + 2 * step
        out[2 : 8 + step * len(counts), 2:width] //= 3  # darken the legend's background
        for i, (n, k) in enumerate(counts.items()):  # one legend line per name
            y = 6 + i * step
            cv2.rectangle(out, (6, y), (6 + step - 5, y + step - 5), by_name[n], -1)
            cv2.putText(
                out,
                f"{n} ({k})",
                (12 + step, y + step - 5),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.9 * scale,
                (255, 255, 255),
                1,
                cv2.LINE_AA,
            )
    return out


def render_character(character: np.ndarray) -> np.ndarray:
    """Character clusters as colours."""
    colours = palette(int(character.max()) + 1)
    return colours[character]


def render_error(error_z: np.ndarray, vmax: float = 10.0) -> np.ndarray:
    """Error z-score map (0..vmax robust sigmas) with the inferno colour map."""
    import cv2

    g = (np.clip(error_z / vmax, 0, 1) * 255).astype(np.uint8)
    return cv2.applyColorMap(g, cv2.COLORMAP_INFERNO)[:, :, ::-1]


def result_json(result: DefectResult, n_classes: int) -> dict:
    """The ``<stem>.defects.json`` document."""
    det = result.detection
    h, w = det.mask.shape
    return {
        "file": result.source,
        "height": int(h),
        "width": int(w),
        "n_defects": len(det.instances),
        "n_classes": n_classes,
        "defect_area_fraction": float(det.mask.mean()),
        "instances": [inst.to_json() for inst in det.instances],
        "run": result.record,
    }


def write_defect_outputs(result: DefectResult, outdir: str | Path, n_classes: int) -> dict[str, Path]:
    """Write every output of one image; the JSON goes last, so its presence marks a complete result.

    Args:
        result: the analysis of one image.
        outdir: output folder (created if needed).
        n_classes: number of classes of the model (for colours).

    Returns:
        Map of output kind to path.
    """
    outdir = Path(outdir)
    det = result.detection
    heights = det.prepared.heights
    stem = result.stem
    paths = {
        "classes": write_png(
            outdir / f"{stem}{OUTPUT_SUFFIXES['classes']}", render_classes(heights, result.class_map, n_classes)
        ),
        "overlay": write_png(
            outdir / f"{stem}{OUTPUT_SUFFIXES['overlay']}", render_overlay(heights, result, n_classes)
        ),
        "character_png": write_png(
            outdir / f"{stem}{OUTPUT_SUFFIXES['character_png']}", render_character(det.maps.character)
        ),
        "character_npy": write_npy(
            outdir / f"{stem}{OUTPUT_SUFFIXES['character_npy']}", det.maps.character.astype(np.int32)
        ),
        "error_png": write_png(outdir / f"{stem}{OUTPUT_SUFFIXES['error_png']}", render_error(det.error_z)),
        "error_npy": write_npy(outdir / f"{stem}{OUTPUT_SUFFIXES['error_npy']}", det.maps.error.astype(np.float32)),
    }
    paths["json"] = write_json(outdir / f"{stem}{OUTPUT_SUFFIXES['json']}", result_json(result, n_classes))
    return paths
