"""Raw vs boosted segmentation quality on ../shared/data/stem-sim, with the offline default model.

Runs ``samiam benchmark`` (model segmentation once per image, raw masks reused for the booster),
then writes the committed summary next to this script:

- ``RESULTS.md``: command, date, machine, model, every metric per method (all images, per layout,
  per material) and one line per image;
- ``results.json`` and ``metrics.png``: copies of the benchmark's own outputs.

The full benchmark output (predictions included) stays in ``benchmarks/_work/quality/`` (ignored by git).

Usage (from the repository root)::

    .venv/bin/python benchmarks/quality/run_quality.py                 # all 16 images
    .venv/bin/python benchmarks/quality/run_quality.py --limit 6       # first 6 images only
    .venv/bin/python benchmarks/quality/run_quality.py --reuse-raw     # re-boost saved raw masks

Any further arguments are passed to ``samiam benchmark`` unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DATASET = REPO / ".." / "shared" / "data" / "stem-sim"
WORK = REPO / "benchmarks" / "_work" / "quality"
METRICS = (
    ("miou", "mIoU"),
    ("recall", "recall"),
    ("precision", "precision"),
    ("false_positive", "FP"),
    ("boundary_miou", "B-mIoU"),
    ("boundary_recall", "B-recall"),
    ("boundary_precision", "B-precision"),
    ("boundary_false_positive", "B-FP"),
    ("best_iou", "best IoU"),
    ("best_boundary_iou", "best B-IoU"),
    ("hungarian_miou", "1:1 mIoU"),
    ("n_pred", "masks"),
    ("n_regions", "regions"),
)


def machine() -> str:
    """Describe the machine: CPU count, GPU or not."""
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except ImportError:
        gpu = "unknown GPU"
    cpu = platform.processor() or platform.machine()
    return f"{os.cpu_count()}-core CPU ({cpu}), {gpu}, {platform.system()}"


def fmt(value: float | None, metric: str) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:.1f}" if metric.startswith("n_") else f"{value:.3f}"


def table(rows: list[tuple[str, dict]], first: str, count: str = "n_images") -> list[str]:
    """Markdown table of the METRICS present in the rows; ``count`` names the sample-count column."""
    metrics = [(m, h) for m, h in METRICS if any(m in r for _, r in rows)]
    out = [
        "| " + " | ".join([first, count] + [h for _, h in metrics]) + " |",
        "|" + "---|" * (len(metrics) + 2),
    ]
    for name, r in rows:
        out.append("| " + " | ".join([name, str(r.get(count, "-"))] + [fmt(r.get(m), m) for m, _ in metrics]) + " |")
    return out


def model_line(doc: dict) -> str:
    """Which model made the raw masks (read from the raw masks' own run records when reused)."""
    model = doc["run"].get("model") or {}
    if model.get("model"):
        return f"model `{model['model']}` ({model.get('model_choice')}), device {model.get('device')}"
    raw_runs = []
    for img in doc["images"]:
        path = img["methods"].get("raw", {}).get("prediction")
        if path and Path(path).is_file():
            raw_runs.append(json.loads(Path(path).read_text()).get("run", {}))
    names = sorted({f"`{r.get('model')}` on {r.get('device')}" for r in raw_runs}) or ["unknown"]
    return f"raw masks reused from an earlier run of model {', '.join(names)}"


def write_results_md(doc: dict, command: str, seconds: float, path: Path) -> None:
    summary = doc["summary"]
    methods = list(summary)
    run = doc["run"]
    lines = [
        "# Segmentation quality: raw vs boosted on stem-sim",
        "",
        f"- command: `{command}`",
        f"- date: {run['finished']}",
        f"- machine: {machine()}",
        f"- samiam {run['samiam_version']}, {model_line(doc)}",
        f"- dataset: ../shared/data/stem-sim, {doc['dataset']['n_scored']} of 16 images scored "
        f"({doc['dataset']['n_images']} requested), {len(doc['dataset']['problems'])} problems",
        f"- wall time: {seconds / 60:.1f} min",
        "",
        "Metric definitions: docs/benchmark.md (mIoU over masks with IoU >= 5% against a region, FP = summed "
        "IoU of matched masks other than the best, recall/precision of the union of matched masks, B- = the "
        "same on Boundary IoU bands of width 2% of the diagonal, 1:1 = Hungarian one-to-one matching). "
        "Values are means over images of the per-image means over regions; `masks`/`regions` are per image.",
        "",
        "## All images",
        "",
        *table([(m, summary[m]["all"]) for m in methods], "method"),
    ]
    for key in sorted(
        k for k in summary[methods[0]] if k.startswith("by_") and k not in ("by_material", "by_region_difficulty")
    ):
        lines += ["", f"## By {key[3:]}", ""]
        lines += table([(f"{m} / {v}", r) for m in methods for v, r in summary[m][key].items()], key[3:])
    lines += ["", "## By material (mean over regions)", ""]
    rows = []
    for m in methods:
        for v, r in summary[m]["by_material"].items():
            per_region = {k: val for k, val in r.items() if k != "n_regions"}  # region metrics, not counts
            rows.append((f"{m} / {v}", {**per_region, "hungarian_miou": r.get("hungarian_iou"), "n": r["n_regions"]}))
    lines += table(rows, "material", count="n")
    lines += [
        "",
        "## Per image",
        "",
        "| image | layout | " + " | ".join(f"{m} mIoU | {m} B-mIoU | {m} masks" for m in methods) + " |",
        "|" + "---|" * (2 + 3 * len(methods)),
    ]
    for img in doc["images"]:
        cells = [img["stem"], img["groups"].get("layout", "-")]
        for m in methods:
            s = img["methods"].get(m, {}).get("summary", {})
            cells += [fmt(s.get("miou"), "miou"), fmt(s.get("boundary_miou"), "b"), str(s.get("n_pred", "-"))]
        lines.append("| " + " | ".join(cells) + " |")
    gen = [img["methods"][methods[0]]["timings"].get("generate") for img in doc["images"]]
    gen = [g for g in gen if g is not None]
    if gen:
        lines += ["", f"Mask generation: {sum(gen) / len(gen):.1f} s per image on average (this machine)."]
    if doc["dataset"]["problems"]:
        lines += ["", "## Problems", ""] + [f"- {p}" for p in doc["dataset"]["problems"]]
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="score only the first N images")
    parser.add_argument("--work", type=Path, default=WORK, help="benchmark output folder (not committed)")
    parser.add_argument("--reuse-raw", action="store_true", help="reuse raw masks saved by an earlier run")
    args, extra = parser.parse_known_args()
    if not (DATASET / "meta.json").is_file():
        print(f"error: shared data not found at {DATASET}", file=sys.stderr)
        return 2
    exe = Path(sys.executable).parent / "samiam"
    cmd = [str(exe), "benchmark", str(DATASET.resolve()), "-o", str(args.work), "--methods", "raw,boosted"]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    if args.reuse_raw:
        cmd += ["--reuse-raw"]
    cmd += extra
    work = os.path.relpath(args.work, REPO) if args.work.resolve().is_relative_to(REPO) else str(args.work)
    shown = " ".join(["samiam", "benchmark", "../shared/data/stem-sim", "-o", work, *cmd[5:]])
    print(f"running: {shown}", file=sys.stderr)
    t = time.perf_counter()
    code = subprocess.call(cmd, cwd=REPO)
    seconds = time.perf_counter() - t
    results = args.work / "results.json"
    if code != 0 or not results.is_file():
        print(f"error: samiam benchmark failed (exit code {code})", file=sys.stderr)
        return code or 1
    doc = json.loads(results.read_text())
    write_results_md(doc, shown, seconds, HERE / "RESULTS.md")
    shutil.copyfile(results, HERE / "results.json")
    shutil.copyfile(args.work / "metrics.png", HERE / "metrics.png")
    print(f"wrote {HERE / 'RESULTS.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
