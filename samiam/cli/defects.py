"""``samiam defects train|run``: unsupervised defect maps, masks and classes for STM images."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

import typer

from samiam.cli import options as opt
from samiam.cli.app import app
from samiam.cli.common import guarded
from samiam.errors import InputError, ParameterError, SamiamError

defects_app = typer.Typer(
    name="defects",
    help="STM defects: train autoencoders, then map, mask and classify; STEM (--modality stem): no model needed.",
    no_args_is_help=True,
)
app.add_typer(defects_app, name="defects")


def _params(
    stride: int,
    error_threshold: float,
    error_sigma: float,
    no_steps: bool,
    seed: int,
    device: str,
    blob_threshold: float | None = None,
    error_mode: bool = False,
):
    from samiam.defects import DefectParams
    from samiam.defects.blobs import BlobParams
    from samiam.defects.maps import MapParams
    from samiam.defects.mask import MaskParams

    params = DefectParams(
        maps=MapParams(stride=stride, error_sigma=error_sigma),
        mask=MaskParams(error_threshold=error_threshold),
        blobs=BlobParams(
            enabled=not error_mode, threshold=BlobParams.threshold if blob_threshold is None else blob_threshold
        ),
        detect_steps=not no_steps,
        seed=seed,
        device=None if device == "auto" else device,
    )
    params.mask.check()
    params.maps.check(32)
    return params


def _inputs(images: list[Path]) -> list[Path]:
    from samiam.defects.readers import expand_stm_inputs

    files = expand_stm_inputs(images)
    if not files:
        raise InputError(f"{', '.join(map(str, images))}: no image files found")
    return files


STRIDE = typer.Option(
    16, "--stride", help="Step (px) between the 32x32 sliding windows of the AE1 maps; 8 is finer and ~4x slower."
)
BLOB_THRESHOLD = typer.Option(
    None,
    "--blob-threshold",
    help="Blob detector threshold (robust sigmas of the response over 4 scales; default 2.75, "
    "BlobParams.threshold, chosen by cross-validation).",
    show_default=False,
)
ERROR_MODE = typer.Option(
    False, "--error-mode", help="Detect defects from the AE1 error mask (previous method) instead of the blob detector."
)
THRESHOLD = typer.Option(
    3.0, "--error-threshold", help="Defect when the error exceeds the median by this many robust sigmas."
)
SIGMA = typer.Option(3.0, "--error-sigma", help="Gaussian smoothing (px) of the reconstruction-error map.")
NO_STEPS = typer.Option(False, "--no-steps", help="Do not detect/level step edges (flat single-terrace images).")
SEED = typer.Option(0, "--seed", help="Seed of every random choice (training, K-means, mixtures).")
DEVICE = typer.Option("auto", "--device", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps.")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress bars.")
THREADS = typer.Option(
    0, "--threads", help="CPU threads for torch (0 = torch's default; 1 is fastest on busy machines)."
)
MODALITY = typer.Option(
    "auto",
    "--modality",
    help="auto (stem for .dm3/.dm4/.emd or HAADF/ADF metadata, stm for .sxm/MATRIX/.npy), stem or stm.",
)


CLASSES = typer.Option(
    None,
    "--classes",
    help="Few-shot named classes: a CSV (label,x,y,width,height,filename; filename relative to the CSV) or a "
    "Label Studio JSON export of rectangle labels, one or a few boxes per class.",
    show_default=False,
)


def _prototypes(classes: Path | None, files: list[Path], model, params):  # noqa: ANN001, ANN202
    """Named-class prototypes from ``--classes`` (None without it)."""
    if classes is None:
        return None
    from samiam.defects.naming import check_examples, read_examples
    from samiam.defects.pipeline import learn_prototypes

    examples = read_examples(classes)
    check_examples(examples, files, str(classes))
    return learn_prototypes(examples, model, params, str(classes))


def _set_threads(threads: int) -> None:
    if threads < 0:
        raise ParameterError(f"--threads must be >= 0, got {threads}")
    if threads:
        import torch

        torch.set_num_threads(threads)


@defects_app.command("train")
def train(
    images: list[Path] = typer.Argument(..., help="STM images or folders (.npy, .sxm, *.Z_mtrx, PNG/JPEG/TIFF)."),
    out: Path = typer.Option(..., "--out", "-o", help="Model folder to write."),
    epochs: int = typer.Option(30, "--epochs", help="Maximum epochs of each autoencoder (early stopping)."),
    patches_per_image: int = typer.Option(1000, "--patches-per-image", help="Random AE1 training patches per image."),
    max_classes: int = typer.Option(8, "--max-classes", help="Largest number of defect classes tried (BIC)."),
    stride: int = STRIDE,
    error_threshold: float = THRESHOLD,
    error_sigma: float = SIGMA,
    no_steps: bool = NO_STEPS,
    seed: int = SEED,
    device: str = DEVICE,
    quiet: bool = QUIET,
    threads: int = THREADS,
    modality: str = MODALITY,
) -> None:
    """Train AE1 (maps), AE2 (defect patches) and the class mixture on a set of images (STEM: the classes)."""

    def body() -> None:
        from samiam.defects.stem.step import file_modalities, train_stem_folder

        files = _inputs(images)
        kinds = {k for k, _ in file_modalities(files, modality, None)}
        if "stem" in kinds:
            typer.echo(train_stem_folder(files, out, seed, max_classes, mixed="stm" in kinds))
            return
        from samiam.defects import TrainParams, train_defect_model
        from samiam.defects.readers import read_stm
        from samiam.defects.train import TrainConfig
        from samiam.io.files import check_writable_dir

        _set_threads(threads)
        params = _params(stride, error_threshold, error_sigma, no_steps, seed, device)
        if epochs < 1:
            raise ParameterError(f"--epochs must be >= 1, got {epochs}")
        tp = TrainParams(
            ae1=TrainConfig(epochs=epochs),
            ae2=TrainConfig(epochs=epochs, batch_size=128),
            patches_per_image=patches_per_image,
            max_classes=max_classes,
        )
        tp.check()
        files = _inputs(images)
        check_writable_dir(out)
        mgs = [read_stm(f) for f in files]
        t0 = time.perf_counter()
        model = train_defect_model(mgs, out, params, tp, progress=not quiet)
        chosen = model.classes.selection.get("chosen", {})
        typer.echo(
            f"{out}: trained on {len(mgs)} image(s) in {time.perf_counter() - t0:.1f} s; "
            f"{model.classes.selection.get('n_defects', 0)} training defects, {model.classes.n_classes} classes "
            f"({chosen.get('covariance_type')} covariance, BIC {chosen.get('bic', float('nan')):.1f})"
        )

    guarded(body)


def analyse_file(  # noqa: ANN001
    path: Path, model, params, out: Path, modality: str = "stm", prototypes=None
) -> tuple[bool, str]:
    """Analyse one image and write its outputs (the per-image step, serial or on a cluster worker).

    ``modality`` "stem": ``model`` is a ``StemModel`` and ``params`` is unused.
    ``prototypes`` (``pipeline.learn_prototypes``, from ``--classes``) names every STM defect.

    Returns:
        (analysed, the line for the terminal); an unreadable image is (False, its error line).
    """
    if modality == "stem":
        from samiam.defects.stem.step import analyse_stem_file

        return analyse_stem_file(path, model, out)
    from samiam.defects import run_defects
    from samiam.defects.outputs import write_defect_outputs
    from samiam.defects.readers import read_stm

    try:
        result = run_defects(read_stm(path), model, params, prototypes)
        write_defect_outputs(result, out, model.classes.n_classes)
    except InputError as exc:
        return False, f"error: {exc}"
    counts: dict[int, int] = {}
    for inst in result.detection.instances:
        key = inst.name if inst.name is not None else f"c{inst.cls}"
        counts[key] = counts.get(key, 0) + 1
    per_class = ", ".join(f"{c}:{n}" for c, n in sorted(counts.items())) or "none"
    return True, (
        f"{path.name}: {len(result.detection.instances)} defects ({per_class}), "
        f"{result.detection.prepared.steps.n_steps} step(s) excluded, "
        f"{result.timings['total']:.2f} s -> {out / (result.stem + '.defects.json')}"
    )


@defects_app.command("run")
def run(
    images: list[Path] = typer.Argument(..., help="STM images or folders (.npy, .sxm, *.Z_mtrx, PNG/JPEG/TIFF)."),
    model: Path | None = typer.Option(
        None, "--model", "-m", help="Model folder from 'samiam defects train' (needed for STM; STEM learns if absent)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    blob_threshold: float | None = BLOB_THRESHOLD,
    error_mode: bool = ERROR_MODE,
    stride: int = STRIDE,
    error_threshold: float = THRESHOLD,
    error_sigma: float = SIGMA,
    no_steps: bool = NO_STEPS,
    seed: int = SEED,
    device: str = DEVICE,
    quiet: bool = QUIET,
    threads: int = THREADS,
    cluster: str | None = opt.CLUSTER,
    cluster_jobs: int | None = opt.CLUSTER_JOBS,
    modality: str = MODALITY,
    classes: Path | None = CLASSES,
) -> None:
    """Write defect instances, classes, overlay, character and error maps for every image."""

    def body() -> None:
        from tqdm import tqdm

        from samiam.defects import load_model
        from samiam.io.files import check_writable_dir

        _set_threads(threads)
        params = _params(stride, error_threshold, error_sigma, no_steps, seed, device, blob_threshold, error_mode)
        spec = opt.cluster_spec(cluster, cluster_jobs)
        files = _inputs(images)
        from samiam.defects.stem.step import plan_run

        kinds, stem_model = plan_run(files, modality, model, spec is not None, seed, lambda s: typer.echo(s, err=True))
        loaded = load_model(model) if "stm" in kinds else None
        if classes is not None and loaded is None:
            raise ParameterError("--classes names STM defects; it needs STM images and their --model")
        protos = _prototypes(classes, [f for f, k in zip(files, kinds, strict=True) if k == "stm"], loaded, params)
        check_writable_dir(out)
        if spec is not None:
            from samiam.distributed.defects import run_defects_on_cluster

            lines = run_defects_on_cluster(
                spec, files, model, params, out, echo=lambda s: typer.echo(s, err=True), prototypes=protos
            )
        else:
            lines = (
                analyse_file(f, stem_model if k == "stem" else loaded, params, out, k, protos)
                for f, k in zip(files, kinds, strict=True)
            )
        failed = 0
        bar = tqdm(lines, desc="images", unit="image", total=len(files), disable=quiet or len(files) < 2, leave=False)
        with contextlib.closing(lines):  # on Ctrl-C: a cluster run cancels what is in flight
            for ok, line in bar:
                failed += not ok
                tqdm.write(line, file=sys.stdout if ok else sys.stderr)
        if failed:
            raise SamiamError(f"{failed} of {len(files)} image(s) could not be analysed (see above)")

    guarded(body)
