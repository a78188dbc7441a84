"""Parse the ``--cluster`` option: ``local:N``, ``tcp://HOST:PORT`` (or ``tls://``) or ``slurm``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from samiam.errors import ParameterError

LOCAL = "local"
ADDRESS = "address"
SLURM = "slurm"
_ADDRESS = re.compile(r"^(tcp|tls)://(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


@dataclass(frozen=True)
class ClusterSpec:
    """Where the tasks run.

    Attributes:
        kind: ``local`` (a LocalCluster of worker processes), ``address`` (a running scheduler)
            or ``slurm`` (a dask-jobqueue SLURMCluster).
        workers: worker processes of a local cluster.
        address: scheduler address.
        jobs: Slurm jobs to submit.
    """

    kind: str
    workers: int = 0
    address: str = ""
    jobs: int = 0

    def describe(self) -> str:
        """The spec as the user wrote it."""
        if self.kind == LOCAL:
            return f"local:{self.workers}"
        if self.kind == SLURM:
            return f"slurm ({self.jobs} job{'s' if self.jobs != 1 else ''})"
        return self.address


def parse_cluster(value: str, jobs: int | None = None) -> ClusterSpec:
    """Parse a cluster spec (and the job count, which only Slurm takes; ``--cluster``/``--cluster-jobs``).

    Args:
        value: ``local:N``, ``tcp://HOST:PORT``, ``tls://HOST:PORT`` or ``slurm``.
        jobs: Slurm jobs (default 1).

    Returns:
        The spec.

    Raises:
        ParameterError: anything else, or ``jobs`` without ``slurm``.
    """
    text = value.strip()
    if jobs is not None and text.lower() != SLURM:
        raise ParameterError(f"cluster jobs are for a slurm cluster, got cluster {value!r}")
    if text.lower() == SLURM:
        if jobs is not None and jobs < 1:
            raise ParameterError(f"cluster jobs must be >= 1, got {jobs}")
        return ClusterSpec(SLURM, jobs=1 if jobs is None else jobs)
    if text.lower().startswith(LOCAL + ":"):
        n = text[len(LOCAL) + 1 :]
        if not n.isdigit() or int(n) < 1:
            raise ParameterError(f"cluster local:N needs N >= 1 worker processes, got {value!r}")
        return ClusterSpec(LOCAL, workers=int(n))
    m = _ADDRESS.match(text)
    if m and 0 < int(m.group(3)) < 65536:
        return ClusterSpec(ADDRESS, address=text)
    raise ParameterError(f"cluster must be local:N, tcp://HOST:PORT or slurm, got {value!r}")
