"""``samiam serve labelstudio``: option errors, and a real server process answering on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from samiam.cli.app import app

from .conftest import http, predict_payload, rectangle

runner = CliRunner()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_bad_options_give_one_line_and_exit_2() -> None:
    res = runner.invoke(app, ["serve", "labelstudio", "--model", "tiny-random", "--port", "70000"])
    assert res.exit_code == 2 and "--port must be in 1..65535" in res.output
    res = runner.invoke(app, ["serve", "labelstudio", "--model", "no-such-model"])
    assert res.exit_code == 2 and "no-such-model" in res.output and "Traceback" not in res.output


def test_server_process_answers_health_and_predict(micrograph_png: Path) -> None:
    port = _free_port()
    cmd = [
        sys.executable,
        "-c",
        "from samiam.cli.app import main; main()",
        "serve",
        "labelstudio",
        "--model",
        "tiny-random",
        "--device",
        "cpu",
        "--port",
        str(port),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO_")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                status, body = http("GET", url + "/health", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, "server did not start within 90 s"
                time.sleep(0.3)
        assert status == 200 and body["model"] == "tiny-random"
        status, body = http("POST", url + "/predict", predict_payload(str(micrograph_png), [rectangle(5, 5, 50, 50)]))
        assert status == 200 and body["results"][0]["model_version"] == body["model_version"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
