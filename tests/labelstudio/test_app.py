"""The HTTP app on a real loopback server: status codes, error bodies, and concurrent requests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from samiam.labelstudio.app import BackgroundServer, create_app
from samiam.labelstudio.handlers import LabelStudioBackend

from .conftest import LABEL_CONFIG, http, keypoint, predict_payload, rectangle

N_CONCURRENT = 50


@pytest.fixture
def server(backend: LabelStudioBackend) -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(backend), host="127.0.0.1", port=0, threads=8) as srv:
        yield srv


def test_health_setup_versions_webhook(server: BackgroundServer) -> None:
    for path in ("/", "/health"):
        status, body = http("GET", server.url + path)
        assert status == 200 and body["status"] == "UP"
    status, body = http("POST", server.url + "/setup", {"project": "1.2", "schema": LABEL_CONFIG})
    assert status == 200 and body["model_version"].startswith("samiam-")
    for method in ("GET", "POST"):
        status, body = http(method, server.url + "/versions", {"project": "1.2"} if method == "POST" else None)
        assert status == 200 and body["versions"] == [body["versions"][0]]
    status, body = http("POST", server.url + "/webhook", {"action": "START_TRAINING", "project": {"id": 1}})
    assert status == 200 and body["status"] == "ignored"


def test_malformed_requests_get_4xx_and_the_server_keeps_serving(
    server: BackgroundServer, micrograph_png: Path
) -> None:
    image = str(micrograph_png)
    cases = [
        ("POST", "/predict", b"{not json", 400, "not valid JSON"),
        ("POST", "/predict", b"", 400, "empty request body"),
        ("POST", "/predict", {"tasks": [], "label_config": LABEL_CONFIG}, 400, "no tasks"),
        (
            "POST",
            "/predict",
            predict_payload("/no/such/mic.png", [keypoint(10, 10)]),
            404,
            "task 7: /no/such/mic.png",
        ),
        ("POST", "/predict", predict_payload(image, [keypoint(10, 10, "Si")]), 400, "unknown label 'Si'"),
        (
            "POST",
            "/predict",
            predict_payload(image, [{**keypoint(1, 1), "type": "ellipselabels"}]),
            400,
            "unsupported control tag",
        ),
        ("POST", "/setup", {"schema": "<View><Image name='i' value='$x'/></View>"}, 400, "no <BrushLabels>"),
        ("GET", "/predict", None, 405, "Method Not Allowed"),
        ("GET", "/nowhere", None, 404, "Not Found"),
    ]
    for method, path, body, code, message in cases:
        status, answer = http(method, server.url + path, body)
        assert status == code, (path, body if not isinstance(body, dict) else "...", answer)
        assert isinstance(answer, dict) and message in answer["error"], answer
        assert http("GET", server.url + "/health")[0] == 200
    # And a good request still works after all of that.
    status, answer = http("POST", server.url + "/predict", predict_payload(image, [rectangle(5, 5, 60, 60)]))
    assert status == 200 and len(answer["results"]) == 1


def test_concurrent_predictions_all_succeed(
    server: BackgroundServer, backend: LabelStudioBackend, micrograph_png: Path
) -> None:
    image = str(micrograph_png)
    payloads = [predict_payload(image, [keypoint(5 + (i % 18) * 5, 5 + (i // 18) * 30)]) for i in range(N_CONCURRENT)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=N_CONCURRENT) as pool:
        futures = [pool.submit(http, "POST", server.url + "/predict", p, 120.0) for p in payloads]
        answers = [f.result(timeout=180) for f in futures]
    took = time.perf_counter() - t0
    assert [status for status, _ in answers] == [200] * N_CONCURRENT
    assert all(len(body["results"]) == 1 and "result" in body["results"][0] for _, body in answers)
    assert backend.interactive.encoder_runs == 1  # one embedding, computed once for all 50 requests
    assert took < 180
