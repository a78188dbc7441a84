"""Score the STM defect stage on ../shared/data/stm and write benchmarks/defects/RESULTS.md.

Usage (from the repository root):
    .venv/bin/python benchmarks/defects/run_benchmark.py [--epochs 15] [--threads 0] [--work benchmarks/_work/defects]

What it measures (every model is trained unsupervised on the images it is then run on; no label is
seen before scoring):
- WSe2 (20 JPEG topographs, boxes.csv): recall (a labelled box is found when a detected instance's
  centroid lies inside it) and precision (a detection is true when its centroid lies inside some
  labelled box); overall, and on the even- and odd-indexed halves. The model is trained on all 20 and the
  detector's constants were chosen on both halves (benchmarks/defects/run_cv.py), so none of these
  numbers is held out: the leave-images-out numbers are in CV.md. AMI between the GMM class of the
  matched detection and the 8 labelled classes, over the found boxes.
- TiO2 m235: pixel IoU between the defect mask and m235_defect_mask.npy (model trained on m235 alone).
- Si(001)-H (6 images, model trained on them): the fraction of step-edge pixels flagged as defect,
  with step-edge pixels defined independently of the pipeline's step detector (see ``step_truth``).
- Inference time per 512x512 image (run_defects, excluding file reading/writing), median.
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
from scipy import ndimage as ndi

import samiam
from samiam.defects import DefectParams, TrainParams, load_model, run_defects, train_defect_model
from samiam.defects.blobs import BlobParams
from samiam.defects.flatten import flatten_heights
from samiam.defects.readers import read_stm
from samiam.defects.scoring import detection_scores, flagged_fraction, pixel_iou
from samiam.defects.steps import component_shapes
from samiam.defects.train import TrainConfig
from samiam.errors import ParameterError
from samiam.io.micrograph import micrograph_from_array

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / ".." / "shared" / "data" / "stm"
SI_STEP_HEIGHT_NM = 0.136  # Si(001) single-layer step


def step_truth(raw: np.ndarray) -> np.ndarray:
    """Step-edge pixels of a Si(001) height map (nm), independent of ``samiam.defects.steps``.

    Definition: flatten (line-by-line + plane); smooth with a Gaussian of sigma 2 px; a pixel is
    on a step when the central height difference over +-4 px along x or y exceeds half the Si(001)
    single-layer step height (0.068 nm); connected sets of such pixels count as steps when they
    span >= 20 % of the image side and are line-like (major/minor axis ratio >= 5); the result is
    the pixels of those sets.
    """
    z = ndi.gaussian_filter(flatten_heights(raw), 2.0)
    dx = np.zeros_like(z)
    dy = np.zeros_like(z)
    dx[:, 4:-4] = z[:, 8:] - z[:, :-8]
    dy[4:-4, :] = z[8:, :] - z[:-8, :]
    cand = np.maximum(np.abs(dx), np.abs(dy)) > SI_STEP_HEIGHT_NM / 2
    labels, n = ndi.label(cand, structure=np.ones((3, 3)))
    if n == 0:
        return cand
    length, elong = component_shapes(labels, n)
    keep = np.concatenate([[False], (length >= 0.2 * min(z.shape)) & (elong >= 5.0)])
    return keep[labels]


def train(images, folder: Path, epochs: int, seed: int = 0, params: DefectParams | None = None):
    tp = TrainParams(ae1=TrainConfig(epochs=epochs), ae2=TrainConfig(epochs=epochs, batch_size=128))
    t0 = time.perf_counter()
    model = train_defect_model(images, folder, params or DefectParams(seed=seed), tp, progress=False)
    return load_model(folder), time.perf_counter() - t0, model


def train_with_fallback(images, folder: Path, epochs: int) -> tuple:
    """Train with the defaults (blob mode); if that finds too few defects to fit classes, say so and
    train in the error-mask mode (``BlobParams(enabled=False)``). Returns (model, seconds, params, note)."""
    try:
        model, t, _ = train(images, folder, epochs)
        return model, t, DefectParams(), ""
    except ParameterError as err:
        params = DefectParams(blobs=BlobParams(enabled=False))
        model, t, _ = train(images, folder, epochs, params=params)
        return model, t, params, f"default (blob mode) training failed: {err}; scored in error-mask mode instead"


def wse2(work: Path, epochs: int) -> dict:
    from sklearn.metrics import adjusted_mutual_info_score

    folder = SHARED / "wse2"
    files = sorted((folder / "images").glob("*.jpg"))
    boxes = collections.defaultdict(list)
    labels = collections.defaultdict(list)
    with open(folder / "boxes.csv") as fh:
        for row in csv.DictReader(fh):
            boxes[row["filename"]].append([int(row[k]) for k in ("x", "y", "width", "height")])
            labels[row["filename"]].append(row["label"])
    mgs = [read_stm(f) for f in files]
    model, t_train, _ = train(mgs, work / "model_wse2", epochs)
    parts = {
        "all": collections.Counter(),
        "even half": collections.Counter(),
        "odd half": collections.Counter(),
    }
    true_cls, pred_cls, per_image, times = [], [], [], []
    for i, (f, mg) in enumerate(zip(files, mgs, strict=True)):
        res = run_defects(mg, model)
        times.append((mg.raw.shape, res.timings["total"]))
        inst = res.detection.instances
        cents = np.array([d.centroid for d in inst]).reshape(-1, 2)
        s = detection_scores(cents, np.array(boxes[f.name]))
        for name in ("all", "even half" if i % 2 == 0 else "odd half"):
            for k in ("found", "n_boxes", "true_detections", "n_detections"):
                parts[name][k] += s[k]
        for b, m in enumerate(s["box_match"]):
            if m >= 0:
                true_cls.append(labels[f.name][b])
                pred_cls.append(inst[m].cls)
        per_image.append((f.name, s["found"], s["n_boxes"], s["true_detections"], s["n_detections"]))
    ami = adjusted_mutual_info_score(true_cls, pred_cls) if len(set(true_cls)) > 1 else float("nan")
    return {
        "parts": parts,
        "ami": ami,
        "n_matched": len(true_cls),
        "per_image": per_image,
        "n_classes": model.classes.n_classes,
        "selection": model.classes.selection["chosen"],
        "train_s": t_train,
        "times": times,
    }


def tio2(work: Path, epochs: int) -> dict:
    raw = np.load(SHARED / "fsl_stm" / "m235.npy")
    truth = np.load(SHARED / "fsl_stm" / "m235_defect_mask.npy").astype(bool)
    mg = micrograph_from_array(raw, "m235.npy")
    model, t_train, params, note = train_with_fallback([mg], work / "model_tio2", epochs)
    res = run_defects(mg, model, params)
    return {
        "iou": pixel_iou(res.detection.mask, truth),
        "pred_fraction": float(res.detection.mask.mean()),
        "truth_fraction": float(truth.mean()),
        "train_s": t_train,
        "time": res.timings["total"],
        "note": note,
    }


def silicon(work: Path, epochs: int) -> dict:
    files = sorted(f for f in (SHARED / "fsl_stm").glob("*Si(001)*.npy"))
    mgs = [micrograph_from_array(np.load(f), f.name) for f in files]
    model, t_train, params, note = train_with_fallback(mgs, work / "model_si", epochs)
    rows, flagged, total, times = [], 0, 0, []
    for f, mg in zip(files, mgs, strict=True):
        truth = step_truth(np.load(f))
        res = run_defects(mg, model, params)
        times.append((mg.raw.shape, res.timings["total"]))
        n = int(truth.sum())
        hit = int((res.detection.mask & truth).sum())
        flagged += hit
        total += n
        rows.append(
            (
                f.name,
                n,
                flagged_fraction(res.detection.mask, truth),
                res.detection.prepared.steps.n_steps,
                float(res.detection.mask.mean()),
            )
        )
    frac = flagged / total if total else float("nan")
    return {"rows": rows, "fraction": frac, "train_s": t_train, "times": times, "note": note}


def fmt(x: float) -> str:
    return "-" if x != x else f"{x:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "_work" / "defects")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED}: shared data not found")
    t0 = time.perf_counter()
    w = wse2(args.work, args.epochs)
    t = tio2(args.work, args.epochs)
    s = silicon(args.work, args.epochs)
    wall = time.perf_counter() - t0
    t512 = [dt for shape, dt in w["times"] + s["times"] if shape == (512, 512)] + [t["time"]]
    lines = [
        "# Defect stage benchmark (STM)",
        "",
        f"- Date: {datetime.date.today().isoformat()}; machine: 2-core CPU, no GPU (shared with other jobs); "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); samiam {samiam.__version__}; "
        f"1-min load average at the end {os.getloadavg()[0]:.1f}.",
        f"- Command: `.venv/bin/python benchmarks/defects/run_benchmark.py --epochs {args.epochs}"
        + (f" --threads {args.threads}" if args.threads else "")
        + "`",
        f"- Default parameters (DefectParams(), TrainParams with --epochs {args.epochs}); "
        f"total wall time {wall:.0f} s.",
        "",
        "## WSe2 (20 images, 498 boxes): detection and classes",
        "",
        "| split | boxes found / boxes | recall | true detections / detections | precision |",
        "|---|---|---|---|---|",
    ]
    for name, c in w["parts"].items():
        lines.append(
            f"| {name} | {c['found']} / {c['n_boxes']} | {fmt(c['found'] / max(c['n_boxes'], 1))} | "
            f"{c['true_detections']} / {c['n_detections']} | "
            f"{fmt(c['true_detections'] / c['n_detections'] if c['n_detections'] else float('nan'))} |"
        )
    sel = w["selection"]
    lines += [
        "",
        f"- Classes: GMM with {w['n_classes']} components, {sel.get('covariance_type')} covariance (BIC "
        f"{sel.get('bic', float('nan')):.1f}, AIC {sel.get('aic', float('nan')):.1f}, silhouette "
        f"{fmt(sel.get('silhouette', float('nan')))}, Davies-Bouldin {fmt(sel.get('davies_bouldin', float('nan')))}).",
        f"- AMI between GMM class and the 8 labelled classes over the {w['n_matched']} found boxes: "
        f"**{fmt(w['ami'])}**.",
        f"- Training (AE1 + AE2 + GMM on the 20 images): {w['train_s']:.0f} s.",
        "",
        "## TiO2(110) m235: pixel IoU with m235_defect_mask.npy",
        "",
        f"IoU **{fmt(t['iou'])}** (defect fraction predicted {t['pred_fraction']:.3f}, "
        f"true {t['truth_fraction']:.3f}); "
        f"model trained on m235 alone in {t['train_s']:.0f} s." + (f" Note: {t['note']}." if t["note"] else ""),
        "",
        "## Si(001)-H: step-edge pixels flagged as defects",
        "",
        "Step-edge truth: `step_truth` in the script (half a Si(001) step height, 0.068 nm, over +-4 px "
        "of the sigma-2 smoothed flattened heights, line-like sets spanning >= 20 % of the side).",
        "",
        "| image | step-edge px | flagged fraction | steps detected by the pipeline | defect area fraction |",
        "|---|---|---|---|---|",
    ]
    for name, n, frac, n_steps, area in s["rows"]:
        lines.append(f"| {name} | {n} | {fmt(frac)} | {n_steps} | {area:.3f} |")
    lines += [
        "",
        f"Overall fraction of step-edge pixels flagged: **{fmt(s['fraction'])}**."
        + (f" Note: {s['note']}." if s["note"] else ""),
        "",
        "## Speed",
        "",
        f"Inference (`run_defects`: flatten, steps, AE1 maps, K-means, mask, AE2 + GMM) on 512x512 images: median "
        f"**{np.median(t512):.2f} s**, max {np.max(t512):.2f} s over {len(t512)} images.",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
