"""Resolve the image of a Label Studio task (URL, upload, local-files storage, local path) to a Micrograph.

Label Studio sends the task's ``data`` as stored: uploaded files are server-relative URLs
(``/data/upload/3/abc-name.png``), local-files storage is ``/data/local-files/?d=REL/PATH``,
cloud storage is resolved by Label Studio to ``/tasks/ID/resolve/?fileuri=...`` (also relative),
and imported JSON can hold any ``http(s)://`` URL or a plain path. Relative URLs are fetched from
``LABEL_STUDIO_URL`` with ``LABEL_STUDIO_API_KEY`` (a legacy token, sent as ``Token KEY``; a
personal access token is exchanged for a short-lived access token first); the key is sent to the
Label Studio origin only. Local paths are read directly; only image formats that
``samiam.io.read`` supports are opened.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from samiam.errors import InputError
from samiam.io.micrograph import Micrograph
from samiam.io.read import SUPPORTED_SUFFIXES, read_micrograph
from samiam.labelstudio.errors import ImageNotFoundError, ImageUnreadableError, RequestError, UpstreamError
from samiam.labelstudio.lru import LRUCache

LOCAL_FILES_PREFIX = "/data/local-files/"
MAGIC_SUFFIXES = (
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"\xff\xd8\xff", ".jpg"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
    (b"II+\x00", ".tif"),
    (b"MM\x00+", ".tif"),
    (b"BM", ".bmp"),
    (b"\x93NUMPY", ".npy"),
    (b"\x89HDF\r\n\x1a\n", ".hdf5"),
)


@dataclass
class LoadedImage:
    """A task image ready for the model.

    Attributes:
        micrograph: the normalised image (``source`` = the reference Label Studio sent).
        digest: SHA-256 of the file's bytes (cache key for embeddings and results).
    """

    micrograph: Micrograph
    digest: str


def _looks_like_jwt(token: str) -> bool:
    parts = token.split(".")
    return len(parts) == 3 and all(parts) and token.startswith("ey")


def _suffix_of(data: bytes, name: str) -> str:
    for magic, suffix in MAGIC_SUFFIXES:
        if data.startswith(magic):
            return suffix
    suffix = Path(urllib.parse.urlparse(name).path).suffix.lower()
    if suffix in SUPPORTED_SUFFIXES:
        return suffix
    query = urllib.parse.parse_qs(urllib.parse.urlparse(name).query)
    for values in query.values():
        for v in values:
            s = Path(v).suffix.lower()
            if s in SUPPORTED_SUFFIXES:
                return s
    raise ImageUnreadableError(
        f"{name}: cannot tell the image format (no known file signature or suffix); "
        f"expected one of {', '.join(SUPPORTED_SUFFIXES)}"
    )


def micrograph_from_bytes(data: bytes, name: str) -> Micrograph:
    """Read image file bytes with samiam's readers.

    Args:
        data: the file's content.
        name: the reference it came from (URL or path), used for messages and ``source``.

    Returns:
        The micrograph.

    Raises:
        ImageUnreadableError: unknown format, corrupt file, unsuitable image.
    """
    if not data:
        raise ImageUnreadableError(f"{name}: the image is empty (0 bytes)")
    suffix = _suffix_of(data, name)
    fd, tmp = tempfile.mkstemp(suffix=suffix, prefix="samiam-ls-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            mic = read_micrograph(tmp)
        except InputError as exc:
            raise ImageUnreadableError(str(exc).replace(tmp, name)) from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    mic.source = name
    return mic


class ImageResolver:
    """Turns the image reference of a task into a ``LoadedImage``, with a small cache.

    Args:
        url: Label Studio's base URL (``LABEL_STUDIO_URL``), for server-relative references.
        api_key: Label Studio token (``LABEL_STUDIO_API_KEY``): legacy token or personal access token.
        local_files_root: ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT``: read local-files storage
            directly from disk instead of over HTTP.
        timeout: seconds for each HTTP request.
        max_bytes: largest image accepted over HTTP.
        cache_size: decoded images kept in memory.
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        local_files_root: str | Path | None = None,
        timeout: float = 30.0,
        max_bytes: int = 1 << 30,
        cache_size: int = 8,
    ) -> None:
        self.url = url.rstrip("/") if url else None
        self.api_key = api_key or None
        self.local_files_root = Path(local_files_root).resolve() if local_files_root else None
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._cache: LRUCache[LoadedImage] = LRUCache(cache_size)
        self._local_digests: LRUCache[str] = LRUCache(max(64, cache_size))
        self._access: tuple[str, float] | None = None
        self._access_lock = threading.Lock()

    @classmethod
    def from_env(cls, **kw) -> ImageResolver:  # noqa: ANN003
        """Build from the environment.

        Reads ``LABEL_STUDIO_URL``, ``LABEL_STUDIO_API_KEY`` and ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT``.
        """
        return cls(
            url=os.environ.get("LABEL_STUDIO_URL") or None,
            api_key=os.environ.get("LABEL_STUDIO_API_KEY") or None,
            local_files_root=os.environ.get("LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT") or None,
            **kw,
        )

    def adopt_setup(self, hostname: str | None, access_token: str | None) -> None:
        """Use the host and token Label Studio sends to ``/setup`` where none was configured."""
        if not self.url and isinstance(hostname, str) and hostname.startswith(("http://", "https://")):
            self.url = hostname.rstrip("/")
        if not self.api_key and isinstance(access_token, str) and access_token:
            self.api_key = access_token

    # -- public -------------------------------------------------------------------------------------

    def load(self, ref: object) -> LoadedImage:
        """Resolve and read one image reference.

        Args:
            ref: the value of the task's image data key.

        Returns:
            The image and its content digest.

        Raises:
            RequestError: not a string, or an unsupported URL scheme (400).
            ImageNotFoundError: missing file / HTTP 404 (404).
            ImageUnreadableError: not a readable image (422).
            UpstreamError: the server holding the image failed or refused access (502).
        """
        if not isinstance(ref, str) or not ref.strip():
            raise RequestError(f"the task's image reference must be a non-empty string, got {ref!r}")
        ref = ref.strip()
        scheme = urllib.parse.urlparse(ref).scheme.lower()
        if scheme == "data":
            return self._from_bytes(self._data_uri(ref), ref)
        if scheme in ("http", "https"):
            return self._from_bytes(self._fetch(ref), ref)
        if scheme == "file":
            return self._from_path(Path(urllib.parse.unquote(urllib.parse.urlparse(ref).path)), ref)
        if scheme and len(scheme) > 1:  # s3://, gs://, azure-blob://... (a 1-letter scheme is a drive)
            raise RequestError(
                f"{ref}: '{scheme}://' references are resolved by Label Studio, not by the backend; "
                "connect the bucket as cloud storage in Label Studio so tasks carry resolvable URLs"
            )
        if ref.startswith(LOCAL_FILES_PREFIX):
            local = self._local_files_path(ref)
            if local is not None and local.is_file():
                return self._from_path(local, ref)
            return self._from_server(ref)
        path = Path(ref).expanduser()
        if path.is_file():
            return self._from_path(path, ref)
        if ref.startswith("/") and self.url:
            return self._from_server(ref)
        if ref.startswith("/"):
            raise ImageNotFoundError(
                f"{ref}: no such local file, and no Label Studio URL is known to fetch it from; "
                "set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY for the backend"
            )
        raise ImageNotFoundError(f"{ref}: no such file")

    # -- sources ------------------------------------------------------------------------------------

    def _from_bytes(self, data: bytes, ref: str) -> LoadedImage:
        digest = hashlib.sha256(data).hexdigest()
        return self._cache.get_or_compute(digest, lambda: LoadedImage(micrograph_from_bytes(data, ref), digest))

    def _from_path(self, path: Path, ref: str) -> LoadedImage:
        if not path.is_file():
            raise ImageNotFoundError(f"{ref}: no such file")
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            raise ImageUnreadableError(
                f"{ref}: unsupported file type '{path.suffix}'; expected one of {', '.join(SUPPORTED_SUFFIXES)}"
            )
        st = path.stat()
        stamp = (str(path.resolve()), st.st_mtime_ns, st.st_size)
        digest = self._local_digests.get_or_compute(stamp, lambda: hashlib.sha256(path.read_bytes()).hexdigest())

        def read() -> LoadedImage:
            try:
                mic = read_micrograph(path)
            except InputError as exc:
                raise ImageUnreadableError(str(exc)) from None
            mic.source = ref
            return LoadedImage(mic, digest)

        return self._cache.get_or_compute(digest, read)

    def _from_server(self, ref: str) -> LoadedImage:
        if not self.url:
            raise ImageNotFoundError(
                f"{ref}: the image lives on the Label Studio server but its URL is unknown; "
                "set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY for the backend"
            )
        return self._from_bytes(self._fetch(self.url + "/" + ref.lstrip("/")), ref)

    def _local_files_path(self, ref: str) -> Path | None:
        if self.local_files_root is None:
            return None
        query = urllib.parse.parse_qs(urllib.parse.urlparse(ref).query)
        rel = (query.get("d") or [""])[0]
        if not rel:
            raise RequestError(f"{ref}: local-files URL without a '?d=PATH' parameter")
        path = (self.local_files_root / rel).resolve()
        if not path.is_relative_to(self.local_files_root):
            raise RequestError(f"{ref}: path leaves LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT")
        return path

    @staticmethod
    def _data_uri(ref: str) -> bytes:
        head, _, payload = ref.partition(",")
        if ";base64" not in head:
            raise RequestError(f"{ref[:40]}...: only base64 data URIs are supported")
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(f"{ref[:40]}...: data URI is not valid base64") from None

    # -- HTTP ---------------------------------------------------------------------------------------

    def _is_label_studio(self, url: str) -> bool:
        if not self.url:
            return False
        a, b = urllib.parse.urlparse(url), urllib.parse.urlparse(self.url)
        return (a.scheme, a.netloc) == (b.scheme, b.netloc)

    def _auth_header(self, refresh: bool = False) -> str | None:
        if not self.api_key:
            return None
        if not _looks_like_jwt(self.api_key):
            return f"Token {self.api_key}"
        with self._access_lock:  # personal access token: exchange it for an access token
            if refresh or self._access is None or self._access[1] < time.time():
                body = json.dumps({"refresh": self.api_key}).encode()
                req = urllib.request.Request(
                    f"{self.url}/api/token/refresh/", data=body, headers={"Content-Type": "application/json"}
                )
                try:
                    with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                        access = json.loads(resp.read())["access"]
                except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
                    raise UpstreamError(
                        f"{self.url}: could not exchange LABEL_STUDIO_API_KEY (personal access token) "
                        f"for an access token ({exc})"
                    ) from None
                self._access = (access, time.time() + 240)  # access tokens live about 5 minutes
            return f"Bearer {self._access[0]}"

    def _fetch(self, url: str) -> bytes:
        with_auth = self._is_label_studio(url)
        for attempt in range(2):
            headers = {"User-Agent": "samiam-labelstudio-backend"}
            auth = self._auth_header(refresh=attempt > 0) if with_auth else None
            if auth:
                headers["Authorization"] = auth
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=self.timeout) as r:
                    data = r.read(self.max_bytes + 1)
            except urllib.error.HTTPError as exc:
                if exc.code == 401 and attempt == 0 and auth and auth.startswith("Bearer"):
                    continue
                if exc.code == 404:
                    raise ImageNotFoundError(f"{url}: not found (HTTP 404)") from None
                if exc.code in (401, 403):
                    hint = (
                        "set LABEL_STUDIO_API_KEY to a valid token"
                        if with_auth
                        else "the backend sends its Label Studio token only to LABEL_STUDIO_URL"
                    )
                    raise UpstreamError(f"{url}: access refused (HTTP {exc.code}); {hint}") from None
                raise UpstreamError(f"{url}: the server answered HTTP {exc.code}") from None
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise UpstreamError(f"{url}: could not download the image ({reason})") from None
            if len(data) > self.max_bytes:
                raise ImageUnreadableError(f"{url}: image is larger than {self.max_bytes} bytes")
            return data
        raise AssertionError("unreachable")
