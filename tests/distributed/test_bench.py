"""``samiam benchmark --cluster`` on a running scheduler: the same scores and predictions as a serial run."""

import json
from pathlib import Path

from typer.testing import CliRunner

from samiam.cli.app import app
from tests.bench.conftest import build_folder_dataset
from tests.distributed.conftest import wait_until_idle

TINY = ["--model", "tiny-random", "--device", "cpu", "--points-per-side", "4"]
TINY += ["--pred-iou-thresh", "0", "--stability-thresh", "0", "--methods", "raw,boosted", "--quiet"]


def _scores(out: Path) -> tuple:
    doc = json.loads((out / "results.json").read_text())
    images = [(i["stem"], {m: v["summary"] for m, v in i["methods"].items()}) for i in doc["images"]]
    preds = {p.relative_to(out).as_posix(): json.loads(p.read_text())["annotations"] for p in out.rglob("*.masks.json")}
    return images, doc["summary"], preds


def test_benchmark_on_a_running_scheduler_matches_serial(dask_client, tmp_path: Path):
    wait_until_idle(dask_client)
    data = build_folder_dataset(tmp_path / "data", n=4)
    serial, cl = tmp_path / "serial", tmp_path / "cl"
    res = CliRunner().invoke(app, ["benchmark", str(data), "-o", str(serial), *TINY])
    assert res.exit_code == 0, res.output
    address = dask_client.scheduler.address
    res = CliRunner().invoke(app, ["benchmark", str(data), "-o", str(cl), *TINY, "--cluster", address])
    assert res.exit_code == 0, res.output
    assert f"cluster: {address}, 2 worker(s) now" in res.output
    images, summary, preds = _scores(cl)
    assert [stem for stem, _ in images] == ["img0", "img1", "img2", "img3"]  # dataset order, each once
    assert (images, summary, preds) == _scores(serial) and len(preds) == 8
    assert json.loads((cl / "results.json").read_text())["run"]["model"]["model"] == "tiny-random"


def test_benchmark_cluster_with_predictions_is_one_error(tmp_path: Path):
    data = build_folder_dataset(tmp_path / "data", n=1)
    res = CliRunner().invoke(
        app, ["benchmark", str(data), "-o", str(tmp_path / "o"), "--predictions", str(tmp_path), "--cluster", "local:1"]
    )
    assert res.exit_code == 2 and "--predictions only scores files" in res.output


def test_run_benchmark_cluster_with_predictions_names_no_flag(tmp_path: Path):
    import pytest

    from samiam.bench.runner import BenchmarkOptions, run_benchmark
    from samiam.distributed.spec import parse_cluster
    from samiam.errors import ParameterError

    data = build_folder_dataset(tmp_path / "data", n=1)
    with pytest.raises(ParameterError, match="scoring existing predictions") as info:
        run_benchmark(data, tmp_path / "o", BenchmarkOptions(predictions=tmp_path), cluster=parse_cluster("local:1"))
    assert "--" not in str(info.value)  # the library names parameters; the CLI adds the flags
