"""Resolving task images: local paths, data URIs, uploads fetched with a token, local-files storage."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from samiam.labelstudio.errors import ImageNotFoundError, ImageUnreadableError, RequestError, UpstreamError
from samiam.labelstudio.images import ImageResolver

from .conftest import IMAGE_H, IMAGE_W

TOKEN = "legacy-token-123"
PAT = "eyJhbGciOiJIUzI1NiJ9.eyJ0eXAiOiJyZWZyZXNoIn0.c2lnbmF0dXJl"  # refresh-token shaped


class FakeLabelStudio(BaseHTTPRequestHandler):
    """Serves one upload to authorised clients, like Label Studio's /data/upload/ route."""

    png: bytes = b""
    seen_auth: list[str | None] = []

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        if self.path == "/api/token/refresh/":  # Label Studio 1.23 route (trailing slash)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if body.get("refresh") == PAT:
                self._send(200, json.dumps({"access": "access-abc"}).encode())
                return
        self._send(401, b"{}")

    def do_GET(self) -> None:  # noqa: N802
        auth = self.headers.get("Authorization")
        type(self).seen_auth.append(auth)
        if auth not in (f"Token {TOKEN}", "Bearer access-abc"):
            self._send(401, b'{"detail": "Authentication credentials were not provided."}')
        elif self.path == "/data/upload/1/abc-mic.png":
            self._send(200, self.png, "image/png")
        else:
            self._send(404, b'{"detail": "Not found."}')


@pytest.fixture
def fake_ls(micrograph_png: Path) -> Iterator[str]:
    FakeLabelStudio.png = micrograph_png.read_bytes()
    FakeLabelStudio.seen_auth = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeLabelStudio)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_local_path_file_url_and_data_uri_give_the_same_image(micrograph_png: Path) -> None:
    r = ImageResolver()
    a = r.load(str(micrograph_png))
    b = r.load(micrograph_png.as_uri())
    c = r.load("data:image/png;base64," + base64.b64encode(micrograph_png.read_bytes()).decode())
    assert a.digest == b.digest == c.digest
    assert (a.micrograph.height, a.micrograph.width) == (IMAGE_H, IMAGE_W)
    assert a.micrograph.source == str(micrograph_png)
    np.testing.assert_array_equal(a.micrograph.image, c.micrograph.image)


def test_upload_is_fetched_with_the_token(fake_ls: str) -> None:
    r = ImageResolver(url=fake_ls, api_key=TOKEN)
    img = r.load("/data/upload/1/abc-mic.png")
    assert img.micrograph.width == IMAGE_W and img.micrograph.source == "/data/upload/1/abc-mic.png"
    assert FakeLabelStudio.seen_auth == [f"Token {TOKEN}"]
    img2 = r.load(f"{fake_ls}/data/upload/1/abc-mic.png")  # absolute URL on the same origin: token too
    assert img2.digest == img.digest and FakeLabelStudio.seen_auth[-1] == f"Token {TOKEN}"


def test_personal_access_token_is_exchanged(fake_ls: str) -> None:
    img = ImageResolver(url=fake_ls, api_key=PAT).load("/data/upload/1/abc-mic.png")
    assert img.micrograph.height == IMAGE_H
    assert FakeLabelStudio.seen_auth == ["Bearer access-abc"]


def test_token_is_not_sent_to_other_hosts(fake_ls: str) -> None:
    r = ImageResolver(url="http://127.0.0.1:9", api_key=TOKEN)  # Label Studio elsewhere
    with pytest.raises(UpstreamError, match="HTTP 401"):
        r.load(f"{fake_ls}/data/upload/1/abc-mic.png")
    assert FakeLabelStudio.seen_auth == [None]


def test_http_errors_map_to_clear_errors(fake_ls: str) -> None:
    with pytest.raises(ImageNotFoundError, match="HTTP 404"):
        ImageResolver(url=fake_ls, api_key=TOKEN).load("/data/upload/1/missing.png")
    with pytest.raises(UpstreamError, match="access refused.*LABEL_STUDIO_API_KEY"):
        ImageResolver(url=fake_ls, api_key="wrong").load("/data/upload/1/abc-mic.png")
    with pytest.raises(UpstreamError, match="could not download"):
        ImageResolver(url="http://127.0.0.1:9", timeout=5).load("/data/upload/1/abc-mic.png")


def test_local_files_storage_reads_from_the_document_root(tmp_path: Path, micrograph_png: Path) -> None:
    (tmp_path / "set1").mkdir()
    (tmp_path / "set1" / "a.png").write_bytes(micrograph_png.read_bytes())
    r = ImageResolver(local_files_root=tmp_path)
    assert r.load("/data/local-files/?d=set1/a.png").micrograph.width == IMAGE_W
    with pytest.raises(RequestError, match="leaves"):
        r.load("/data/local-files/?d=../etc/passwd")


def test_reference_errors(tmp_path: Path) -> None:
    r = ImageResolver()
    with pytest.raises(ImageNotFoundError, match="set LABEL_STUDIO_URL"):
        r.load("/data/upload/1/abc.png")
    with pytest.raises(ImageNotFoundError, match="no such file"):
        r.load("relative/missing.png")
    with pytest.raises(RequestError, match="resolved by Label Studio"):
        r.load("s3://bucket/key.png")
    with pytest.raises(RequestError, match="non-empty string"):
        r.load(42)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ImageUnreadableError, match="broken.png"):
        r.load(str(bad))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ImageUnreadableError, match="unsupported file type"):
        r.load(str(text))
