"""Segment many files: one result per file, errors recorded per file, never fatal to the batch."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from samiam.errors import SamiamError
from samiam.io.read import read_micrograph
from samiam.io.write import write_segmentation
from samiam.models.build import LoadedModel
from samiam.pipeline import SegmentConfig, segment_micrograph


@dataclass
class ImageResult:
    """Outcome for one input file."""

    path: str
    status: str  # ok | failed | skipped
    masks: int = 0
    materials: int = 0
    seconds: float = 0.0
    error: str = ""
    outputs: dict[str, str] | None = None

    def summary(self) -> str:
        """One line for the terminal."""
        if self.status == "ok":
            return f"{self.path}: {self.masks} masks, {self.materials} materials, {self.seconds:.1f} s"
        if self.status == "skipped":
            return f"{self.path}: skipped (outputs exist)"
        return f"{self.path}: FAILED: {self.error}"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def output_stem(path: Path, frame: int | None = None) -> str:
    """Stem used for a file's outputs (``name`` or ``name_f3`` for a stack frame)."""
    return path.stem if frame is None else f"{path.stem}_f{frame}"


def segment_files(
    paths: list[Path],
    outdir: Path,
    model: LoadedModel,
    cfg: SegmentConfig,
    *,
    boost: bool = True,
    frame: int | None = None,
    encoder: Any = None,
) -> Iterator[ImageResult]:
    """Segment each file and write its outputs; yield one result per file.

    Args:
        paths: input files.
        outdir: output folder (must be writable).
        model: the loaded model.
        cfg: generator and booster settings.
        boost: run the booster (else the raw masks are the result).
        frame: frame for stacks.
        encoder: prepared texture encoder, shared by all images.

    Yields:
        One ``ImageResult`` per input, in order. User-caused errors (bad file...) are recorded
        and the batch goes on; bugs propagate.
    """
    for path in paths:
        t = time.perf_counter()
        try:
            mic = read_micrograph(path, frame)
            raw, seg = segment_micrograph(mic, model, cfg, boost=boost, encoder=encoder)
            seg.run.setdefault("timings", {})["total"] = round(time.perf_counter() - t, 3)
            outs = write_segmentation(seg, mic.image, outdir, output_stem(path, frame), raw=raw if boost else None)
            if not boost:  # --no-boost: the raw masks are the result, and also the .raw.json
                from samiam.io.write import write_json

                outs["raw"] = write_json(outdir / f"{output_stem(path, frame)}.raw.json", raw.to_json())
            materials = len({m.material for m in seg.masks if m.material is not None})
            yield ImageResult(
                str(path), "ok", masks=len(seg.masks), materials=materials,
                seconds=time.perf_counter() - t, outputs={k: str(v) for k, v in outs.items()},
            )
        except SamiamError as exc:
            yield ImageResult(str(path), "failed", seconds=time.perf_counter() - t, error=str(exc))
