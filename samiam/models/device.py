"""Choose the torch device: cuda > mps > cpu, or the one the user forces."""

from __future__ import annotations

import torch

from samiam.errors import ParameterError


def pick_device(name: str | None = None) -> torch.device:
    """Return the requested device, or the best available one.

    Args:
        name: ``None``/``"auto"`` for cuda > mps > cpu, else ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``.

    Returns:
        The torch device.

    Raises:
        ParameterError: an unknown or unavailable device was requested.
    """
    if name in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ParameterError(f"unknown device '{name}'; expected auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"device '{name}' requested but CUDA is not available on this machine")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ParameterError(f"device '{name}' requested but MPS is not available on this machine")
    return dev
