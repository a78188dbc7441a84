"""Side by side on every dev set: raw, crops, field, fused (grid and field-placed prompts), and the
plain windowed-FFT K-means baseline given the true K; each samiam method with automatic and true K.

The field's free parameters are chosen by 2-fold cross-validation on stem-sim (choose on the even
images, score the odd ones, and the other way round); the table of the folds is printed with the
spread across images. Raw LiteMedSAM masks come from ``samiam segment --no-boost`` outputs
(``--raw DIR``, the blind three-scale box grid); the field-placed prompt set is a subset of that grid,
so ``fused`` keeps the raw masks whose prompt box the field would have placed (box NMS ran on the
whole grid, the only difference from a real run; the README quotes a real end-to-end run).

Usage (from the repository root, after
``samiam segment ../shared/data/stem-sim/images ../shared/data/stem-real -o benchmarks/_work/raw --no-boost``)::
-o benchmarks/_work/raw --no-boost``)::

    .venv/bin/python benchmarks/quality/run_methods.py --raw benchmarks/_work/raw
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from fft_baseline import fft_baseline  # noqa: E402

from samiam.bench.datasets import read_label_map  # noqa: E402
from samiam.bench.metrics import score_image  # noqa: E402
from samiam.boost.config import BoostConfig  # noqa: E402
from samiam.boost.pipeline import boost_masks  # noqa: E402
from samiam.field.build import FieldConfig, saturated_pixels  # noqa: E402
from samiam.field.prompts import field_prompt_boxes  # noqa: E402
from samiam.io.read import read_micrograph  # noqa: E402
from samiam.io.write import read_masks_json  # noqa: E402
from samiam.pipeline import micrograph_field  # noqa: E402

SHARED = HERE.parents[1] / ".." / "shared" / "data"
GRID = {"scale": ["robust", "noise"], "smooth_cells": [1.0, 2.0], "merge_valley": [0.4, 0.5, 0.6]}
SINGLE = ["perovskite_ADF_cropped.hdf5", "graphene_grain_boundary.npy", "MoS2_Se_implanted.dm3"]


def labelled() -> list[tuple[str, Path, Path]]:
    sim = SHARED / "stem-sim"
    out = [("stem-sim", p, sim / "labels" / p.name) for p in sorted((sim / "images").glob("*.png"))]
    real = SHARED / "stem-real"
    out.append(("nanoparticles", real / "nanoparticles_16bit.tiff", real / "nanoparticles_16bit.labels.png"))
    return out


def score(owner_masks: list[np.ndarray], gt: np.ndarray) -> dict:
    s = score_image(owner_masks, gt).summary()
    return {k: s[k] for k in ("miou", "boundary_miou", "hungarian_miou", "n_pred")}


def masks_of(records) -> list[np.ndarray]:
    return [r.decode() for r in records]


def field_scores(mic, gt, k_true: int, fcfg: FieldConfig, tags: tuple[str, ...] = ("auto", "true")) -> dict:
    out = {}
    for tag, k in (("auto", 0), ("true", k_true)):
        if tag not in tags:
            continue
        cfg = BoostConfig(method="field", materials=k, field=fcfg)
        t = time.perf_counter()
        final, _ = boost_masks(mic.image, [], cfg, saturated=saturated_pixels(mic.raw))
        out[tag] = {**score(masks_of(final), gt), "k": len(final), "s": time.perf_counter() - t}
    return out


def cross_validate(items) -> tuple[dict, list[dict]]:
    """2-fold CV of the field grid on stem-sim; returns the per-fold choices and scores."""
    configs = [dict(zip(GRID, v, strict=False)) for v in itertools.product(*GRID.values())]
    table = {}
    for i, c in enumerate(configs):
        fcfg = FieldConfig(**c)
        table[i] = [field_scores(mic, gt, k, fcfg, ("auto",)) for _, mic, gt, k in items]
        print("cv config", c, "auto mIoU", round(float(np.mean([r["auto"]["miou"] for r in table[i]])), 3), flush=True)

    folds = []
    idx = np.arange(len(items))
    for name, choose, held in (("even→odd", idx % 2 == 0, idx % 2 == 1), ("odd→even", idx % 2 == 1, idx % 2 == 0)):
        best = max(table, key=lambda i: objective_on(table[i], items, choose))
        rows = [table[best][j] for j in np.nonzero(held)[0]]
        ks = [items[j][3] for j in np.nonzero(held)[0]]
        folds.append(
            {
                "fold": name,
                "chosen": configs[best],
                "held_out_miou": float(np.mean([r["auto"]["miou"] for r in rows])),
                "held_out_miou_sd": float(np.std([r["auto"]["miou"] for r in rows])),
                "held_out_boundary": float(np.mean([r["auto"]["boundary_miou"] for r in rows])),
                "held_out_k_exact": f"{sum(r['auto']['k'] == k for r, k in zip(rows, ks, strict=False))}/{len(rows)}",
            }
        )
    best_all = max(table, key=lambda i: objective_on(table[i], items, np.ones(len(items), bool)))
    return configs[best_all], folds


def objective_on(rows, items, sel) -> float:
    pick = [(r, items[j][3]) for j, r in enumerate(rows) if sel[j]]
    return float(np.mean([r["auto"]["miou"] + r["auto"]["boundary_miou"] + (r["auto"]["k"] == k) for r, k in pick]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--raw", type=Path, required=True, help="folder of <stem>.raw.json (samiam segment --no-boost)")
    ap.add_argument("--out", type=Path, default=HERE / "METHODS.md")
    ap.add_argument("--no-cv", action="store_true", help="skip the cross-validation (use the defaults)")
    args = ap.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    items = []
    for group, img, lab in labelled():
        mic = read_micrograph(img)
        gt = read_label_map(lab)
        items.append((group, mic, gt, int(len([v for v in np.unique(gt) if v > 0]))))
    sim = [it for it in items if it[0] == "stem-sim"]
    chosen, folds = (None, []) if args.no_cv else cross_validate(sim)
    fcfg = FieldConfig(**chosen) if chosen else FieldConfig()
    rows = []
    for group, mic, gt, k_true in items:
        raw = read_masks_json(args.raw / f"{Path(mic.source).stem}.raw.json")
        gen_s = float(raw.run.get("timings", {}).get("generate", float("nan")))
        row = {"group": group, "image": Path(mic.source).stem, "k_true": k_true, "raw_prompts": 283}
        row["raw"] = {**score(masks_of(raw.masks), gt), "k": None, "s": gen_s}
        row["baseline"] = {**score([fft_baseline(mic.image, k_true) == i for i in range(k_true)], gt), "k": k_true}
        for tag, k in (("auto", 0), ("true", k_true)):
            base = BoostConfig(materials=k, field=fcfg)
            t = time.perf_counter()
            field = micrograph_field(mic, base)
            field_s = time.perf_counter() - t
            boxes, counts = field_prompt_boxes(field.labels, (0.5, 0.25, 0.125), 0.5)
            placed = {tuple(np.round(b, 1)) for b in boxes.tolist()}
            subset = [r for r in raw.masks if tuple(r.extra.get("prompt", {}).get("box", [])) in placed]
            n_prompts = sum(c["kept"] for c in counts.values())
            for method, recs in (("crops", raw.masks), ("field", []), ("fused-grid", raw.masks), ("fused", subset)):
                cfg = dataclasses.replace(base, method="crops" if method == "crops" else method.split("-")[0])
                t = time.perf_counter()
                final, _ = boost_masks(mic.image, recs, cfg, field=None if method == "crops" else field)
                s = time.perf_counter() - t + (0 if method == "crops" else field_s)
                if method == "fused":
                    s += gen_s * n_prompts / 283  # the decoder time of the prompts it places
                    row["fused_prompts"] = n_prompts
                elif method != "field":
                    s += gen_s
                row[f"{method}/{tag}"] = {**score(masks_of(final), gt), "k": len(final), "s": s}
        rows.append(row)
        print(row["image"], {k: round(v["miou"], 3) for k, v in row.items() if isinstance(v, dict)}, flush=True)
    single = []
    for name in SINGLE:
        mic = read_micrograph(SHARED / "stem-real" / name)
        field = micrograph_field(mic, BoostConfig(field=fcfg))
        crops_k = None
        raw_path = args.raw / f"{Path(name).stem}.raw.json"
        if raw_path.is_file():
            raw = read_masks_json(raw_path)
            crops_k = len(boost_masks(mic.image, raw.masks, BoostConfig(method="crops"))[0])
        single.append({"image": name, "field_k": field.n_materials, "crops_k": crops_k, "window": field.window})
    write_report(args.out, rows, single, folds, chosen, started)
    (args.out.with_suffix(".json")).write_text(json.dumps({"rows": rows, "single": single, "folds": folds}, indent=1))


def commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()


def write_report(out: Path, rows, single, folds, chosen, started) -> None:
    methods = ["raw", "baseline"] + [
        f"{m}/{t}" for m in ("crops", "field", "fused-grid", "fused") for t in ("auto", "true")
    ]
    lines = [
        "# Methods side by side (issue 10)",
        "",  # noqa: E501
        "Command: `.venv/bin/python benchmarks/quality/run_methods.py --raw benchmarks/_work/raw`  ",
        f"Date: {started}; machine: {os.cpu_count()}-core CPU ({platform.machine()}), no GPU, shared with other jobs "
        "(seconds are loaded-machine figures).  ",
        "Model for raw masks: LiteMedSAM (offline default), blind 3-scale box grid (283 prompts per image).  ",
        f"Commit: {commit()}",
        "",
        "`baseline` = the plain windowed-FFT K-means (pySTEM recipe, `fft_baseline.py`) given the true K. "
        "`fused` places prompts from the field; `fused-grid` fuses all 283. `/auto` = automatic K, `/true` = K given. "
        "mIoU = the paper's mIoU, B = boundary mIoU, 1:1 = Hungarian mIoU, s = seconds per image "
        "(raw generation time included where the method needs SAM masks).",
        "",
    ]
    for group in ("stem-sim", "nanoparticles"):
        rs = [r for r in rows if r["group"] == group]
        lines += [
            f"## {group} ({len(rs)} images)",
            "",
            "| method | mIoU (sd) | B-mIoU | 1:1 mIoU | masks | K exact | s |",
            "|---|---|---|---|---|---|---|",
        ]
        for m in methods:
            v = [r[m] for r in rs]
            kx = (
                "-"
                if m in ("raw", "baseline") or m.endswith("/true")
                else f"{sum(x['k'] == r['k_true'] for x, r in zip(v, rs, strict=False))}/{len(rs)}"
            )
            sec = [x.get("s", float("nan")) for x in v]
            lines.append(
                f"| {m} | {np.mean([x['miou'] for x in v]):.3f} ({np.std([x['miou'] for x in v]):.3f}) | "
                f"{np.mean([x['boundary_miou'] for x in v]):.3f} | {np.mean([x['hungarian_miou'] for x in v]):.3f} | "
                f"{np.mean([x['n_pred'] for x in v]):.1f} | {kx} | {np.nanmean(sec):.1f} |"
            )
        lines.append("")
    lines += [
        "## Single-phase real images (right answer: 1 material)",
        "",
        "| image | field / fused K | crops K | window px |",
        "|---|---|---|---|",
    ]
    lines += [f"| {s['image']} | {s['field_k']} | {s['crops_k']} | {s['window']} |" for s in single]
    lines += ["", "## Field parameters by 2-fold cross-validation on stem-sim", ""]
    if folds:
        lines += [  # noqa: E501
            "| fold | chosen | held-out auto mIoU (sd) | held-out B-mIoU | held-out K exact |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {f['fold']} | {f['chosen']} | {f['held_out_miou']:.3f} ({f['held_out_miou_sd']:.3f}) | "
            f"{f['held_out_boundary']:.3f} | {f['held_out_k_exact']} |"
            for f in folds
        ]
        lines += ["", f"Chosen on all 16 (the defaults): `{chosen}`; grid searched: `{GRID}`."]
    lines += [
        "",
        "## Per image (mIoU, auto K)",
        "",
        "| image | K | raw | baseline | crops | field | fused-grid | fused | fused prompts |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['image']} | {r['k_true']} | {r['raw']['miou']:.3f} | {r['baseline']['miou']:.3f} | "
            + " | ".join(
                f"{r[m + '/auto']['miou']:.3f} (K={r[m + '/auto']['k']})"
                for m in ("crops", "field", "fused-grid", "fused")
            )
            + f" | {r.get('fused_prompts', '-')} |"
        )
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
