"""Parsing ``--cluster`` / ``--cluster-jobs``."""

import pytest

from samiam.distributed.spec import ADDRESS, LOCAL, SLURM, ClusterSpec, parse_cluster
from samiam.errors import ParameterError


@pytest.mark.parametrize(
    "text, jobs, want",
    [
        ("local:2", None, ClusterSpec(LOCAL, workers=2)),
        (" LOCAL:16 ", None, ClusterSpec(LOCAL, workers=16)),
        ("tcp://10.0.0.5:8786", None, ClusterSpec(ADDRESS, address="tcp://10.0.0.5:8786")),
        ("tls://head-node.cluster:8786", None, ClusterSpec(ADDRESS, address="tls://head-node.cluster:8786")),
        ("slurm", None, ClusterSpec(SLURM, jobs=1)),
        ("slurm", 8, ClusterSpec(SLURM, jobs=8)),
    ],
)
def test_parse_cluster_accepts(text, jobs, want):
    assert parse_cluster(text, jobs) == want


@pytest.mark.parametrize(
    "text, jobs, message",
    [
        ("local:0", None, "N >= 1"),
        ("local:two", None, "N >= 1"),
        ("tcp://host", None, "local:N, tcp://HOST:PORT or slurm"),
        ("tcp://host:99999", None, "local:N, tcp://HOST:PORT or slurm"),
        ("http://host:8786", None, "local:N, tcp://HOST:PORT or slurm"),
        ("local:2", 3, "cluster jobs are for a slurm cluster"),
        ("slurm", 0, "cluster jobs must be >= 1"),
    ],
)
def test_parse_cluster_rejects_with_the_expected_form(text, jobs, message):
    with pytest.raises(ParameterError, match=message):
        parse_cluster(text, jobs)


def test_describe_round_trips_the_user_text():
    assert parse_cluster("local:3").describe() == "local:3"
    assert parse_cluster("slurm", 2).describe() == "slurm (2 jobs)"
    assert parse_cluster("tcp://h:1").describe() == "tcp://h:1"
