"""``samiam defects run --cluster``: one task per STM image; each worker loads the defect model once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from samiam.distributed.cluster import dashboard_link, open_client
from samiam.distributed.spec import ClusterSpec
from samiam.distributed.submit import run_bounded
from samiam.distributed.worker import once_per_worker


def defects_task(path: Path, model_folder: str, params: Any, out: str, prototypes: Any = None) -> tuple[bool, str]:
    """Worker side: analyse one image with the serial per-image step (``samiam.cli.defects.analyse_file``).

    Args:
        path: the image.
        model_folder: folder from ``samiam defects train`` (on the shared file system).
        params: ``DefectParams`` (device None: the worker's own, cuda when it has one).
        out: output folder.
        prototypes: few-shot named classes (``pipeline.learn_prototypes``), or None.

    Returns:
        (analysed, line for the terminal).
    """
    from samiam.cli.defects import analyse_file
    from samiam.defects import load_model

    folder = Path(model_folder)
    stamp = max((p.stat().st_mtime_ns for p in folder.iterdir()), default=0)  # a retrained model is reloaded
    model = once_per_worker(("defects", str(folder.resolve()), stamp), lambda: load_model(folder))
    return analyse_file(Path(path), model, params, Path(out), prototypes=prototypes)


def run_defects_on_cluster(
    spec: ClusterSpec,
    files: list[Path],
    model_folder: str | Path,
    params: Any,
    out: str | Path,
    *,
    echo: Callable[[str], None] = print,
    window: int | None = None,
    prototypes: Any = None,
) -> Iterator[tuple[bool, str]]:
    """Client side: every file on the cluster; yield ``(analysed, line)`` per file as they finish.

    A file whose task failed (it raised, its workers died) yields ``(False, "error: ...")``.
    Closing the iterator cancels what is still in flight and closes a cluster made here.
    """
    with open_client(spec) as client:
        link = dashboard_link(client)
        workers = len(client.scheduler_info().get("workers", {}))
        echo(f"cluster: {spec.describe()}, {workers} worker(s) now" + (f"; dashboard {link}" if link else ""))
        args = (str(model_folder), params, str(out), prototypes)
        for outcome in run_bounded(client, defects_task, files, *args, window=window, name="samiam-defects"):
            if outcome.error:
                yield False, f"error: {files[outcome.index]}: on the cluster: {outcome.error}"
            else:
                yield outcome.value
