"""Batch runs: resume, run manifest, summary, stacks frame by frame."""

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from samiam.batch import (
    MANIFEST_NAME,
    SUMMARY_NAME,
    BatchRun,
    ImageResult,
    Job,
    check_complete,
    plan_jobs,
    run_signature,
    summary_csv,
    summary_table,
)
from samiam.boost.config import BoostConfig
from samiam.cli.app import app
from samiam.generate.config import GeneratorConfig
from samiam.io.write import output_paths
from samiam.pipeline import SegmentConfig
from samiam.synth.stem import stack_cross_section
from tests.conftest import write_png

FAST = GeneratorConfig(points_per_side=4, pred_iou_thresh=0, stability_score_thresh=0)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SAMIAM_FEATURE_CACHE", str(tmp_path / "feature-cache"))


@pytest.fixture()
def images(tmp_path: Path) -> list[Path]:
    out = []
    for k in range(2):
        img, _, _ = stack_cross_section(160, 160, seed=10 + k)
        out.append(write_png(tmp_path / f"img{k}.png", img))
    return out


def _run(outdir: Path, model, files, cfg=None, **kw):
    batch = BatchRun(outdir, model, cfg or SegmentConfig(generator=FAST), command=["test"], **kw)
    results = list(batch.run(plan_jobs(files, all_frames=kw.pop("all_frames", False))))
    return batch, results


def test_resume_skips_finished_and_redoes_half_written(tmp_path: Path, tiny_model, images):
    out = tmp_path / "out"
    _, first = _run(out, tiny_model, images)
    assert [r.status for r in first] == ["ok", "ok"]
    done_mtime = output_paths(out, "img0")["masks"].stat().st_mtime_ns
    # img1 was interrupted after its label map: no masks JSON, a stale temporary file
    output_paths(out, "img1")["masks"].unlink()
    output_paths(out, "img1")["overlay"].unlink()
    stale = out / ".img1.overlay.png.abc123.part.png"
    stale.write_bytes(b"half")
    batch, second = _run(out, tiny_model, images, resume=True)
    assert [r.status for r in second] == ["skipped", "ok"]
    assert second[0].note == "outputs complete" and second[0].masks == first[0].masks
    assert output_paths(out, "img0")["masks"].stat().st_mtime_ns == done_mtime  # untouched
    assert all(p.is_file() for p in output_paths(out, "img1").values()) and not stale.exists()
    man = json.loads((out / MANIFEST_NAME).read_text())
    assert man["counts"] == {"total": 2, "ok": 1, "skipped": 1, "failed": 0, "not_run": 0}
    assert man["parameters"]["resume"] is True and man["status"] == "finished"


def test_resume_redoes_other_parameters_changed_inputs_and_broken_json(tmp_path: Path, tiny_model, images):
    out = tmp_path / "out"
    _run(out, tiny_model, images)
    other = SegmentConfig(generator=FAST, boost=BoostConfig(materials=1))
    _, res = _run(out, tiny_model, images, cfg=other, resume=True)
    assert [r.status for r in res] == ["ok", "ok"] and "another boost" in res[0].note
    output_paths(out, "img0")["masks"].write_text('{"image": {"file": "x"')  # truncated JSON
    write_png(images[1], stack_cross_section(160, 160, seed=99)[0])  # the input changed
    _, res = _run(out, tiny_model, images, cfg=other, resume=True)
    assert [r.status for r in res] == ["ok", "ok"]
    assert "unreadable" in res[0].note and "input file changed" in res[1].note


def test_check_complete_reasons(tmp_path: Path, tiny_model, images):
    out = tmp_path / "out"
    cfg = SegmentConfig(generator=FAST)
    _run(out, tiny_model, images[:1], cfg=cfg)
    sig = run_signature(tiny_model, cfg, True)
    assert check_complete(out, "img0", sig, None) == (True, "outputs complete")
    assert check_complete(out, "img0", run_signature(tiny_model, cfg, False), None)[1] == "made with another boosted"
    output_paths(out, "img0")["labels"].unlink()
    assert check_complete(out, "img0", sig, None) == (False, "missing img0.labels.png")
    assert check_complete(out, "nothing", sig, None) == (False, "no complete result")


