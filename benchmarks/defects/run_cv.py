"""2-fold leave-images-out protocol of the WSe2 defect detector; writes benchmarks/defects/CV.md.

Usage (from the repository root):
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/defects/run_cv.py [--epochs 15] [--work benchmarks/_work/defects_cv]

Protocol: the 20 shared WSe2 images are split into two halves (even and odd index in file-name
order). For each fold, everything is chosen on one half and scored on the other:
1. AE1, AE2 and the class mixture are trained (unsupervised) on the choosing half only;
2. every remaining constant of the calibrated detector (``BlobParams.min_scale``: smallest blob
   sigma in units of the image's feature scale; ``BlobParams.threshold``: robust sigmas) is chosen
   on a grid by the F1 of recall and precision on the choosing half's boxes; the baseline's
   threshold the same way;
3. AE2 and the mixture are refitted on the choosing half with the chosen detector (AE1 kept);
4. the other half is scored: recall, precision, AMI of the classes against the 8 labels, and the
   spread of per-image recall and precision.
The current method (the previous defaults: pixel scales 2-24 px, threshold 2.5, constants picked on
the even half before) is scored with the same fold models, and so is the previous detector with
only its threshold chosen on the choosing half (to separate what the calibration does from what
the threshold choice does). No number on a scored half is used for a choice.
"""

from __future__ import annotations

import argparse
import collections
import csv
import datetime
import itertools
import os
import platform
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage as ndi

import samiam
from samiam.defects import DefectParams, TrainParams, load_model, train_defect_model
from samiam.defects.blobs import BlobParams, blob_regions, blob_responses
from samiam.defects.calibrate import Calibration, calibrate
from samiam.defects.flatten import robust_sigma
from samiam.defects.instances import DefectInstance, find_instances
from samiam.defects.maps import compute_maps
from samiam.defects.mask import blob_defect_mask, error_zscore
from samiam.defects.pipeline import classify
from samiam.defects.prepare import PreparedImage, prepare_heights
from samiam.defects.readers import read_stm
from samiam.defects.scoring import detection_scores
from samiam.defects.train import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
WSE2 = ROOT / ".." / "shared" / "data" / "stm" / "wse2"
MIN_SCALES = (0.1, 0.2, 0.3, 0.5)
THRESHOLDS = (2.25, 2.5, 2.75, 3.0, 3.25)
BASELINE_THRESHOLDS = (3.0, 4.0, 5.0, 6.0, 8.0)
# the previous defaults: pixel ladder 2-24 px, threshold 2.5 (picked on the even half before)
CURRENT = BlobParams(threshold=2.5, scale_unit="px", noise_floor=False, line_noise_heights=False)


@dataclass
class Cached:
    """One image prepared once per fold model: heights, AE1 error z-score, calibration, responses."""

    name: str
    prepared: PreparedImage
    error_z: np.ndarray
    calibration: Calibration
    responses: dict = field(default_factory=dict)

    def blob_responses(self, blob: BlobParams):
        key = (blob.scale_unit, blob.min_scale, blob.noise_floor)
        if key not in self.responses:
            self.responses = {key: blob_responses(self.prepared.heights, blob, None, self.calibration)}
        return self.responses[key]


def load_wse2() -> tuple[list[Path], dict, dict]:
    files = sorted((WSE2 / "images").glob("*.jpg"))
    boxes, labels = collections.defaultdict(list), collections.defaultdict(list)
    with open(WSE2 / "boxes.csv") as fh:
        for row in csv.DictReader(fh):
            boxes[row["filename"]].append([int(row[k]) for k in ("x", "y", "width", "height")])
            labels[row["filename"]].append(row["label"])
    return files, boxes, labels


def cache_images(files: list[Path], mgs: list, ae1, params: DefectParams) -> list[Cached]:
    out = []
    dev = torch.device("cpu")
    for f, mg in zip(files, mgs, strict=True):
        pr = prepare_heights(mg.raw, f.name, steps=params.steps, detect=params.detect_steps)
        maps = compute_maps(ae1, pr.heights, params.maps, device=dev, seed=params.seed)
        out.append(Cached(f.name, pr, error_zscore(maps.error, pr.exclude), calibrate(pr.heights)))
    return out


