"""Summaries of benchmark scores: means per method and group, ``results.md`` and a bar chart."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from samiam.bench.metrics import REGION_METRICS
from samiam.io.files import atomic_write

IMAGE_METRICS = (
    "miou",
    "recall",
    "precision",
    "false_positive",
    "boundary_miou",
    "boundary_recall",
    "boundary_precision",
    "boundary_false_positive",
    "best_iou",
    "best_boundary_iou",
    "hungarian_miou",
    "n_pred",
    "n_regions",
    "n_unmatched",
)
HEADINGS = {
    "miou": "mIoU",
    "recall": "recall",
    "precision": "precision",
    "false_positive": "FP",
    "boundary_miou": "B-mIoU",
    "boundary_recall": "B-recall",
    "boundary_precision": "B-precision",
    "boundary_false_positive": "B-FP",
    "best_iou": "best IoU",
    "best_boundary_iou": "best B-IoU",
    "hungarian_miou": "1:1 mIoU",
    "hungarian_iou": "1:1 IoU",
    "n_pred": "masks",
    "n_regions": "regions",
    "n_unmatched": "unmatched",
}
UNIT_METRICS = (
    "miou",
    "recall",
    "precision",
    "boundary_miou",
    "boundary_recall",
    "boundary_precision",
    "best_iou",
    "hungarian_miou",
)
FP_METRICS = ("false_positive", "boundary_false_positive")
COUNT_METRICS = ("n_pred", "n_regions")


def _mean(values: Iterable[float]) -> float:
    arr = np.array(list(values), float)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else float("nan")


def _image_means(images: Sequence[dict], method: str) -> dict[str, float]:
    rows = [img["methods"][method]["summary"] for img in images if method in img["methods"]]
    out = {m: _mean(r[m] for r in rows) for m in IMAGE_METRICS}
    out["n_images"] = len(rows)
    return out


def _region_means(images: Sequence[dict], method: str, key: str) -> dict[str, dict[str, float]]:
    groups: dict[str, list[dict]] = {}
    for img in images:
        for region in img["methods"].get(method, {}).get("regions", []):
            value = region.get(key)
            if value is not None:
                groups.setdefault(str(value), []).append(region)
    out = {}
    for value, regions in sorted(groups.items()):
        out[value] = {m: _mean(r[m] for r in regions) for m in REGION_METRICS}
        out[value]["n_regions"] = len(regions)
    return out


def summarise(images: Sequence[dict], methods: Sequence[str]) -> dict[str, Any]:
    """Means per method: over images, per image group (layout, difficulty), per region class.

    Args:
        images: per-image records ``{"stem", "groups": {key: value}, "methods": {method:
            {"summary": {metric: value}, "regions": [region dicts]}}}``.
        methods: method names in report order.

    Returns:
        ``{method: {"all": means, "by_<group key>": {value: means}, "by_region_difficulty": ...,
        "by_material": ...}}``; image groups average image means, region classes average regions.
    """
    keys = sorted({k for img in images for k in img.get("groups", {})})
    out: dict[str, Any] = {}
    for method in methods:
        entry: dict[str, Any] = {"all": _image_means(images, method)}
        for key in keys:
            values = sorted({img["groups"][key] for img in images if key in img.get("groups", {})})
            entry[f"by_{key}"] = {
                v: _image_means([img for img in images if img.get("groups", {}).get(key) == v], method) for v in values
            }
        entry["by_region_difficulty"] = _region_means(images, method, "difficulty")
        entry["by_material"] = _region_means(images, method, "name")
        out[method] = entry
    return out


def _fmt(value: Any, metric: str | None = None) -> str:
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if value is None or not np.isfinite(value):
        return "-"
    return f"{value:.1f}" if metric in ("n_pred", "n_regions", "n_unmatched") else f"{value:.3f}"


def _table(rows: list[tuple[str, dict]], metrics: Sequence[str], first: str, extra: str | None = None) -> str:
    head = [first] + ([extra] if extra else []) + [HEADINGS.get(m, m) for m in metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, values in rows:
        cells = [name] + ([_fmt(values.get(extra))] if extra else [])
        cells += [_fmt(values.get(m), m) for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_report(results: dict[str, Any]) -> str:
    """Render ``results.md``: mean per method, then per image group, region difficulty and material."""
    summary = results["summary"]
    methods = list(summary)
    run = results.get("run", {})
    parts = ["# samiam benchmark", ""]
    if run:
        parts += [f"- {k}: `{v}`" for k, v in run.items() if not isinstance(v, (dict, list))] + [""]
    dataset = results.get("dataset", {})
    if dataset:
        parts.append(
            f"Dataset `{dataset.get('path')}` ({dataset.get('layout')}): "
            f"{dataset.get('n_scored')} images scored, {len(dataset.get('problems', []))} problems."
        )
        parts.append("")
    parts += ["## Mean over images", ""]
    parts.append(_table([(m, summary[m]["all"]) for m in methods], IMAGE_METRICS, "method", "n_images"))
    group_keys = sorted(
        {
            k
            for m in methods
            for k in summary[m]
            if k.startswith("by_") and k not in ("by_region_difficulty", "by_material")
        }
    )
    for key in group_keys:
        parts += ["", f"## Mean over images, by {key[3:]}", ""]
        rows = [(f"{m} / {v}", vals) for m in methods for v, vals in summary[m][key].items()]
        parts.append(_table(rows, IMAGE_METRICS, f"method / {key[3:]}", "n_images"))
    for key, title in (("by_region_difficulty", "region difficulty"), ("by_material", "material")):
        rows = [(f"{m} / {v}", vals) for m in methods for v, vals in summary[m].get(key, {}).items()]
        if rows:
            parts += ["", f"## Mean over regions, by {title}", ""]
            parts.append(_table(rows, REGION_METRICS, f"method / {title}", "n_regions"))
    problems = dataset.get("problems", [])
    if problems:
        parts += ["", "## Problems", ""] + [f"- {p}" for p in problems]
    parts += [
        "",
        "Metrics (definitions in docs/benchmark.md): mIoU = mean IoU of the masks matched to a region "
        "(IoU >= 5%); FP = summed IoU of matched masks other than the best; recall/precision of the union "
        "of matched masks; B- = the same on boundary bands (Boundary IoU, d = 2% of the diagonal); "
        "1:1 = one-to-one (Hungarian) matching.",
        "",
    ]
    return "\n".join(parts)


def write_markdown(path: str | Path, results: dict[str, Any]) -> Path:
    """Write ``results.md`` atomically."""
    text = markdown_report(results)
    return atomic_write(path, lambda p: p.write_text(text))


def plot_summary(path: str | Path, summary: dict[str, Any], title: str = "samiam benchmark") -> Path:
    """Write a bar chart of the mean metrics per method (PNG, Agg backend).

    Args:
        path: output PNG.
        summary: the output of ``summarise``.
        title: figure title.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(summary)
    panels = (UNIT_METRICS, FP_METRICS, COUNT_METRICS)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.5), gridspec_kw={"width_ratios": [len(p) + 1 for p in panels]})
    width = 0.8 / max(len(methods), 1)
    for ax, metrics in zip(axes, panels, strict=True):
        x = np.arange(len(metrics))
        for i, method in enumerate(methods):
            values = [summary[method]["all"].get(m, np.nan) for m in metrics]
            ax.bar(x + (i - (len(methods) - 1) / 2) * width, values, width, label=method)
        ax.set_xticks(x, [HEADINGS[m] for m in metrics], rotation=30, ha="right")
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylim(0, 1)
    axes[0].set_ylabel("mean over images")
    axes[1].set_ylabel("summed IoU of extra matches, per region")
    axes[2].set_ylabel("per image (log scale)")
    axes[2].set_yscale("log")
    axes[0].legend(loc="upper right", fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()

    def save(tmp: Path) -> None:
        fig.savefig(tmp, format="png", dpi=110)

    try:
        return atomic_write(path, save)
    finally:
        plt.close(fig)
