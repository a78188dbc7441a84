"""Run a benchmark: segment (or read predictions), score every method, write results and report.

Segmentation runs once per image: the raw generator masks are written to
``OUT/predictions/raw/<stem>.masks.json`` and every boosted method re-boosts those same masks.
With ``predictions`` set, existing ``.masks.json`` files are scored and no model is loaded.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from samiam import __version__
from samiam.bench.boundary import DEFAULT_RATIO
from samiam.bench.datasets import Sample, open_dataset
from samiam.bench.metrics import MATCH_IOU, PAPER_DIFFICULTY_WEIGHTS, score_image
from samiam.bench.report import plot_summary, summarise, write_markdown
from samiam.boost.config import METHODS, BoostConfig
from samiam.errors import InputError, ParameterError, SamiamError
from samiam.generate.config import GeneratorConfig
from samiam.io.files import check_writable_dir, write_json
from samiam.io.write import OUTPUT_SUFFIXES, read_masks_json
from samiam.segmentation import Segmentation

RAW = "raw"
BOOSTED = "boosted"
MASKS_SUFFIX = OUTPUT_SUFFIXES["masks"]
RAW_SUFFIX = OUTPUT_SUFFIXES["raw"]


@dataclass
class BenchmarkOptions:
    """Everything that decides a benchmark run (all of it goes into ``results.json``).

    Attributes:
        methods: method names: ``raw``, ``boosted``, ``boosted-<encoder>`` (model runs), or the
            names of prediction folders (``predictions`` runs); None = the default set.
        predictions: folder of existing ``.masks.json`` files to score instead of running a model.
        limit: score only the first N images (sorted by name).
        model, checkpoint, device, verify: model choice as in ``samiam segment``.
        generator, boost: generator and booster settings.
        reuse_raw: reuse ``OUT/predictions/raw/<stem>.masks.json`` from an earlier run if present.
        difficulty_weights: region weights by difficulty for the image means, or None.
        match_iou: IoU from which a mask is matched to a region.
        boundary_ratio: boundary band width as a fraction of the image diagonal.
        progress: show a progress bar.
    """

    methods: list[str] | None = None
    predictions: Path | None = None
    limit: int | None = None
    model: str = "auto"
    checkpoint: str | None = None
    device: str | None = None
    verify: bool = True
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    boost: BoostConfig = field(default_factory=BoostConfig)
    reuse_raw: bool = False
    difficulty_weights: dict[str, float] | None = None
    match_iou: float = MATCH_IOU
    boundary_ratio: float = DEFAULT_RATIO
    progress: bool = True

    def record(self) -> dict[str, Any]:
        """The options as plain JSON data."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["generator"] = self.generator.to_dict()
        d["boost"] = self.boost.to_dict()
        d["predictions"] = str(self.predictions) if self.predictions else None
        return d


@dataclass
class BenchmarkResult:
    """What a run produced: the results document, the files written and the problems met."""

    results: dict[str, Any]
    files: dict[str, Path]
    problems: list[str]


# ------------------------------------------------------------------------------------- options


def parse_weights(text: str | None) -> dict[str, float] | None:
    """Parse ``none``, ``paper`` (easy 10 : hard 1) or ``class=weight,...`` into region weights.

    Raises:
        ParameterError: malformed text or a weight that is not a positive number.
    """
    if text is None or text.strip().lower() in ("", "none"):
        return None
    if text.strip().lower() == "paper":
        return dict(PAPER_DIFFICULTY_WEIGHTS)
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = -1.0
        if not sep or not name.strip() or weight <= 0:
            raise ParameterError(f"weights: expected none, paper or CLASS=WEIGHT,... with weights > 0, got '{text}'")
        out[name.strip()] = weight
    return out


def parse_methods(text: str | None) -> list[str] | None:
    """Split a comma-separated method list (None or empty = default)."""
    if text is None or not text.strip():
        return None
    methods = [m.strip() for m in text.split(",") if m.strip()]
    if len(set(methods)) != len(methods):
        raise ParameterError(f"methods: each method once, got '{text}'")
    return methods


