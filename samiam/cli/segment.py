"""``samiam segment`` and ``samiam boost``: micrographs → one mask per material."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from samiam.cli import options as opt
from samiam.cli.app import app
from samiam.cli.common import fail, guarded


def _echo_model(model) -> None:  # noqa: ANN001
    typer.echo(f"model: {model.name} on {model.device} ({model.reason})", err=True)


@app.command()
def segment(
    inputs: list[Path] = typer.Argument(..., help="Image files and/or folders."),
    outdir: Path = typer.Option(..., "--outdir", "-o", help="Output folder."),
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
    no_boost: bool = typer.Option(False, "--no-boost", help="Write the raw generator masks as the result."),
    mode: str = typer.Option("auto", "--prompts", help="auto | points | boxes (auto: points if the model answers them)."),
    points_per_side: int = typer.Option(32, "--points-per-side", help="Point grid density (point prompts)."),
    crop_n_layers: int = typer.Option(0, "--crop-n-layers", help="SAM AMG crop layers (point prompts)."),
    box_scales: str = typer.Option("0.5,0.25,0.125", "--box-scales", help="Box sides / short image side."),
    box_overlap: float = typer.Option(0.5, "--box-overlap", help="Overlap of neighbouring boxes."),
    pred_iou_thresh: float | None = typer.Option(None, "--pred-iou-thresh", help="Min predicted IoU (default per mode)."),
    stability_thresh: float | None = typer.Option(None, "--stability-thresh", help="Min stability (default per mode)."),
    box_nms_thresh: float = typer.Option(0.7, "--box-nms-thresh", help="NMS IoU between mask boxes."),
    frame: int | None = typer.Option(None, "--frame", help="Frame index for image stacks."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Segment micrographs into one mask per material (SAM masks + semantic booster)."""
    from tqdm import tqdm

    from samiam.batch import segment_files
    from samiam.io.read import expand_inputs
    from samiam.io.write import check_writable_dir
    from samiam.models.build import load_model
    from samiam.pipeline import SegmentConfig

    def prepare():
        cfg = SegmentConfig(
            generator=opt.generator_config(mode, points_per_side, crop_n_layers, box_scales, box_overlap,
                                           pred_iou_thresh, stability_thresh, box_nms_thresh),
            boost=opt.boost_config(materials, encoder, encoder_weights, crop_size, crops_per_mask,
                                   max_materials, seed),
        ).validate()
        files = expand_inputs(inputs)
        if not files:
            fail(f"no image files found in {', '.join(map(str, inputs))}")
        check_writable_dir(outdir)
        loaded = load_model(model, checkpoint, device, verify=not no_verify)
        enc = None
        if not no_boost and encoder != "fft":
            from samiam.boost.encoders import make_encoder

            enc = make_encoder(encoder, encoder_weights, device)
        return cfg, files, loaded, enc

    cfg, files, loaded, enc = guarded(prepare)
    _echo_model(loaded)
    failed = 0
    bar = tqdm(total=len(files), unit="image", disable=quiet or len(files) < 2)
    for res in segment_files(files, outdir, loaded, cfg, boost=not no_boost, frame=frame, encoder=enc):
        bar.update(1)
        tqdm.write(res.summary(), file=sys.stdout if res.status == "ok" else sys.stderr)
        failed += res.status == "failed"
    bar.close()
    ok = len(files) - failed
    typer.echo(f"done: {ok} of {len(files)} images segmented into {outdir}" + (f", {failed} failed" if failed else ""))
    if failed:
        raise typer.Exit(1)


@app.command()
def boost(
    raw_json: Path = typer.Argument(..., help="A <stem>.raw.json written by samiam segment."),
    image: Path = typer.Argument(..., help="The image those masks belong to."),
    outdir: Path = typer.Option(..., "--outdir", "-o", help="Output folder."),
    materials: str = opt.MATERIALS,
    max_materials: int = opt.MAX_MATERIALS,
    encoder: str = opt.ENCODER,
    encoder_weights: str | None = opt.ENCODER_WEIGHTS,
    crop_size: int = opt.CROP_SIZE,
    crops_per_mask: int = opt.CROPS_PER_MASK,
    seed: int = opt.SEED,
    frame: int | None = typer.Option(None, "--frame", help="Frame index for image stacks."),
) -> None:
    """Re-run only the booster on saved raw masks (cheap parameter sweeps)."""
    from samiam.io.read import read_micrograph
    from samiam.io.write import check_writable_dir, read_masks_json, write_segmentation
    from samiam.pipeline import boost_segmentation

    def run():
        cfg = opt.boost_config(materials, encoder, encoder_weights, crop_size, crops_per_mask, max_materials, seed)
        check_writable_dir(outdir)
        raw = read_masks_json(raw_json)
        mic = read_micrograph(image, frame)
        seg = boost_segmentation(raw, mic, cfg)
        stem = raw_json.name.removesuffix(".raw.json").removesuffix(".json")
        write_segmentation(seg, mic.image, outdir, stem)
        return seg

    seg = guarded(run)
    typer.echo(f"{image}: {len(seg.masks)} materials from {seg.run['booster']['raw_masks']} raw masks")
