"""``samiam segment`` on Dask: same masks as serial, a killed worker, resume after an interruption."""

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from samiam.batch import MANIFEST_NAME, SUMMARY_NAME, BatchRun, plan_jobs
from samiam.boost.config import BoostConfig
from samiam.cli.app import app
from samiam.distributed.segment import cluster_results, settings_for
from samiam.generate.config import GeneratorConfig
from samiam.io.write import output_paths
from samiam.pipeline import SegmentConfig
from samiam.synth.stem import stack_cross_section
from tests.conftest import write_png
from tests.distributed.conftest import wait_until_idle

FAST = GeneratorConfig(points_per_side=4, pred_iou_thresh=0, stability_score_thresh=0)
CLI_FAST = ["-m", "tiny-random", "--points-per-side", "4", "--pred-iou-thresh", "0", "--stability-thresh", "0"]
CLI_FAST += ["--method", "fused"]  # SAM runs on the workers (the default field needs none)
N_IMAGES = 6


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("micrographs")
    for k in range(N_IMAGES):
        write_png(d / f"img{k}.png", stack_cross_section(192, 192, seed=20 + k)[0])
    return d


@pytest.fixture(scope="module")
def serial(folder: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("serial")
    res = CliRunner().invoke(app, ["segment", str(folder), "-o", str(out), *CLI_FAST, "--no-cache", "-q"])
    assert res.exit_code == 0, res.output
    return out


def _results_of(out: Path) -> dict[str, tuple]:
    """Per stem: the final and raw annotations and the label map bytes (what must not depend on where it ran)."""
    got = {}
    for k in range(N_IMAGES):
        p = output_paths(out, f"img{k}")
        got[f"img{k}"] = (
            json.loads(p["masks"].read_text())["annotations"],
            json.loads(p["raw"].read_text())["annotations"],
            p["labels"].read_bytes(),
        )
    return got


def _run_api(client, out: Path, model, folder: Path, resume: bool = False, window: int | None = None):
    batch = BatchRun(
        out, model, SegmentConfig(generator=FAST, boost=BoostConfig(method="fused")), resume=resume, command=["test"]
    )
    jobs = plan_jobs(sorted(folder.glob("*.png")))
    settings = settings_for(batch, device="cpu", verify=True, encoder="fft", encoder_weights=None)
    return batch, jobs, batch.collect(jobs, cluster_results(client, jobs, settings, window))


def _check_complete_run(out: Path, want: dict) -> dict:
    man = json.loads((out / MANIFEST_NAME).read_text())
    assert man["status"] == "finished" and man["jobs"] == N_IMAGES
    stems = [Path(r["path"]).stem for r in man["images"]]
    assert stems == [f"img{k}" for k in range(N_IMAGES)]  # each image once, in job order
    assert len((out / SUMMARY_NAME).read_text().strip().splitlines()) == N_IMAGES + 1
    assert not [p.name for p in out.iterdir() if ".part" in p.name]  # no half files
    assert _results_of(out) == want
    return man


def test_cli_local_two_workers_gives_the_serial_masks(folder: Path, serial: Path, tmp_path: Path):
    out = tmp_path / "cl"
    res = CliRunner().invoke(
        app, ["segment", str(folder), "-o", str(out), *CLI_FAST, "--no-cache", "-q", "--cluster", "local:2"]
    )
    assert res.exit_code == 0, res.output
    assert "cluster: local:2, 2 worker(s) now; " in res.output
    assert f"done: {N_IMAGES} of {N_IMAGES} images segmented" in res.output
    want = _results_of(serial)
    assert any(len(w[1]) for w in want.values())  # the comparison is not of empty results
    man = _check_complete_run(out, want)
    assert man["counts"] == {"total": N_IMAGES, "ok": N_IMAGES, "skipped": 0, "failed": 0, "not_run": 0}
    assert man["cluster"]["spec"] == "local:2"
    assert not [p.name for p in out.iterdir() if p.name.endswith(".jsonl")]  # the records' spool is gone


def test_help_shows_the_cluster_options():
    res = CliRunner().invoke(app, ["segment", "--help"], terminal_width=200)
    assert "--cluster " in res.output and "--cluster-jobs" in res.output and "local:N" in res.output


def test_killed_worker_every_image_exactly_once(dask_client, tiny_model, folder: Path, serial: Path, tmp_path: Path):
    wait_until_idle(dask_client)
    out = tmp_path / "out"
    out.mkdir()
    batch, jobs, run = _run_api(dask_client, out, tiny_model, folder)
    seen: list = []
    consumer = threading.Thread(target=lambda: seen.extend(run))
    consumer.start()
    busy: list = []
    deadline = time.monotonic() + 60
    while not busy and consumer.is_alive() and time.monotonic() < deadline:
        busy = [addr for addr, keys in dask_client.processing().items() if keys]
        time.sleep(0.005)
    assert busy, "no worker was running an image when the kill came"
    pid = dask_client.run(os.getpid, workers=busy[:1])[busy[0]]
    os.kill(pid, signal.SIGKILL)  # mid-task: its image is rerun on the other worker
    consumer.join(120)
    assert sorted(r.stem for r in seen) == sorted(j.stem for j in jobs)  # exactly once each
    assert all(r.status == "ok" for r in seen), [r.summary() for r in seen]
    _check_complete_run(out, _results_of(serial))
    wait_until_idle(dask_client)  # the nanny restarted the killed worker


def test_resume_after_an_interrupted_cluster_run_redoes_only_the_missing(
    dask_client, tiny_model, folder: Path, serial: Path, tmp_path: Path
):
    wait_until_idle(dask_client)
    out = tmp_path / "out"
    out.mkdir()
    batch, jobs, run = _run_api(dask_client, out, tiny_model, folder, window=2)
    first = [next(run), next(run)]
    run.close()  # as Ctrl-C: tasks in flight are cancelled, the manifest says interrupted
    man = json.loads((out / MANIFEST_NAME).read_text())
    assert man["status"] == "interrupted" and len(man["images"]) == 2
    wait_until_idle(dask_client)  # a cancelled task already running finishes its image
    complete = {j.stem for j in jobs if output_paths(out, j.stem)["masks"].is_file()}
    assert {r.stem for r in first} <= complete and len(complete) <= 4  # window 2: at most 2 more started
    _, _, rerun = _run_api(dask_client, out, tiny_model, folder, resume=True)
    second = {r.stem: r.status for r in rerun}
    assert {s for s, st in second.items() if st == "skipped"} == complete
    assert {s for s, st in second.items() if st == "ok"} == {j.stem for j in jobs} - complete
    man = _check_complete_run(out, _results_of(serial))
    assert man["counts"]["skipped"] == len(complete) and man["counts"]["ok"] == N_IMAGES - len(complete)
