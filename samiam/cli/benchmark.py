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
@opt.shared_options(opt.MODEL_OPTIONS, opt.BOOST_OPTIONS, opt.GENERATOR_OPTIONS, opt.CLUSTER_OPTIONS)
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
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no per-image lines."),
    *,
    opts: opt.OptionValues,
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
        if predictions is not None and opts.cluster is not None:
            raise ParameterError("--cluster runs the model on workers; --predictions only scores files, run it without")
        options = BenchmarkOptions(
            methods=parse_methods(methods),
            predictions=predictions,
            limit=limit,
            model=opts.model,
            checkpoint=str(opts.checkpoint) if opts.checkpoint else None,
            device=opts.device,
            verify=not opts.no_verify,
            generator=opt.generator_config(opts),
            boost=opt.boost_config(opts),
            reuse_raw=reuse_raw,
            difficulty_weights=parse_weights(weights),
            match_iou=match_iou,
            boundary_ratio=boundary_ratio,
            progress=not quiet,
        )
        spec = opt.cluster_spec(opts.cluster, opts.cluster_jobs)
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
