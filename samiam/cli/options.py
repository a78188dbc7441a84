"""Typer options shared by commands that segment (segment, boost, benchmark)."""

from __future__ import annotations

import typer

from samiam.boost.config import BoostConfig
from samiam.errors import ParameterError
from samiam.generate.config import GeneratorConfig

MODEL = typer.Option("auto", "--model", "-m", help="auto | vit_b | vit_l | vit_h | vit_t | litemedsam | tiny-random")
CHECKPOINT = typer.Option(None, "--checkpoint", help="Weights file for --model (default: cache / packaged).")
DEVICE = typer.Option("auto", "--device", help="auto (cuda > mps > cpu) | cpu | cuda | cuda:N | mps")
NO_VERIFY = typer.Option(False, "--no-verify", help="Skip the SHA-256 check of --checkpoint (fine-tuned weights).")
MATERIALS = typer.Option("auto", "--materials", "-k", help="Number of materials, or auto.")
ENCODER = typer.Option("fft", "--encoder", help="Texture encoder: fft | stats | timm:MODEL_NAME")
ENCODER_WEIGHTS = typer.Option(None, "--encoder-weights", help="Local weights file for a timm encoder.")
CROP_SIZE = typer.Option(60, "--crop-size", help="Side m of texture crops in pixels (paper: 60).")
CROPS_PER_MASK = typer.Option(16, "--crops-per-mask", help="Crops K sampled per mask.")
MAX_MATERIALS = typer.Option(6, "--max-materials", help="Upper bound for --materials auto.")
SEED = typer.Option(0, "--seed", help="Seed for crop sampling and K-means.")
LIBRARY = typer.Option(
    None, "--library", help="Material library (samiam materials learn): name masks by it instead of clustering."
)
FILL = typer.Option(False, "--fill", help="Assign unsegmented pixels whose texture matches a material.")
METHOD = typer.Option(
    "field",
    "--method",
    help="field (dense material field, no SAM: measured best and fastest) | fused (SAM masks + the field) "
    "| crops (the paper's crop booster on SAM masks).",
)
BOX_PLACEMENT = typer.Option(
    "field", "--box-placement", help="field (fine boxes only on field boundaries, with --method fused) | grid."
)

CLUSTER = typer.Option(
    None,
    "--cluster",
    help="Run on Dask (pip install 'samiam[dask]'): local:N (N worker processes), tcp://HOST:PORT "
    "(a running scheduler) or slurm (dask-jobqueue config). See docs/scale-out.md.",
)
CLUSTER_JOBS = typer.Option(None, "--cluster-jobs", help="Slurm jobs to submit with --cluster slurm (default 1).")


def cluster_spec(cluster: str | None, jobs: int | None):  # noqa: ANN201  (a ClusterSpec, or None)
    """Parse ``--cluster``/``--cluster-jobs`` and check Dask is installed (None: run here, serially)."""
    if cluster is None:
        if jobs is not None:
            raise ParameterError("--cluster-jobs needs --cluster slurm")
        return None
    from samiam.distributed.cluster import require_dask
    from samiam.distributed.spec import parse_cluster

    spec = parse_cluster(cluster, jobs)
    require_dask()
    return spec


def parse_materials(value: str) -> int:
    """``auto`` → 0, else a positive int.

    Raises:
        ParameterError: anything else.
    """
    if value.strip().lower() == "auto":
        return 0
    try:
        n = int(value)
    except ValueError:
        raise ParameterError(f"--materials must be a positive integer or 'auto', got '{value}'") from None
    if n < 1:
        raise ParameterError(f"--materials must be >= 1, got {n}")
    return n


def parse_scales(value: str) -> tuple[float, ...]:
    """Comma-separated floats, e.g. ``0.5,0.25``."""
    try:
        return tuple(float(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise ParameterError(f"--box-scales must be comma-separated numbers, got '{value}'") from None


def boost_config(
    materials: str,
    encoder: str,
    encoder_weights: str | None,
    crop_size: int,
    crops_per_mask: int,
    max_materials: int,
    seed: int,
    library: str | None = None,
    fill: bool = False,
    method: str = "field",
) -> BoostConfig:
    """Build and validate a ``BoostConfig`` from CLI values."""
    return BoostConfig(
        method=method,
        library=str(library) if library else None,
        fill=fill,
        materials=parse_materials(materials),
        encoder=encoder,
        encoder_weights=encoder_weights,
        crop_size=crop_size,
        crops_per_mask=crops_per_mask,
        max_materials=max_materials,
        seed=seed,
    ).validate()


def generator_config(
    mode: str,
    points_per_side: int,
    crop_n_layers: int,
    box_scales: str,
    box_overlap: float,
    pred_iou_thresh: float | None,
    stability_thresh: float | None,
    box_nms_thresh: float,
    box_placement: str = "field",
) -> GeneratorConfig:
    """Build and validate a ``GeneratorConfig`` from CLI values (None = the mode's default)."""
    cfg = GeneratorConfig(
        mode=mode,
        points_per_side=points_per_side,
        crop_n_layers=crop_n_layers,
        box_scales=parse_scales(box_scales),
        box_overlap=box_overlap,
        box_placement=box_placement,
        box_nms_thresh=box_nms_thresh,
        pred_iou_thresh=pred_iou_thresh,
        stability_score_thresh=stability_thresh,
    )
    return cfg.validate()
