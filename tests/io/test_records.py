"""The record spool and the streamed JSON writer: same files as before, memory flat in the records."""

import json
import tracemalloc
from pathlib import Path

import pytest

from samiam.io.files import write_json
from samiam.io.records import RecordSpool
from samiam.io.write import StreamedList, write_json_streamed


def _record(k: int) -> dict:
    return {
        "path": f"/data/session/img{k:05d}.png",
        "status": "failed" if k % 7 == 3 else "ok",
        "masks": k % 5,
        "seconds": k / 3,
        "error": "",
        "outputs": {kind: f"/out/img{k:05d}.{kind}" for kind in ("raw", "labels", "overlay", "masks")},
        "frame": None if k % 2 else k,
        "timings": {"generate": 0.125 * k, "write": 0.01},
        "note": "redone: made with another boost\nsecond line é" if k == 2 else "",
    }


def test_streamed_json_is_byte_identical_to_write_json(tmp_path: Path):
    items = [_record(k) for k in range(4)] + [{}, [], [1, [2, {"x": None}]], "s", 3.5]
    cases = {"items": items, "none": [], "one_empty": [{}]}
    for name, lst in cases.items():
        plain = {"a": 1, "images": lst, "nested": {"k": [1, {"e": []}], "d": {}}, "failures": [], "z": "ü"}
        lazy = {**plain, "images": StreamedList(lambda lst=lst: iter(lst)), "failures": StreamedList(lambda: iter(()))}
        want = write_json(tmp_path / f"{name}.plain.json", plain).read_bytes()
        got = write_json_streamed(tmp_path / f"{name}.json", lazy).read_bytes()
        assert got == want, name
        assert json.loads(got)["images"] == lst
    assert write_json_streamed(tmp_path / "e.json", {}).read_text() == "{}"
    with pytest.raises(TypeError, match="expected a dict, got list"):
        write_json_streamed(tmp_path / "l.json", [1])


def test_spool_reads_back_in_slot_order_with_duplicates_and_strays(tmp_path: Path):
    spool = RecordSpool(tmp_path, 5)
    for slot in (3, 0, 4, 3, None, 1):  # slot 2 never came; slot 3 twice; one record without a slot
        spool.add(slot, {"slot": slot, "n": len(spool)})
    got = [(r["slot"], r["n"]) for r in spool]
    assert got == [(0, 1), (1, 5), (3, 0), (3, 3), (4, 2), (None, 4)]
    assert len(spool) == 6 and [r["n"] for r in spool] == [1, 5, 0, 3, 2, 4]  # iterable again
    with pytest.raises(ValueError, match=r"slot must be in \[0, 5\), got 5"):
        spool.add(5, {})
    path = spool.path
    assert path.parent == tmp_path and path.name.startswith(".") and path.is_file()
    spool.close()
    assert not path.exists()
    spool.close()  # twice is fine


def test_spool_memory_does_not_grow_with_records(tmp_path: Path):
    """Records go to the file: 4000 more (~1.5 MB of JSON) add almost nothing to traced memory."""
    n = 5000
    spool = RecordSpool(tmp_path, n)
    tracemalloc.start()
    try:
        for k in range(1000):
            spool.add(k, _record(k))
        before = tracemalloc.get_traced_memory()[0]
        for k in range(1000, n):
            spool.add(k, _record(k))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    on_disk = spool.path.stat().st_size
    assert on_disk > 4000 * 300  # the records are really there, ~350 bytes each
    # a list of them would hold > 1 MB; the allowance covers interpreter noise on a loaded machine
    assert grown < 200_000, f"{grown} bytes held for 4000 records"
    assert sum(1 for _ in spool) == n
    spool.close()
