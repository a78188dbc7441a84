"""Per-image records spooled to a temporary JSON-lines file, read back in job order.

A batch of 10^4 images makes 10^4 records (a few kB each) for the run manifest and the summary.
``RecordSpool`` appends each record to a file as it arrives and keeps in memory one file offset
per job (8 bytes), so the client's memory does not grow with the records it has seen.
"""

from __future__ import annotations

import json
import os
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from samiam.errors import OutputError

_CHUNK = 4096  # slots looked up at a time when reading back


def _discard(handle: IO[bytes], path: str) -> None:
    """Close and delete a spool file (also run at interpreter exit for spools never closed)."""
    handle.close()
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class RecordSpool:
    """Records (JSON-able dicts) in a temporary file, one line each, iterated in slot order.

    Args:
        folder: where the temporary file goes (e.g. the output folder; created if needed).
        slots: number of jobs; a record's slot is its job's index.
        prefix: start of the temporary file's name (a hidden name, deleted by ``close``).

    Raises:
        ValueError: ``slots`` is negative.
        OutputError: the file cannot be created in ``folder``.
    """

    def __init__(self, folder: str | Path, slots: int, prefix: str = ".samiam-records.") -> None:
        if slots < 0:
            raise ValueError(f"slots must be >= 0, got {slots}")
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=prefix, suffix=".jsonl", dir=folder)
        except OSError as exc:
            raise OutputError(f"{folder}: cannot write the run's records here ({exc.strerror or exc})") from None
        self.path = Path(name)
        self._file: IO[bytes] = os.fdopen(fd, "w+b")
        self._offsets = np.full(slots, -1, np.int64)  # the one per-job state: where its record starts
        self._extra: dict[int, list[int]] = {}  # a second record of a slot, or records without one (rare)
        self._count = 0
        self._finalizer = weakref.finalize(self, _discard, self._file, name)

    def __len__(self) -> int:
        return self._count

    @property
    def slots(self) -> int:
        return len(self._offsets)

    def add(self, slot: int | None, record: dict[str, Any]) -> None:
        """Append one record.

        Args:
            slot: its job's index in ``[0, slots)``, or None (listed after all slots).
            record: a JSON-able dict.

        Raises:
            ValueError: the slot is out of range.
        """
        if slot is not None and not 0 <= slot < len(self._offsets):
            raise ValueError(f"slot must be in [0, {len(self._offsets)}), got {slot}")
        line = json.dumps(record).encode() + b"\n"  # no raw newline inside: one record per line
        f = self._file
        f.seek(0, os.SEEK_END)
        offset = f.tell()
        f.write(line)
        if slot is not None and self._offsets[slot] < 0:
            self._offsets[slot] = offset
        else:
            self._extra.setdefault(len(self._offsets) if slot is None else slot, []).append(offset)
        self._count += 1

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """The records in slot order (a slot's later records right after its first), then those without a slot."""
        f = self._file
        f.flush()
        n = len(self._offsets)
        for start in range(0, n, _CHUNK):  # chunks: no list of all slots, even while reading
            for slot in (np.flatnonzero(self._offsets[start : start + _CHUNK] >= 0) + start).tolist():
                yield self._read(f, int(self._offsets[slot]))
                for offset in self._extra.get(slot, ()):
                    yield self._read(f, offset)
        for offset in self._extra.get(n, ()):
            yield self._read(f, offset)

    @staticmethod
    def _read(f: IO[bytes], offset: int) -> dict[str, Any]:
        f.seek(offset)
        return json.loads(f.readline())

    def close(self) -> None:
        """Delete the file (the records are gone afterwards)."""
        self._finalizer()
