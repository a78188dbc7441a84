"""Regenerate the bundled example micrograph (examples/synthetic_stack.png) and its labels.

Usage: python scripts/make_example.py
"""

from pathlib import Path

import cv2
import numpy as np

from samiam.synth.stem import stack_cross_section

OUT = Path(__file__).resolve().parents[1] / "examples"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    img, lab, names = stack_cross_section(
        512,
        512,
        materials=("square", "dumbbell", "amorphous", "vacuum"),
        fractions=(0.35, 0.25, 0.2, 0.2),
        seed=11,
    )
    cv2.imwrite(str(OUT / "synthetic_stack.png"), (img * 255).astype(np.uint8))
    cv2.imwrite(str(OUT / "synthetic_stack.labels.png"), lab)
    (OUT / "synthetic_stack.names.txt").write_text("\n".join(f"{k + 1} {n}" for k, n in enumerate(names)) + "\n")
    print(f"wrote {OUT / 'synthetic_stack.png'} ({', '.join(names)})")


if __name__ == "__main__":
    main()
