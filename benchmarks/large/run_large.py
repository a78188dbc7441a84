"""Large images: wall time and peak memory of ``samiam segment`` on a 4096 x 4096 micrograph, and of
re-runs that reuse the feature cache; plus a small study of the tile size.

The image is a synthetic HAADF cross-section made by the project's own generator
(``samiam.synth.stem.stack_cross_section``), so its ground-truth labels are known and every run is
also scored (mIoU etc. of the boosted masks, ``samiam.bench.metrics``).

Runs, each a separate ``samiam segment`` process (wall time includes start-up and model loading;
peak RSS is the child's ``ru_maxrss`` from ``os.wait4``):

1. ``first``: empty cache (``--cache`` in the work folder);
2. ``rerun-boost``: same image, other booster parameters (``--materials 3``): reuses the cache;
3. ``rerun-generator``: other generator thresholds (``--box-nms-thresh 0.5 --pred-iou-thresh 0.5``):
   reuses the cache (the decoder outputs are cached per prompt, so thresholds and NMS are free).

``--tile-study`` compares ``--tile off`` (the whole image at the model's input resolution) with
``--tile 1024`` (the default for LiteMedSAM) on a labelled 2048 x 2048 image, and ``--tile off`` on the
4096 x 4096 image against the main benchmark's first (tiled) run; all without cache.

Writes ``RESULTS.md`` and ``results.json`` next to this script; outputs go to ``benchmarks/_work/large``.

Usage (from the repository root)::

    .venv/bin/python benchmarks/large/run_large.py                       # 4096 px, --box-scales 0.5,0.25
    .venv/bin/python benchmarks/large/run_large.py --tile-study
    .venv/bin/python benchmarks/large/run_large.py --size 2048 --box-scales 0.5   # a quick check
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

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WORK = REPO / "benchmarks" / "_work" / "large"
SAMIAM = Path(sys.executable).with_name("samiam")


def make_image(size: int, seed: int, folder: Path) -> tuple[Path, Path]:
    """Write a 16-bit PNG cross-section and its label map (.npy)."""
    import cv2

    from samiam.synth.stem import stack_cross_section

    folder.mkdir(parents=True, exist_ok=True)
    img, labels, _ = stack_cross_section(size, size, seed=seed)
    path = folder / f"cross_section_{size}.png"
    cv2.imwrite(str(path), (img * 65535).astype(np.uint16))
    lab = folder / f"cross_section_{size}.labels.npy"
    np.save(lab, labels)
    return path, lab


def run_segment(args: list[str]) -> dict:
    """Run ``samiam segment ARGS`` in a child process; return wall time, peak RSS and exit code."""
    args = [os.path.relpath(a, REPO) if a.startswith(str(REPO)) else a for a in args]
    cmd = [str(SAMIAM), "segment", *args]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        print(out, file=sys.stderr)
        raise SystemExit(f"samiam segment failed ({code}): {' '.join(cmd)}")
    return {
        "command": "samiam segment " + " ".join(args),
        "wall_s": round(wall, 1),
        "peak_rss_gb": round(usage.ru_maxrss * 1024 / 1e9, 2),
        "output_tail": out.strip().splitlines()[-3:],
    }


def score(masks_json: Path, labels: Path) -> dict:
    """Scores of a result against the label map, and facts from its run record."""
    from samiam.bench.metrics import score_image
    from samiam.io.write import read_masks_json

    seg = read_masks_json(masks_json)
    s = score_image((m.decode() for m in seg.masks), np.load(labels)).summary()
    run = seg.run
    return {
        "miou": round(s["miou"], 3),
        "hungarian_miou": round(s["hungarian_miou"], 3),
        "recall": round(s["recall"], 3),
        "precision": round(s["precision"], 3),
        "masks": len(seg.masks),
        "raw_masks": run.get("booster", {}).get("raw_masks"),
        "tiling": run.get("tiling"),
        "cache": {k: v for k, v in (run.get("cache") or {}).items() if k != "dir"},
        "timings": run.get("timings"),
    }


def machine() -> str:
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except ImportError:
        gpu = "no GPU"
    return f"{os.cpu_count()}-core CPU ({platform.machine()}), {gpu}, {platform.system()}"


def du(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6 if folder.is_dir() else 0.0


def run_boost(raw_json: Path, image: Path, out: Path, materials: int) -> None:
    """Re-boost saved raw masks with a given number of materials (``samiam boost``)."""
    args = [str(raw_json), str(image), "-o", str(out), "--materials", str(materials)]
    args = [os.path.relpath(a, REPO) if a.startswith(str(REPO)) else a for a in args]
    subprocess.run([str(SAMIAM), "boost", *args], check=True, cwd=REPO, capture_output=True)


def tile_study(seed: int, common: list[str], plans: list[tuple[int, str]]) -> list[dict]:
    """Whole image (``--tile off``) against 1024 px tiles, on labelled 2048 and 4096 px images.

    Every raw result is also re-boosted with the true number of materials (4), which separates the
    generator's masks from the booster's automatic choice of K.
    """
    study = []
    for size, tile in plans:
        img_seed = seed if size == 4096 else seed + 1  # 4096: the main benchmark's image
        img, lab = make_image(size, img_seed, WORK / "study" if size != 4096 else WORK)
        out = WORK / "study" / f"{size}_tile_{tile}"
        shutil.rmtree(out, ignore_errors=True)
        print(f"[{time.strftime('%H:%M:%S')}] tile study: {size} px, --tile {tile} ...", flush=True)
        res = run_segment([str(img), "-o", str(out), "--no-cache", "--tile", tile, *common])
        study.append(_study_entry(size, tile, res, out, img, lab))
    return study


def _study_entry(size: int, tile: str, res: dict, out: Path, img: Path, lab: Path) -> dict:
    entry = {
        "size": size,
        "tile": tile,
        "command": res["command"],
        "wall_s": res["wall_s"],
        "peak_rss_gb": res["peak_rss_gb"],
        **score(out / f"{img.stem}.masks.json", lab),
    }
    entry["raw"] = {
        k: v
        for k, v in score(out / f"{img.stem}.raw.json", lab).items()
        if k in ("miou", "hungarian_miou", "recall", "precision", "masks")
    }
    known = out / "k4"
    run_boost(out / f"{img.stem}.raw.json", img, known, 4)
    entry["k4"] = {
        k: v
        for k, v in score(known / f"{img.stem}.masks.json", lab).items()
        if k in ("miou", "hungarian_miou", "masks")
    }
    print(f"  {entry['wall_s']} s, mIoU auto-K {entry['miou']}, K=4 {entry['k4']['miou']}", flush=True)
    return entry


def _row(name: str, r: dict, first_wall: float | None) -> str:
    t = r.get("timings") or {}
    speed = f"{first_wall / r['wall_s']:.1f}x" if first_wall and name != "first" else "1x"
    cache = r.get("cache") or {}
    hits = f"{cache.get('result_hits', '-')}/{cache.get('encoder_hits', '-')}/{cache.get('decoder_hits', '-')}"
    tiles = (r.get("tiling") or {}).get("tiles", "-")
    return (
        f"| {name} | {r['wall_s']:.0f} | {speed} | {r['peak_rss_gb']:.2f} | {t.get('generate', 0):.0f} | "
        f"{sum(v for k, v in t.items() if k.startswith('boost_')):.0f} | {tiles} | {hits} | {r.get('raw_masks')} | "
        f"{r['masks']} | {r['miou']:.3f} | {r.get('load_after', [0])[0]:.1f} |"
    )


def write_markdown(results: dict) -> None:
    """RESULTS.md from results.json."""
    lines = ["# Large images: time and peak memory, first run vs cached re-runs", ""]
    runs = results.get("runs") or {}
    if runs:
        first = runs.get("first", {}).get("wall_s")
        tile = (runs.get("first", {}).get("tiling") or {}).get("tile")
        lines += [
            f"- date: {results['date']}",
            f"- machine: {results['machine']}, shared with other jobs: load average before "
            f"{', '.join(f'{v:.1f}' for v in results['load_before'])} (1/5/15 min) — timings are under load",
            f"- image: {results['size']} x {results['size']} synthetic cross-section "
            "(`samiam.synth.stem.stack_cross_section`, 4 materials), 16-bit PNG",
            f"- model: LiteMedSAM (offline default), default tile (auto = {tile} px, halo 128), "
            f"`--box-scales {results['box_scales']}`",
            "- command: `.venv/bin/python benchmarks/large/run_large.py`; each run is one "
            "`samiam segment` process (wall time includes start-up and model loading); peak RSS = the "
            "child's `ru_maxrss`",
            f"- cache size after the runs: {results.get('cache_mb', 0):.0f} MB",
            "",
            "| run | wall s | speed-up | peak RSS GB | generate s | boost s | tiles | cache hits result/enc/dec | "
            "raw masks | final masks | mIoU | load after |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        lines += [_row(name, r, first) for name, r in runs.items()]
        lines += [
            "",
            "rerun-boost reuses the stored generator result (no model call); rerun-generator reuses "
            "the embeddings and per-prompt decoder outputs and redoes filtering, NMS, upsampling and "
            "stitching. Both then run the booster and write the outputs.",
        ]
        if "first" in runs and "rerun-boost" in runs:
            rb = runs["rerun-boost"]
            lines += [
                "",
                "Targets: peak RSS < 4 GB: "
                f"{max(r['peak_rss_gb'] for r in runs.values()):.2f} GB at most. "
                f"Cached re-run >= 5x faster: rerun-boost {runs['first']['wall_s'] / rb['wall_s']:.1f}x.",
            ]
        lines += ["", "Commands:", ""] + [f"- {name}: `{r['command']}`" for name, r in runs.items()]
    study = results.get("tile_study")
    if study:
        lines += [
            "",
            "## Tile size: whole image vs 1024 px tiles (labelled cross-sections, "
            f"`--box-scales {results['box_scales']}`)",
            "",
            "| image | --tile | wall s | tiles | raw masks | raw mIoU | auto K: masks | auto K: mIoU | "
            "K=4: mIoU | K=4: 1:1 mIoU |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in study:
            tiles = (r.get("tiling") or {}).get("tiles", 1)
            lines.append(
                f"| {r['size']} px | {r['tile']} | {r['wall_s']:.0f} | {tiles} | "
                f"{r['raw']['masks']} | {r['raw']['miou']:.3f} | {r['masks']} | {r['miou']:.3f} | "
                f"{r['k4']['miou']:.3f} | {r['k4']['hungarian_miou']:.3f} |"
            )
        lines += [
            "",
            "K=4: the same raw masks re-boosted with `samiam boost RAW IMAGE --materials 4` (the true "
            "number of materials).",
        ]
        lines += [f"{r['size']} px, --tile {r['tile']}: {r['note']}." for r in study if r.get("note")]
        lines += ["", "Commands:", ""] + [f"- `{r['command']}`" for r in study]
    (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--box-scales", default="0.5,0.25")
    ap.add_argument("--tile-study", action="store_true", help="also compare --tile off / 1024 on a 2048 image")
    ap.add_argument("--skip-large", action="store_true", help="only the tile study")
    ap.add_argument(
        "--plans",
        default="2048:off,2048:1024,4096:off,4096:1024,4096:2048",
        help="tile study runs as SIZE:TILE,... (entries replace earlier ones of the same SIZE:TILE)",
    )
    args = ap.parse_args()

    common = ["--box-scales", args.box_scales, "-q"]
    results: dict = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "load_before": os.getloadavg(),
        "size": args.size,
        "box_scales": args.box_scales,
        "runs": {},
    }
    if not args.skip_large:
        img, lab = make_image(args.size, args.seed, WORK)
        cache = WORK / "cache"
        shutil.rmtree(cache, ignore_errors=True)
        plans = {
            "first": [],
            "rerun-boost": ["--materials", "3"],
            "rerun-generator": ["--box-nms-thresh", "0.5", "--pred-iou-thresh", "0.5"],
        }
        for name, extra in plans.items():
            out = WORK / name
            shutil.rmtree(out, ignore_errors=True)
            print(f"[{time.strftime('%H:%M:%S')}] {name} ...", flush=True)
            res = run_segment([str(img), "-o", str(out), "--cache", str(cache), *common, *extra])
            res.update(score(out / f"{img.stem}.masks.json", lab))
            res["load_after"] = os.getloadavg()
            results["runs"][name] = res
            print(f"  {res['wall_s']} s, peak RSS {res['peak_rss_gb']} GB, mIoU {res['miou']}", flush=True)
        results["cache_mb"] = round(du(cache), 1)
    if args.tile_study:
        plans = [(int(a), b) for a, b in (p.split(":") for p in args.plans.split(","))]
        results["tile_study"] = tile_study(args.seed, common, plans)
    old = json.loads((HERE / "results.json").read_text()) if (HERE / "results.json").is_file() else {}
    if args.tile_study:  # merge with the study entries of earlier invocations
        new = {(e["size"], e["tile"]) for e in results["tile_study"]}
        kept = [e for e in old.get("tile_study", []) if (e["size"], e["tile"]) not in new]
        results["tile_study"] = sorted(kept + results["tile_study"], key=lambda e: (e["size"], e["tile"]))
    if args.skip_large:  # keep the large runs of an earlier invocation
        results = {**old, "tile_study": results["tile_study"]}
    elif not args.tile_study and "tile_study" in old:
        results["tile_study"] = old["tile_study"]
    (HERE / "results.json").write_text(json.dumps(results, indent=1))
    write_markdown(results)
    print((HERE / "RESULTS.md").read_text())


if __name__ == "__main__":
    main()
