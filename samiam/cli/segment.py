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
@opt.shared_options(
    opt.MODEL_OPTIONS,
    opt.BOOST_OPTIONS,
    opt.NAMING_OPTIONS,
    opt.GENERATOR_OPTIONS,
    opt.TILE_OPTIONS,
    opt.CLUSTER_OPTIONS,
)
def segment(
    inputs: list[Path] = typer.Argument(..., help="Image files and/or folders."),
    outdir: Path = typer.Option(..., "--outdir", "-o", help="Output folder."),
    no_boost: bool = typer.Option(False, "--no-boost", help="Write the raw generator masks as the result."),
    frame: int | None = typer.Option(None, "--frame", help="Frame index for image stacks."),
    all_frames: bool = typer.Option(False, "--all-frames", help="Segment every frame of stacks (<stem>_f<N>.*)."),
    cache_dir: Path | None = typer.Option(None, "--cache", help="Cache folder (default ~/.cache/samiam/features)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the embedding cache."),
    resume: bool = typer.Option(False, "--resume", help="Skip images with complete outputs of the same parameters."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    *,
    opts: opt.OptionValues,
) -> None:
    """Segment micrographs into one mask per material (SAM masks + semantic booster)."""
    import contextlib

    from tqdm import tqdm

    from samiam.batch import BatchRun, plan_jobs
    from samiam.cache import FeatureCache
    from samiam.generate.tiling import AUTO_TILE_FACTOR, check_halo
    from samiam.io.files import check_writable_dir
    from samiam.io.read import expand_inputs
    from samiam.models.build import load_model

    def prepare():
        if frame is not None and all_frames:
            fail("--frame and --all-frames exclude each other")
        if cache_dir is not None and no_cache:
            fail("--cache and --no-cache exclude each other")
        spec = opt.cluster_spec(opts.cluster, opts.cluster_jobs)
        cfg = opt.segment_config(opts)
        files = expand_inputs(inputs)
        if not files:
            fail(f"no image files found in {', '.join(map(str, inputs))}")
        check_writable_dir(outdir)
        if opts.library is not None:
            from samiam.pipeline import load_library_cached

            load_library_cached(str(opts.library))  # a bad library is one error before any image
        cache = None if no_cache else FeatureCache(cache_dir).check()
        # with --cluster the client only checks the model (on cpu); each worker loads it on its device
        loaded = load_model(opts.model, opts.checkpoint, "cpu" if spec else opts.device, verify=not opts.no_verify)
        if cfg.generator.tile is None:  # auto tile: its size is known only now
            check_halo(AUTO_TILE_FACTOR * loaded.image_size, cfg.generator.halo)
        enc = None
        if not no_boost and opts.encoder != "fft" and spec is None:
            from samiam.boost.encoders import make_encoder

            enc = make_encoder(opts.encoder, opts.encoder_weights, opts.device)
        return cfg, plan_jobs(files, frame, all_frames), loaded, enc, cache, spec

    cfg, jobs, loaded, enc, cache, spec = guarded(prepare)
    if spec is None:
        _echo_model(loaded)
    else:
        typer.echo(f"model: {loaded.name} ({loaded.reason}); each worker loads it on --device {opts.device}", err=True)
    batch = BatchRun(outdir, loaded, cfg, boost=not no_boost, encoder=enc, cache=cache, resume=resume)
    failed = skipped = 0
    with batch:  # on leaving: the run's temporary records file is deleted
        with contextlib.ExitStack() as stack:
            results = batch.run(jobs)
            if spec is not None:
                from samiam.distributed.segment import settings_for, start_cluster_run

                settings = settings_for(
                    batch,
                    device=opts.device,
                    verify=not opts.no_verify,
                    encoder=opts.encoder,
                    encoder_weights=opts.encoder_weights,
                )
                echo = lambda line: typer.echo(line, err=True)  # noqa: E731
                results = guarded(lambda: start_cluster_run(stack, spec, batch, jobs, settings, echo=echo))
            bar = tqdm(total=len(jobs), unit="image", disable=quiet or len(jobs) < 2)
            try:
                for res in results:
                    bar.update(1)
                    tqdm.write(res.summary(), file=sys.stderr if res.status == "failed" else sys.stdout)
                    failed += res.status == "failed"
                    skipped += res.status == "skipped"
            except KeyboardInterrupt:
                bar.close()
                results.close()  # cancels what is in flight, writes the manifest
                done = batch.recorded
                typer.echo(
                    f"interrupted: {done} of {len(jobs)} images finished in {outdir};"
                    f" run manifest {batch.manifest_path}; rerun with --resume to do the rest",
                    err=True,
                )
                raise typer.Exit(130) from None
            bar.close()
        if len(jobs) > 1:
            for line in batch.summary_lines():  # read back from the records, one line at a time
                typer.echo(line)
    ok = len(jobs) - failed - skipped
    typer.echo(
        f"done: {ok} of {len(jobs)} images segmented into {outdir}"
        + (f", {skipped} skipped (complete)" if skipped else "")
        + (f", {failed} failed" if failed else "")
        + f"; run manifest {batch.manifest_path}"
    )
    if failed:
        raise typer.Exit(1)


@app.command()
@opt.shared_options(opt.BOOST_OPTIONS, opt.NAMING_OPTIONS)
def boost(
    raw_json: Path = typer.Argument(..., help="A <stem>.raw.json written by samiam segment."),
    image: Path = typer.Argument(..., help="The image those masks belong to."),
    outdir: Path = typer.Option(..., "--outdir", "-o", help="Output folder."),
    frame: int | None = typer.Option(None, "--frame", help="Frame index for image stacks."),
    *,
    opts: opt.OptionValues,
) -> None:
    """Re-run only the booster on saved raw masks (cheap parameter sweeps)."""
    from samiam.io.files import check_writable_dir
    from samiam.io.read import read_micrograph
    from samiam.io.write import OUTPUT_SUFFIXES, read_masks_json, write_segmentation
    from samiam.pipeline import boost_segmentation

    def run():
        cfg = opt.boost_config(opts)
        check_writable_dir(outdir)
        raw = read_masks_json(raw_json)
        mic = read_micrograph(image, frame)
        seg = boost_segmentation(raw, mic, cfg)
        stem = raw_json.name.removesuffix(OUTPUT_SUFFIXES["raw"]).removesuffix(".json")
        write_segmentation(seg, mic.image, outdir, stem)
        return seg

    seg = guarded(run)
    typer.echo(f"{image}: {len(seg.masks)} materials from {seg.run['booster']['raw_masks']} raw masks")
