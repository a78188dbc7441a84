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
Naming methods compared on the same boxes: attribute names (the package default for names made of
Large/Small, Bright/Dim, Peak/Trough) with sizes in nm (pixel size from the scan size in the file
name; --no-pixel-size: none) and in feature scales, the nearest prototype in the AE2 latent + shape
space, and the mixture classes named by the example of highest posterior. The method is also chosen
on one half of the scored images (even/odd position) and scored on the other, both ways.
"""

from __future__ import annotations

import argparse
import collections
import csv
import dataclasses
import datetime
import os
import re
import time
from pathlib import Path

import numpy as np
import torch

import samiam
from samiam.defects import DefectParams, TrainParams, load_model, run_defects, train_defect_model
from samiam.defects.naming import UNKNOWN, Example, example_instances
from samiam.defects.pipeline import defect_features, detect, learn_prototypes, resolve_device
from samiam.defects.readers import read_stm
from samiam.defects.scoring import detection_scores
from samiam.defects.train import TrainConfig
from samiam.io.micrograph import Micrograph

ROOT = Path(__file__).resolve().parents[2]
WSE2 = ROOT / ".." / "shared" / "data" / "stm" / "wse2"


GMM = "unsupervised classes named by the example of highest posterior (class-level)"


def read_with_scan_size(path: Path) -> Micrograph:
    """``read_stm`` plus the pixel size from the scan size in the file name (``_100x100_`` = 100 nm)."""
    mg = read_stm(path)
    m = re.search(r"_(\d+)[xX](\d+)_", Path(path).name)
    if m:
        mg.pixel_size, mg.pixel_unit = float(m.group(1)) / mg.raw.shape[1], "nm"
    return mg


def gmm_class_names(examples: list[Example], model, read) -> list[str]:
    """Name of each mixture class: the label of the example with the highest posterior for it."""
    device = resolve_device(None)
    post, labels = [], []
    for file in dict.fromkeys(e.file for e in examples):
        exs = [e for e in examples if e.file == file]
        mg = read(file)
        det = detect(mg.raw, mg.source, model.ae1.to(device), DefectParams(), device)
        insts = example_instances([e.box for e in exs], det.instances, det.prepared.heights)
        post.append(model.classes.predict(defect_features(model.ae2, det.prepared.heights, insts, device))[2])
        labels += [e.label for e in exs]
    p = np.concatenate(post)
    return [labels[int(p[:, c].argmax())] for c in range(p.shape[1])]


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
    ap.add_argument("--no-pixel-size", action="store_true", help="do not take the pixel size from the file names")
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
    read = read_stm if args.no_pixel_size else read_with_scan_size
    protos = learn_prototypes(examples, model, DefectParams(), "boxes.csv (one row per class)", read=read)
    nearest = dataclasses.replace(protos, attributes=None)
    protos_fs = (
        learn_prototypes(examples, model, DefectParams(), "boxes.csv (one row per class)", read=read_stm)
        if not args.no_pixel_size
        else protos
    )
    class_name = gmm_class_names(examples, model, read)
    variants = {
        "attributes, size in nm": protos,
        "attributes, size in feature scales": protos_fs,
        "nearest prototype (AE2 latent + shape)": nearest,
    }
    names: dict[str, list[str]] = {k: [] for k in [*variants, GMM]}
    true, clusters, image = [], [], []
    n_found = n_boxes = 0
    scored = [(f, mg) for f, mg in zip(files, mgs, strict=True) if f.name not in example_files]
    for i, (f, mg) in enumerate(scored):
        b = np.array([[int(r[k]) for k in ("x", "y", "width", "height")] for r in by_file[f.name]]).reshape(-1, 4)
        for k, pr in variants.items():
            m = read(f) if pr is protos else mg
            res = run_defects(m, model, DefectParams(), pr)
            inst = res.detection.instances
            s = detection_scores(np.array([d.centroid for d in inst]).reshape(-1, 2), b)
            hits = [(j, mi) for j, mi in enumerate(s["box_match"]) if mi >= 0]
            names[k] += [inst[mi].name for _, mi in hits]
            if k == "nearest prototype (AE2 latent + shape)":
                names[GMM] += [class_name[inst[mi].cls] for _, mi in hits]
                clusters += [inst[mi].cls for _, mi in hits]
                true += [by_file[f.name][j]["label"] for j, _ in hits]
                image += [i] * len(hits)
                n_found += s["found"]
                n_boxes += s["n_boxes"]
    true_a, image_a = np.array(true), np.array(image)
    accs = {k: float(np.mean(np.array(v) == true_a)) for k, v in names.items()}
    main_key = "attributes, size in feature scales" if args.no_pixel_size else "attributes, size in nm"
    named = names[main_key]
    acc = accs[main_key]
    known = [(t, n) for t, n in zip(true, named, strict=True) if n != UNKNOWN]
    acc_known = float(np.mean([t == n for t, n in known])) if known else float("nan")
    h_acc, mapping = hungarian_accuracy(true, clusters)
    counts = collections.Counter(true)
    per_class = {c: float(np.mean([n == c for t, n in zip(true, named, strict=True) if t == c])) for c in counts}
    mapped = [mapping.get(c) for c in clusters]
    per_class_u = {c: float(np.mean([m == c for t, m in zip(true, mapped, strict=True) if t == c])) for c in counts}
    halves = [np.arange(len(scored)) % 2 == 0, np.arange(len(scored)) % 2 == 1]
    folds = []
    for a, b in ((0, 1), (1, 0)):
        on_a, on_b = np.isin(image_a, np.flatnonzero(halves[a])), np.isin(image_a, np.flatnonzero(halves[b]))
        sel = {k: float(np.mean(np.array(v)[on_a] == true_a[on_a])) for k, v in names.items()}
        best = max(sel, key=sel.get)
        held = float(np.mean(np.array(names[best])[on_b] == true_a[on_b]))
        maj = collections.Counter(true_a[on_b]).most_common(1)[0][1] / max(on_b.sum(), 1)
        folds.append((a, b, best, sel[best], int(on_a.sum()), held, int(on_b.sum()), maj))
    words = [
        float(np.mean([t.split()[q] == n.split()[q] for t, n in zip(true, named, strict=True) if n != UNKNOWN]))
        for q in range(3)
    ]
    per_image = [float(np.mean(np.array(named)[image_a == i] == true_a[image_a == i])) for i in sorted(set(image))]
    wall = time.perf_counter() - t0
    pixel_note = (
        "none (the JPEG files do not say it)"
        if args.no_pixel_size
        else "from the scan size in each file name (e.g. 100x100 = 100 nm across) over the image width"
    )
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
        f"- Pixel size: {pixel_note}; attribute rule: {protos.attributes.to_dict() if protos.attributes else None}.",
        f"- Nearest-prototype unknown threshold: {protos.threshold:.3f} ({protos.rule}).",
        "",
        f"Found boxes on the scored images: {n_found} / {n_boxes}.",
        "",
        "| method | accuracy over the found boxes | notes |",
        "|---|---|---|",
        f"| **package default**: {main_key} | **{acc:.3f}** | {named.count(UNKNOWN)} of {len(named)} named "
        f"unknown; accuracy over the others {acc_known:.3f}; per scored image (with a found box) median "
        f"{np.median(per_image):.2f}, range {min(per_image):.2f}-{max(per_image):.2f} |",
        *[f"| {k} | {v:.3f} | |" for k, v in accs.items() if k != main_key],
        f"| unsupervised classes, best one-to-one mapping (Hungarian, chosen on the scored boxes) | {h_acc:.3f} | "
        f"{model.classes.n_classes} mixture classes for {len(counts)} labels |",
        f"| majority label (baseline) | {max(counts.values()) / len(true):.3f} | "
        f"always '{counts.most_common(1)[0][0]}' |",
        "",
        f"Attribute words right ({main_key}, over the defects not named unknown): first word (size) "
        f"{words[0]:.2f}, second (amplitude) {words[1]:.2f}, third (sign) {words[2]:.2f}.",
        "",
        "Choice of the naming method without selecting on the scored images: the scored images split in "
        "two halves (even/odd position in file-name order); the method best on one half is scored on the other.",
        "",
        "| fold | chosen on | chosen method (its accuracy there, boxes) | accuracy on the other half (boxes) "
        "| majority label there |",
        "|---|---|---|---|---|",
        *[
            f"| {a}->{b} | half {a} | {best} ({sa:.3f}, {na}) | **{held:.3f}** ({nb}) | {maj:.3f} |"
            for a, b, best, sa, na, held, nb, maj in folds
        ],
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
