#!/usr/bin/env python
"""Latency of the Label Studio backend over HTTP on loopback: first click, later clicks, automatic mode.

Builds the backend in-process, serves it on 127.0.0.1 and times ``/predict`` requests the way
Label Studio sends them, on a synthetic two-lattice micrograph (samiam's STEM simulator):

* first prompt on an image (image read + image encoder + decoder),
* later prompts on the same image (decoder only: the embedding is cached), median of N,
* optionally automatic pre-annotation (boosted segmentation, one region per material).

Run: ``.venv/bin/python scripts/labelstudio_latency.py --model litemedsam --size 1024 [--automatic]``.
Prints one markdown table row per run.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def post(url: str, doc: dict) -> tuple[float, dict]:
    req = urllib.request.Request(
        url, data=json.dumps(doc).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=3600) as resp:
        body = json.loads(resp.read())
    return time.perf_counter() - t0, body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="litemedsam")
    parser.add_argument("--size", type=int, default=1024, help="side of the synthetic micrograph (px)")
    parser.add_argument("--clicks", type=int, default=10, help="later prompts to time")
    parser.add_argument("--automatic", action="store_true", help="also time automatic pre-annotation")
    args = parser.parse_args()

    import cv2
    import numpy as np

    from samiam.labelstudio.app import BackgroundServer, create_app
    from samiam.labelstudio.config import micrograph_label_config
    from samiam.labelstudio.handlers import LabelStudioBackend
    from samiam.labelstudio.images import ImageResolver
    from samiam.models.build import load_model
    from samiam.synth.stem import stack_cross_section

    img, _, _ = stack_cross_section(args.size, args.size, materials=("square", "hexagonal"), seed=0)
    tmp = tempfile.TemporaryDirectory(prefix="samiam-ls-bench-")
    path = Path(tmp.name) / "mic.png"
    cv2.imwrite(str(path), np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8))
    model = load_model(args.model, device="cpu")
    backend = LabelStudioBackend(model, resolver=ImageResolver())
    config = micrograph_label_config(("film", "substrate"))

    def payload(context: list | None) -> dict:
        return {
            "tasks": [{"id": 1, "data": {"image": str(path)}}],
            "label_config": config,
            "params": {"context": {"result": context} if context else None},
        }

    def box(i: int) -> list:
        x = 10 + 3 * (i % 10)
        return [
            {
                "type": "rectanglelabels",
                "to_name": "image",
                "from_name": "box",
                "value": {"x": x, "y": 50, "width": 40, "height": 30, "rectanglelabels": ["film"]},
            }
        ]

    with BackgroundServer(create_app(backend)) as srv:
        first, _ = post(srv.url + "/predict", payload(box(0)))
        later = [post(srv.url + "/predict", payload(box(i + 1)))[0] for i in range(args.clicks)]
        auto = post(srv.url + "/predict", payload(None))[0] if args.automatic else None
    tmp.cleanup()
    assert backend.interactive.encoder_runs == 1
    row = (
        f"| {args.model} | {args.size}x{args.size} | {first:.2f} | {statistics.median(later):.3f} | "
        f"{'' if auto is None else f'{auto:.1f}'} | {platform.machine()} CPU, torch threads "
        f"{__import__('torch').get_num_threads()} |"
    )
    print("| model | image | first box (s) | later box, median (s) | automatic (s) | machine |")
    print("|---|---|---|---|---|---|")
    print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