def test_manifest_and_summary_record_failures(tmp_path: Path, tiny_model, images):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    out = tmp_path / "out"
    batch, res = _run(out, tiny_model, [bad, *images])
    assert [r.status for r in res] == ["failed", "ok", "ok"]
    man = json.loads((out / MANIFEST_NAME).read_text())
    assert man["command"] == ["test"] and man["jobs"] == 3
    assert man["inputs"] == sorted(str(p) for p in [bad, *images])
    assert man["failures"][0]["path"] == str(bad) and "not a decodable" in man["failures"][0]["error"]
    assert man["parameters"]["generator"]["points_per_side"] == 4 and man["model"]["model"] == "tiny-random"
    assert {"samiam", "torch", "numpy", "rosettasciio"} <= set(man["versions"])
    ok = man["images"][1]
    assert ok["status"] == "ok" and {"generate", "read", "write", "total"} <= set(ok["timings"])
    assert not [p for p in out.iterdir() if ".part" in p.name]
    csv_lines = (out / SUMMARY_NAME).read_text().strip().splitlines()
    assert len(csv_lines) == 4 and csv_lines[1].startswith(str(bad))
    table = batch.summary_table()
    assert "broken.png" in table and "FAILED" in table and "2 segmented, 0 skipped, 1 failed" in table
    doc = json.loads(output_paths(out, "img0")["masks"].read_text())
    assert len(doc["run"]["input_sha256"]) == 64


def test_interrupted_batch_leaves_a_manifest(tmp_path: Path, tiny_model, images):
    out = tmp_path / "out"
    batch = BatchRun(out, tiny_model, SegmentConfig(generator=FAST), command=["test"])
    for _ in batch.run(plan_jobs(images)):
        break  # the consumer stops after the first image (like Ctrl-C)
    man = json.loads((out / MANIFEST_NAME).read_text())
    assert man["status"] == "interrupted" and man["counts"]["ok"] == 1 and man["counts"]["not_run"] == 1


def test_all_frames_plans_one_job_per_frame(tmp_path: Path, images):
    stack = np.stack([stack_cross_section(64, 80, seed=s)[0] for s in range(3)]).astype(np.float32)
    tifffile.imwrite(tmp_path / "s.tif", stack, photometric="minisblack")
    missing = tmp_path / "missing.tif"
    jobs = plan_jobs([tmp_path / "s.tif", images[0], missing], all_frames=True)
    assert [(j.path.name, j.frame, j.stem) for j in jobs] == [
        ("s.tif", 0, "s_f0"),
        ("s.tif", 1, "s_f1"),
        ("s.tif", 2, "s_f2"),
        ("img0.png", None, "img0"),
        ("missing.tif", None, "missing"),
    ]
    assert [j.frame for j in plan_jobs([tmp_path / "s.tif"], frame=2)] == [2]


def test_summary_table_layout():
    from samiam.batch import ImageResult

    rows = [
        ImageResult("/d/a.png", "ok", masks=3, materials=2, seconds=1.25),
        ImageResult("/d/b.png", "failed", error="/d/b.png: file is empty", seconds=0.01),
        ImageResult("/d/s.tif", "skipped", masks=1, materials=1, frame=2, note="outputs complete"),
    ]
    table = summary_table(rows).splitlines()
    assert table[0].split() == ["image", "status", "masks", "materials", "seconds", "note"]
    assert table[3].split()[:2] == ["b.png", "FAILED"] and table[3].endswith("file is empty")
    assert table[4].startswith("s.tif[2]")
    assert table[-1] == "1 segmented, 1 skipped, 1 failed; 1.3 s"


