"""Client side: one task per item, submitted in a bounded window, outcomes yielded as they finish."""

from __future__ import annotations

import itertools
import signal
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

MIN_WINDOW = 32  # tasks in flight when the cluster has few (or not yet any) workers
PER_THREAD = 4  # tasks in flight per worker thread: keeps workers fed between round trips


@dataclass
class Outcome:
    """What became of one item: its task's return value, or why it has none.

    Attributes:
        index: position of the item in the submitted sequence.
        value: the task's return value (None when it failed).
        error: empty, or one line saying why the task failed (it raised, its workers died).
    """

    index: int
    value: Any = None
    error: str = ""


def default_window(client: Any) -> int:
    """Tasks kept in flight: ``PER_THREAD`` per worker thread now present, at least ``MIN_WINDOW``."""
    try:
        threads = sum(client.nthreads().values())
    except Exception:  # noqa: BLE001  (a scheduler that cannot say: the floor is enough)
        threads = 0
    return max(MIN_WINDOW, PER_THREAD * threads)


@contextmanager
def _ctrl_c_after() -> Iterator[None]:
    """Hold a Ctrl-C that comes during a short client call until it returns.

    ``distributed`` logs a spurious error when interrupted inside one of its synchronous calls;
    the waits between results (where a run spends its time) stay interruptible at once.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def _error_line(exc: BaseException) -> str:
    from distributed.scheduler import KilledWorker

    if isinstance(exc, KilledWorker):
        tries = getattr(exc, "allowed_failures", 0) + 1
        return f"the worker running it died, {tries} time(s) on {tries} worker(s) (KilledWorker)"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _outcome(index: int, future: Any, value: Any) -> Outcome:
    """The task's outcome from ``as_completed(with_results=True, raise_errors=False)``."""
    if future.status == "finished":
        return Outcome(index, value=value)
    if future.status == "error":
        exc = value[1] if isinstance(value, tuple) else value  # (type, exception, traceback)
        return Outcome(index, error=_error_line(exc) if isinstance(exc, BaseException) else str(exc))
    return Outcome(index, error=f"task {future.status} on the cluster")


def _call(item: Any, fn: Callable[..., Any], args: tuple) -> Any:
    return fn(item, *args)


def run_bounded(
    client: Any,
    fn: Callable[..., Any],
    items: Iterable[Any],
    *args: Any,
    window: int | None = None,
    name: str = "samiam",
) -> Iterator[Outcome]:
    """Run ``fn(item, *args)`` for every item on the cluster, at most ``window`` at a time.

    The client holds only the window's futures, so its memory does not grow with the number of
    items. Each item's outcome is yielded once, in the order tasks finish. A task whose worker
    dies is rerun by the scheduler on another worker (up to its ``allowed-failures``), then
    reported as failed. Closing the iterator (Ctrl-C, an error in the caller) cancels the tasks
    still in flight; finished ones are unaffected.

    Args:
        client: a ``distributed.Client``.
        fn: the task (importable on the workers).
        items: one task per item, read lazily as the window frees (a generator is fine).
        args: further arguments, the same for every task.
        window: tasks in flight (default ``default_window``).
        name: prefix of the task keys (a fresh token per call keeps runs apart on a shared scheduler).

    Yields:
        One ``Outcome`` per item.
    """
    from distributed import as_completed

    window = window or default_window(client)
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    token = uuid.uuid4().hex[:12]
    todo = iter(enumerate(items))
    pending: dict[str, tuple[int, Any]] = {}
    done = as_completed(with_results=True, raise_errors=False)  # results fetched in the background
    chunk = max(1, window // 4)  # submit in chunks: one message for many tasks

    def refill() -> None:
        room = window - len(pending)
        if room < chunk and pending:
            return
        batch = list(itertools.islice(todo, room))
        if not batch:
            return
        keys = [f"{name}-{token}-{i}" for i, _ in batch]
        with _ctrl_c_after():
            futures = client.map(_call, [it for _, it in batch], fn=fn, args=args, key=keys, pure=False)
        for (i, _), future in zip(batch, futures, strict=True):
            pending[future.key] = (i, future)
        done.update(futures)

    try:
        refill()
        for ready in done.batches():
            for future, value in ready:
                index, _ = pending.pop(future.key)
                outcome = _outcome(index, future, value)
                future.release()
                yield outcome
            refill()
    finally:
        if pending:
            with _ctrl_c_after():
                client.cancel([f for _, f in pending.values()])