def _model_methods(methods: list[str] | None) -> list[str]:
    methods = methods or [RAW, BOOSTED]
    for m in methods:
        known = m in (RAW, BOOSTED, *METHODS)
        if not known and not (m.startswith(BOOSTED + "-") and len(m) > len(BOOSTED) + 1):
            raise ParameterError(
                f"unknown method '{m}'; expected raw, boosted (the default booster), {', '.join(METHODS)} "
                "or boosted-<encoder> (e.g. boosted-stats)"
            )
    return methods


def boost_config_for(method: str, base: BoostConfig) -> BoostConfig:
    """Booster settings of a method: ``boosted`` = ``base``; ``fused``/``crops``/``field`` = ``base``
    with that method; ``boosted-ENC`` = ``base`` with encoder ENC (and the crop booster)."""
    if method == BOOSTED:
        return base
    if method in METHODS:
        return dataclasses.replace(base, method=method)
    return dataclasses.replace(base, encoder=method[len(BOOSTED) + 1 :], method="crops")


def prediction_sources(folder: Path, wanted: list[str] | None) -> dict[str, tuple[Path, str]]:
    """Find the methods in a predictions folder.

    Subfolders holding ``*.masks.json`` are one method each (named after the subfolder); else the
    folder itself is one method (its name) and, if it also holds ``*.raw.json`` files as written
    by ``samiam segment``, those are a second method ``<name>.raw``.

    Returns:
        ``{method: (folder, file suffix)}``.

    Raises:
        InputError: no prediction files, or a requested method that is not there.
    """
    if not folder.is_dir():
        raise InputError(f"{folder}: predictions folder not found")
    sources: dict[str, tuple[Path, str]] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        if any(sub.glob("*" + MASKS_SUFFIX)):
            sources[sub.name] = (sub, MASKS_SUFFIX)
    if not sources:
        if any(folder.glob("*" + MASKS_SUFFIX)):
            sources[folder.name] = (folder, MASKS_SUFFIX)
        if any(folder.glob("*" + RAW_SUFFIX)):
            sources[folder.name + ".raw"] = (folder, RAW_SUFFIX)
    if not sources:
        raise InputError(f"{folder}: no *{MASKS_SUFFIX} files in it or in its subfolders")
    if wanted:
        missing = [m for m in wanted if m not in sources]
        if missing:
            raise InputError(f"{folder}: no predictions for method(s) {', '.join(missing)}; found {', '.join(sources)}")
        sources = {m: sources[m] for m in wanted}
    return sources


# ------------------------------------------------------------------------------------- scoring


def _score(sample: Sample, seg: Segmentation, opts: BenchmarkOptions) -> dict[str, Any]:
    timings = seg.run.get("timings", {}) if isinstance(seg.run, dict) else {}
    t = time.perf_counter()
    score = score_image(
        (rec.decode() for rec in seg.masks),
        sample.labels,
        names=sample.names,
        difficulty=sample.difficulty,
        difficulty_weights=opts.difficulty_weights,
        match_iou=opts.match_iou,
        boundary_ratio=opts.boundary_ratio,
    )
    return {
        "summary": score.summary(),
        "regions": [r.as_dict() for r in score.regions],
        "boundary_width": score.boundary_width,
        "timings": {
            **(timings if isinstance(timings, dict) else {}),
            "score": round(time.perf_counter() - t, 4),
        },
    }


def _check_size(sample: Sample, seg: Segmentation, source: Path) -> None:
    if (seg.height, seg.width) != sample.labels.shape:
        h, w = sample.labels.shape
        raise InputError(f"{source}: masks are for {seg.width}x{seg.height} pixels, the label map is {w}x{h}")


