"""``samiam serve labelstudio``: run the Label Studio ML backend."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

import typer

from samiam.cli import options as opt
from samiam.cli.app import app
from samiam.cli.common import guarded
from samiam.errors import ParameterError

serve_app = typer.Typer(help="Serve samiam to other tools (Label Studio ML backend).", no_args_is_help=True)
app.add_typer(serve_app, name="serve")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@serve_app.command("labelstudio")
@opt.shared_options(
    opt.MODEL_OPTIONS,
    opt.BOOST_OPTIONS,
    opt.NAMING_OPTIONS,
    opt.GENERATOR_OPTIONS,
    help={"materials": "Materials in automatic pre-annotation: a number, or auto (at most the label count)."},
)
def labelstudio(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0: all)."),
    port: int = typer.Option(9090, "--port", help="TCP port."),
    label_studio_url: str | None = typer.Option(
        None,
        "--label-studio-url",
        envvar="LABEL_STUDIO_URL",
        help="Label Studio's address, to fetch uploaded images (env LABEL_STUDIO_URL).",
    ),
    api_key: str | None = typer.Option(
        None,
        "--api-key",
        envvar="LABEL_STUDIO_API_KEY",
        show_default=False,
        help="Label Studio access token (env LABEL_STUDIO_API_KEY).",
    ),
    local_files_root: Path | None = typer.Option(
        None,
        "--local-files-root",
        envvar="LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT",
        help="Read local-files storage from this folder (env LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT).",
    ),
    embedding_cache: int = typer.Option(8, "--embedding-cache", help="Image embeddings kept for clicks."),
    threads: int = typer.Option(8, "--threads", help="Requests processed at once."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log every request."),
    defect_model: Path | None = typer.Option(
        None,
        "--defect-model",
        help="STM defect mode: model folder from 'samiam defects train'; automatic predictions of a project with "
        "RectangleLabels are defect rectangles, named after the rectangles labelled so far.",
        show_default=False,
    ),
    *,
    opts: opt.OptionValues,
) -> None:
    """Run the Label Studio ML backend: SAM masks for clicks/boxes, one region per material otherwise."""
    from samiam.labelstudio.app import create_app, serve
    from samiam.labelstudio.handlers import LabelStudioBackend
    from samiam.labelstudio.images import ImageResolver
    from samiam.models.build import load_model

    def prepare():
        if not 0 < port < 65536:
            raise ParameterError(f"--port must be in 1..65535, got {port}")
        if threads < 1 or embedding_cache < 1:
            raise ParameterError("--threads and --embedding-cache must be >= 1")
        cfg = opt.segment_config(opts)
        resolver = ImageResolver(url=label_studio_url, api_key=api_key, local_files_root=local_files_root)
        loaded = load_model(opts.model, opts.checkpoint, opts.device, verify=not opts.no_verify)
        namer = None
        if defect_model is not None:
            from samiam.defects import load_model as load_defect_model
            from samiam.labelstudio.defects import DefectNamer

            namer = DefectNamer(load_defect_model(defect_model))
        backend = LabelStudioBackend(loaded, cfg, resolver, embedding_cache=embedding_cache, defects=namer)
        return backend, create_app(backend)

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(message)s")
    logging.getLogger("samiam.labelstudio").setLevel(logging.INFO if verbose else logging.WARNING)
    backend, wsgi = guarded(prepare)
    m = backend.model
    prompts = "points and boxes" if m.point_prompts else "boxes only"
    typer.echo(f"model: {m.name} on {m.device} ({m.reason}); interactive prompts: {prompts}", err=True)
    typer.echo(f"Label Studio ML backend on http://{host}:{port} (model version {backend.model_version})", err=True)
    if not label_studio_url:
        typer.echo(
            "note: LABEL_STUDIO_URL is not set; uploaded images are fetched from the host Label Studio "
            "announces in /setup",
            err=True,
        )
    if not _is_loopback(host):
        typer.echo(
            f"warning: listening on {host}: anyone who can reach this port can use the model and make "
            "the backend read image files on this machine",
            err=True,
        )
    try:
        serve(wsgi, host=host, port=port, threads=threads)
    except OSError as exc:
        typer.echo(f"error: cannot listen on {host}:{port} ({exc.strerror or exc})", err=True)
        raise typer.Exit(2) from None


@serve_app.command("labelstudio-config")
def labelstudio_config(
    labels: str = typer.Option(
        "substrate,film,amorphous,vacuum",
        "--labels",
        "-l",
        help="Comma-separated material names, in the order automatic pre-annotation uses them.",
    ),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the XML here instead of stdout."),
) -> None:
    """Print a Label Studio labelling config for micrographs (brush masks + SAM smart tools)."""
    from samiam.io.files import atomic_write
    from samiam.labelstudio.config import micrograph_label_config

    def run() -> str:
        try:
            xml = micrograph_label_config([v for v in labels.split(",")])
        except ValueError as exc:
            raise ParameterError(f"--labels: {exc}") from None
        if output is not None:
            atomic_write(output, lambda tmp: tmp.write_text(xml))
        return xml

    xml = guarded(run)
    if output is None:
        typer.echo(xml, nl=False)
