"""User-facing errors: one class per kind of problem a user can cause.

The CLI turns any ``SamiamError`` into one line on stderr and a non-zero exit code;
everything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class SamiamError(Exception):
    """Base class of every error a user can cause (bad file, bad option, bad model)."""


class InputError(SamiamError):
    """An input file is missing, unreadable, or not an image samiam can segment."""


class ModelError(SamiamError):
    """A model name, checkpoint or weight file is unknown, missing or corrupt."""


class OutputError(SamiamError):
    """An output location cannot be written."""


class ParameterError(SamiamError):
    """An option value is out of its allowed range."""


class ClusterError(SamiamError):
    """A Dask cluster cannot be created or reached, or Dask is not installed."""