class _ModelSegmenter:
    """Loads the model once; segments each image once and boosts the raw masks per method."""

    def __init__(self, opts: BenchmarkOptions, methods: list[str], pred_dir: Path, stems: list[str]):
        from samiam.boost.encoders import make_encoder
        from samiam.models.build import load_model
        from samiam.pipeline import SegmentConfig

        self.opts = opts
        self.pred_dir = pred_dir
        self.cfg = SegmentConfig(generator=opts.generator, boost=opts.boost).validate()
        self.boosted = {m: boost_config_for(m, opts.boost).validate() for m in methods if m != RAW}
        self.encoders = {m: make_encoder(c.encoder, c.encoder_weights, opts.device) for m, c in self.boosted.items()}
        self.reused_models: set[str] = set()
        # the model is loaded up front (so a bad model is one error), unless every raw file is reused
        all_saved = opts.reuse_raw and all(self._raw_path(s).is_file() for s in stems)
        self.model = None if all_saved else load_model(opts.model, opts.checkpoint, opts.device, verify=opts.verify)

    def _raw_path(self, stem: str) -> Path:
        return self.pred_dir / RAW / f"{stem}{MASKS_SUFFIX}"

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.model is not None:
            out = {**self.model.describe(), "model_choice": self.model.reason}
        if self.reused_models:
            out["reused_raw_masks_from"] = sorted(self.reused_models)
        return out

    def __call__(self, sample: Sample) -> dict[str, tuple[Segmentation, Path]]:
        from samiam.pipeline import boost_segmentation, segment_micrograph

        mic = sample.micrograph
        assert mic is not None
        raw_path = self._raw_path(sample.stem)
        raw = None
        if self.opts.reuse_raw and raw_path.is_file():
            raw = read_masks_json(raw_path)
            if (raw.height, raw.width) != (mic.height, mic.width):
                raw = None
            else:
                self.reused_models.add(str(raw.run.get("model", "unknown")))
        if raw is None:
            if self.model is None:  # a saved raw file did not fit: load the model now
                from samiam.models.build import load_model

                o = self.opts
                self.model = load_model(o.model, o.checkpoint, o.device, verify=o.verify)
            raw, _ = segment_micrograph(mic, self.model, self.cfg, boost=False)
            write_json(raw_path, raw.to_json())
        out = {RAW: (raw, raw_path)}
        for method, cfg in self.boosted.items():
            seg = boost_segmentation(raw, mic, cfg, self.encoders[method])
            path = self.pred_dir / method / f"{sample.stem}{MASKS_SUFFIX}"
            write_json(path, seg.to_json())
            out[method] = (seg, path)
        return out


def _read_predictions(
    sample: Sample, sources: dict[str, tuple[Path, str]], problems: list[str]
) -> dict[str, tuple[Segmentation, Path]]:
    out = {}
    for method, (folder, suffix) in sources.items():
        path = folder / f"{sample.stem}{suffix}"
        if not path.is_file():
            problems.append(f"{path}: missing prediction for image '{sample.stem}' (method {method})")
            continue
        try:
            seg = read_masks_json(path)
            _check_size(sample, seg, path)
        except InputError as exc:
            problems.append(str(exc))
            continue
        out[method] = (seg, path)
    return out


def score_sample(
    sample: Sample, segs: dict[str, tuple[Segmentation, Path]], opts: BenchmarkOptions, methods: list[str]
) -> dict[str, Any] | None:
    """One image's record for ``results.json``: every method's scores (None when no method has masks)."""
    scored = {m: {**_score(sample, seg, opts), "prediction": str(p)} for m, (seg, p) in segs.items() if m in methods}
    if not scored:
        return None
    return {
        "stem": sample.stem,
        "image": str(sample.image_path) if sample.image_path else None,
        "groups": sample.groups,
        "methods": scored,
    }


def _resolved_for_workers(opts: BenchmarkOptions) -> BenchmarkOptions:
    """Check the model here (a bad one is one error) and pin ``auto`` to what it resolved to."""
    from samiam.models.build import load_model

    if opts.reuse_raw:
        return opts
    loaded = load_model(opts.model, opts.checkpoint, "cpu", verify=opts.verify)
    return dataclasses.replace(opts, model=loaded.name, checkpoint=loaded.checkpoint)


