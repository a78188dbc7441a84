"""The one file layer: atomic writes, writable-folder checks, file SHA-256, atomic JSON.

Every module that writes a file goes through ``atomic_write`` (temporary file in the same
folder + rename), so a reader (or ``--resume`` after a kill) never sees half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from samiam.errors import OutputError

_HASH_BLOCK = 1 << 23  # 8 MiB read per step when hashing


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then rename onto ``path``, so readers never see half a file.

    The temporary file is ``.<name>.<random>.part<suffix>`` in the same folder, and is deleted
    whatever happens.

    Args:
        path: the final file.
        write: writes the whole content to the path it is given.

    Returns:
        The final path.

    Raises:
        OutputError: the folder cannot be created or written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + path.suffix, dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise OutputError(f"{path.parent}: cannot write output here ({exc.strerror or exc})") from None
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get normal permissions
        os.replace(tmp_path, path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see ``atomic_write``)."""
    return atomic_write(path, lambda p: p.write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see ``atomic_write``)."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, doc: Any) -> Path:
    """Write ``doc`` as JSON (``indent=1``) atomically."""
    return atomic_write_text(path, json.dumps(doc, indent=1))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_writable_dir(folder: str | Path, what: str = "output folder") -> Path:
    """Create ``folder`` if needed and check that files can be written in it.

    Args:
        folder: the folder.
        what: what the folder is, for the error message (e.g. "cache folder").

    Returns:
        The folder as a ``Path``.

    Raises:
        OutputError: ``"<folder>: <what> is not writable (<reason>)"``.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".samiam-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{folder}: {what} is not writable ({exc.strerror or exc})") from None
    return folder


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 8 MiB blocks.

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()
