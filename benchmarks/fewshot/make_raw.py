"""Generate (once) and cache the raw LiteMedSAM box-grid masks of every stem-sim image.

The few-shot benchmark only re-runs the cheap stages (filter, naming, fill), so the model's
masks are made once per image and kept as ``<stem>.raw.json`` in a cache folder.

Usage (from the repository root)::

    .venv/bin/python benchmarks/fewshot/make_raw.py [--cache /tmp/fewshot_raw] [--reuse /tmp/rawcache]

Settings: box grid (scales 0.5/0.25/0.125, overlap 0.5), IoU/stability thresholds 0, NMS off
(the geometric filter removes duplicates). Existing files in ``--reuse`` made with the same
settings are copied instead of regenerated.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATASET = REPO / ".." / "shared" / "data" / "stem-sim"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default="/tmp/fewshot_raw", help="folder for <stem>.raw.json")
    ap.add_argument("--reuse", default="/tmp/rawcache", help="folder of already generated raw masks")
    ap.add_argument("--dataset", default=str(DATASET))
    args = ap.parse_args()

    import samiam.models  # noqa: F401  (torchvision shim first)
    from samiam.generate.config import GeneratorConfig
    from samiam.io.read import read_micrograph
    from samiam.models.build import load_model
    from samiam.pipeline import SegmentConfig, segment_micrograph

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    cfg = SegmentConfig(generator=GeneratorConfig(mode="boxes", box_nms_thresh=1.0))
    model = None
    for img in sorted((Path(args.dataset) / "images").glob("*.png")):
        out = cache / f"{img.stem}.raw.json"
        if out.exists():
            continue
        reuse = Path(args.reuse) / out.name
        if reuse.exists():
            shutil.copy(reuse, out)
            print(f"{img.stem}: copied from {reuse}", flush=True)
            continue
        if model is None:
            model = load_model("litemedsam", device="cpu")
        t = time.perf_counter()
        raw, _ = segment_micrograph(read_micrograph(img), model, cfg, boost=False)
        tmp = out.with_suffix(".part")
        tmp.write_text(json.dumps(raw.to_json()))
        tmp.rename(out)
        print(f"{img.stem}: {len(raw.masks)} masks in {time.perf_counter() - t:.0f} s", flush=True)


if __name__ == "__main__":
    main()
