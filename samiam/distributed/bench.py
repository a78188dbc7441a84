"""``samiam benchmark --cluster``: each labelled image segmented, boosted and scored on a Dask worker."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from samiam.distributed.cluster import dashboard_link, open_client
from samiam.distributed.spec import ClusterSpec
from samiam.distributed.submit import run_bounded
from samiam.distributed.worker import once_per_worker, worker_device


def bench_task(
    sample: Any, opts: Any, methods: list[str], pred_dir: str
) -> tuple[dict[str, Any] | None, list[str], dict[str, Any]]:
    """Worker side: segment one labelled image, boost it per method, write the predictions, score them.

    The model and encoders are loaded once per worker process (``--device auto``: the worker's own).

    Returns:
        (the image's results record or None, problems met, the model's run-record description).
    """
    import dataclasses
    import json

    from samiam.bench.runner import _ModelSegmenter, score_sample
    from samiam.errors import SamiamError

    opts = dataclasses.replace(opts, device=worker_device(opts.device), progress=False)
    key = ("bench", json.dumps(opts.record(), sort_keys=True, default=str), tuple(methods), pred_dir)
    try:
        segmenter = once_per_worker(key, lambda: _ModelSegmenter(opts, methods, Path(pred_dir), []))
        record = score_sample(sample, segmenter(sample), opts, methods)
    except SamiamError as exc:
        return None, [str(exc)], {}
    return record, [], segmenter.describe()


def score_on_cluster(
    spec: ClusterSpec,
    samples: Iterable[Any],
    opts: Any,
    methods: list[str],
    pred_dir: Path,
    *,
    window: int | None = None,
) -> Iterator[tuple[dict[str, Any] | None, list[str], dict[str, Any]]]:
    """Client side: every sample on the cluster; yield ``bench_task``'s triple per sample as they finish.

    Samples are read lazily (at most ``window`` in flight); a sample whose task failed yields
    ``(None, [problem], {})``.
    """
    import sys

    with open_client(spec) as client:
        link = dashboard_link(client)
        workers = len(client.scheduler_info().get("workers", {}))
        print(
            f"cluster: {spec.describe()}, {workers} worker(s) now" + (f"; dashboard {link}" if link else ""),
            file=sys.stderr,
        )
        stems: list[str] = []

        def tracked() -> Iterator[Any]:
            for s in samples:
                stems.append(s.stem)
                yield s

        for outcome in run_bounded(
            client, bench_task, tracked(), opts, methods, str(pred_dir), window=window, name="samiam-bench"
        ):
            if outcome.error:
                yield None, [f"{stems[outcome.index]}: on the cluster: {outcome.error}"], {}
            else:
                yield outcome.value
