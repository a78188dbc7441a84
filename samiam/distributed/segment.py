"""``samiam segment --cluster``: one task per image on Dask workers, records merged by ``samiam.batch``.

Workers load the model once per process (on their own device), segment with the same per-image
step as the serial run (``samiam.batch.segment_job``: resume check, atomic writes, masks JSON
last) and send back the small per-image record. The client submits in a bounded window and
merges the records into ``samiam-run.json`` and ``samiam-summary.csv`` through ``BatchRun``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from samiam.batch import BatchRun, ImageResult, Job, failed_result, input_sha256, segment_job
from samiam.distributed.cluster import DEFAULT_TRIES, dashboard_link, open_client
from samiam.distributed.spec import ClusterSpec
from samiam.distributed.submit import run_bounded
from samiam.distributed.worker import once_per_worker, worker_device
from samiam.pipeline import SegmentConfig

MANIFEST_EVERY_S = 5.0  # manifest rewrites while a cluster run goes on (every image would be O(n^2))


@dataclass(frozen=True)
class SegmentSettings:
    """Everything a worker needs besides the job (sent with every task; a few kB).

    Attributes:
        outdir: output folder, on a file system the workers share with the client.
        model: resolved model name (``--model auto`` is resolved on the client).
        checkpoint: resolved weights file, or None (``tiny-random``).
        device: ``--device`` (``auto``: each worker's own, cuda when it has one).
        verify: check the checkpoint's SHA-256 (once per worker).
        reason: why the model was chosen, for the run records.
        cfg: generator and booster settings.
        boost: run the booster.
        encoder: texture encoder name (``fft`` needs no prepared encoder).
        encoder_weights: local weights of a timm encoder.
        cache_root: embedding cache folder, or None.
        signature: ``run_signature`` of the run for ``--resume``, or None.
    """

    outdir: str
    model: str
    checkpoint: str | None
    device: str
    verify: bool
    reason: str
    cfg: SegmentConfig
    boost: bool
    encoder: str
    encoder_weights: str | None
    cache_root: str | None
    signature: dict[str, Any] | None


def _model(s: SegmentSettings, device: str) -> Any:
    from samiam.models.build import load_model

    def build() -> Any:
        loaded = load_model(s.model, s.checkpoint, device, verify=s.verify)
        loaded.reason = s.reason
        return loaded

    return once_per_worker(("model", s.model, s.checkpoint, device, s.verify), build)


def _encoder(s: SegmentSettings, device: str) -> Any:
    if not s.boost or s.encoder == "fft":
        return None
    from samiam.boost.encoders import make_encoder

    key = ("encoder", s.encoder, s.encoder_weights, device)
    return once_per_worker(key, lambda: make_encoder(s.encoder, s.encoder_weights, device))


@lru_cache(maxsize=64)
def _sha_of(path: str, mtime_ns: int, size: int) -> str | None:
    return input_sha256(Path(path))


def _input_sha(path: Path) -> str | None:
    """SHA-256 of an input, once per file version per worker (the frames of a stack share it)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return _sha_of(str(path), st.st_mtime_ns, st.st_size)


def segment_task(job: Job, s: SegmentSettings) -> ImageResult:
    """Worker side: segment one job into ``s.outdir`` (the model is loaded once per worker process).

    Args:
        job: the image.
        s: the run's settings.

    Returns:
        The job's record (``ok``, ``skipped`` or ``failed``), as in a serial run.
    """
    from samiam.cache import FeatureCache
    from samiam.errors import SamiamError

    device = worker_device(s.device)
    try:
        model = _model(s, device)
        encoder = _encoder(s, device)
    except SamiamError as exc:  # e.g. the checkpoint is not on this node: this image fails, others go on
        return failed_result(job, f"on worker: {exc}")
    cache = FeatureCache(s.cache_root) if s.cache_root else None
    return segment_job(
        job,
        Path(s.outdir),
        model,
        s.cfg,
        boost=s.boost,
        encoder=encoder,
        cache=cache,
        signature=s.signature,
        input_sha=_input_sha(job.path),
    )


def cluster_results(
    client: Any, jobs: list[Job], settings: SegmentSettings, window: int | None = None
) -> Iterator[ImageResult]:
    """Client side: run every job on the cluster; yield each job's record once, as they finish.

    A job whose task failed (it raised, or its workers died ``tries`` times) gets a ``failed``
    record with the reason; the others go on.
    """
    for outcome in run_bounded(client, segment_task, jobs, settings, window=window, name="samiam-segment"):
        job = jobs[outcome.index]
        yield outcome.value if not outcome.error else failed_result(job, f"on the cluster: {outcome.error}")


def settings_for(
    batch: BatchRun, *, device: str, verify: bool, encoder: str, encoder_weights: str | None
) -> SegmentSettings:
    """The worker settings of a prepared (serial) batch: same model, parameters, cache and resume."""
    m = batch.model
    return SegmentSettings(
        outdir=str(batch.outdir),
        model=m.name,
        checkpoint=m.checkpoint,
        device=device,
        verify=verify,
        reason=m.reason,
        cfg=batch.cfg,
        boost=batch.boost,
        encoder=encoder,
        encoder_weights=encoder_weights,
        cache_root=str(batch.cache.root) if batch.cache is not None else None,
        signature=batch.signature if batch.resume else None,
    )


def start_cluster_run(
    stack: ExitStack,
    spec: ClusterSpec,
    batch: BatchRun,
    jobs: list[Job],
    settings: SegmentSettings,
    *,
    echo: Callable[[str], None] = print,
    tries: int = DEFAULT_TRIES,
    window: int | None = None,
) -> Iterator[ImageResult]:
    """Open the cluster (closed by ``stack``) and return the run's records as they finish.

    The records go through ``batch.collect``, which writes the manifest and summary (every
    ``MANIFEST_EVERY_S`` seconds and at the end, also when interrupted).

    Args:
        stack: owns the client (and a cluster created here) and the run; closing it cancels
            what is still in flight.
        spec: parsed ``--cluster``.
        batch: the prepared batch (model checked on the client, output folder, resume).
        jobs: the planned jobs.
        settings: what workers need (``settings_for``).
        echo: where the cluster line (workers, dashboard) goes.
        tries: runs of an image on dying workers before it is marked failed (clusters made here).
        window: tasks in flight (default: 4 per worker thread, at least 32).

    Returns:
        An iterator of ``ImageResult``, one per job.

    Raises:
        ClusterError: the cluster cannot be made or reached.
    """
    client = stack.enter_context(open_client(spec, tries=tries))
    workers = len(client.scheduler_info().get("workers", {}))
    link = dashboard_link(client)
    echo(
        f"cluster: {spec.describe()}, {workers} worker(s) now"
        + (f"; dashboard {link}" if link else "; no dashboard (pip install bokeh)")
    )
    batch.manifest_every = MANIFEST_EVERY_S
    batch.extra["cluster"] = {
        "spec": spec.describe(),
        "workers_at_start": workers,
        "dashboard": link,
        "device": settings.device,  # the manifest's model entry is the client's check, on cpu
    }
    run = batch.collect(jobs, cluster_results(client, jobs, settings, window))
    stack.callback(run.close)  # before the client closes: cancels the tasks in flight, writes the manifest
    return run