def detect_cached(c: Cached, blob: BlobParams, params: DefectParams) -> list[DefectInstance]:
    """The package's blob-mode detection (``pipeline.find_defects``) with cached maps and responses."""
    h = c.prepared.heights
    mask, blobs, _, _ = blob_defect_mask(
        h, c.error_z, c.prepared.exclude, blob, params.mask, c.blob_responses(blob), c.calibration
    )
    _, inst = find_instances(mask, h, regions=blob_regions(mask, blobs, blob.radius_factor))
    return inst


def baseline_centres(c: Cached, threshold: float) -> np.ndarray:
    """Simple baseline: extrema of a band-pass (Gaussian 2 px minus 16 px) above ``threshold`` robust sigmas."""
    h = c.prepared.heights.astype(np.float64)
    bp = ndi.gaussian_filter(h, 2.0) - ndi.gaussian_filter(h, 16.0)
    z = np.abs((bp - np.median(bp)) / max(robust_sigma(bp), 1e-12))
    peaks = (z == ndi.maximum_filter(z, size=9)) & (z > threshold) & ~c.prepared.exclude
    ys, xs = np.nonzero(peaks)
    return np.stack([xs, ys], 1).astype(np.float64)


def score(centres: dict[str, np.ndarray], names: list[str], boxes: dict) -> dict:
    """Pooled recall/precision/F1 and the per-image values over ``names``."""
    tot = collections.Counter()
    rec, prec, matches = [], [], {}
    for n in names:
        s = detection_scores(centres[n], np.array(boxes[n]).reshape(-1, 4))
        for k in ("found", "n_boxes", "true_detections", "n_detections"):
            tot[k] += s[k]
        if s["n_boxes"]:
            rec.append(s["recall"])
        if s["n_detections"]:
            prec.append(s["precision"])
        matches[n] = s["box_match"]
    r = tot["found"] / max(tot["n_boxes"], 1)
    p = tot["true_detections"] / tot["n_detections"] if tot["n_detections"] else 0.0
    f1 = 2 * r * p / (r + p) if r + p else 0.0
    return {
        "recall": r,
        "precision": p,
        "f1": f1,
        "counts": tot,
        "per_recall": rec,
        "per_precision": prec,
        "matches": matches,
    }


def centres_of(inst: list[DefectInstance]) -> np.ndarray:
    return np.array([d.centroid for d in inst], np.float64).reshape(-1, 2)


def ami_of(instances: dict, matches: dict, labels: dict, names: list[str]) -> float:
    from sklearn.metrics import adjusted_mutual_info_score

    t, p = [], []
    for n in names:
        for b, m in enumerate(matches[n]):
            if m >= 0:
                t.append(labels[n][b])
                p.append(instances[n][m].cls)
    return float(adjusted_mutual_info_score(t, p)) if len(set(t)) > 1 else float("nan")


def select(grid: list[tuple]) -> tuple:
    """The grid point with the highest F1 of recall and precision. Rows are (f1, min_scale, threshold, recall, ...)."""
    return max(grid, key=lambda g: (g[0], g[4]))


def pooled(folds: list[dict]) -> tuple:
    """The selection rule on both choosing halves together (each image scored with its own half's model)."""
    rows = []
    for a, b in zip(folds[0]["grid"], folds[1]["grid"], strict=True):
        c = a[5] + b[5]
        r = c["found"] / max(c["n_boxes"], 1)
        p = c["true_detections"] / max(c["n_detections"], 1)
        rows.append((2 * r * p / (r + p) if r + p else 0.0, a[1], a[2], r, p, c))
    return select(rows)


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    q = np.percentile(values, [25, 50, 75])
    return f"{q[1]:.2f} [{q[0]:.2f}-{q[2]:.2f}], min {min(values):.2f}"


