"""One two-process LocalCluster shared by the distributed tests (starting one costs seconds)."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("distributed", reason="the dask extra is not installed (pip install 'samiam[dask]')")

TRIES = 2  # a task survives one dying worker; the second death marks it failed


@pytest.fixture(scope="session")
def dask_client():
    from distributed import Client

    from samiam.distributed.cluster import local_cluster

    cluster = local_cluster(2, tries=TRIES, dashboard=":0")
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


def _executing(dask_worker) -> int:  # noqa: ANN001  (runs on each worker's event loop)
    return dask_worker.state.executing_count


def wait_until_idle(client, n_workers: int = 2, timeout_s: float = 60.0) -> None:
    """Wait until ``n_workers`` workers are up and none runs a task (cancelled tasks run to their end)."""
    client.wait_for_workers(n_workers, timeout=timeout_s)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(client.run(_executing).values()) and not any(client.processing().values()):
            return
        time.sleep(0.1)
    raise TimeoutError("workers still busy")
