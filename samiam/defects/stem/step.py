"""The CLI's STEM steps: pick each file's modality, get the STEM model (load or learn), analyse one file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from samiam.defects.modality import STEM_SUFFIXES, STM_SUFFIXES, choose_modality
from samiam.defects.stem.model import StemModel, load_stem_model, model_kind
from samiam.defects.stem.pipeline import StemParams
from samiam.errors import InputError, ParameterError


def file_modalities(files: list[Path], requested: str, model: Path | None) -> list[tuple[str, str]]:
    """(modality, reason) of every file; files whose suffix does not decide are read for metadata.

    Raises:
        InputError: auto cannot tell a file's modality.
    """
    from samiam.io.read import read_micrograph

    hint = model_kind(model) if model is not None else None
    out = []
    for f in files:  # one entry per file
        meta = None
        decided = requested != "auto" or f.suffix.lower() in STEM_SUFFIXES + STM_SUFFIXES or "_mtrx" in f.suffix
        if not decided:
            try:
                meta = read_micrograph(f).meta
            except InputError:
                meta = None  # unreadable: the analysis reports it
        out.append(choose_modality(f, meta, requested, hint))
    return out


def stem_model_for(
    files: list[Path], model: Path | None, params: StemParams, echo: Callable[[str], None] = print
) -> StemModel:
    """The STEM model: loaded from ``model`` (unless it is an STM model), else learned from the STEM files.

    Raises:
        ModelError: ``model`` is not a readable STEM model folder.
    """
    from samiam.io.read import read_micrograph

    if model is not None and model_kind(model) != "stm":
        return load_stem_model(model)
    readable = []
    for f in files:  # one per file
        try:
            readable.append(read_micrograph(f))
        except InputError as exc:
            echo(f"error: {exc}")
    learned = _train_skipping(readable, params, echo)
    echo(
        f"stem: classes learned from {len(readable)} image(s), {learned.config.get('n_defects', 0)} defects: "
        f"{learned.classes.n_classes} classes ({', '.join(learned.classes.names)})"
    )
    return learned


def _train_skipping(images: list, params: StemParams, echo: Callable[[str], None]) -> StemModel:
    """Train on the images that show a lattice; the others are reported (and fail again at analysis)."""
    from samiam.defects.stem.pipeline import detect_stem
    from samiam.defects.stem.run import train_stem_model

    ok = []
    for mg in images:  # one per image
        try:
            detect_stem(mg.raw, mg.source, params)
            ok.append(mg)
        except InputError:
            continue
    return train_stem_model(ok, params) if ok else train_stem_model_empty(params)


def train_stem_model_empty(params: StemParams) -> StemModel:
    """A one-class model for a run where no image showed a lattice (every file then reports its error)."""
    import numpy as np

    from samiam.defects.stem.classes import fit_classes

    return StemModel(fit_classes(np.zeros((0, 2)), np.zeros(0, int)), params, {"n_defects": 0})


def analyse_stem_file(path: Path, model: StemModel, out: Path) -> tuple[bool, str]:
    """Analyse one STEM image and write its outputs: (analysed, the line for the terminal)."""
    from samiam.defects.stem.outputs import write_stem_outputs
    from samiam.defects.stem.run import analyse_stem
    from samiam.io.read import read_micrograph

    try:
        result = analyse_stem(read_micrograph(path), model, learned_here=model.path is None)
        write_stem_outputs(result, out)
    except InputError as exc:
        return False, f"error: {exc}"
    counts: dict[str, int] = {}
    for inst in result.instances:
        name = f"c{inst.cls}"
        counts[name] = counts.get(name, 0) + 1
    per_class = ", ".join(f"{c}:{n}" for c, n in sorted(counts.items())) or "none"
    t = result.record["timings_s"].get("total", 0.0)
    return True, (
        f"{path.name}: {len(result.instances)} STEM defects ({per_class}), "
        f"{result.record['n_columns']} columns at {result.record['column_spacing_px']:.2f} px, "
        f"{t:.2f} s -> {out / (result.stem + '.defects.json')}"
    )


def plan_run(
    files: list[Path],
    requested: str,
    model: Path | None,
    on_cluster: bool,
    seed: int = 0,
    echo: Callable[[str], None] = print,
) -> tuple[list[str], StemModel | None]:
    """Each file's modality (said once per reason) and the STEM model when any file is STEM.

    Raises:
        InputError: auto cannot tell a file's modality.
        ParameterError: STM files without ``--model``, or STEM files with ``--cluster``.
    """
    mods = file_modalities(files, requested, model)
    said: dict[tuple[str, str], int] = {}
    for kind, why in mods:
        said[(kind, why)] = said.get((kind, why), 0) + 1
    for (kind, why), n in said.items():
        echo(f"modality: {kind} for {n} file(s) ({why})")
    kinds = [k for k, _ in mods]
    stm = [f.name for f, k in zip(files, kinds, strict=True) if k == "stm"]
    stem = [f for f, k in zip(files, kinds, strict=True) if k == "stem"]
    if stm and model is None:
        raise ParameterError(
            f"STM images need --model, a folder from 'samiam defects train' ({', '.join(stm[:3])}"
            f"{', ...' if len(stm) > 3 else ''}); STEM images (--modality stem) learn without one"
        )
    if stem and on_cluster:
        raise ParameterError("--cluster runs STM images only for now; run the STEM images without --cluster")
    return kinds, (stem_model_for(stem, model, StemParams(seed=seed), echo) if stem else None)


def train_stem_folder(files: list[Path], out: Path, seed: int = 0, max_classes: int = 6, mixed: bool = False) -> str:
    """``samiam defects train --modality stem``: learn the classes of these images, write the model folder.

    Args:
        files: the STEM images.
        out: model folder to write.
        seed: K-means seed.
        max_classes: largest number of classes tried.
        mixed: some inputs are STM images (refused: one model is STEM or STM).

    Returns:
        The line for the terminal.

    Raises:
        ParameterError: ``mixed``.
    """
    if mixed:
        raise ParameterError("expected STEM or STM training images, got both; train one model per modality")
    from samiam.defects.stem.model import save_stem_model
    from samiam.defects.stem.run import train_stem_model
    from samiam.io.files import check_writable_dir
    from samiam.io.read import read_micrograph

    params = StemParams(seed=seed, max_classes=max(2, max_classes))
    check_writable_dir(out)
    model = train_stem_model([read_micrograph(f) for f in files], params)
    save_stem_model(model, out)
    return (
        f"{out}: STEM model from {len(files)} image(s), {model.config.get('n_defects', 0)} defects, "
        f"{model.classes.n_classes} classes ({', '.join(model.classes.names)})"
    )