def test_cli_resume_all_frames_and_cache_options(tmp_path: Path):
    runner = CliRunner()
    stack = np.stack([stack_cross_section(96, 96, seed=s)[0] for s in range(2)]).astype(np.float32)
    tifffile.imwrite(tmp_path / "s.tif", (stack * 60000).astype(np.uint16))
    out = tmp_path / "out"
    args = [
        "segment",
        str(tmp_path / "s.tif"),
        "-o",
        str(out),
        "--model",
        "tiny-random",
        "--pred-iou-thresh",
        "0",
        "--stability-thresh",
        "0",
        "--points-per-side",
        "4",
        "--method",
        "fused",
        "-q",
        "--all-frames",
        "--cache",
        str(tmp_path / "c"),
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert (out / "s_f0.masks.json").is_file() and (out / "s_f1.masks.json").is_file()
    assert "s.tif[1]" in res.output and "run manifest" in res.output  # the summary table
    assert list((tmp_path / "c").rglob("embedding.npy"))
    res = runner.invoke(app, [*args, "--resume"])
    assert res.exit_code == 0 and "2 skipped" in res.output
    doc = json.loads((out / "s_f1.masks.json").read_text())
    assert doc["run"]["input"]["frame"] == 1 and doc["run"]["cache"]["encoder_misses"] == 1
    res = runner.invoke(app, [*args[:-2], "--no-cache", "--cache", str(tmp_path / "c")])
    assert res.exit_code == 2 and "exclude each other" in res.output
    res = runner.invoke(app, [*args, "--frame", "1"])
    assert res.exit_code == 2 and "exclude each other" in res.output
    res = runner.invoke(app, [*args, "--tile", "huge"])
    assert res.exit_code == 2 and "tile must be" in res.output


def _fake_results(jobs: list[Job], order: list[int]):
    for i in order:
        j = jobs[i]
        if i % 4 == 1:
            yield ImageResult(
                str(j.path), "failed", seconds=0.01 * i, error=f"{j.path}: broken", frame=j.frame, stem=j.stem
            )
        else:
            outs = {k: f"/out/{j.stem}.{k}" for k in ("raw", "labels", "overlay", "masks")}
            yield ImageResult(
                str(j.path), "ok", masks=i, materials=1, seconds=0.5 * i, outputs=outs, frame=j.frame, stem=j.stem,
                timings={"generate": 0.25 * i}, note="redone: the input file changed" if i == 2 else "",
            )  # fmt: skip


def test_collect_in_any_order_writes_manifest_and_summary_in_job_order(tmp_path: Path, tiny_model):
    jobs = [Job(tmp_path / f"m{k}.tif", frame=None if k < 3 else k) for k in range(6)]
    order = [3, 0, 5, 1, 4, 2]
    want = sorted(_fake_results(jobs, order), key=lambda r: [str(j.path) for j in jobs].index(r.path))
    out = tmp_path / "out"
    batch = BatchRun(out, tiny_model, SegmentConfig(generator=FAST), command=["test"], manifest_every=1e9)
    seen = [r.stem for r in batch.collect(jobs, _fake_results(jobs, order))]
    assert seen == [jobs[i].stem for i in order]  # yielded as they came
    text = (out / MANIFEST_NAME).read_text()
    man = json.loads(text)
    assert text == json.dumps(man, indent=1)  # the format of write_json
    assert man["images"] == [r.to_dict() for r in want]
    assert man["failures"] == [
        {"path": r.path, "frame": r.frame, "error": r.error} for r in want if r.status == "failed"
    ]
    assert man["counts"] == {"total": 6, "ok": 4, "skipped": 0, "failed": 2, "not_run": 0}
    assert (out / SUMMARY_NAME).read_bytes() == summary_csv(want).encode()  # as the old write_text of it
    assert batch.summary_table() == summary_table(want) and batch.recorded == 6
    spools = [p for p in out.iterdir() if p.name.endswith(".jsonl")]
    assert len(spools) == 1 and spools[0].name.startswith(".")
    batch.close()
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME, SUMMARY_NAME]


def test_collect_memory_does_not_grow_with_images(tmp_path: Path, tiny_model):
    """The client keeps no per-image record: 3500 more results add almost nothing to traced memory.

    Measured from the 2500th result on: CPython's free lists (up to 2000 small tuples) fill first.
    """
    n = 6000
    jobs = [Job(Path(f"/data/session/img{k:05d}.png")) for k in range(n)]
    with BatchRun(tmp_path / "out", tiny_model, SegmentConfig(generator=FAST), manifest_every=1e9) as batch:
        tracemalloc.start()
        try:
            for k, _ in enumerate(batch.collect(jobs, _fake_results(jobs, list(range(n)))), 1):
                if k == 2500:
                    before = tracemalloc.get_traced_memory()[0]
                if k == n:
                    grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        man = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text())
    assert len(man["images"]) == n and man["counts"]["ok"] + man["counts"]["failed"] == n
    # records kept would be > 1 MB (2.8 MB measured); the allowance covers allocator noise on a loaded machine
    assert grown < 500_000, f"{grown} bytes held for {n - 2500} images"
