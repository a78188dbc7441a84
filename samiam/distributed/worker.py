"""Worker side: what one worker process keeps between tasks (models, encoders) and which device it uses."""

from __future__ import annotations

import re
import signal
import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

_LOADED: dict[Hashable, Any] = {}
_LOCK = threading.Lock()


def once_per_worker(key: Hashable, build: Callable[[], T]) -> T:
    """``build()`` the first time ``key`` is asked for in this process, then the same object.

    Models and encoders are loaded once per worker process, not once per image.

    Args:
        key: what identifies the object (e.g. model name, checkpoint, device).
        build: makes it.

    Returns:
        The object.
    """
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = build()
        return _LOADED[key]


def worker_rank() -> int:
    """This worker's number: LocalCluster names workers 0, 1, ...; jobqueue ``<job>-<k>`` ends in k."""
    try:
        from distributed import get_worker

        name = get_worker().name
    except (ImportError, ValueError):
        return 0
    if isinstance(name, int):
        return name
    m = re.search(r"(\d+)$", str(name))
    return int(m.group(1)) if m else 0


def worker_device(requested: str | None) -> str:
    """The device this worker uses: the requested one, or for ``auto`` its share of the GPUs.

    ``auto`` with one GPU (or none) stays ``auto`` (cuda > mps > cpu); with several GPUs the
    workers on one machine take them round-robin by ``worker_rank``.

    Args:
        requested: ``--device`` as given.

    Returns:
        A device name for ``pick_device``.
    """
    if requested not in (None, "", "auto"):
        return str(requested)
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return f"cuda:{worker_rank() % n}" if n > 1 else "auto"


def dask_setup(worker: Any) -> None:
    """Preload hook of local worker processes: ignore Ctrl-C, which the client handles.

    A terminal's Ctrl-C reaches every process of the group; the client then cancels the run and
    closes the cluster, so workers need not (and should not print tracebacks of their own).
    """
    import logging

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    # a task cancelled when the client stops the run is expected, not worth a warning per image
    logging.getLogger("distributed.worker.state_machine").setLevel(logging.ERROR)
