"""Few-shot named WSe2 defect classes vs the unsupervised classes; writes benchmarks/defects/NAMING.md.

Usage (from the repository root):
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/defects/run_naming.py [--model DIR] [--epochs 15]

Protocol: a model is trained (unsupervised, no label seen) on the 20 shared WSe2 images with the
package defaults, or given with --model. For each of the labelled classes, one example box is taken
from the first image (file-name order) that holds the class (its first row in boxes.csv). The
images that gave an example are then left out; on the remaining images every labelled box that a
detection finds (centroid inside the box, as in run_benchmark.py) is scored:
- name accuracy: the detection's few-shot ``name`` equals the box's label (``unknown`` is wrong);
- the unsupervised mixture classes of the same detections under their best one-to-one mapping
  to the labels (Hungarian assignment on these very boxes: an optimistic reading of the
  unsupervised classes, since the mapping is chosen on the scored boxes).
"""

from __future__ import annotations

import argparse
import collections
import csv
import datetime
import os
import time
from pathlib import Path

import numpy as np
import torch

import samiam
from samiam.defects import DefectParams, TrainParams, load_model, run_defects, train_defect_model
from samiam.defects.naming import UNKNOWN, Example
from samiam.defects.pipeline import learn_prototypes
from samiam.defects.readers import read_stm
from samiam.defects.scoring import detection_scores
from samiam.defects.train import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
WSE2 = ROOT / ".." / "shared" / "data" / "stm" / "wse2"


def hungarian_accuracy(true: list[str], pred: list[int]) -> tuple[float, dict[int, str]]:
    """Accuracy of ``pred`` clusters under the best one-to-one mapping to the ``true`` labels."""
    from scipy.optimize import linear_sum_assignment

    labels, clusters = sorted(set(true)), sorted(set(pred))
    table = np.zeros((len(clusters), len(labels)))
    for t, p in zip(true, pred, strict=True):
        table[clusters.index(p), labels.index(t)] += 1
    rows, cols = linear_sum_assignment(-table)
    mapping = {clusters[r]: labels[c] for r, c in zip(rows, cols, strict=True)}
    return float(table[rows, cols].sum() / max(len(true), 1)), mapping


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=None, help="model folder (default: train one on the 20 images)")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "_work" / "defects_naming")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("NAMING.md"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    files = sorted((WSE2 / "images").glob("*.jpg"))
    rows = list(csv.DictReader(open(WSE2 / "boxes.csv")))
    by_file = collections.defaultdict(list)
    for r in rows:
        by_file[r["filename"]].append(r)
    mgs = [read_stm(f) for f in files]
    folder = args.model
    if folder is None:
        folder = args.work / "model"
        if not (folder / "config.json").is_file():
            tp = TrainParams(ae1=TrainConfig(epochs=args.epochs), ae2=TrainConfig(epochs=args.epochs, batch_size=128))
            train_defect_model(mgs, folder, DefectParams(), tp, progress=False)
    model = load_model(folder)
    examples, example_files = [], set()
    for label in sorted({r["label"] for r in rows}):
        for f in files:  # first image (file-name order) that holds the class
            hit = [r for r in by_file[f.name] if r["label"] == label]
            if hit:
                r = hit[0]
                box = tuple(float(r[k]) for k in ("x", "y", "width", "height"))
                examples.append(Example(label, box, f))
                example_files.add(f.name)
                break
    protos = learn_prototypes(examples, model, DefectParams(), "boxes.csv (one row per class)")
    true, named, clusters, distances = [], [], [], []
    n_found = n_boxes = 0
    for f, mg in zip(files, mgs, strict=True):
        if f.name in example_files:
            continue
        res = run_defects(mg, model, DefectParams(), protos)
        inst = res.detection.instances
        cents = np.array([d.centroid for d in inst]).reshape(-1, 2)
        b = np.array([[int(r[k]) for k in ("x", "y", "width", "height")] for r in by_file[f.name]]).reshape(-1, 4)
        s = detection_scores(cents, b)
        n_found += s["found"]
        n_boxes += s["n_boxes"]
        for j, m in enumerate(s["box_match"]):
            if m >= 0:
                true.append(by_file[f.name][j]["label"])
                named.append(inst[m].name)
                clusters.append(inst[m].cls)
                distances.append(inst[m].name_distance)
    acc = float(np.mean([t == n for t, n in zip(true, named, strict=True)]))
    known = [(t, n) for t, n in zip(true, named, strict=True) if n != UNKNOWN]
    acc_known = float(np.mean([t == n for t, n in known])) if known else float("nan")
    h_acc, mapping = hungarian_accuracy(true, clusters)
    counts = collections.Counter(true)
    per_class = {c: float(np.mean([n == c for t, n in zip(true, named, strict=True) if t == c])) for c in counts}
    mapped = [mapping.get(c) for c in clusters]
    per_class_u = {c: float(np.mean([m == c for t, m in zip(true, mapped, strict=True) if t == c])) for c in counts}
    wall = time.perf_counter() - t0
    lines = [
        "# WSe2 few-shot named defect classes",
        "",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; machine: 2-core CPU, no GPU, "
        f"shared with other jobs; torch {torch.__version__}, 1 thread; samiam {samiam.__version__}; 1-min load "
        f"average at the end {os.getloadavg()[0]:.1f}; wall time {wall:.0f} s.",
        "- Command: `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/defects/run_naming.py`"
        + (f" `--model {args.model}`" if args.model else f" (model trained on the 20 images, --epochs {args.epochs})"),
        f"- Examples: one box per class ({len(examples)} classes) from the first image holding it: "
        + ", ".join(f"{e.label} ({e.file.name})" for e in examples)
        + f". {len(example_files)} example image(s) left out; scored on the other {len(files) - len(example_files)}.",
        f"- Unknown threshold: {protos.threshold:.3f} ({protos.rule}).",
        "",
        f"Found boxes on the scored images: {n_found} / {n_boxes}.",
        "",
        "| method | accuracy over the found boxes | notes |",
        "|---|---|---|",
        f"| few-shot names (one example per class) | **{acc:.3f}** | {named.count(UNKNOWN)} of {len(named)} named "
        f"unknown; accuracy over the others {acc_known:.3f} |",
        f"| unsupervised classes, best one-to-one mapping (Hungarian, chosen on the scored boxes) | {h_acc:.3f} | "
        f"{model.classes.n_classes} mixture classes for {len(counts)} labels |",
        f"| majority label (baseline) | {max(counts.values()) / len(true):.3f} | "
        f"always '{counts.most_common(1)[0][0]}' |",
        "",
        "| label | found boxes | few-shot name accuracy | unsupervised (mapped) accuracy |",
        "|---|---|---|---|",
    ]
    for c, n in counts.most_common():
        lines.append(f"| {c} | {n} | {per_class[c]:.2f} | {per_class_u[c]:.2f} |")
    lines.append("")
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
