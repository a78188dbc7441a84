"""HTTP layer of the Label Studio backend: a Flask (WSGI) app over ``LabelStudioBackend``, served by waitress.

``create_app(backend)`` gives the WSGI app; ``app_from_env()`` builds one from environment
variables for WSGI servers (``waitress-serve --call samiam.labelstudio.app:app_from_env``,
``gunicorn 'samiam.labelstudio.app:app_from_env()'``); ``serve()`` runs it with waitress, and
``BackgroundServer`` runs it in a thread (tests, scripts).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from samiam.errors import SamiamError
from samiam.labelstudio.errors import RequestError
from samiam.labelstudio.handlers import LabelStudioBackend

log = logging.getLogger("samiam.labelstudio")

MAX_BODY_BYTES = 256 * 1024 * 1024


def _json(doc: Any, status: int = 200) -> Response:
    return Response(json.dumps(doc), status=status, mimetype="application/json")


def _body() -> Any:
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise RequestError("empty request body; expected a JSON object")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise RequestError(f"the request body is not valid JSON ({exc})") from None


def create_app(backend: LabelStudioBackend) -> Flask:
    """The WSGI app implementing the ML backend endpoints.

    Args:
        backend: the protocol logic (model, caches, image resolver).

    Returns:
        A Flask app: ``GET /``, ``GET /health``, ``POST /setup``, ``POST /predict``,
        ``POST /webhook``, ``POST /train``, ``GET|POST /versions``, ``GET /metrics``.
    """
    app = Flask("samiam.labelstudio")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["samiam_backend"] = backend

    @app.before_request
    def _start_clock() -> None:
        g.t0 = time.perf_counter()

    @app.after_request
    def _log_request(response: Response) -> Response:
        took = time.perf_counter() - g.get("t0", time.perf_counter())
        log.info("%s %s %d %.3fs", request.method, request.path, response.status_code, took)
        return response

    @app.errorhandler(RequestError)
    def _request_error(exc: RequestError) -> Response:
        log.warning("%s %s: %s", request.method, request.path, exc)
        return _json({"error": str(exc), "status": exc.status}, exc.status)

    @app.errorhandler(SamiamError)
    def _samiam_error(exc: SamiamError) -> Response:
        log.warning("%s %s: %s", request.method, request.path, exc)
        return _json({"error": str(exc), "status": 422}, 422)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        return _json({"error": f"{exc.name}: {exc.description}", "status": code}, code)

    @app.errorhandler(Exception)
    def _internal_error(exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.path)
        return _json({"error": f"internal error ({type(exc).__name__}: {exc})", "status": 500}, 500)

    @app.get("/")
    @app.get("/health")
    def health() -> Response:
        return _json(backend.health())

    @app.post("/setup")
    def setup() -> Response:
        return _json(backend.setup(_body()))

    @app.post("/predict")
    def predict() -> Response:
        return _json(backend.predict(_body()))

    @app.post("/webhook")
    def webhook() -> Response:
        return _json(backend.webhook(_body()))

    @app.post("/train")
    def train() -> Response:
        _body()
        return _json({"status": "ignored", "reason": "samiam does not train on annotations"})

    @app.route("/versions", methods=["GET", "POST"])
    def versions() -> Response:
        return _json(backend.versions())

    @app.get("/metrics")
    def metrics() -> Response:
        return _json({})

    return app


def app_from_env() -> Flask:
    """Build the app from environment variables (for external WSGI servers).

    ``SAMIAM_MODEL`` (default ``auto``), ``SAMIAM_CHECKPOINT``, ``SAMIAM_DEVICE``; images are
    resolved with ``LABEL_STUDIO_URL``, ``LABEL_STUDIO_API_KEY``,
    ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT``.
    """
    from samiam.models.build import load_model

    model = load_model(
        os.environ.get("SAMIAM_MODEL", "auto"),
        os.environ.get("SAMIAM_CHECKPOINT") or None,
        os.environ.get("SAMIAM_DEVICE") or None,
    )
    return create_app(LabelStudioBackend(model))


def serve(app: Flask, host: str = "127.0.0.1", port: int = 9090, threads: int = 8) -> None:
    """Serve the app with waitress until interrupted.

    Args:
        app: the WSGI app.
        host: interface to bind (127.0.0.1 keeps the backend private to this machine).
        port: TCP port.
        threads: worker threads (concurrent requests being processed).
    """
    import waitress

    waitress.serve(app, host=host, port=port, threads=threads, ident="samiam", channel_timeout=300)


class BackgroundServer:
    """Run the app with waitress in a daemon thread (``with BackgroundServer(app) as srv: srv.url``).

    Args:
        app: the WSGI app.
        host: interface (loopback by default).
        port: TCP port, 0 = a free one.
        threads: waitress worker threads.
    """

    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 0, threads: int = 8) -> None:
        from waitress.server import create_server

        self._server = create_server(app, host=host, port=port, threads=threads, ident="samiam")
        self.host = host
        self.port = int(self._server.effective_port)
        self._thread = threading.Thread(target=self._server.run, name="samiam-ls-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> BackgroundServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.close()
        self._server.task_dispatcher.shutdown()
        self._thread.join(timeout=10)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
