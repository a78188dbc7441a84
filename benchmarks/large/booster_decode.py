"""Measure a proposed booster change on the 4096 px benchmark's raw masks: decode masks box-only.

On a 4096 x 4096 image the booster's island step decodes every mask at full size (16 MB each) and
re-encodes cleaned masks from a full-size Fortran copy; that, not the texture clustering, is most of
the booster's time (and so of a cached re-run). The proposal: ``MaskRecord.decode_box`` decodes only
the mask's box straight from the RLE (``samiam.generate.tiling.decode_rle_box``) and
``remove_islands`` encodes the cleaned box in place (``encode_rle_window``). This script runs
``boost_masks`` on the saved raw masks with the code as it is and with the proposal (patched in
this process only), checks that the results are identical, and records both timings in
``results.json`` / ``RESULTS.md`` (section "Proposed booster change").

Usage (after ``run_large.py``, from the repository root)::

    .venv/bin/python benchmarks/large/booster_decode.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
WORK = HERE.parents[1] / "benchmarks" / "_work" / "large"


def proposed_decode_box(self):  # noqa: ANN001, ANN201
    from samiam.generate.tiling import decode_rle_box

    if self._box is None:
        self._box = decode_rle_box(self.rle, self.bbox)
    return self._box


def proposed_remove_islands(record, min_frac):  # noqa: ANN001, ANN201
    """``samiam.boost.geometry.remove_islands`` with the cleaned box encoded in place."""
    from samiam.generate.tiling import encode_rle_window
    from samiam.masks import MaskRecord

    box = record.decode_box()
    n, lab, stats, _ = cv2.connectedComponentsWithStats(box.astype(np.uint8), connectivity=8)
    if n <= 2:
        return record, 0
    areas = stats[1:, cv2.CC_STAT_AREA]
    small = np.flatnonzero(areas < min_frac * areas.sum()) + 1
    if small.size == 0 or small.size == n - 1:
        return record, 0
    x, y, _, _ = record.bbox
    kept = box & ~np.isin(lab, small)
    rows, cols = np.flatnonzero(kept.any(axis=1)), np.flatnonzero(kept.any(axis=0))
    bbox = [x + int(cols[0]), y + int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]
    height, width = record.shape
    cleaned = MaskRecord(rle=encode_rle_window(kept, y, x, height, width), bbox=bbox, area=int(kept.sum()),
                         score=record.score, material=record.material, extra=record.extra)
    return cleaned, int(small.size)


def timed_boost(image: np.ndarray, raw_json: Path) -> tuple[float, dict, list]:
    from samiam.boost.config import BoostConfig
    from samiam.boost.pipeline import boost_masks
    from samiam.io.write import read_masks_json

    records = read_masks_json(raw_json).masks
    t = time.perf_counter()
    final, info = boost_masks(image, records, BoostConfig())
    return time.perf_counter() - t, info, final


def main() -> None:
    import os

    from run_large import write_markdown

    import samiam.boost.geometry as geometry
    import samiam.masks as masks
    from samiam.io.read import read_micrograph

    raw_json = WORK / "first" / "cross_section_4096.raw.json"
    image = read_micrograph(WORK / "cross_section_4096.png").image
    t_now, info_now, final_now = timed_boost(image, raw_json)
    masks.MaskRecord.decode_box = proposed_decode_box
    geometry.remove_islands = proposed_remove_islands
    t_new, info_new, final_new = timed_boost(image, raw_json)
    same = [r.rle for r in final_now] == [r.rle for r in final_new]
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "load": os.getloadavg(), "raw_masks": info_now["raw_masks"],
        "current_s": round(t_now, 1), "current_timings": info_now["timings"],
        "proposed_s": round(t_new, 1), "proposed_timings": info_new["timings"], "identical": same,
    }
    path = HERE / "results.json"
    results = json.loads(path.read_text())
    results["booster_proposal"] = result
    path.write_text(json.dumps(results, indent=1))
    write_markdown(results)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(HERE))
    main()
