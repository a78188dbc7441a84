"""The defect stage end to end: train a model folder from images, run it on one micrograph."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from samiam import __version__
from samiam.defects.attributes import apply_attribute_rule, build_attribute_rule, name_attributes, physical_descriptors
from samiam.defects.autoencoder import PatchAutoencoder
from samiam.defects.blobs import BlobParams, blob_regions
from samiam.defects.calibrate import Calibration, calibrate
from samiam.defects.classes import ClassModel, fit_classes
from samiam.defects.instances import DefectInstance, find_instances
from samiam.defects.maps import DefectMaps, MapParams, compute_maps
from samiam.defects.mask import MaskParams, blob_defect_mask, defect_mask, error_zscore
from samiam.defects.naming import (
    UNKNOWN,
    Example,
    Prototypes,
    assign_names,
    build_prototypes,
    example_instances,
    standardise,
)
from samiam.defects.patches import centre_patches, patches_at, sample_patches
from samiam.defects.prepare import PreparedImage, prepare_heights
from samiam.defects.steps import StepParams
from samiam.defects.store import DefectModel, save_model
from samiam.defects.train import TrainConfig, seed_everything, train_autoencoder
from samiam.errors import InputError, ParameterError
from samiam.io.micrograph import Micrograph


@dataclass
class DefectParams:
    """Parameters of one defect analysis (the same at training and at run time).

    Attributes:
        steps: step-edge detection.
        maps: error and character maps.
        mask: defect mask and clean-up.
        blobs: scale-matched blob detector (``blobs.enabled=False``: the AE1 error mask alone).
        detect_steps: find step edges, level terraces and exclude a band around steps.
        seed: seed of every random choice (K-means, sampling).
        device: torch device name (None/"auto": cuda > mps > cpu).
    """

    steps: StepParams = field(default_factory=StepParams)
    maps: MapParams = field(default_factory=MapParams)
    mask: MaskParams = field(default_factory=MaskParams)
    blobs: BlobParams = field(default_factory=BlobParams)
    detect_steps: bool = True
    seed: int = 0
    device: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainParams:
    """Training settings of the two autoencoders and the class mixture.

    Attributes:
        ae1: optimiser settings of AE1.
        ae2: optimiser settings of AE2.
        patch: patch side (px) of both autoencoders.
        latent1: AE1 latent dimension.
        latent2: AE2 latent dimension.
        patches_per_image: random AE1 training patches drawn from each image.
        patches_per_defect: AE2 training patches centred on random pixels of each defect.
        max_classes: largest number of mixture components tried.
    """

    ae1: TrainConfig = field(default_factory=TrainConfig)
    ae2: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=40, batch_size=128))
    patch: int = 32
    latent1: int = 32
    latent2: int = 8
    patches_per_image: int = 1000
    patches_per_defect: int = 8
    max_classes: int = 8

    def check(self) -> None:
        """Raise ParameterError for out-of-range values."""
        if self.patch % 8 or self.patch < 16:
            raise ParameterError(f"patch side must be a multiple of 8 and >= 16, got {self.patch}")
        if self.latent1 < 1 or self.latent2 < 1:
            raise ParameterError("latent dimensions must be >= 1")
        if self.patches_per_image < 1 or self.patches_per_defect < 1:
            raise ParameterError("patches per image and per defect must be >= 1")
        if self.max_classes < 1:
            raise ParameterError(f"max classes must be >= 1, got {self.max_classes}")
        self.ae1.check()
        self.ae2.check()

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Detection:
    """Detection result of one image (before classification).

    Attributes:
        prepared: the flattened, levelled, normalised heights and the step edges.
        maps: AE1 error and character maps.
        error_z: error map in robust z-scores.
        mask: bool HxW defect mask.
        labels: int32 HxW instance labels (0 = background).
        instances: the defect instances.
        rare_clusters: character clusters added to the mask (error-mask mode).
        period: lattice period (px) found in the image, or None.
        n_blobs: blobs kept by the blob detector.
        calibration: the image's noise, spacing and feature scale (blob mode), or None.
    """

    prepared: PreparedImage
    maps: DefectMaps
    error_z: np.ndarray
    mask: np.ndarray
    labels: np.ndarray
    instances: list[DefectInstance]
    rare_clusters: list[int]
    period: float | None = None
    n_blobs: int = 0
    calibration: Calibration | None = None


@dataclass
class FoundDefects:
    """The defect mask of one image and how it was found.

    Attributes:
        mask: bool HxW defect mask.
        error_z: HxW AE1 error z-score.
        rare_clusters: character clusters added to the mask (error-mask mode).
        period: lattice period (px) or None (blob mode).
        n_blobs: blobs kept (blob mode).
        regions: int32 HxW split of the mask into one region per defect (blob mode), or None
            (connected components).
        calibration: the image's noise, spacing and feature scale (blob mode), or None.
    """

    mask: np.ndarray
    error_z: np.ndarray
    rare_clusters: list[int]
    period: float | None = None
    n_blobs: int = 0
    regions: np.ndarray | None = None
    calibration: Calibration | None = None


def find_defects(prepared: PreparedImage, maps: DefectMaps, params: DefectParams) -> FoundDefects:
    """Defect mask of a prepared image from its AE1 maps (blob detector or error mask)."""
    exclude = prepared.exclude
    if params.blobs.enabled:
        z = error_zscore(maps.error, exclude)
        mask, blobs, period, cal = blob_defect_mask(prepared.heights, z, exclude, params.blobs, params.mask)
        regions = blob_regions(mask, blobs, params.blobs.radius_factor)
        return FoundDefects(mask, z, [], period, len(blobs.sigma), regions, cal)
    mask, z, rare = defect_mask(maps.error, maps.character, exclude, params.mask)
    return FoundDefects(mask, z, rare)


@dataclass
class DefectResult:
    """Everything written for one image.

    Attributes:
        source: input file.
        stem: output file stem.
        detection: maps, mask and instances.
        class_map: int32 HxW class per pixel (-1 = no defect).
        timings: seconds per stage.
        record: the run record for the JSON (model, parameters, versions).
    """

    source: str
    stem: str
    detection: Detection
    class_map: np.ndarray
    timings: dict[str, float]
    record: dict


def resolve_device(name: str | None) -> torch.device:
    """The torch device to use: cuda > mps > cpu unless ``name`` forces one."""
    from samiam.models.device import pick_device

    return pick_device(name)


def detect(
    raw: np.ndarray,
    source: str,
    ae1: PatchAutoencoder,
    params: DefectParams,
    device: torch.device,
    timings: dict[str, float] | None = None,
) -> Detection:
    """Flatten, find steps, compute the maps and the defect mask, and split it into instances.

    Args:
        raw: HxW heights.
        source: name for error messages.
        ae1: the map autoencoder.
        params: analysis parameters.
        device: torch device.
        timings: optional dict that receives seconds per stage.

    Returns:
        The detection.
    """
    t = timings if timings is not None else {}
    t0 = time.perf_counter()
    prepared = prepare_heights(raw, source, steps=params.steps, detect=params.detect_steps)
    t1 = time.perf_counter()
    maps = compute_maps(ae1, prepared.heights, params.maps, device=device, seed=params.seed)
    t2 = time.perf_counter()
    found = find_defects(prepared, maps, params)
    labels, instances = find_instances(found.mask, prepared.heights, regions=found.regions)
    t3 = time.perf_counter()
    t.update({"flatten_steps": t1 - t0, "maps": t2 - t1, "mask": t3 - t2})
    return Detection(
        prepared,
        maps,
        found.error_z,
        found.mask,
        labels,
        instances,
        found.rare_clusters,
        found.period,
        found.n_blobs,
        found.calibration,
    )


def instance_centres(instances: list[DefectInstance], shape: tuple[int, int]) -> np.ndarray:
    """(N, 2) int (y, x) pixel of each instance centroid, clipped to the image."""
    if not instances:
        return np.zeros((0, 2), int)
    c = np.array([[d.centroid[1], d.centroid[0]] for d in instances])
    c = np.rint(c).astype(int)
    return np.clip(c, 0, np.array(shape) - 1)


def shape_descriptors(instances: list[DefectInstance]) -> np.ndarray:
    """(N, 3) per-defect descriptors: sign of the contrast, log amplitude, log area.

    Labelled STM defect types are peak/trough x bright/dim x large/small, which is exactly
    the sign, the amplitude and the size of the defect.
    """
    c = np.array([d.contrast for d in instances], np.float64)
    area = np.array([d.area for d in instances], np.float64)
    return np.stack([np.sign(c), np.log(np.abs(c) + 0.1), np.log(np.maximum(area, 1.0))], 1).astype(np.float32)


def defect_features(
    ae2: PatchAutoencoder, heights: np.ndarray, instances: list[DefectInstance], device: torch.device
) -> np.ndarray:
    """Class features of each instance, (N, latent2 + 3): the AE2 latent of the patch centred on its
    centroid, then ``shape_descriptors`` (sign, log amplitude, log area)."""
    if not instances:
        return np.zeros((0, ae2.latent + 3), np.float32)
    patches = centre_patches(patches_at(heights, ae2.patch, instance_centres(instances, heights.shape)))
    ae2.eval()
    with torch.no_grad():
        x = torch.from_numpy(patches).unsqueeze(1).to(device)
        latent = ae2.encode(x).cpu().numpy()
    return np.concatenate([latent, shape_descriptors(instances)], axis=1)


def classify(
    instances: list[DefectInstance],
    heights: np.ndarray,
    ae2: PatchAutoencoder,
    classes: ClassModel,
    device: torch.device,
    prototypes: Prototypes | None = None,
    calibration: Calibration | None = None,
    pixel_nm: float | None = None,
) -> np.ndarray:
    """Set class, class probability and soft assignments of every instance (in place).

    With ``prototypes`` (``learn_prototypes``), also its few-shot ``name`` and ``name_distance``:
    by physical attributes when the prototypes carry an attribute rule (``calibration``, default
    measured on ``heights``, and ``pixel_nm`` give the units), else by the nearest prototype.

    Returns:
        The (N, d) class features.
    """
    feats = defect_features(ae2, heights, instances, device)
    cls, prob, soft = classes.predict(feats)
    for inst, c, p, s in zip(instances, cls, prob, soft, strict=True):
        inst.cls, inst.probability, inst.soft = int(c), float(p), [float(v) for v in s]
    if prototypes is not None and prototypes.attributes is not None:
        desc = instance_descriptors(instances, heights, calibration, pixel_nm, prototypes.attributes.size_unit)
        names, dist = apply_attribute_rule(desc, prototypes.attributes, UNKNOWN)
        for inst, n, d in zip(instances, names, dist, strict=True):
            inst.name, inst.name_distance = n, float(d)
    elif prototypes is not None:
        names, dist = assign_names(standardise(feats, classes.mean, classes.std), prototypes)
        for inst, n, d in zip(instances, names, dist, strict=True):
            inst.name, inst.name_distance = n, float(d)
    return feats


def micrograph_pixel_nm(mg: Micrograph) -> float | None:
    """The micrograph's pixel size in nm, or None when its file does not say it."""
    from samiam.library.store import pixel_size_nm

    if mg.pixel_unit is not None and mg.pixel_unit.strip().lower() in ("m", "metre", "meter"):
        return pixel_size_nm(mg.pixel_size * 1e9 if mg.pixel_size is not None else None, "nm")
    return pixel_size_nm(mg.pixel_size, mg.pixel_unit)


