"""Run the STEM defect stage: learn classes from the images given (or a model), classify, record."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from samiam import __version__
from samiam.defects.instances import DefectInstance
from samiam.defects.stem.classes import fit_classes
from samiam.defects.stem.instances import PSEUDO_LABELS, descriptors, pseudo_labels, to_instances
from samiam.defects.stem.model import StemModel
from samiam.defects.stem.pipeline import StemDetection, StemParams, detect_stem
from samiam.errors import ParameterError
from samiam.io.micrograph import Micrograph


@dataclass
class StemResult:
    """Everything written for one image.

    Attributes:
        source: input file.
        stem: output file stem.
        detection: lattice, bulk, residual and defects.
        instances: the defects with class and probability.
        pseudo: (N,) pseudo-label index (``PSEUDO_LABELS``) of each defect.
        descriptors: (N, D) class descriptors.
        soft: (N, K) soft class assignments.
        class_names: a name per class.
        record: the run record for the JSON.
    """

    source: str
    stem: str
    detection: StemDetection
    instances: list[DefectInstance]
    pseudo: np.ndarray
    descriptors: np.ndarray
    soft: np.ndarray
    class_names: list[str]
    record: dict


def train_stem_model(images: list[Micrograph], params: StemParams | None = None, method: str = "kmeans") -> StemModel:
    """Find the defects of every image and fit the classes on all of them.

    Args:
        images: micrographs (their ``raw`` intensities are used).
        params: finder parameters.
        method: "kmeans" (silhouette) or "gmm" (BIC).

    Returns:
        The model (not saved).

    Raises:
        ParameterError: no images.
        InputError: an image shows no lattice.
    """
    p = params or StemParams()
    p.check()
    if not images:
        raise ParameterError("expected at least one training image, got none")
    descs, pseudos, per_image = [], [], []
    for mg in images:  # one entry per image
        det = detect_stem(mg.raw, mg.source, p)
        descs.append(descriptors(det.defects))
        pseudos.append(pseudo_labels(det.defects))
        per_image.append({"image": mg.source, "defects": len(det.defects)})
    classes = fit_classes(np.concatenate(descs), np.concatenate(pseudos), p.max_classes, p.seed, method)
    return StemModel(classes, p, {"training_images": per_image, "n_defects": int(sum(len(d) for d in descs))})


def analyse_stem(mg: Micrograph, model: StemModel, learned_here: bool = False) -> StemResult:
    """Find, classify and record the defects of one micrograph.

    Args:
        mg: the micrograph.
        model: the class model and parameters (trained on these images or loaded).
        learned_here: the model was fitted on this run's images (recorded).

    Returns:
        The result, ready for ``outputs.write_stem_outputs``.
    """
    t0 = time.perf_counter()
    det = detect_stem(mg.raw, mg.source, model.params)
    d = det.defects
    desc = descriptors(d)
    cls, prob, soft = model.classes.predict(desc)
    insts = to_instances(d, det.columns.spacing, det.image.shape)
    for inst, c, pr, s in zip(insts, cls, prob, soft, strict=True):  # one per defect
        inst.cls, inst.probability, inst.soft = int(c), float(pr), [float(v) for v in s]
    det.timings["total"] = time.perf_counter() - t0
    pseudo = pseudo_labels(d)
    record = {
        "modality": "stem",
        "model": str(model.path) if model.path else ("learned from this run's images" if learned_here else None),
        "samiam_version": __version__,
        "parameters": model.params.to_dict(),
        "class_names": model.classes.names,
        "class_selection": model.classes.selection,
        "lattice_period_px": round(det.lattice.period_px, 4),
        "column_spacing_px": round(det.columns.spacing, 4),
        "n_columns": int(len(det.columns.xy)),
        "n_bragg_peaks": det.lattice.n_peaks,
        "pseudo_label_counts": {n: int((pseudo == i).sum()) for i, n in enumerate(PSEUDO_LABELS)},
        "timings_s": {k: round(v, 4) for k, v in det.timings.items()},
    }
    return StemResult(mg.source, mg.stem, det, insts, pseudo, desc, soft, model.classes.names, record)
