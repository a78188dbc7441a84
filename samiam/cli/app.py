"""Entry point of the ``samiam`` command: assembles the command groups."""

from __future__ import annotations

import typer

from samiam import __version__

app = typer.Typer(
    name="samiam",
    help="Segment atomic-resolution micrographs: SAM masks + a semantic booster, defects, benchmarks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"samiam {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """samiam: unsupervised segmentation of atomic-resolution micrographs."""


def _register() -> None:
    # Each command group lives in its own module and registers itself on ``app``.
    from samiam.cli import benchmark, defects, materials, segment, serve, weights  # noqa: F401


_register()


def main() -> None:
    """Console-script entry point."""
    app()