def _one_line(stem: str, scored: dict[str, dict]) -> str:
    parts = [
        f"{m} mIoU {v['summary']['miou']:.3f} B-mIoU {v['summary']['boundary_miou']:.3f} "
        f"({v['summary']['n_pred']} masks)"
        for m, v in scored.items()
    ]
    return f"{stem}: " + "; ".join(parts)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def run_benchmark(
    dataset_path: str | Path,
    out_dir: str | Path,
    opts: BenchmarkOptions | None = None,
    echo: Callable[[str], None] | None = None,
    cluster: Any = None,
) -> BenchmarkResult:
    """Score every method on a labelled dataset and write results, report, plot and predictions.

    Args:
        dataset_path: dataset folder or COCO JSON (see ``samiam.bench.datasets``).
        out_dir: output folder: ``results.json``, ``results.md``, ``metrics.png``,
            ``predictions/<method>/<stem>.masks.json``.
        opts: run options.
        echo: where one-line-per-image messages go (default: above the progress bar).
        cluster: a ``samiam.distributed.spec.ClusterSpec``: segment and score the images on Dask
            workers (model runs only), or None to run here.

    Returns:
        The results, the files written and every problem met (one line each).

    Raises:
        SamiamError: nothing could be scored (bad dataset path, no predictions, bad model, ...).
    """
    from tqdm import tqdm

    opts = opts or BenchmarkOptions()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    segmenter = None
    # check everything a user can get wrong before creating the output folder
    if opts.predictions is not None and cluster is not None:
        raise ParameterError(
            "a cluster runs the model on workers; scoring existing predictions runs no model: give no cluster"
        )
    if opts.predictions is not None:
        sources = prediction_sources(Path(opts.predictions), opts.methods)
        methods = list(sources)
        dataset = open_dataset(dataset_path, read_images=False, limit=opts.limit)
        out_dir = check_writable_dir(out_dir)
    else:
        methods = _model_methods(opts.methods)
        dataset = open_dataset(dataset_path, read_images=True, limit=opts.limit)
        out_dir = check_writable_dir(out_dir)
        stems = [e.stem for e in dataset.entries]
        if cluster is not None:  # workers load the model; the client checks it (on cpu) and resolves auto
            opts = _resolved_for_workers(opts)
        else:
            segmenter = _ModelSegmenter(opts, methods, out_dir / "predictions", stems)
        model = segmenter.model if segmenter is not None else None
        if cluster is not None:
            _stderr(f"model: {opts.model}, loaded by each worker on its device")
        elif model is not None:
            _stderr(f"model: {model.name} on {model.device} ({model.reason})")
        else:
            _stderr(f"model: none loaded, reusing raw masks in {out_dir / 'predictions' / RAW}")
    problems = dataset.problems
    images: list[dict[str, Any]] = []
    samples = dataset.samples() if cluster is None else None
    bar = tqdm(samples, total=len(dataset), unit="image", disable=not opts.progress, file=sys.stderr)
    say = echo or (lambda line: bar.write(line, file=sys.stderr))
    try:
        if cluster is not None:
            from samiam.distributed.bench import score_on_cluster

            def _read() -> Iterator[Sample]:
                for sample in dataset.samples():
                    if sample is None:  # unreadable label/image: already in problems
                        bar.update(1)
                    else:
                        yield sample

            model_info: dict[str, Any] | None = None
            for record, found, info in score_on_cluster(cluster, _read(), opts, methods, out_dir / "predictions"):
                bar.update(1)
                problems.extend(found)
                model_info = model_info or info
                if record is not None:
                    say(_one_line(record["stem"], record["methods"]))
                    images.append(record)
            order = {e.stem: i for i, e in enumerate(dataset.entries)}
            images.sort(key=lambda r: order.get(r["stem"], len(order)))
            segmenter_info = model_info or {}
        else:
            for sample in bar:
                if sample is None:  # unreadable label/image: already in problems
                    continue
                try:
                    if segmenter is None:
                        segs = _read_predictions(sample, sources, problems)
                    else:
                        segs = segmenter(sample)
                except SamiamError as exc:
                    problems.append(str(exc))
                    continue
                record = score_sample(sample, segs, opts, methods)
                if record is None:
                    continue
                say(_one_line(sample.stem, record["methods"]))
                images.append(record)
    finally:
        bar.close()
    if not images:
        raise InputError(f"{dataset_path}: no image could be scored ({len(problems)} problems)")
    results = {
        "run": {
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "samiam_version": __version__,
            "started": started,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
            "python": platform.python_version(),
            "methods": methods,
            "model": segmenter_info if cluster is not None else segmenter.describe() if segmenter else None,
            "options": opts.record(),
        },
        "dataset": {
            "path": str(dataset_path),
            "layout": dataset.layout,
            "n_images": len(dataset),
            "n_scored": len(images),
            "problems": problems,
        },
        "summary": summarise(images, methods),
        "images": images,
    }
    files = {
        "results": write_json(out_dir / "results.json", results),
        "report": write_markdown(out_dir / "results.md", results),
        "plot": plot_summary(out_dir / "metrics.png", results["summary"], title=f"samiam benchmark: {dataset_path}"),
    }
    return BenchmarkResult(results=results, files=files, problems=problems)
