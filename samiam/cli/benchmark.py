"""``samiam benchmark``: score segmentation methods on a labelled dataset."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from samiam.cli import options as opt
from samiam.cli.app import app
from samiam.cli.common import guarded
from samiam.errors import ParameterError

SUMMARY_COLUMNS = (
    ("miou", "mIoU"),
    ("boundary_miou", "B-mIoU"),
    ("recall", "recall"),
    ("precision", "prec."),
    ("false_positive", "FP"),
    ("hungarian_miou", "1:1 mIoU"),
    ("n_pred", "masks"),
)


def _fmt(v: object, metric: str) -> str:
    if isinstance(v, float):
        if not math.isfinite(v):
            return "-"
        return f"{v:.1f}" if metric.startswith("n_") else f"{v:.3f}"
    return "-" if v is None else str(v)


@app.command("benchmark")
def benchmark(
    dataset: Path = typer.Argument(
        ...,
        help="Labelled set: folder with images/ + labels/ (+ meta.json), a COCO .json, or labels_merged/.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (results.json, results.md, metrics.png)."),
    methods: str | None = typer.Option(
        None,
        "--methods",
        help="Comma-separated: raw, boosted, boosted-<encoder> (default raw,boosted); with --predictions: "
        "prediction folder names (default: all found).",
    ),
    predictions: Path | None = typer.Option(
        None,
        "--predictions",
        help="Score existing .masks.json files (one subfolder per method, or a flat folder).",
    ),
    limit: int | None = typer.Option(None, "--limit", help="Score only the first N images (sorted by name)."),
    reuse_raw: bool = typer.Option(
        False, "--reuse-raw", help="Reuse OUT/predictions/raw/<stem>.masks.json from an earlier run."
    ),
    weights: str = typer.Option(
        "none",
        "--weights",
        help="Region weights by difficulty: none, paper (easy 10 : hard 1), or easy=10,hard=1.",
    ),
    match_iou: float = typer.Option(0.05, "--match-iou", help="IoU from which a mask is matched to a region."),
    boundary_ratio: float = typer.Option(
        0.02, "--boundary-ratio", help="Boundary band width as a fraction of the image diagonal."
    ),
    model: str = opt.MODEL,
    checkpoint: Path | None = opt.CHECKPOINT,
    device: str = opt.DEVICE,
    no_verify: bool = opt.NO_VERIFY,
    materials: str = opt.MATERIALS,
    max_materials: int = opt.MAX_MATERIALS,
    encoder: str = opt.ENCODER,
    encoder_weights: str | None = opt.ENCODER_WEIGHTS,
    crop_size: int = opt.CROP_SIZE,
    crops_per_mask: int = opt.CROPS_PER_MASK,
    seed: int = opt.SEED,
    method: str = opt.METHOD,
    box_placement: str = opt.BOX_PLACEMENT,
    mode: str = typer.Option(
        "auto", "--prompts", help="auto | points | boxes (auto: points if the model answers them)."
    ),
    points_per_side: int = typer.Option(32, "--points-per-side", help="Point grid density (point prompts)."),
    crop_n_layers: int = typer.Option(0, "--crop-n-layers", help="SAM AMG crop layers (point prompts)."),
    box_scales: str = typer.Option("0.5,0.25,0.125", "--box-scales", help="Box sides / short image side."),
    box_overlap: float = typer.Option(0.5, "--box-overlap", help="Overlap of neighbouring boxes."),
    pred_iou_thresh: float | None = typer.Option(
        None, "--pred-iou-thresh", help="Min predicted IoU (default per mode)."
    ),
    stability_thresh: float | None = typer.Option(None, "--stability-thresh", help="Min stability (default per mode)."),
    box_nms_thresh: float = typer.Option(0.7, "--box-nms-thresh", help="NMS IoU between mask boxes."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no per-image lines."),
    cluster: str | None = opt.CLUSTER,
    cluster_jobs: int | None = opt.CLUSTER_JOBS,
) -> None:
    """Score raw and boosted masks (or existing predictions) against labelled micrographs."""

    def body() -> int:
        from samiam.bench.runner import BenchmarkOptions, parse_methods, parse_weights, run_benchmark

        if limit is not None and limit < 1:
            raise ParameterError(f"--limit must be >= 1, got {limit}")
        if not 0 < match_iou <= 1:
            raise ParameterError(f"--match-iou must be in (0, 1], got {match_iou}")
        if not 0 < boundary_ratio < 1:
            raise ParameterError(f"--boundary-ratio must be in (0, 1), got {boundary_ratio}")
        options = BenchmarkOptions(
            methods=parse_methods(methods),
            predictions=predictions,
            limit=limit,
            model=model,
            checkpoint=str(checkpoint) if checkpoint else None,
            device=device,
            verify=not no_verify,
            generator=opt.generator_config(
                mode,
                points_per_side,
                crop_n_layers,
                box_scales,
                box_overlap,
                pred_iou_thresh,
                stability_thresh,
                box_nms_thresh,
                box_placement,
            ),
            boost=opt.boost_config(
                materials, encoder, encoder_weights, crop_size, crops_per_mask, max_materials, seed, method=method
            ),
            reuse_raw=reuse_raw,
            difficulty_weights=parse_weights(weights),
            match_iou=match_iou,
            boundary_ratio=boundary_ratio,
            progress=not quiet,
        )
        spec = opt.cluster_spec(cluster, cluster_jobs)
        result = run_benchmark(dataset, out, options, echo=(lambda line: None) if quiet else None, cluster=spec)
        summary = result.results["summary"]
        width = max(len("method"), *(len(m) for m in summary))
        typer.echo(f"{'method':<{width}}  " + "  ".join(f"{h:>8}" for _, h in SUMMARY_COLUMNS))
        for name, entry in summary.items():
            values = [_fmt(entry["all"].get(k), k) for k, _ in SUMMARY_COLUMNS]
            typer.echo(f"{name:<{width}}  " + "  ".join(f"{v:>8}" for v in values))
        n = result.results["dataset"]["n_scored"]
        typer.echo(f"scored {n} image(s); wrote {', '.join(str(p) for p in result.files.values())}")
        for problem in result.problems:
            typer.echo(f"error: {problem}", err=True)
        return 2 if result.problems else 0

    code = guarded(body)
    if code:
        raise typer.Exit(code)
