"""Compare texture encoders and the choice of K, booster only, on two sets.

1. stem-sim (../shared): the saved raw masks of the default model (`--raw-dir`, as written by
   run_stages.py), boosted with each encoder, automatic and true number of materials.
2. samiam's own synthetic lattices (samiam.synth.stem, not in ../shared): ideal "fragment" masks
   (grid blocks inside one region each), so only the texture merge is measured.

Usage:
    python benchmarks/segment/encoder_sweep.py --dataset ../shared/data/stem-sim --raw-dir DIR \
        -o benchmarks/segment/ENCODERS.md
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from samiam.bench.datasets import open_dataset
from samiam.bench.metrics import score_image
from samiam.boost.config import BoostConfig
from samiam.boost.pipeline import boost_masks
from samiam.io.read import read_micrograph
from samiam.io.write import read_masks_json
from samiam.masks import MaskRecord
from samiam.synth.stem import grid_fragments, particle_on_support, stack_cross_section

ENCODERS = ("fft", "stats")


def fragments(lab: np.ndarray, block: int = 40) -> list[MaskRecord]:
    """Grid blocks lying inside one region each."""
    return grid_fragments(lab, block)[0]


def synthetic_cases() -> list[tuple[str, np.ndarray, np.ndarray, list[MaskRecord]]]:
    combos = [
        ("square", "hexagonal", "vacuum"),
        ("dumbbell", "rect", "amorphous", "vacuum"),
        ("hexagonal", "square", "dumbbell"),
        ("rect", "hexagonal", "amorphous", "vacuum"),
    ]
    cases = []
    for i, mats in enumerate(combos):
        img, lab, _ = stack_cross_section(512, 512, materials=mats, seed=20 + i)
        cases.append((f"stack{i}", img, lab, fragments(lab)))
    for i, (p, s) in enumerate([("square", "amorphous"), ("hexagonal", "dumbbell"), ("rect", "square")]):
        img, lab, _ = particle_on_support(512, 512, particle=p, support=s, seed=30 + i)
        cases.append((f"particle{i}", img, lab, fragments(lab)))
    return cases


def stem_sim_cases(dataset: str, raw_dir: Path) -> list[tuple[str, np.ndarray, np.ndarray, list[MaskRecord]]]:
    cases = []
    for s in open_dataset(dataset, read_images=False):
        raw_file = raw_dir / f"{s.stem}.raw.json"
        if raw_file.exists():
            cases.append((s.stem, read_micrograph(s.image_path).image, s.labels, read_masks_json(raw_file).masks))
    return cases


def sweep(cases) -> dict[tuple[str, str], tuple[float, float, float]]:
    out = {}
    for enc in ENCODERS:
        for mode in ("auto", "true"):
            res = []
            for _, img, lab, recs in cases:
                k = len([v for v in np.unique(lab) if v > 0])
                cfg = BoostConfig(encoder=enc, materials=k if mode == "true" else 0)
                final, info = boost_masks(img, recs, cfg)
                s = score_image((r.decode() for r in final), lab).summary()
                res.append((s["miou"], s["hungarian_miou"], float(info["materials"] == k)))
            out[(enc, mode)] = tuple(np.mean(res, axis=0))
            print(enc, mode, out[(enc, mode)], flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--raw-dir", required=True)
    ap.add_argument("-o", "--out", default="benchmarks/segment/ENCODERS.md")
    args = ap.parse_args()
    sets = {
        "stem-sim (default model's raw masks)": stem_sim_cases(args.dataset, Path(args.raw_dir)),
        "synthetic lattices (ideal fragments)": synthetic_cases(),
    }
    lines = [
        "# Texture encoders and automatic K (booster only)",
        "",
        f"- command: `python benchmarks/segment/encoder_sweep.py --dataset {args.dataset} --raw-dir {args.raw_dir} "
        f"-o {args.out}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}; machine: {platform.machine()}, 2-core CPU, no GPU",
        "",
        "| set | images | encoder | K | mIoU | 1:1 mIoU | K correct |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, cases in sets.items():
        for (enc, mode), (miou, hung, kok) in sweep(cases).items():
            lines.append(f"| {name} | {len(cases)} | {enc} | {mode} | {miou:.3f} | {hung:.3f} | {kok:.2f} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
