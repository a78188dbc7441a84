"""Worker-side helpers: one object per key per process, the device a worker takes."""

import pytest

from samiam.distributed import worker
from samiam.distributed.worker import once_per_worker, worker_device


def test_once_per_worker_builds_once_per_key():
    built = []
    for _ in range(3):
        a = once_per_worker(("test", "a"), lambda: built.append("a") or object())
    b = once_per_worker(("test", "b"), lambda: built.append("b") or object())
    assert built == ["a", "b"] and a is once_per_worker(("test", "a"), object) and a is not b


def test_worker_device_keeps_an_explicit_device_and_shares_gpus_round_robin(monkeypatch):
    import torch

    assert worker_device("cpu") == "cpu" and worker_device("cuda:1") == "cuda:1"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert worker_device("auto") == "auto"  # no GPU: cuda > mps > cpu as usual
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert worker_device(None) == "auto"  # one GPU: every worker uses it
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    for rank, want in ((0, "cuda:0"), (5, "cuda:1"), (3, "cuda:3")):
        monkeypatch.setattr(worker, "worker_rank", lambda r=rank: r)
        assert worker_device("auto") == want


@pytest.mark.parametrize("name, rank", [(3, 3), ("SLURMCluster-12-1", 1), ("tcp://x", 0)])
def test_worker_rank_from_dask_worker_names(monkeypatch, name, rank):
    import distributed

    class _W:
        pass

    w = _W()
    w.name = name
    monkeypatch.setattr(distributed, "get_worker", lambda: w)
    assert worker.worker_rank() == rank
    monkeypatch.undo()
    assert worker.worker_rank() == 0  # not in a worker
