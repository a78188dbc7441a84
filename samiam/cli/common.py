"""Helpers shared by CLI commands: error reporting and exit codes."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

import typer

from samiam.errors import SamiamError

T = TypeVar("T")


def fail(message: str, code: int = 2) -> None:
    """Print one error line to stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def guarded(fn: Callable[[], T]) -> T:
    """Run ``fn``; turn a ``SamiamError`` into one line on stderr and exit code 2.

    Args:
        fn: the command body.

    Returns:
        Whatever ``fn`` returns.
    """
    try:
        return fn()
    except SamiamError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    raise AssertionError("unreachable")
