"""Bounded submission: every item once, at most ``window`` in flight, dying workers retried then failed."""

import os

from samiam.distributed.submit import run_bounded
from tests.distributed.conftest import TRIES, wait_until_idle


def _square(x: int) -> int:
    return x * x


def _in_flight(x: int, log_dir: str) -> int:
    """Record how many tasks run at once (a marker file per running task)."""
    import time

    mine = os.path.join(log_dir, f"{x}.running")
    open(mine, "w").close()
    n = len([p for p in os.listdir(log_dir) if p.endswith(".running")])
    time.sleep(0.05)
    os.replace(mine, os.path.join(log_dir, f"{x}.done"))
    return n


def _die_on(x: int, bad: int) -> int:
    if x == bad:
        os._exit(3)  # the worker process dies, as when a node is lost
    return x + 100


def _raise_on(x: int, bad: int) -> int:
    if x == bad:
        raise ValueError(f"item {x} is bad")
    return x


def test_every_item_once_in_any_order(dask_client):
    outcomes = list(run_bounded(dask_client, _square, list(range(40)), window=3))
    assert sorted(o.index for o in outcomes) == list(range(40))
    assert all(o.value == o.index**2 and not o.error for o in outcomes)


def test_window_bounds_the_tasks_in_flight(dask_client, tmp_path):
    outcomes = list(run_bounded(dask_client, _in_flight, list(range(8)), str(tmp_path), window=1))
    assert [o.value for o in outcomes] == [1] * 8  # never two at once, although there are two workers
    outcomes = list(run_bounded(dask_client, _in_flight, list(range(8)), str(tmp_path / "x"), window=1))
    assert all(o.error.startswith("FileNotFoundError") for o in outcomes)  # a task that raises: its error line


def test_task_error_is_recorded_and_the_rest_goes_on(dask_client):
    outcomes = {o.index: o for o in run_bounded(dask_client, _raise_on, list(range(6)), 2)}
    assert outcomes[2].error == "ValueError: item 2 is bad" and outcomes[2].value is None
    assert [outcomes[i].value for i in (0, 1, 3, 4, 5)] == [0, 1, 3, 4, 5]


def test_item_that_kills_every_worker_fails_after_the_tries_and_the_rest_goes_on(dask_client):
    outcomes = {o.index: o for o in run_bounded(dask_client, _die_on, list(range(6)), 4, window=6)}
    assert sorted(outcomes) == list(range(6))
    assert "KilledWorker" in outcomes[4].error and f"{TRIES} time(s)" in outcomes[4].error
    assert [outcomes[i].value for i in (0, 1, 2, 3, 5)] == [100, 101, 102, 103, 105]
    wait_until_idle(dask_client)  # the nannies restarted both workers
