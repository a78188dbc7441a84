"""Creating and reaching clusters: the Slurm job script (no Slurm needed), a bad scheduler address."""

from pathlib import Path

import dask
import pytest
from typer.testing import CliRunner

from samiam.cli.app import app
from samiam.distributed import cluster as cluster_mod
from samiam.distributed.cluster import open_client, slurm_cluster
from samiam.distributed.spec import parse_cluster
from samiam.errors import ClusterError
from tests.conftest import write_png

pytest.importorskip("dask_jobqueue")

SLURM_CONFIG = {
    "jobqueue.slurm.cores": 4,
    "jobqueue.slurm.memory": "16GB",
    "jobqueue.slurm.queue": "gpu",
    "jobqueue.slurm.walltime": "02:00:00",
    "jobqueue.slurm.job-extra-directives": ["--gres=gpu:1"],
    "jobqueue.slurm.processes": None,
}


def test_slurm_job_script_from_config_one_thread_per_worker():
    with dask.config.set(SLURM_CONFIG):
        cluster = slurm_cluster()
        try:
            script = cluster.job_script()
        finally:
            cluster.close()
    assert "#SBATCH -p gpu" in script and "#SBATCH --gres=gpu:1" in script
    assert "#SBATCH --cpus-per-task=4" in script and "#SBATCH -t 02:00:00" in script
    assert "--nthreads 1" in script and "--nworkers 4" in script  # 4 single-threaded processes


def test_slurm_config_keeps_a_configured_process_count():
    with dask.config.set({**SLURM_CONFIG, "jobqueue.slurm.processes": 1}):
        cluster = slurm_cluster()
        try:
            script = cluster.job_script()
        finally:
            cluster.close()
    assert "--nthreads 4" in script and "--nworkers" not in script


def test_slurm_without_cores_and_memory_says_which_keys():
    with dask.config.set({"jobqueue.slurm.cores": None, "jobqueue.slurm.memory": None}):
        with pytest.raises(ClusterError, match="jobqueue.slurm.cores and jobqueue.slurm.memory"):
            slurm_cluster()


def test_unreachable_scheduler_is_a_cluster_error():
    with pytest.raises(ClusterError, match=r"no Dask scheduler answered at tcp://127.0.0.1:9 within 1 s"):
        with open_client(parse_cluster("tcp://127.0.0.1:9"), timeout_s=1):
            pass


def test_cli_bad_scheduler_address_is_one_line(tmp_path: Path, monkeypatch, two_lattice_image):
    monkeypatch.setattr(cluster_mod, "CONNECT_TIMEOUT_S", 1.0)
    img = write_png(tmp_path / "a.png", two_lattice_image[0])
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app, ["segment", str(img), "-o", str(out), "-m", "tiny-random", "--cluster", "tcp://127.0.0.1:9", "-q"]
    )
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert lines[-1].startswith("error: no Dask scheduler answered at tcp://127.0.0.1:9 within 1 s (")
    assert "Traceback" not in res.output and not list(out.glob("*.masks.json"))


def test_cli_rejects_a_malformed_cluster_before_any_work(tmp_path: Path, two_lattice_image):
    img = write_png(tmp_path / "a.png", two_lattice_image[0])
    res = CliRunner().invoke(app, ["segment", str(img), "-o", str(tmp_path / "o"), "--cluster", "locl:2"])
    assert res.exit_code == 2 and res.output.strip().endswith("got 'locl:2'")
    res = CliRunner().invoke(app, ["segment", str(img), "-o", str(tmp_path / "o"), "--cluster-jobs", "2"])
    assert res.exit_code == 2 and "--cluster-jobs needs --cluster slurm" in res.output
