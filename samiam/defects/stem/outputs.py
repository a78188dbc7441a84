"""Write one image's STEM defect outputs: JSON, a heatmap per class (PNG + npy), overlay, embedding plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from samiam.defects.outputs import write_npy
from samiam.defects.stem.run import StemResult
from samiam.io.files import write_json
from samiam.io.write import palette, write_png

STEM_SUFFIXES = {
    "json": ".defects.json",
    "overlay": ".defects_overlay.png",
    "embedding": ".defects_embedding.png",
    "heatmap": ".heatmap_c{k}",  # + .png / .npy
}


def grey_rgb(image: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 rendering of an intensity image (0.5..99.5 percentiles)."""
    lo, hi = np.percentile(image, [0.5, 99.5])
    g = (np.clip((image - lo) / max(hi - lo, 1e-12), 0, 1) * 255).astype(np.uint8)
    return np.repeat(g[:, :, None], 3, axis=2)


def class_heatmaps(result: StemResult, n_classes: int) -> np.ndarray:
    """(K, H, W) float32: per class, Gaussian spots (sigma = spacing / 4) at its defects, weighted by the
    soft assignment of each defect to that class times its |z| (the larger of overlapping spots wins)."""
    h, w = result.detection.image.shape
    maps = np.zeros((n_classes, h, w), np.float32)
    s = result.detection.columns.spacing / 4
    r = int(np.ceil(3 * s))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    z = np.abs(result.detection.defects.z)
    for inst, soft, zi in zip(result.instances, result.soft, z, strict=True):  # one per defect
        cx, cy = inst.centroid
        ix, iy = int(round(cx)), int(round(cy))
        spot = np.exp(-((xx + ix - cx) ** 2 + (yy + iy - cy) ** 2) / (2 * s * s)).astype(np.float32)
        y0, y1, x0, x1 = max(0, iy - r), min(h, iy + r + 1), max(0, ix - r), min(w, ix + r + 1)
        sub = spot[y0 - iy + r : y1 - iy + r, x0 - ix + r : x1 - ix + r]
        for k in range(n_classes):
            np.maximum(maps[k, y0:y1, x0:x1], sub * float(soft[k]) * float(zi), out=maps[k, y0:y1, x0:x1])
    return maps


def render_heatmap(heat: np.ndarray, image: np.ndarray) -> np.ndarray:
    """A class heatmap (inferno) over the dimmed image."""
    import cv2

    top = float(heat.max())
    g = (np.clip(heat / top if top > 0 else heat, 0, 1) * 255).astype(np.uint8)
    col = cv2.applyColorMap(g, cv2.COLORMAP_INFERNO)[:, :, ::-1]
    a = (g.astype(np.float32) / 255)[:, :, None]
    return (grey_rgb(image) * 0.5 * (1 - a) + col * a).astype(np.uint8)


def render_overlay(result: StemResult, n_classes: int) -> np.ndarray:
    """Image with a circle per defect coloured by class, labelled ``id:class``, and a legend of class names."""
    import cv2

    img = result.detection.image
    out = grey_rgb(img)
    colours = palette(max(n_classes, 1))
    r = max(4, int(round(result.detection.columns.spacing * 0.6)))
    scale = max(0.4, max(img.shape) / 700)
    width = max(1, int(round(scale * 1.5)))
    for inst in result.instances:  # one per defect
        c = tuple(int(v) for v in colours[max(inst.cls, 0) % len(colours)])
        x, y = (int(round(v)) for v in inst.centroid)
        cv2.circle(out, (x, y), r, c, width, cv2.LINE_AA)
    counts = np.bincount([max(i.cls, 0) for i in result.instances], minlength=len(result.class_names))
    line = int(16 * scale)
    if result.class_names:
        cv2.rectangle(out, (0, 0), (int(190 * scale), line * len(result.class_names) + 6), (0, 0, 0), -1)
    for k, name in enumerate(result.class_names):
        c = tuple(int(v) for v in colours[k % len(colours)])
        label = f"c{k}: {name} ({counts[k]})"
        cv2.putText(out, label, (4, line * (k + 1)), cv2.FONT_HERSHEY_SIMPLEX, 0.42 * scale, c, width, cv2.LINE_AA)
    return out


def render_embedding(result: StemResult, n_classes: int) -> np.ndarray:
    """2-D PCA of the defects' class descriptors, one colour per class (RGB uint8, matplotlib Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.5, 4), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    x = result.descriptors
    if len(x) >= 2:
        xc = x - x.mean(0)
        _, _, vt = np.linalg.svd(xc / (xc.std(0) + 1e-9), full_matrices=False)
        emb = (xc / (xc.std(0) + 1e-9)) @ vt[:2].T
    else:
        emb = np.zeros((len(x), 2))
    colours = palette(max(n_classes, 1)) / 255.0
    cls = np.array([i.cls for i in result.instances], int)
    for k in range(n_classes):
        sel = cls == k
        if sel.any():
            name = result.class_names[k] if k < len(result.class_names) else ""
            ax.scatter(emb[sel, 0], emb[sel, 1], s=14, color=colours[k % len(colours)], label=f"c{k} {name}")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(f"{len(x)} defects (PCA of class descriptors)", fontsize=9)
    if len(x):
        ax.legend(fontsize=7)
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()


def result_json(result: StemResult, n_classes: int) -> dict:
    """The ``<stem>.defects.json`` document (the STM structure, plus ``pseudo_label`` per instance)."""
    h, w = result.detection.image.shape
    insts = []
    for inst, p, zi in zip(result.instances, result.pseudo, result.detection.defects.z, strict=True):
        doc = inst.to_json()
        doc["pseudo_label"] = ["vacancy-like", "substitution-like", "interstitial-like"][int(p)]
        doc["z"] = round(float(zi), 2)
        insts.append(doc)
    area = sum(i.area for i in result.instances)
    return {
        "file": result.source,
        "height": int(h),
        "width": int(w),
        "n_defects": len(result.instances),
        "n_classes": n_classes,
        "defect_area_fraction": float(area / (h * w)),
        "instances": insts,
        "run": result.record,
    }


def write_stem_outputs(result: StemResult, outdir: str | Path) -> dict[str, Path]:
    """Write every output of one image; the JSON goes last, so its presence marks a complete result.

    Args:
        result: the analysis of one image.
        outdir: output folder (created if needed).

    Returns:
        Map of output kind to path.
    """
    outdir = Path(outdir)
    n = max(1, len(result.class_names))
    stem = result.stem
    paths: dict[str, Path] = {}
    heat = class_heatmaps(result, n)
    for k in range(n):
        base = outdir / f"{stem}{STEM_SUFFIXES['heatmap'].format(k=k)}"
        paths[f"heatmap_c{k}_png"] = write_png(f"{base}.png", render_heatmap(heat[k], result.detection.image))
        paths[f"heatmap_c{k}_npy"] = write_npy(f"{base}.npy", heat[k])
    paths["overlay"] = write_png(outdir / f"{stem}{STEM_SUFFIXES['overlay']}", render_overlay(result, n))
    paths["embedding"] = write_png(outdir / f"{stem}{STEM_SUFFIXES['embedding']}", render_embedding(result, n))
    paths["json"] = write_json(outdir / f"{stem}{STEM_SUFFIXES['json']}", result_json(result, n))
    return paths
