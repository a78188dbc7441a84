"""Create or reach the Dask cluster a ``ClusterSpec`` names, and open a client on it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from samiam.distributed.spec import ADDRESS, LOCAL, SLURM, ClusterSpec
from samiam.errors import ClusterError

DEFAULT_TRIES = 3  # runs of one image on workers that died under it before it is marked failed
CONNECT_TIMEOUT_S = 10.0


def scheduler_config(tries: int) -> dict[str, Any]:
    """Scheduler settings of the clusters made here.

    ``allowed-failures``: a task whose worker dies is rerun elsewhere, ``tries`` runs in all.
    ``worker-saturation`` 1.0: a worker holds only the tasks it runs (one per thread), so an
    image queued behind one that kills its worker is not counted as a suspect with it.
    """
    return {"distributed.scheduler.allowed-failures": tries - 1, "distributed.scheduler.worker-saturation": 1.0}


SLURM_CONFIG_HELP = (
    "set jobqueue.slurm.cores and jobqueue.slurm.memory (and queue, walltime, job_extra_directives...) in "
    "~/.config/dask/jobqueue.yaml or as DASK_JOBQUEUE__SLURM__CORES=... environment variables"
)


def require_dask() -> None:
    """Check that the optional Dask extra is installed.

    Raises:
        ClusterError: with the install command.
    """
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ClusterError("running on a Dask cluster needs Dask: pip install 'samiam[dask]'") from None


def _threads_env(workers: int) -> dict[str, str]:
    """Thread limits for local worker processes: the cores shared out, unless the user set them."""
    per = str(max(1, (os.cpu_count() or 1) // workers))
    return {k: os.environ.get(k, per) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def local_cluster(workers: int, *, tries: int = DEFAULT_TRIES, dashboard: str = ":8787") -> Any:
    """A ``LocalCluster`` of ``workers`` processes with one thread each (torch holds the GIL).

    Args:
        workers: worker processes.
        tries: runs of a task on workers that die under it before it is marked failed.
        dashboard: dashboard address (``:8787``; a busy port falls back to a free one; ``:0`` any free one).

    Returns:
        The cluster (close it, or use it as a context manager).
    """
    import dask
    from distributed import LocalCluster

    with dask.config.set(scheduler_config(tries)):
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=dashboard,
            env=_threads_env(workers),
            preload=["samiam.distributed.worker"],  # its dask_setup: workers leave Ctrl-C to the client
        )


def slurm_cluster(*, tries: int = DEFAULT_TRIES, **overrides: Any) -> Any:
    """A dask-jobqueue ``SLURMCluster`` configured from the jobqueue config file or environment.

    Where the config leaves ``processes`` unset, each job runs one single-threaded worker process
    per core (torch holds the GIL, so threads would not run images in parallel).

    Args:
        tries: runs of a task on workers that die under it before it is marked failed.
        overrides: keyword arguments for ``SLURMCluster`` (normally none: the config decides).

    Returns:
        The cluster; no job is submitted until it is scaled.

    Raises:
        ClusterError: dask-jobqueue missing, or the config lacks cores/memory.
    """
    import dask

    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        raise ClusterError("a slurm cluster needs dask-jobqueue: pip install 'samiam[dask]'") from None
    if dask.config.get("jobqueue.slurm.processes", None) is None and "processes" not in overrides:
        cores = overrides.get("cores", dask.config.get("jobqueue.slurm.cores", None))
        if cores:  # one single-threaded worker process per core: torch holds the GIL
            overrides["processes"] = int(cores)
    with dask.config.set(scheduler_config(tries)):
        try:
            return SLURMCluster(**overrides)
        except ValueError as exc:
            first = str(exc).splitlines()[0]
            raise ClusterError(f"slurm cluster: {first.rstrip(',:')}; {SLURM_CONFIG_HELP}") from None


def connect(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> Any:
    """A client on a running scheduler.

    Raises:
        ClusterError: no scheduler answered at ``address`` within ``timeout_s``.
    """
    from distributed import Client

    try:
        return Client(address, timeout=f"{timeout_s}s")
    except (OSError, TimeoutError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ClusterError(f"no Dask scheduler answered at {address} within {timeout_s:g} s ({reason})") from None


def dashboard_link(client: Any) -> str | None:
    """The scheduler's dashboard address, or None when it serves none (bokeh missing, disabled)."""
    try:
        if "dashboard" not in client.scheduler_info().get("services", {}):
            return None
    except Exception:  # noqa: BLE001  (an old scheduler without services: still show the link)
        pass
    return str(client.dashboard_link)


@contextmanager
def open_client(
    spec: ClusterSpec,
    *,
    tries: int = DEFAULT_TRIES,
    dashboard: str = ":8787",
    timeout_s: float | None = None,
) -> Iterator[Any]:
    """Open a ``distributed.Client`` on the cluster ``spec`` names; close what was created on exit.

    Args:
        spec: parsed ``--cluster``.
        tries: for clusters created here, runs of an image on dying workers before it fails.
        dashboard: dashboard address of local clusters created here.
        timeout_s: how long to wait for a running scheduler (default ``CONNECT_TIMEOUT_S``).

    Yields:
        The client.

    Raises:
        ClusterError: Dask missing, scheduler unreachable, bad Slurm config.
    """
    require_dask()
    from distributed import Client

    if tries < 1:
        raise ClusterError(f"tries must be >= 1, got {tries}")
    cluster = None
    if spec.kind == ADDRESS:
        client = connect(spec.address, CONNECT_TIMEOUT_S if timeout_s is None else timeout_s)
    elif spec.kind == LOCAL:
        cluster = local_cluster(spec.workers, tries=tries, dashboard=dashboard)
        client = Client(cluster)
    elif spec.kind == SLURM:
        cluster = slurm_cluster(tries=tries)
        cluster.scale(jobs=spec.jobs)
        client = Client(cluster)
    else:
        raise ClusterError(f"unknown cluster kind {spec.kind!r}")
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
