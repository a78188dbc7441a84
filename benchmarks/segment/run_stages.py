"""Time every stage of `samiam segment` on a labelled set and score raw vs boosted masks.

Stages: generation (model + prompt grid), and the booster's filter, crops, encode, cluster and
merge. Reports the booster's time as a fraction of the generation time (target: < 5%) and the
SAM-I-Am metrics of raw and boosted masks (samiam.bench.metrics).

Usage:
    python benchmarks/segment/run_stages.py ../shared/data/stem-sim -o benchmarks/segment \
        [--raw-dir DIR] [--limit N] [--encoder fft] [--materials auto]

--raw-dir: read `<stem>.raw.json` from DIR when present (their run record holds the generation
time) and write the ones it generates there, so a re-run only re-times the booster.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from samiam import __version__
from samiam.bench.datasets import open_dataset
from samiam.bench.metrics import score_image
from samiam.boost.config import BoostConfig
from samiam.cli.options import parse_materials
from samiam.io.files import write_json
from samiam.io.read import read_micrograph
from samiam.io.write import read_masks_json
from samiam.pipeline import SegmentConfig, boost_segmentation, segment_micrograph

STAGES = ("filter", "crops", "encode", "cluster", "merge")
METRICS = ("miou", "recall", "precision", "false_positive", "boundary_miou", "hungarian_miou", "n_pred")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset")
    ap.add_argument("-o", "--out", default="benchmarks/segment")
    ap.add_argument("--raw-dir", default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--encoder", default="fft")
    ap.add_argument("--materials", default="auto")
    ap.add_argument("--model", default="auto")
    args = ap.parse_args()

    ds = open_dataset(args.dataset, limit=args.limit, read_images=False)
    raw_dir = Path(args.raw_dir) if args.raw_dir else None
    model = None
    rows = []
    for sample in ds:
        stem = sample.stem
        mic = read_micrograph(sample.image_path)
        cached = raw_dir / f"{stem}.raw.json" if raw_dir else None
        if cached is not None and cached.exists():
            raw = read_masks_json(cached)
        else:
            if model is None:
                from samiam.models.build import load_model

                model = load_model(args.model)
            raw, _ = segment_micrograph(mic, model, SegmentConfig(), boost=False)
            if cached is not None:
                write_json(cached, raw.to_json())
        cfg = BoostConfig(encoder=args.encoder, materials=parse_materials(args.materials))
        t = time.perf_counter()
        boosted = boost_segmentation(raw, mic, cfg)
        boost_total = time.perf_counter() - t
        info = boosted.run["booster"]
        gen = float(raw.run["timings"]["generate"])
        s_raw = score_image((m.decode() for m in raw.masks), sample.labels).summary()
        s_b = score_image((m.decode() for m in boosted.masks), sample.labels).summary()
        rows.append(
            {
                "image": stem,
                "layout": sample.groups.get("layout", ""),
                "regions": s_b["n_regions"],
                "materials_found": info["materials"],
                "generate_s": gen,
                "boost_s": boost_total,
                **{f"{k}_s": info["timings"].get(k, 0.0) for k in STAGES},
                "boost_fraction": boost_total / gen,
                "raw": {k: s_raw[k] for k in METRICS},
                "boosted": {k: s_b[k] for k in METRICS},
                "model": raw.run.get("model"),
            }
        )
        print(
            f"{stem}: generate {gen:.1f} s, boost {boost_total:.2f} s ({100 * boost_total / gen:.1f}%), "
            f"mIoU raw {s_raw['miou']:.3f} -> boosted {s_b['miou']:.3f}, materials {info['materials']}"
            f"/{s_b['n_regions']}",
            flush=True,
        )
    write_report(rows, args)


def _mean(rows: list[dict], key: str, sub: str | None = None) -> float:
    vals = [r[key][sub] if sub else r[key] for r in rows]
    return float(np.mean(vals)) if vals else float("nan")


def write_report(rows: list[dict], args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", {"rows": rows, "args": vars(args)})
    cmd = "python benchmarks/segment/run_stages.py " + " ".join(
        f"{k}"
        for k in [args.dataset, "-o", args.out]
        + (["--raw-dir", args.raw_dir] if args.raw_dir else [])
        + (["--limit", str(args.limit)] if args.limit else [])
        + ["--encoder", args.encoder, "--materials", args.materials]
    )
    lines = [
        "# samiam segment: stage timings and raw vs boosted quality",
        "",
        f"- command: `{cmd}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
        f"- machine: {platform.machine()} Linux, 2-core CPU, no GPU (shared with other jobs while it ran: "
        "absolute times are inflated, the booster fraction less so since both stages ran under the same load)",
        f"- samiam {__version__}, model {rows[0]['model'] if rows else '?'}, encoder {args.encoder}, "
        f"materials {args.materials}",
        f"- images: {len(rows)}",
        "",
        "## Time per stage (mean seconds per image)",
        "",
        "| generate | filter | crops | encode | cluster | merge | booster total | booster / generate |",
        "|---|---|---|---|---|---|---|---|",
        "| "
        + " | ".join(f"{_mean(rows, k):.2f}" for k in ["generate_s", *[f"{s}_s" for s in STAGES], "boost_s"])
        + f" | {100 * _mean(rows, 'boost_fraction'):.1f}% |",
        "",
        "## Quality (means over images; SAM-I-Am metrics, docs/benchmark.md)",
        "",
        "| method | " + " | ".join(METRICS) + " |",
        "|---|" + "---|" * len(METRICS),
    ]
    for method in ("raw", "boosted"):
        lines.append(f"| {method} | " + " | ".join(f"{_mean(rows, method, m):.3f}" for m in METRICS) + " |")
    lines += [
        "",
        f"Materials found = regions in {sum(r['materials_found'] == r['regions'] for r in rows)} "
        f"of {len(rows)} images.",
        "",
        "## Per image",
        "",
        "| image | layout | regions | materials | generate s | booster s | booster % | raw mIoU | boosted mIoU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['image']} | {r['layout']} | {r['regions']} | {r['materials_found']} | {r['generate_s']:.1f} | "
            f"{r['boost_s']:.2f} | {100 * r['boost_fraction']:.1f}% | {r['raw']['miou']:.3f} | "
            f"{r['boosted']['miou']:.3f} |"
        )
    (out / "RESULTS.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
