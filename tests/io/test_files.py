"""The file layer: atomic writes, writable-folder check, file SHA-256, atomic JSON."""

import hashlib
import json
import os
from pathlib import Path

import pytest

from samiam.errors import OutputError
from samiam.io.files import (
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    check_writable_dir,
    sha256_file,
    write_json,
)


def test_atomic_write_bytes_and_text(tmp_path: Path):
    assert atomic_write_bytes(tmp_path / "sub" / "a.bin", b"\x00\x01abc").read_bytes() == b"\x00\x01abc"
    assert atomic_write_text(tmp_path / "b.txt", "µm\n").read_text(encoding="utf-8") == "µm\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.bin", "b.txt", "sub"]


def test_atomic_write_replaces_an_existing_file(tmp_path: Path):
    path = atomic_write_text(tmp_path / "x.txt", "old")
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_failed_write_leaves_no_temporary_file_and_keeps_the_old_one(tmp_path: Path):
    path = atomic_write_text(tmp_path / "x.json", "old")

    def half_then_fail(p: Path) -> None:
        p.write_text("half")
        raise RuntimeError("writer failed")

    with pytest.raises(RuntimeError, match="writer failed"):
        atomic_write(path, half_then_fail)
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
    assert path.read_text() == "old"


def test_failed_write_with_oserror_is_an_output_error(tmp_path: Path):
    def fail(p: Path) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OutputError, match=r"x\.bin: cannot write \(No space left on device\)"):
        atomic_write(tmp_path / "x.bin", fail)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_gives_normal_permissions(tmp_path: Path):
    old = os.umask(0o022)
    try:
        p = write_json(tmp_path / "x.json", {"a": 1})
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o777 == 0o644
    assert not [q for q in tmp_path.iterdir() if q.name != "x.json"]


def test_write_json_format(tmp_path: Path):
    doc = {"a": [1, 2], "b": {"c": None}}
    path = write_json(tmp_path / "d.json", doc)
    assert path.read_text() == json.dumps(doc, indent=1)
    assert json.loads(path.read_text()) == doc


def test_sha256_matches_hashlib(tmp_path: Path):
    data = os.urandom(3 << 20) + b"tail"  # several read blocks would be needed with a small block
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert sha256_file(empty) == hashlib.sha256(b"").hexdigest()


def test_sha256_of_a_missing_file_raises(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        sha256_file(tmp_path / "missing")


def test_writable_dir_is_created_and_left_clean(tmp_path: Path):
    folder = check_writable_dir(tmp_path / "new" / "deeper")
    assert folder.is_dir() and list(folder.iterdir()) == []


def test_writable_dir_under_a_file_raises_a_clear_message(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=r"file/out: output folder is not writable \(.+\)"):
        check_writable_dir(blocker / "out")
    with pytest.raises(OutputError, match=r"file: cache folder is not writable"):
        check_writable_dir(blocker, "cache folder")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
def test_read_only_dir_raises(tmp_path: Path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(OutputError, match=r"ro: output folder is not writable \(Permission denied\)"):
            check_writable_dir(ro)
        with pytest.raises(OutputError, match=r"ro: cannot write output here"):
            atomic_write_text(ro / "x.txt", "x")
    finally:
        ro.chmod(0o700)
