"""Scale out on Dask: throughput with 1 and 2 local workers, scheduler overhead per image, projections.

Parts (each writes ``<part>.json`` next to this script; ``--part report`` turns them into RESULTS.md):

* ``throughput``: ``samiam segment`` on one folder of synthetic micrographs, serially (no
  ``--cluster``), with ``--cluster local:1`` and ``--cluster local:2``; each run is one process
  (wall time includes start-up, model loading and, with ``--cluster``, starting the workers).
* ``overhead``: 10^4 tiny images (32 x 32) with the ``tiny-random`` model, one LocalCluster of 2
  workers, through the real cluster path (``cluster_results`` + ``BatchRun.collect``: bounded
  window, per-image records, manifest); plus a baseline of 10^4 no-op tasks through the same
  bounded submission. Overhead per image = wall / n - (sum of worker-side seconds) / (n x workers).
  Client memory: RSS of this process sampled after n/10, n/2 and n results (10^3, 5 x 10^3 and
  10^4 by default); then the client's recording path alone (``BatchRun.collect`` fed the run's own
  n records, no Dask) under ``tracemalloc``: memory growth per image from n/2 to n results, for
  this tree and, as the baseline, for ``samiam/batch.py`` of commit ``BASELINE_COMMIT`` (records
  kept in a list until the end).
* ``records``: only the tracemalloc part of ``overhead`` again, from the manifest the overhead run
  left in the work folder (merged into ``overhead.json``).
* ``cost``: serial per-image cost of 1024 x 1024 micrographs with the offline default model
  (LiteMedSAM), for the projection table.

Usage (from the repository root; the work folder is ``benchmarks/_work/scale``)::

    .venv/bin/python benchmarks/scale/run_scale.py --part throughput
    .venv/bin/python benchmarks/scale/run_scale.py --part overhead
    .venv/bin/python benchmarks/scale/run_scale.py --part records
    .venv/bin/python benchmarks/scale/run_scale.py --part cost
    .venv/bin/python benchmarks/scale/run_scale.py --part report
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WORK = REPO / "benchmarks" / "_work" / "scale"
SAMIAM = Path(sys.executable).with_name("samiam")
BASELINE_COMMIT = "faca92f"  # main before the records were streamed to disk
TINY = ["-m", "tiny-random", "--points-per-side", "2", "--pred-iou-thresh", "0", "--stability-thresh", "0"]


def _machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()}-core CPU ({platform.machine()}), no GPU, {platform.system()}, shared with other jobs: "
        f"load average {load} (1/5/15 min) at the start"
    )


def _write_images(folder: Path, n: int, size: int, seed0: int = 0) -> Path:
    import cv2

    from samiam.synth.stem import stack_cross_section

    folder.mkdir(parents=True, exist_ok=True)
    have = len(list(folder.glob("*.png")))
    if have == n:
        return folder
    if size <= 64:  # tiny images: crops of one generated image (10^4 full generations would dominate)
        big, _, _ = stack_cross_section(512, 512, seed=seed0)
        grey = (np.clip(big, 0, 1) * 255).astype(np.uint8)
        for k in range(n):
            y, x = divmod(k % ((512 // size) ** 2), 512 // size)
            cv2.imwrite(str(folder / f"t{k:05d}.png"), grey[y * size : (y + 1) * size, x * size : (x + 1) * size])
        return folder
    for k in range(n):
        img, _, _ = stack_cross_section(size, size, seed=seed0 + k)
        cv2.imwrite(str(folder / f"m{k:03d}.png"), (np.clip(img, 0, 1) * 65535).astype(np.uint16))
    return folder


def _run_cli(args: list[str]) -> dict:
    t = time.perf_counter()
    proc = subprocess.run([str(SAMIAM), *args], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return {"wall_s": round(wall, 2), "command": "samiam " + " ".join(args)}


def part_throughput(n: int, size: int) -> dict:
    machine = _machine()
    folder = _write_images(WORK / f"throughput_{size}", n, size, seed0=100)
    common = [str(folder), "--box-scales", "0.5,0.25", "--no-cache", "-q"]
    rows = []
    for label, extra in (("serial", []), ("local:1", ["--cluster", "local:1"]), ("local:2", ["--cluster", "local:2"])):
        out = WORK / f"throughput_out_{label.replace(':', '')}"
        shutil.rmtree(out, ignore_errors=True)
        row = _run_cli(["segment", *common, "-o", str(out), *extra])
        man = json.loads((out / "samiam-run.json").read_text())
        secs = [r["seconds"] for r in man["images"]]
        row.update(
            label=label,
            images=len(secs),
            ok=man["counts"]["ok"],
            mean_image_s=round(float(np.mean(secs)), 2),
            images_per_min=round(60 * len(secs) / row["wall_s"], 2),
            load_after=round(os.getloadavg()[0], 1),
        )
        rows.append(row)
        print(row, flush=True)
    by = {r["label"]: r for r in rows}
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine,
        "images": n,
        "size": size,
        "model": "litemedsam (offline default), --box-scales 0.5,0.25",
        "rows": rows,
        "ratio_2_over_1": round(by["local:1"]["wall_s"] / by["local:2"]["wall_s"], 2),
    }


def _noop(x: int) -> int:
    return x


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _old_batch_module():
    """``samiam/batch.py`` of ``BASELINE_COMMIT`` as a module (None when git cannot show it)."""
    import importlib.util
    import tempfile

    proc = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{BASELINE_COMMIT}:samiam/batch.py"], capture_output=True, text=True
    )
    if proc.returncode != 0:
        return None
    path = Path(tempfile.mkdtemp()) / "batch_baseline.py"
    path.write_text(proc.stdout)
    spec = importlib.util.spec_from_file_location("batch_baseline", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def _records_memory(batch_cls, result_cls, records: list[str], jobs: list, model, cfg, outdir: Path) -> dict:
    """Traced memory growth of ``batch_cls.collect`` from n/2 to n results.

    Each result is parsed afresh from its JSON line (as one unpickled from a worker: it shares
    nothing with the others), so what the client keeps of it shows as growth.
    """
    import gc
    import tracemalloc

    n = len(records)
    shutil.rmtree(outdir, ignore_errors=True)
    batch = batch_cls(outdir, model, cfg, boost=False, command=["records"], manifest_every=5.0)

    def results():
        for line in records:
            yield result_cls(**json.loads(line))

    gc.collect()
    tracemalloc.start()
    t = time.perf_counter()
    try:
        for k, _ in enumerate(batch.collect(jobs, results()), 1):
            if k in (n // 2, n):  # live memory: json's indenting encoder leaves cyclic garbage per call
                gc.collect()
            if k == n // 2:
                before = tracemalloc.get_traced_memory()[0]
            if k == n:
                after = tracemalloc.get_traced_memory()[0]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    wall = time.perf_counter() - t
    if hasattr(batch, "close"):
        batch.close()
    return {
        "n": n,
        "growth_mb": round((after - before) / 2**20, 2),
        "bytes_per_image": round((after - before) / (n - n // 2)),
        "traced_peak_mb": round(peak / 2**20, 1),
        "wall_s_traced": round(wall, 1),
    }


def part_records() -> dict:
    """The client's recording path alone, under tracemalloc, with the overhead run's own records."""
    from samiam import batch as new_batch
    from samiam.batch import Job
    from samiam.generate.config import GeneratorConfig
    from samiam.models.build import load_model
    from samiam.pipeline import SegmentConfig

    images = json.loads((WORK / "tiny_out" / "samiam-run.json").read_text())["images"]
    records = [json.dumps(d) for d in images]
    jobs = [Job(Path(d["path"]), d["frame"]) for d in images]
    del images
    model = load_model("tiny-random", device="cpu")
    cfg = SegmentConfig(generator=GeneratorConfig(points_per_side=2, pred_iou_thresh=0, stability_score_thresh=0))
    out = WORK / "tiny_records"
    rec = {"this tree": _records_memory(new_batch.BatchRun, new_batch.ImageResult, records, jobs, model, cfg, out)}
    old = _old_batch_module()
    if old is not None:
        rec[f"baseline ({BASELINE_COMMIT})"] = _records_memory(
            old.BatchRun, old.ImageResult, records, jobs, model, cfg, out
        )
    print("records", rec, flush=True)
    return rec


def part_overhead(n: int) -> dict:
    from distributed import Client

    from samiam.batch import BatchRun, plan_jobs
    from samiam.distributed.cluster import local_cluster
    from samiam.distributed.segment import cluster_results, settings_for
    from samiam.generate.config import GeneratorConfig
    from samiam.models.build import load_model
    from samiam.pipeline import SegmentConfig

    folder = _write_images(WORK / "tiny", n, 32)
    out = WORK / "tiny_out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    machine = _machine()
    marks_at = (n // 10, n // 2, n)
    cluster = local_cluster(2, dashboard=":0")
    client = Client(cluster)
    try:
        from samiam.distributed.submit import run_bounded

        list(run_bounded(client, _noop, range(200)))  # warm up
        rss0 = _rss_mb()
        t = time.perf_counter()
        marks = {}
        for k, _ in enumerate(run_bounded(client, _noop, range(n)), 1):
            if k in marks_at:
                marks[k] = round(_rss_mb() - rss0, 1)
        noop = {"n": n, "wall_s": round(time.perf_counter() - t, 2), "rss_growth_mb": marks}
        noop["per_item_ms"] = round(1000 * noop["wall_s"] / n, 2)
        print("noop", noop, flush=True)

        model = load_model("tiny-random", device="cpu")
        gen = GeneratorConfig(points_per_side=2, pred_iou_thresh=0, stability_score_thresh=0)
        batch = BatchRun(out, model, SegmentConfig(generator=gen), boost=False, command=["run_scale.py overhead"])
        batch.manifest_every = 5.0
        jobs = plan_jobs(sorted(folder.glob("*.png")))
        settings = settings_for(batch, device="cpu", verify=True, encoder="fft", encoder_weights=None)
        # the first images also load torch and the model on each worker: warm them with 20 images
        warm = BatchRun(WORK / "tiny_warm", model, SegmentConfig(generator=gen), boost=False, command=["warm"])
        list(warm.collect(jobs[:20], cluster_results(client, jobs[:20], settings)))
        rss0 = _rss_mb()
        t = time.perf_counter()
        marks = {}
        worker_s = 0.0
        for k, res in enumerate(batch.collect(jobs, cluster_results(client, jobs, settings)), 1):
            worker_s += res.seconds
            if k in marks_at:
                marks[k] = round(_rss_mb() - rss0, 1)
        wall = time.perf_counter() - t
        counts = batch.counts()
        spool_mb = round(batch._spool.path.stat().st_size / 2**20, 1) if getattr(batch, "_spool", None) else None
        batch.close()
    finally:
        client.close()
        cluster.close()
    workers = 2
    full = {
        "n": n,
        "wall_s": round(wall, 2),
        "worker_s_mean_ms": round(1000 * worker_s / n, 2),
        "per_image_ms": round(1000 * wall / n, 2),
        "overhead_per_image_ms": round(1000 * (wall / n - worker_s / (n * workers)), 2),
        "rss_growth_mb": marks,
        "counts": counts,
        "manifest_mb": round((out / "samiam-run.json").stat().st_size / 2**20, 1),
        "spool_mb": spool_mb,
        "load_after": round(os.getloadavg()[0], 1),
    }
    print("segment", full, flush=True)
    rec = part_records()
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine,
        "workers": workers,
        "model": "tiny-random, --points-per-side 2, --no-boost, 32 x 32 PNGs",
        "noop": noop,
        "segment": full,
        "records": rec,
    }


def part_cost(n: int, size: int) -> dict:
    machine = _machine()
    folder = _write_images(WORK / f"cost_{size}", n, size, seed0=200)
    out = WORK / "cost_out"
    shutil.rmtree(out, ignore_errors=True)
    row = _run_cli(["segment", str(folder), "-o", str(out), "--no-cache", "-q"])
    man = json.loads((out / "samiam-run.json").read_text())
    secs = [r["seconds"] for r in man["images"]]
    row.update(images=len(secs), per_image_s=[round(s, 1) for s in secs], mean_image_s=round(float(np.mean(secs)), 1))
    print(row, flush=True)
    return {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine, "size": size, **row}


def _hours(n: int, per_image_s: float, workers: int, efficiency: float, overhead_s: float) -> float:
    return n * max(per_image_s / (workers * efficiency), overhead_s) / 3600


def _throughput_table(thr: dict, name: str) -> list[str]:
    lines = [
        f"### {name}",
        "",
        f"- date (end): {thr['date']}",
        f"- machine: {thr['machine']}",
        f"- folder: {thr['images']} synthetic {thr['size']} x {thr['size']} cross-sections (16-bit PNG); "
        f"model: {thr['model']}; `OMP_NUM_THREADS=1` (one torch thread per process)",
        f"- command: `.venv/bin/python benchmarks/scale/run_scale.py --part throughput --n {thr['images']} "
        f"--size {thr['size']}`; each row one process:",
        "",
        "| run | wall s | images/min | mean s per image (worker) | speed-up vs local:1 | load after (1 min) |",
        "|---|---|---|---|---|---|",
    ]
    base = {r["label"]: r for r in thr["rows"]}["local:1"]["wall_s"]
    for r in thr["rows"]:
        speed = f"{base / r['wall_s']:.2f}x"
        load = r.get("load_after", "-")
        lines.append(
            f"| {r['label']} | {r['wall_s']} | {r['images_per_min']} | {r['mean_image_s']} | {speed} | {load} |"
        )
    lines += [
        "",
        f"Ratio of throughputs, 2 workers over 1: **{thr['ratio_2_over_1']}x**. Commands:",
        "",
        *[f"- {r['label']}: `{r['command']}`" for r in thr["rows"]],
        "",
    ]
    return lines


def part_report() -> None:
    runs = sorted(HERE.glob("throughput*.json"), reverse=True)  # throughput_run1.json, then throughput.json
    ovh = json.loads((HERE / "overhead.json").read_text())
    cost = json.loads((HERE / "cost.json").read_text())
    sg, nz = ovh["segment"], ovh["noop"]
    workers = ovh["workers"]
    # parallel efficiency measured within one run (same load for the per-image cost and the wall time)
    eff = min(1.0, sg["worker_s_mean_ms"] / (sg["per_image_ms"] * workers))
    c = cost["mean_image_s"]
    o = sg["overhead_per_image_ms"] / 1000
    n = 10_000
    lines = [
        "# Scale out on Dask: local workers, scheduler overhead, projections",
        "",
        "Made by `benchmarks/scale/run_scale.py` (see its docstring); each part's raw numbers are in the",
        "`*.json` files beside this file. Wall times include start-up, model loading per worker and, for",
        "the cluster rows, starting the workers. The machine is shared: other jobs' load is in each table.",
        "",
        "## Throughput: 1 and 2 local workers on the same folder",
        "",
    ]
    titles = {
        "throughput_run1": "Run 1: another job held one of the two cores throughout (seen in `top`)",
        "throughput": "Run 2: the cores mostly free",
    }
    for p in runs:
        lines += _throughput_table(json.loads(p.read_text()), titles.get(p.stem, p.stem))
    lines += [
        "The serial row (no `--cluster`) is the baseline: `local:1` was slower than it in both runs (starting",
        "the cluster and the worker's imports, and a longer time per image on the worker; the cause of the",
        "latter was not isolated: the client, scheduler and nanny share the two cores). `--cluster` pays off",
        "from 2 workers on free cores, and on machines with more cores than this one.",
        "",
    ]
    rn = " / ".join(str(v) for v in nz["rss_growth_mb"].values())
    rs = " / ".join(str(v) for v in sg["rss_growth_mb"].values())
    before_path = HERE / f"overhead_{BASELINE_COMMIT}.json"
    before = json.loads(before_path.read_text()) if before_path.is_file() else None
    lines += [
        "## Scheduler overhead per image and client memory: 10^4 tiny images",
        "",
        f"- date: {ovh['date']}",
        f"- machine: {ovh['machine']}"
        + (f"; {sg['load_after']} (1 min) after the segment row" if "load_after" in sg else ""),
        f"- {workers} local workers; model: {ovh['model']}",
        "- command: `.venv/bin/python benchmarks/scale/run_scale.py --part overhead` (in-process: the real",
        "  cluster path `cluster_results` + `BatchRun.collect`, manifest every 5 s; after 20 warm-up images)",
        "",
        "| run | images | wall s | ms per image (wall) | worker ms per image | overhead ms per image "
        "| client RSS growth MB after 10^3 / 5x10^3 / 10^4 |",
        "|---|---|---|---|---|---|---|",
        f"| baseline: no-op task | {nz['n']} | {nz['wall_s']} | {nz['per_item_ms']} | 0 | {nz['per_item_ms']} | {rn} |",
        f"| segment (tiny-random) | {sg['n']} | {sg['wall_s']} | {sg['per_image_ms']} | {sg['worker_s_mean_ms']} "
        f"| {sg['overhead_per_image_ms']} | {rs} |",
    ]
    if before is not None:
        b, bn = before["segment"], before["noop"]
        lines += [
            f"| earlier run, records in memory ({BASELINE_COMMIT}, {before['date']}): no-op task | {bn['n']} "
            f"| {bn['wall_s']} | {bn['per_item_ms']} | 0 | {bn['per_item_ms']} "
            f"| {' / '.join(str(v) for v in bn['rss_growth_mb'].values())} |",
            f"| earlier run, records in memory ({BASELINE_COMMIT}): segment | {b['n']} | {b['wall_s']} "
            f"| {b['per_image_ms']} | {b['worker_s_mean_ms']} | {b['overhead_per_image_ms']} "
            f"| {' / '.join(str(v) for v in b['rss_growth_mb'].values())} |",
        ]
    lines += [
        "",
        f"Target: overhead <= 10 ms per image: **{sg['overhead_per_image_ms']} ms** measured. Overhead = wall / n - "
        "worker seconds / (n x workers): the wall time the workers did not spend on images (client, "
        "scheduler, transfers; here the client and the scheduler share the 2 cores with both workers). "
        f"The no-op row is the bounded submission alone ({nz['per_item_ms']} ms per task, Dask's own "
        "per-task cost on this machine: `client.map` of all tasks at once measured the same, ~3 ms).",
    ]
    if before is not None:
        lines.append(
            f"The earlier run measured {before['segment']['overhead_per_image_ms']} ms per image on a quieter "
            f"machine ({before['machine'].split(': ', 1)[-1]}): the overhead grows with the other jobs' load."
        )
    lines += [
        "",
    ]
    marks = list(sg["rss_growth_mb"].values())
    per_image_kb = (marks[-1] - marks[0]) * 1024 / (0.9 * sg["n"])
    noop_marks = list(nz["rss_growth_mb"].values())
    lines += [
        "Target: client memory flat in the number of images: **met**. The per-image records go to a temporary",
        f"JSON-lines file in the output folder (`samiam.io.records.RecordSpool`; {sg.get('spool_mb')} MB for "
        f"{sg['n']} images); `samiam-run.json` ({sg['manifest_mb']} MB)",
        "and `samiam-summary.csv` are written from it record by record; the client keeps one file offset per image.",
        f"RSS of the client process from 10^3 to 10^4 images: segment row +{marks[-1] - marks[0]:.1f} MB "
        f"({per_image_kb:.2f} kB per image), no-op row +{noop_marks[-1] - noop_marks[0]:.1f} MB. This process",
        "also runs the LocalCluster's scheduler, whose task logs grow up to their bounded length; the no-op",
        "row runs first and fills them partly, so the segment row's remaining growth is an upper bound.",
    ]
    if before is not None:
        bm = list(before["segment"]["rss_growth_mb"].values())
        lines.append(
            f"The earlier run, which kept the records in memory, grew +{bm[-1] - bm[0]:.1f} MB "
            f"({(bm[-1] - bm[0]) * 1024 / (0.9 * before['segment']['n']):.1f} kB per image)."
        )
    rec = ovh.get("records", {})
    if rec:
        when = ovh.get("records_date", ovh["date"])
        if "records_machine" in ovh:
            when += ", " + ovh["records_machine"].split(": ", 1)[-1]
        lines += [
            "",
            "The client's recording path alone (`BatchRun.collect` fed the run's own records, each parsed",
            "afresh, no Dask), under `tracemalloc`: live memory growth from n/2 to n results, and the peak",
            f"including the final manifest write ({when}; `run_scale.py --part records`, which redoes only this",
            "part; the baseline is `samiam/batch.py` of the earlier commit, run on the same records):",
            "",
            "| code | results n | traced growth MB (n/2 to n) | bytes per image | traced peak MB |",
            "|---|---|---|---|---|",
            *[
                f"| {k} | {r['n']} | {r['growth_mb']} | {r['bytes_per_image']} | {r['traced_peak_mb']} |"
                for k, r in rec.items()
            ],
        ]
    lines += [
        "",
        f"Counts: {sg['counts']}.",
        "",
        "## Projection: 10^4 images of 1024 x 1024",
        "",
        f"- measured per-image cost, serial, LiteMedSAM defaults (box grid, booster), one torch thread: **{c} s** "
        f"(images: {cost['per_image_s']}, {cost['date']}; `{cost['command']}`)",
        f"- parallel efficiency of 2 workers on 2 cores, measured in the 10^4-image run: {eff:.2f} "
        f"(worker ms per image / (wall ms per image x 2)); used for every N > 1, one core per worker",
        f"- floor: the measured overhead per image ({o * 1000:.1f} ms)",
        "",
        "| workers | per-image cost s | hours for 10^4 images | status |",
        "|---|---|---|---|",
    ]
    for w in (1, 2, 8, 32, 128):
        e = 1.0 if w == 1 else eff
        status = "measured cost and efficiency" if w <= 2 else "projection (CPU, one core each)"
        lines.append(f"| {w} CPU | {c} | {_hours(n, c, w, e, o):.1f} | {status} |")
    for g in (1.0, 0.25):
        for w in (1, 4, 8):
            lines.append(
                f"| {w} GPU | {g} (assumed) | {_hours(n, g, w, 1.0, o):.2f} | projection until measured (no GPU here) |"
            )
    lines += [
        "",
        "The GPU rows assume a per-image cost (1 s and 0.25 s for a 1024 x 1024 image, booster included);",
        "nothing was measured on a GPU. Measure it with `samiam segment --device cuda` on one GPU node and",
        "replace the assumption.",
        "",
    ]
    text = re.sub(r"/\S*?/(benchmarks/_work/)", r"\1", "\n".join(lines).replace(str(REPO) + "/", ""))
    (HERE / "RESULTS.md").write_text(text)
    print(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("throughput", "overhead", "records", "cost", "report"), required=True)
    p.add_argument("--n", type=int, default=None, help="images (throughput 8, overhead 10000, cost 2)")
    p.add_argument("--size", type=int, default=None, help="image side (throughput 512, cost 1024)")
    a = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if a.part == "report":
        part_report()
        return
    if a.part == "records":  # redo only the tracemalloc part of the overhead run (its outputs must exist)
        doc = json.loads((HERE / "overhead.json").read_text())
        doc["records_machine"] = _machine()
        doc["records"] = part_records()
        doc["records_date"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        (HERE / "overhead.json").write_text(json.dumps(doc, indent=1))
        return
    if a.part == "throughput":
        doc = part_throughput(a.n or 8, a.size or 512)
    elif a.part == "overhead":
        doc = part_overhead(a.n or 10_000)
    else:
        doc = part_cost(a.n or 2, a.size or 1024)
    (HERE / f"{a.part}.json").write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