def run_fold(k: int, files, mgs, boxes, labels, work: Path, epochs: int) -> dict:
    choose = [i for i in range(len(files)) if i % 2 == k]
    scored = [i for i in range(len(files)) if i % 2 != k]
    cn, sn = [files[i].name for i in choose], [files[i].name for i in scored]
    tp = TrainParams(ae1=TrainConfig(epochs=epochs), ae2=TrainConfig(epochs=epochs, batch_size=128))
    current_params = DefectParams(blobs=CURRENT)
    t0 = time.perf_counter()
    folder = work / f"fold{k}_current"
    if not (folder / "config.json").is_file():
        train_defect_model([mgs[i] for i in choose], folder, current_params, tp, progress=False)
    current_model = load_model(folder)
    t_train = time.perf_counter() - t0
    cache = dict(zip([f.name for f in files], cache_images(files, mgs, current_model.ae1, current_params), strict=True))

    # choose the calibrated detector's constants on the choosing half
    grid = []
    for ms, thr in itertools.product(MIN_SCALES, THRESHOLDS):
        blob = BlobParams(min_scale=ms, threshold=thr)
        cents = {n: centres_of(detect_cached(cache[n], blob, current_params)) for n in cn}
        s = score(cents, cn, boxes)
        grid.append((s["f1"], ms, thr, s["recall"], s["precision"], s["counts"]))
        print(
            f"fold {k} choose: min_scale {ms} threshold {thr}: R {s['recall']:.3f} P {s['precision']:.3f}", flush=True
        )
    best = select(grid)
    chosen = BlobParams(min_scale=best[1], threshold=best[2])
    bgrid = []
    for thr in BASELINE_THRESHOLDS:
        s = score({n: baseline_centres(cache[n], thr) for n in cn}, cn, boxes)
        bgrid.append((s["f1"], 0.0, thr, s["recall"], s["precision"]))
    bthr = select(bgrid)[2]
    pgrid = []
    for thr in THRESHOLDS:  # the previous detector with only its threshold chosen here
        blob = replace(CURRENT, threshold=thr)
        s = score({n: centres_of(detect_cached(cache[n], blob, current_params)) for n in cn}, cn, boxes)
        pgrid.append((s["f1"], 0.0, thr, s["recall"], s["precision"]))
    pixel = replace(CURRENT, threshold=select(pgrid)[2])

    # refit AE2 + classes with the chosen detector on the choosing half (AE1 kept)
    folder = work / f"fold{k}_calibrated"
    cal_params = DefectParams(blobs=chosen)
    train_defect_model([mgs[i] for i in choose], folder, cal_params, tp, progress=False, ae1=current_model.ae1)
    cal_model = load_model(folder)

    rows = {}
    dev = torch.device("cpu")
    methods = (
        ("current method", current_model, CURRENT),
        ("previous detector, threshold chosen here", current_model, pixel),
        ("calibrated", cal_model, chosen),
    )
    for name, model, blob in methods:
        inst = {}
        t1 = time.perf_counter()
        for n in sn:
            inst[n] = detect_cached(cache[n], blob, DefectParams(blobs=blob))
            classify(inst[n], cache[n].prepared.heights, model.ae2, model.classes, dev)
        s = score({n: centres_of(inst[n]) for n in sn}, sn, boxes)
        s["ami"] = ami_of(inst, s["matches"], labels, sn)
        s["seconds"] = time.perf_counter() - t1
        rows[name] = s
    s = score({n: baseline_centres(cache[n], bthr) for n in sn}, sn, boxes)
    s["ami"] = float("nan")
    rows["baseline"] = s
    return {
        "choose": cn,
        "scored": sn,
        "chosen": {"min_scale": chosen.min_scale, "threshold": chosen.threshold},
        "choose_score": {"recall": best[3], "precision": best[4], "f1": best[0]},
        "grid": grid,
        "baseline_threshold": bthr,
        "pixel_threshold": pixel.threshold,
        "rows": rows,
        "train_s": t_train,
        "feature_scales": {n: cache[n].calibration.feature_scale for n in sn},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "_work" / "defects_cv")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("CV.md"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    if not WSE2.is_dir():
        raise SystemExit(f"{WSE2}: shared data not found")
    t0 = time.perf_counter()
    files, boxes, labels = load_wse2()
    mgs = [read_stm(f) for f in files]
    folds = [run_fold(k, files, mgs, boxes, labels, args.work, args.epochs) for k in (0, 1)]
    wall = time.perf_counter() - t0
    halves = ("even", "odd")
    lines = [
        "# WSe2 defect detection: 2-fold leave-images-out protocol",
        "",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; machine: 2-core CPU, no GPU, "
        f"shared with other jobs ({platform.machine()}); torch {torch.__version__}, 1 thread; samiam "
        f"{samiam.__version__}; 1-min load average at the end {os.getloadavg()[0]:.1f}; wall time {wall:.0f} s.",
        f"- Command: `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/defects/run_cv.py --epochs {args.epochs}`",
        "- Halves: the 20 images of `../shared/data/stm/wse2` in file-name order, even and odd index. Each fold "
        "trains the models and chooses every constant on one half and scores the other (see the script's docstring).",
        f"- Grid of the calibrated detector: `min_scale` {list(MIN_SCALES)} (smallest blob sigma in feature scales) x "
        f"`threshold` {list(THRESHOLDS)}; chosen by F1 on the choosing half. Baseline threshold from "
        f"{list(BASELINE_THRESHOLDS)} the same way.",
        "",
        "| fold: choose -> score | method | chosen on the choosing half | recall | precision | F1 | class AMI | "
        "per-image recall: median [IQR], min | per-image precision: median [IQR], min |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for k, f in enumerate(folds):
        fold = f"{halves[k]} -> {halves[1 - k]}"
        for name, s in f["rows"].items():
            if name == "calibrated":
                ch = f"min_scale {f['chosen']['min_scale']}, threshold {f['chosen']['threshold']}"
            elif name == "baseline":
                ch = f"threshold {f['baseline_threshold']}"
            elif name.startswith("previous detector"):
                ch = f"threshold {f['pixel_threshold']} (pixel ladder; classes of the current method's model)"
            else:
                ch = "(fixed: previous defaults)"
            c = s["counts"]
            ami = "-" if s["ami"] != s["ami"] else f"{s['ami']:.3f}"
            lines.append(
                f"| {fold} | {name} | {ch} | {s['recall']:.3f} ({c['found']}/{c['n_boxes']}) | {s['precision']:.3f} "
                f"({c['true_detections']}/{c['n_detections']}) | {s['f1']:.3f} | {ami} | {spread(s['per_recall'])} | "
                f"{spread(s['per_precision'])} |"
            )
    lines += ["", "Difference between the two scored halves (|even - odd|):", ""]
    lines += ["| method | recall | precision | AMI |", "|---|---|---|---|"]
    for name in folds[0]["rows"]:
        a, b = folds[0]["rows"][name], folds[1]["rows"][name]
        dami = abs(a["ami"] - b["ami"]) if a["ami"] == a["ami"] else float("nan")
        lines.append(
            f"| {name} | {abs(a['recall'] - b['recall']):.3f} | {abs(a['precision'] - b['precision']):.3f} | "
            + ("-" if dami != dami else f"{dami:.3f}")
            + " |"
        )
    lines += ["", "Choosing-half scores of the chosen constants (for reference, not a held-out number):", ""]
    for k, f in enumerate(folds):
        cs = f["choose_score"]
        lines.append(
            f"- fold {halves[k]}: recall {cs['recall']:.3f}, precision {cs['precision']:.3f}, F1 {cs['f1']:.3f}; "
            f"training on the choosing half {f['train_s']:.0f} s."
        )
    d = pooled(folds)
    lines += [
        "",
        f"Package defaults: the same rule on both choosing halves pooled (each image with its own half's model): "
        f"`min_scale` {d[1]}, `threshold` {d[2]} (pooled recall {d[3]:.3f}, precision {d[4]:.3f}).",
    ]
    lines += ["", "Feature scales (px) of the scored images:", ""]
    for k, f in enumerate(folds):
        fs = ", ".join(f"{v:.1f}" for v in f["feature_scales"].values())
        lines.append(f"- {halves[1 - k]} half: {fs}")
    lines.append("")
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
