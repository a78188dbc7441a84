"""Regenerate the README figure from real runs on the bundled example (docs/figures/example_overlay.jpg).

Runs ``samiam segment`` on examples/synthetic_stack.png with the default (``--method field``) and with
the paper's crop booster (``--method crops --box-placement grid``), scores both against the example's
labels and puts the image and the two overlays side by side.

Usage: .venv/bin/python scripts/make_figure.py
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from samiam.bench.metrics import score_image
from samiam.io.write import read_masks_json

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "synthetic_stack.png"
LABELS = REPO / "examples" / "synthetic_stack.labels.png"
OUT = REPO / "docs" / "figures" / "example_overlay.jpg"
RUNS = {"default (field)": [], "crops (the paper's booster)": ["--method", "crops", "--box-placement", "grid"]}


def main() -> None:
    gt = cv2.imread(str(LABELS), cv2.IMREAD_UNCHANGED)
    panels = [cv2.cvtColor(cv2.imread(str(EXAMPLE), cv2.IMREAD_GRAYSCALE), cv2.COLOR_GRAY2BGR)]
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, extra) in enumerate(RUNS.items()):
            out = Path(tmp) / str(i)
            cmd = [str(REPO / ".venv" / "bin" / "samiam"), "segment", str(EXAMPLE), "-o", str(out), "-q", *extra]
            subprocess.run(cmd, check=True)
            seg = read_masks_json(out / "synthetic_stack.masks.json")
            s = score_image([m.decode() for m in seg.masks], gt).summary()
            print(f"{name}: {len(seg.masks)} materials, mIoU {s['miou']:.3f}, boundary mIoU {s['boundary_miou']:.3f}")
            panels.append(cv2.imread(str(out / "synthetic_stack.overlay.png")))
    h = min(p.shape[0] for p in panels)
    row = np.concatenate([cv2.resize(p, (p.shape[1] * h // p.shape[0], h)) for p in panels], 1)
    cv2.imwrite(str(OUT), row, [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
