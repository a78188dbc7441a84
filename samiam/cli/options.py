"""Typer options shared by the commands that segment (segment, boost, benchmark, serve labelstudio).

Each option is declared once, as an ``inspect.Parameter`` whose default is the matching config
field's default (``GeneratorConfig``, ``BoostConfig``), so ``--help`` and the API cannot disagree.
``shared_options`` adds groups of them to a command, which receives their values as one
``OptionValues``; ``generator_config``/``boost_config``/``segment_config`` build the configs from it.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import typer

from samiam.boost.config import BoostConfig
from samiam.errors import ParameterError
from samiam.generate.config import GeneratorConfig


def config_default(cls: type, name: str) -> Any:  # noqa: ANN401  (any field's value)
    """The default of field ``name`` of dataclass ``cls``."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f.default_factory() if f.default is dataclasses.MISSING else f.default
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def _gen(name: str) -> Any:  # noqa: ANN401
    return config_default(GeneratorConfig, name)


def _boost(name: str) -> Any:  # noqa: ANN401
    return config_default(BoostConfig, name)


def materials_text(materials: int) -> str:
    """``BoostConfig.materials`` as ``--materials`` writes it (0 → ``auto``)."""
    return "auto" if materials == 0 else str(materials)


def tile_text(tile: int | None) -> str:
    """``GeneratorConfig.tile`` as ``--tile`` writes it (None → ``auto``, 0 → ``off``)."""
    return "auto" if tile is None else "off" if tile == 0 else str(tile)


def _param(name: str, annotation: Any, default: Any, *decls: str, **kwargs: Any) -> inspect.Parameter:  # noqa: ANN401
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=typer.Option(default, *decls, **kwargs), annotation=annotation
    )


MODEL_OPTIONS = (
    _param(
        "model", str, "auto", "--model", "-m", help="auto | vit_b | vit_l | vit_h | vit_t | litemedsam | tiny-random"
    ),
    _param(
        "checkpoint", Path | None, None, "--checkpoint", help="Weights file for --model (default: cache / packaged)."
    ),
    _param("device", str, "auto", "--device", help="auto (cuda > mps > cpu) | cpu | cuda | cuda:N | mps"),
    _param(
        "no_verify", bool, False, "--no-verify", help="Skip the SHA-256 check of --checkpoint (fine-tuned weights)."
    ),
)
BOOST_OPTIONS = (
    _param(
        "materials", str, materials_text(_boost("materials")), "--materials", "-k", help="Number of materials, or auto."
    ),
    _param("max_materials", int, _boost("max_materials"), "--max-materials", help="Upper bound for --materials auto."),
    _param("encoder", str, _boost("encoder"), "--encoder", help="Texture encoder: fft | stats | timm:MODEL_NAME"),
    _param(
        "encoder_weights",
        str | None,
        _boost("encoder_weights"),
        "--encoder-weights",
        help="Local weights file for a timm encoder.",
    ),
    _param("crop_size", int, _boost("crop_size"), "--crop-size", help="Side m of texture crops in pixels (paper: 60)."),
    _param("crops_per_mask", int, _boost("crops_per_mask"), "--crops-per-mask", help="Crops K sampled per mask."),
    _param("seed", int, _boost("seed"), "--seed", help="Seed for crop sampling and K-means."),
    _param(
        "method",
        str,
        _boost("method"),
        "--method",
        help="field (dense material field, no SAM: measured best and fastest) | fused (SAM masks + the field) "
        "| crops (the paper's crop booster on SAM masks).",
    ),
)
NAMING_OPTIONS = (
    _param(
        "library",
        Path | None,
        _boost("library"),
        "--library",
        help="Material library (samiam materials learn): name masks by it instead of clustering.",
    ),
    _param("fill", bool, _boost("fill"), "--fill", help="Assign unsegmented pixels whose texture matches a material."),
)
GENERATOR_OPTIONS = (
    _param(
        "box_placement",
        str,
        _gen("box_placement"),
        "--box-placement",
        help="field (fine boxes only on field boundaries, with --method fused) | grid.",
    ),
    _param(
        "mode", str, _gen("mode"), "--prompts", help="auto | points | boxes (auto: points if the model answers them)."
    ),
    _param(
        "points_per_side", int, _gen("points_per_side"), "--points-per-side", help="Point grid density (point prompts)."
    ),
    _param("crop_n_layers", int, _gen("crop_n_layers"), "--crop-n-layers", help="SAM AMG crop layers (point prompts)."),
    _param(
        "box_scales",
        str,
        ",".join(str(s) for s in _gen("box_scales")),
        "--box-scales",
        help="Box sides / short image side.",
    ),
    _param("box_overlap", float, _gen("box_overlap"), "--box-overlap", help="Overlap of neighbouring boxes."),
    _param(
        "pred_iou_thresh",
        float | None,
        _gen("pred_iou_thresh"),
        "--pred-iou-thresh",
        help="Min predicted IoU (default per mode).",
    ),
    _param(
        "stability_thresh",
        float | None,
        _gen("stability_score_thresh"),
        "--stability-thresh",
        help="Min stability (default per mode).",
    ),
    _param("box_nms_thresh", float, _gen("box_nms_thresh"), "--box-nms-thresh", help="NMS IoU between mask boxes."),
)
TILE_OPTIONS = (
    _param("tile", str, tile_text(_gen("tile")), "--tile", help="Tile side in px: auto (8x model input) | off | N."),
    _param("halo", int, _gen("halo"), "--halo", help="Context around each tile's core in px (tiles overlap by 2x)."),
)
CLUSTER_OPTIONS = (
    _param(
        "cluster",
        str | None,
        None,
        "--cluster",
        help="Run on Dask (pip install 'samiam[dask]'): local:N (N worker processes), tcp://HOST:PORT "
        "(a running scheduler) or slurm (dask-jobqueue config). See docs/scale-out.md.",
    ),
    _param(
        "cluster_jobs",
        int | None,
        None,
        "--cluster-jobs",
        help="Slurm jobs to submit with --cluster slurm (default 1).",
    ),
)
CLUSTER = CLUSTER_OPTIONS[0].default  # for commands that declare them as parameters (samiam defects run)
CLUSTER_JOBS = CLUSTER_OPTIONS[1].default