def instance_descriptors(
    instances: list[DefectInstance],
    heights: np.ndarray,
    calibration: Calibration | None,
    pixel_nm: float | None,
    size_unit: str,
) -> np.ndarray:
    """(N, 3) ``attributes.physical_descriptors`` of the instances of one image.

    Args:
        instances: the defects.
        heights: the image's normalised heights (calibrated here when ``calibration`` is None).
        calibration: the image's noise and feature scale, or None.
        pixel_nm: the image's pixel size in nm, or None.
        size_unit: ``"nm"`` (``pixel_nm`` required) or ``"feature scale"``.

    Raises:
        InputError: sizes in nm are asked for and the image has no pixel size.
    """
    if size_unit == "nm" and pixel_nm is None:
        raise InputError(
            "the example images say their pixel size, so defect sizes are named in nm; "
            "expected an image with a pixel size, got one without"
        )
    cal = calibration if calibration is not None else calibrate(heights)
    return physical_descriptors(
        np.array([d.contrast for d in instances], np.float64),
        np.array([d.area for d in instances], np.float64),
        max(cal.noise, 1e-9),  # a noiseless (synthetic) image: amplitudes stay finite
        pixel_nm if size_unit == "nm" else None,
        cal.feature_scale,
    )


def learn_prototypes(
    examples: list[Example],
    model: DefectModel,
    params: DefectParams | None = None,
    source: str = "",
    read: Callable[[Path], Micrograph] | None = None,
) -> Prototypes:
    """Few-shot class prototypes from labelled example boxes (``naming.read_examples``).

    Each example image is analysed like any other (``detect``); a box stands for the detected
    defect whose centroid it holds (nearest its centre), else for a defect made from the box
    itself; the class features of these defects, standardised like the model's mixture, give
    the prototypes (``naming.build_prototypes``). When the class names are physical attribute
    words (``Large Bright Peak``, ...), the prototypes also get an attribute rule
    (``attributes.build_attribute_rule``) from the examples' sign, amplitude (in units of their
    image's noise) and size (in nm when every example image says its pixel size, else in units of
    its image's feature scale), and names are given by it.

    Args:
        examples: the labelled boxes.
        model: the loaded model.
        params: analysis parameters (as for the images to name).
        source: examples file (for messages and the record).
        read: returns the micrograph of an example's ``file`` (default ``readers.read_stm``).

    Returns:
        The prototypes.

    Raises:
        InputError: an example image cannot be read.
    """
    from samiam.defects.readers import read_stm

    read = read or read_stm
    p = params or DefectParams()
    device = resolve_device(p.device)
    ae1, ae2 = model.ae1.to(device), model.ae2.to(device)
    feats, labels, found = [], [], []
    by_file: dict[Path, list[Example]] = {}
    for ex in examples:
        by_file.setdefault(ex.file, []).append(ex)
    for file, exs in by_file.items():  # a few example images
        mg = read(file)
        det = detect(mg.raw, mg.source, ae1, p, device)
        insts = example_instances([e.box for e in exs], det.instances, det.prepared.heights)
        raw = defect_features(ae2, det.prepared.heights, insts, device)
        feats.append(standardise(raw, model.classes.mean, model.classes.std))
        labels += [e.label for e in exs]
        found.append((insts, det.prepared.heights, det.calibration, micrograph_pixel_nm(mg)))
    protos = build_prototypes(np.concatenate(feats), labels, source)
    if name_attributes(sorted(set(labels))) is not None:
        unit = "nm" if all(f[3] is not None for f in found) else "feature scale"
        desc = np.concatenate([instance_descriptors(*f, unit) for f in found])
        protos.attributes = build_attribute_rule(desc, labels, unit)
    return protos


