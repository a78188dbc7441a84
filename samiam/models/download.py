"""Download checkpoints into the cache and verify them by SHA-256."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

from tqdm import tqdm

from samiam.errors import ModelError
from samiam.io.files import sha256_file
from samiam.models.registry import ModelSpec, cache_dir

CHUNK = 1 << 20


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def verified_sha256(path: str | Path) -> str:
    """SHA-256 of a file, remembered in a ``.sha256`` stamp beside it (keyed by size and mtime).

    Hashing a 2.5 GB checkpoint takes seconds; the stamp makes later runs free.
    """
    path = Path(path)
    st = path.stat()
    key = f"{st.st_size}:{st.st_mtime_ns}"
    stamp = _stamp(path)
    try:
        saved_key, saved_hash = stamp.read_text().split()
        if saved_key == key:
            return saved_hash
    except (OSError, ValueError):
        pass
    digest = sha256_file(path)
    try:
        stamp.write_text(f"{key} {digest}\n")
    except OSError:
        pass  # read-only cache: fine, just slower next time
    return digest


def verify_checkpoint(path: str | Path, spec: ModelSpec) -> str:
    """Check a checkpoint file against the spec's SHA-256.

    Args:
        path: the file.
        spec: the model it should be.

    Returns:
        The file's SHA-256.

    Raises:
        ModelError: missing file or wrong hash.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: checkpoint file not found")
    digest = verified_sha256(path)
    if spec.sha256 and digest != spec.sha256:
        raise ModelError(
            f"{path}: SHA-256 {digest[:12]}... does not match {spec.name} (expected {spec.sha256[:12]}...); "
            "the file is corrupt or another model"
        )
    return digest


def cached_checkpoint(spec: ModelSpec, folder: Path | None = None) -> Path | None:
    """Return the cached, verified checkpoint of ``spec``, or None if absent or corrupt."""
    path = (folder or cache_dir()) / spec.filename
    if not path.is_file() or not spec.sha256:
        return None
    try:
        verify_checkpoint(path, spec)
    except ModelError:
        return None
    return path


def download_checkpoint(
    spec: ModelSpec, folder: Path | None = None, *, url: str | None = None, progress: bool = True
) -> Path:
    """Download a checkpoint into the cache, verify it, and return its path.

    The file is streamed to a temporary name, hashed on the way, and renamed only if the
    SHA-256 matches, so an interrupted or corrupt download never looks like a checkpoint.

    Args:
        spec: the model to fetch.
        folder: cache folder (default ``cache_dir()``).
        url: override the manifest URL (mirrors, tests with ``file://``).
        progress: show a progress bar.

    Returns:
        Path of the verified checkpoint.

    Raises:
        ModelError: no URL known, network failure, or hash mismatch.
    """
    folder = folder or cache_dir()
    src = url or spec.url
    if not src:
        raise ModelError(f"{spec.name}: no download URL is known; give the file as the checkpoint")
    existing = cached_checkpoint(spec, folder)
    if existing is not None:
        return existing
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"{folder}: cannot create the weights cache ({exc.strerror or exc})") from None
    fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.filename}.", suffix=".part", dir=folder)
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(src, timeout=60) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or spec.size
            bar = tqdm(total=total, unit="B", unit_scale=True, desc=spec.filename, disable=not progress)
            while chunk := resp.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
            bar.close()
        got = digest.hexdigest()
        if spec.sha256 and got != spec.sha256:
            raise ModelError(
                f"{src}: downloaded file has SHA-256 {got[:12]}..., expected {spec.sha256[:12]}... for {spec.name}"
            )
        final = folder / spec.filename
        os.replace(tmp, final)
        st = final.stat()
        _stamp(final).write_text(f"{st.st_size}:{st.st_mtime_ns} {got}\n")
        return final
    except OSError as exc:
        raise ModelError(f"{spec.name}: download from {src} failed ({exc})") from None
    finally:
        tmp.unlink(missing_ok=True)
