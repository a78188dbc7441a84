"""``samiam weights``: list, download and verify model checkpoints."""

from __future__ import annotations

from pathlib import Path

import typer

from samiam.cli.app import app
from samiam.cli.common import guarded

weights_app = typer.Typer(help="List, download and verify SAM checkpoints.", no_args_is_help=True)
app.add_typer(weights_app, name="weights")


@weights_app.command("list")
def list_weights() -> None:
    """Show known models, where their weights are, and whether they are ready."""
    from samiam.models.build import litemedsam_checkpoint
    from samiam.models.download import cached_checkpoint
    from samiam.models.registry import cache_dir, load_manifest

    def run():
        typer.echo(f"cache: {cache_dir()}")
        for spec in load_manifest().values():
            if spec.family == "litemedsam":
                state = f"ready (packaged: {litemedsam_checkpoint()})"
            elif spec.url is None:
                state = "give with --checkpoint"
            else:
                path = cached_checkpoint(spec)
                state = f"ready ({path})" if path else "not downloaded"
            prompts = "points+boxes" if spec.point_prompts else "boxes only"
            typer.echo(f"{spec.name:11s} {spec.family:11s} {prompts:13s} {state}")

    guarded(run)


@weights_app.command("download")
def download(
    name: str = typer.Argument(..., help="vit_b | vit_l | vit_h"),
    url: str | None = typer.Option(None, "--url", help="Mirror URL (the SHA-256 is still checked)."),
) -> None:
    """Download a checkpoint into the cache and verify its SHA-256."""
    from samiam.models.download import download_checkpoint
    from samiam.models.registry import get_spec

    path = guarded(lambda: download_checkpoint(get_spec(name), url=url))
    typer.echo(f"{name}: verified {path}")


@weights_app.command("verify")
def verify(
    path: Path = typer.Argument(..., help="Checkpoint file."),
    name: str = typer.Option(..., "--model", "-m", help="Model the file should be."),
) -> None:
    """Check a checkpoint file against the SHA-256 of a known model."""
    from samiam.models.download import verify_checkpoint
    from samiam.models.registry import get_spec

    digest = guarded(lambda: verify_checkpoint(path, get_spec(name)))
    typer.echo(f"{path}: OK ({name}, sha256 {digest})")