def class_map(labels: np.ndarray, instances: list[DefectInstance]) -> np.ndarray:
    """int32 HxW class per pixel (-1 outside defects)."""
    lut = np.full(len(instances) + 1, -1, np.int32)
    for inst in instances:
        lut[inst.id] = inst.cls
    return lut[labels]


def run_defects(
    mg: Micrograph, model: DefectModel, params: DefectParams | None = None, prototypes: Prototypes | None = None
) -> DefectResult:
    """Analyse one micrograph with a trained model folder.

    Args:
        mg: the micrograph (its ``raw`` heights are used).
        model: the loaded model.
        params: analysis parameters.
        prototypes: few-shot named classes (``learn_prototypes``): every defect also gets a name.

    Returns:
        The result, ready for ``outputs.write_defect_outputs``.
    """
    p = params or DefectParams()
    device = resolve_device(p.device)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    ae1, ae2 = model.ae1.to(device), model.ae2.to(device)
    pixel_nm = micrograph_pixel_nm(mg)
    rule = prototypes.attributes if prototypes is not None else None
    if rule is not None and rule.size_unit == "nm" and pixel_nm is None:
        raise InputError(
            f"{mg.source}: the example images say their pixel size, so defect sizes are named in nm; "
            "expected an image with a pixel size, got one without"
        )
    det = detect(mg.raw, mg.source, ae1, p, device, timings)
    t1 = time.perf_counter()
    classify(
        det.instances,
        det.prepared.heights,
        ae2,
        model.classes,
        device,
        prototypes,
        det.calibration,
        pixel_nm,
    )
    cmap = class_map(det.labels, det.instances)
    timings["classes"] = time.perf_counter() - t1
    timings["total"] = time.perf_counter() - t0
    record = {
        "model": str(model.path) if model.path else None,
        "model_format_version": model.config.get("format_version"),
        "model_samiam_version": model.config.get("samiam_version"),
        "samiam_version": __version__,
        "torch_version": torch.__version__,
        "device": str(device),
        "parameters": p.to_dict(),
        "n_classes": model.classes.n_classes,
        "character_k": det.maps.k,
        "character_silhouette": det.maps.k_scores,
        "rare_clusters": det.rare_clusters,
        "lattice_period_px": det.period,
        "n_blobs": det.n_blobs,
        "calibration": det.calibration.to_dict() if det.calibration is not None else None,
        "naming": prototypes.to_dict() if prototypes is not None else None,
        "annotation_fraction": float(det.prepared.annotation.mean()) if det.prepared.annotation is not None else 0.0,
        "n_steps": det.prepared.steps.n_steps,
        "step_band_fraction": float(det.prepared.steps.band.mean()),
        "height_scale": det.prepared.scale,
        "timings_s": {k: round(v, 4) for k, v in timings.items()},
    }
    return DefectResult(mg.source, mg.stem, det, cmap, timings, record)