class OptionValues(SimpleNamespace):
    """The values of a command's shared options, by parameter name (``values.model``)."""


def shared_options(
    *groups: tuple[inspect.Parameter, ...], help: dict[str, str] | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the options of ``groups`` to a typer command, after its own parameters.

    The command takes a keyword parameter ``opts`` and receives the shared values in it as one
    ``OptionValues``.

    Args:
        groups: option groups (``MODEL_OPTIONS``, ``BOOST_OPTIONS``, ...).
        help: replacement help texts by parameter name, for a command whose option means a little more.

    Returns:
        The decorator.
    """
    shared = [p for group in groups for p in group]
    for name, text in (help or {}).items():
        i = next(i for i, p in enumerate(shared) if p.name == name)
        option = copy.copy(shared[i].default)
        option.help = text
        shared[i] = shared[i].replace(default=option)

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        own = [p for p in inspect.signature(fn, eval_str=True).parameters.values() if p.name != "opts"]
        params = own + shared
        names = [p.name for p in shared]

        @functools.wraps(fn)
        def command(**kwargs: Any) -> Any:  # noqa: ANN401
            values = OptionValues(**{name: kwargs.pop(name) for name in names})
            return fn(opts=values, **kwargs)

        command.__signature__ = inspect.Signature(params, return_annotation=None)
        command.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
        return command

    return decorate


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


def boost_config(values: OptionValues) -> BoostConfig:
    """Build and validate a ``BoostConfig`` from the values of ``BOOST_OPTIONS`` (and ``NAMING_OPTIONS``)."""
    library = getattr(values, "library", None)
    return BoostConfig(
        method=values.method,
        library=str(library) if library else None,
        fill=getattr(values, "fill", _boost("fill")),
        materials=parse_materials(values.materials),
        encoder=values.encoder,
        encoder_weights=values.encoder_weights,
        crop_size=values.crop_size,
        crops_per_mask=values.crops_per_mask,
        max_materials=values.max_materials,
        seed=values.seed,
    ).validate()


def generator_config(values: OptionValues) -> GeneratorConfig:
    """Build and validate a ``GeneratorConfig`` from the values of ``GENERATOR_OPTIONS`` (and ``TILE_OPTIONS``)."""
    from samiam.generate.tiling import parse_tile

    return GeneratorConfig(
        mode=values.mode,
        points_per_side=values.points_per_side,
        crop_n_layers=values.crop_n_layers,
        box_scales=parse_scales(values.box_scales),
        box_overlap=values.box_overlap,
        box_placement=values.box_placement,
        box_nms_thresh=values.box_nms_thresh,
        pred_iou_thresh=values.pred_iou_thresh,
        stability_score_thresh=values.stability_thresh,
        tile=parse_tile(getattr(values, "tile", tile_text(_gen("tile")))),
        halo=getattr(values, "halo", _gen("halo")),
    ).validate()


def segment_config(values: OptionValues):  # noqa: ANN201  (a SegmentConfig; samiam.pipeline imports late)
    """Build and validate a ``SegmentConfig`` (generator + booster) from a command's shared option values."""
    from samiam.pipeline import SegmentConfig

    return SegmentConfig(generator=generator_config(values), boost=boost_config(values)).validate()
