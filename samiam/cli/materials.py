"""``samiam materials``: build, extend and inspect few-shot material libraries."""

from __future__ import annotations

from pathlib import Path

import typer

from samiam.cli.app import app
from samiam.cli.common import guarded

materials_app = typer.Typer(
    help="Few-shot named materials: learn a material library from labelled examples.", no_args_is_help=True
)
app.add_typer(materials_app, name="materials")


def _parse_names(text: str, source: str) -> dict[int, str]:
    """``"Ge,SrTiO3,vacuum"`` (labels 1, 2, 3) or ``"1=Ge,3=vacuum"`` → {label: name}."""
    from samiam.errors import ParameterError

    out: dict[int, str] = {}
    parts = [p.strip() for p in text.split(",")]
    for k, part in enumerate(parts, start=1):
        if not part:
            continue
        if "=" in part:
            key, name = part.split("=", 1)
            try:
                out[int(key)] = name.strip()
            except ValueError:
                raise ParameterError(f"--names for {source}: '{part}' is not LABEL=NAME") from None
        else:
            out[k] = part
    if not out:
        raise ParameterError(f"--names for {source}: no names given")
    return out


def _task_image_finder(export: Path, image_root: Path | None):  # noqa: ANN202
    """Find a Label Studio task's image on disk: as given, else by file name in --image-root or next to
    the export (uploads are referenced as ``/data/upload/...``, local files as ``...?d=PATH``)."""
    from samiam.errors import InputError

    def image_for(task: dict) -> str:
        ref = str((task.get("data") or {}).get("image", ""))
        name = Path(ref.split("?d=")[-1]).name
        for cand in (Path(ref), *(d / name for d in (image_root, export.parent) if d is not None)):
            if name and cand.is_file():
                return str(cand)
        raise InputError(
            f"{export}: image '{ref}' of task {task.get('id', '?')} not found; give its folder with --image-root"
        )

    return image_for


def _examples(examples: list[Path], labels: list[Path], names: list[str], image_root: Path | None) -> list:
    """Turn the command's arguments into learning examples."""
    from samiam.errors import InputError, ParameterError
    from samiam.library.learn import (
        example_from_label_map,
        example_from_masks_json,
        examples_from_labelstudio,
        read_labelstudio_export,
    )

    out = []
    label_queue = list(labels)
    name_queue = list(names)
    for path in examples:
        if not path.exists():
            raise InputError(f"{path}: no such file")
        if path.suffix.lower() == ".json":
            tasks = read_labelstudio_export(path)
            if len(tasks) == 1 and "image" in tasks[0] and "data" not in tasks[0]:  # a samiam masks document
                out.append(example_from_masks_json(path))
                continue
            out.extend(examples_from_labelstudio(tasks, _task_image_finder(path, image_root), str(path)))
            continue
        if not label_queue:
            raise ParameterError(f"{path}: an image example needs its label map (--labels LABELS, one per image)")
        if not name_queue:
            raise ParameterError(f"{path}: an image example needs the names of its labels (--names Ge,SrTiO3,...)")
        lab = label_queue.pop(0)
        out.append(example_from_label_map(path, lab, _parse_names(name_queue.pop(0), str(lab)), str(lab)))
    if label_queue or name_queue:
        raise ParameterError(
            f"{len(label_queue)} --labels and {len(name_queue)} --names left over: give one of each per image example"
        )
    return out


@materials_app.command("learn")
def learn(
    examples: list[Path] = typer.Argument(
        ...,
        help="Labelled examples: IMAGE files (with --labels/--names), named <stem>.masks.json files, "
        "or Label Studio JSON exports (brush or polygon annotations).",
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Library file to write (e.g. materials.json)."),
    labels: list[Path] = typer.Option(
        [], "--labels", "-l", help="Label map of each IMAGE example, in order (0 = ignore, k = material k)."
    ),
    names: list[str] = typer.Option(
        [],
        "--names",
        "-n",
        help="Names of each label map's labels, in order: 'Ge,SrTiO3,vacuum' (labels 1,2,3) or '1=Ge,3=vacuum'.",
    ),
    update: bool = typer.Option(False, "--update", help="Add to the library in --output instead of replacing it."),
    image_root: Path | None = typer.Option(
        None, "--image-root", help="Folder holding the images of Label Studio tasks."
    ),
    encoder: str = typer.Option("fft", "--encoder", help="Texture encoder: fft | stats | timm:MODEL_NAME."),
    encoder_weights: str | None = typer.Option(None, "--encoder-weights", help="Weights file for a timm encoder."),
    crop_size: int = typer.Option(60, "--crop-size", help="Crop side in pixels."),
    crops_per_material: int = typer.Option(
        96, "--crops-per-material", help="Crops per material, example and crop-size rung."
    ),
    seed: int = typer.Option(0, "--seed", help="Crop sampling seed."),
    pixel_size: float | None = typer.Option(
        None, "--pixel-size", help="Pixel size in nm of examples whose file does not say it (e.g. PNG)."
    ),
) -> None:
    """Build a material library from labelled examples (one labelled image is enough)."""
    from samiam.errors import ParameterError
    from samiam.io.files import check_writable_dir
    from samiam.library.learn import LearnConfig, learn_examples
    from samiam.library.store import load_library, pixel_size_nm, save_library

    def run() -> None:
        cfg = LearnConfig(
            encoder=encoder,
            encoder_weights=encoder_weights,
            crop_size=crop_size,
            crops_per_material=crops_per_material,
            seed=seed,
        ).validate()
        base = load_library(output) if update and output.exists() else None
        check_writable_dir(output.parent if str(output.parent) else Path("."))
        exs = _examples(examples, labels, names, image_root)
        if pixel_size is not None:
            if pixel_size <= 0:
                raise ParameterError(f"--pixel-size must be > 0 nm, got {pixel_size}")
            for ex in exs:
                if pixel_size_nm(ex.image.pixel_size, ex.image.pixel_unit) is None:
                    ex.image.pixel_size, ex.image.pixel_unit = pixel_size, "nm"
        lib, report = learn_examples(exs, cfg, base)
        save_library(lib, output)
        for a in report.added:
            period = f", period {a['period_px']} px" if a["period_px"] else ""
            typer.echo(f"{a['source']}: {a['material']}: {a['crops']} crops{period}")
        for s in report.skipped:
            typer.echo(f"{s}: region too thin for a crop, skipped", err=True)
        px = f", pixel size {lib.pixel_size_nm:.4g} nm" if lib.pixel_size_nm else ""
        typer.echo(
            f"{output}: {len(lib.materials)} materials ({', '.join(lib.names)}), encoder {lib.encoder}, "
            f"crop {lib.crop_size} px{px}"
        )

    guarded(run)


@materials_app.command("show")
def show(library: Path = typer.Argument(..., help="Library file.")) -> None:
    """List the materials of a library with their crops and statistics."""
    from samiam.library.store import load_library

    def run() -> None:
        lib = load_library(library)
        px = f"{lib.pixel_size_nm:.4g} nm" if lib.pixel_size_nm else "unknown"
        typer.echo(
            f"{library}: encoder {lib.encoder}, crop {lib.crop_size} px, pixel size {px}, updated {lib.updated or '?'}"
        )
        for m in lib.materials.values():
            st = m.stats
            period = f"{st['period_px']} px" if st.get("period_px") else "none"
            typer.echo(
                f"  {m.name}: {len(m.features)} crops, intensity {st.get('intensity_mean', '?')} ± "
                f"{st.get('intensity_std', '?')}, lattice period {period}, from {', '.join(m.sources)}"
            )

    guarded(run)