def train_defect_model(
    images: list[Micrograph],
    out_dir: str | Path,
    params: DefectParams | None = None,
    train: TrainParams | None = None,
    *,
    progress: bool = True,
    ae1: PatchAutoencoder | None = None,
) -> DefectModel:
    """Train AE1 on random patches, detect defects, train AE2 on defect patches, fit the class mixture.

    Args:
        images: training micrographs (their ``raw`` heights).
        out_dir: model folder to write.
        params: analysis parameters used to find the training defects.
        train: training settings.
        progress: show progress bars.
        ae1: a trained map autoencoder to reuse (AE1 is then not trained again; e.g. to refit AE2
            and the classes after changing detection parameters).

    Returns:
        The saved model.

    Raises:
        ParameterError: no images, or too few defects found to fit classes.
    """
    from tqdm import tqdm

    p = params or DefectParams()
    tp = train or TrainParams()
    tp.check()
    if not images:
        raise ParameterError("no training images given")
    device = resolve_device(p.device)
    seed_everything(p.seed)
    rng = np.random.default_rng(p.seed)
    prepared = [
        prepare_heights(mg.raw, mg.source, steps=p.steps, detect=p.detect_steps)
        for mg in tqdm(images, desc="flatten", unit="image", disable=not progress, leave=False)
    ]
    patches = np.concatenate(
        [centre_patches(sample_patches(pr.heights, tp.patch, tp.patches_per_image, rng)) for pr in prepared]
    )
    if ae1 is None:
        ae1 = PatchAutoencoder(tp.patch, tp.latent1)
        curve1 = train_autoencoder(ae1, patches, tp.ae1, seed=p.seed, device=device, desc="AE1", progress=progress)
    else:
        ae1 = ae1.to(device)
        curve1 = []
    defect_patches, per_image, train_prepared, train_instances = [], [], [], []
    for mg, pr in tqdm(
        list(zip(images, prepared, strict=True)), desc="defects", unit="image", disable=not progress, leave=False
    ):
        maps = compute_maps(ae1, pr.heights, p.maps, device=device, seed=p.seed)
        found = find_defects(pr, maps, p)
        mask = found.mask
        _, instances = find_instances(mask, pr.heights, regions=found.regions)
        per_image.append({"image": mg.source, "defects": len(instances)})
        if not instances:
            continue
        ys, xs = np.nonzero(mask)
        centres = np.concatenate([instance_centres(instances, pr.heights.shape), np.stack([ys, xs], 1)])
        n = len(instances) * tp.patches_per_defect
        defect_patches.append((pr, centres[: len(instances)], centres, n))
        train_prepared.append(pr)
        train_instances.append(instances)
    n_defects = sum(len(c) for _, c, _, _ in defect_patches)
    if n_defects < 4:
        raise ParameterError(
            f"{n_defects} defect(s) found in {len(images)} training image(s); at least 4 are needed to learn "
            "defect classes (add images, or lower the detection threshold: BlobParams.threshold, or --error-threshold "
            "in error-mask mode)"
        )
    ae2_patches = np.concatenate(
        [
            centre_patches(
                np.concatenate(
                    [patches_at(pr.heights, tp.patch, cen), sample_patches(pr.heights, tp.patch, n, rng, centres=pool)]
                )
            )
            for pr, cen, pool, n in defect_patches
        ]
    )
    ae2 = PatchAutoencoder(tp.patch, tp.latent2)
    curve2 = train_autoencoder(ae2, ae2_patches, tp.ae2, seed=p.seed + 1, device=device, desc="AE2", progress=progress)
    feats = np.concatenate(
        [
            defect_features(ae2, pr.heights, inst, device)
            for pr, inst in zip(train_prepared, train_instances, strict=True)
        ]
    )
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        classes = fit_classes(feats, max_components=tp.max_classes, seed=p.seed)
    model = DefectModel(
        ae1.cpu(),
        ae2.cpu(),
        classes,
        {
            "seed": p.seed,
            "parameters": p.to_dict(),
            "training": tp.to_dict(),
            "training_images": per_image,
            "n_training_patches_ae1": int(len(patches)),
            "n_training_patches_ae2": int(len(ae2_patches)),
            "curves": {"ae1": len(curve1), "ae2": len(curve2)},
        },
    )
    save_model(model, out_dir, {"curve_ae1": curve1, "curve_ae2": curve2})
    return model
