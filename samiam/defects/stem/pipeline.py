"""Find STEM point defects in one image: lattice, bulk, columns, residual, candidates."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from samiam.defects.stem.bulk import fourier_bulk
from samiam.defects.stem.columns import Columns, find_columns
from samiam.defects.stem.instances import (
    COLUMN_THRESHOLD,
    INTERSTITIAL_THRESHOLD,
    MIN_RELATIVE,
    Candidates,
    gather,
    select,
)
from samiam.defects.stem.lattice import StemLattice, find_lattice
from samiam.defects.stem.residual import SMOOTH, column_deviations, off_lattice_peaks, smooth
from samiam.errors import ParameterError


@dataclass
class StemParams:
    """Parameters of the STEM defect finder.

    Attributes:
        column_threshold: robust sigmas a column must deviate from the bulk (darker or brighter).
        interstitial_threshold: robust sigmas an off-lattice residual peak must reach.
        min_relative: smallest deviation called a defect, as a fraction of the column contrast.
        reference: "fourier" (the Fourier-filtered bulk image at the column; measured best) or
            "neighbours" (median of nearby columns of the same sublattice).
        border: skip defects within this many lattice periods of the image edge.
        max_classes: largest number of K-means classes tried (silhouette).
        seed: K-means seed.
    """

    column_threshold: float = COLUMN_THRESHOLD
    interstitial_threshold: float = INTERSTITIAL_THRESHOLD
    min_relative: float = MIN_RELATIVE
    reference: str = "fourier"
    border: float = 1.5
    max_classes: int = 6
    seed: int = 0

    def check(self) -> None:
        """Raise ParameterError for out-of-range values."""
        if self.column_threshold <= 0 or self.interstitial_threshold <= 0:
            raise ParameterError(
                f"expected positive thresholds, got {self.column_threshold}, {self.interstitial_threshold}"
            )
        if self.reference not in ("fourier", "neighbours"):
            raise ParameterError(f"expected reference 'fourier' or 'neighbours', got '{self.reference}'")
        if self.min_relative < 0:
            raise ParameterError(f"expected min relative >= 0, got {self.min_relative}")
        if self.border < 0:
            raise ParameterError(f"expected border >= 0, got {self.border}")
        if self.max_classes < 2:
            raise ParameterError(f"expected max classes >= 2, got {self.max_classes}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class StemDetection:
    """What the finder measured in one image.

    Attributes:
        image: float32 HxW input.
        lattice: period and Bragg mask.
        bulk: float32 HxW Fourier-filtered lattice image.
        residual: float32 HxW smoothed image minus smoothed bulk.
        columns: the atom columns.
        candidates: every column and off-lattice peak with its z-score.
        defects: the candidates past the thresholds.
        timings: seconds per stage.
    """

    image: np.ndarray
    lattice: StemLattice
    bulk: np.ndarray
    residual: np.ndarray
    columns: Columns
    candidates: Candidates
    defects: Candidates
    timings: dict[str, float] = field(default_factory=dict)


def measure(
    image: np.ndarray,
    source: str = "<array>",
    reference: str = "fourier",
    border: float = 1.5,
    smoothing: float = SMOOTH,
) -> tuple:
    """Everything up to the thresholds: (lattice, bulk, residual, columns, candidates, timings)."""
    t0 = time.perf_counter()
    raw = np.asarray(image, np.float64)
    img = (raw - np.median(raw)).astype(np.float32)  # counts of ~10^6 keep their precision in float32
    lat = find_lattice(img, source)
    t1 = time.perf_counter()
    bulk = fourier_bulk(img, lat.bragg)
    cols = find_columns(bulk, lat.period_px, source)
    t2 = time.perf_counter()
    sm, sb = smooth(img, cols.spacing, smoothing), smooth(bulk, cols.spacing, smoothing)
    edge = border * lat.period_px
    dev = column_deviations(sm, sb, cols.xy, cols.spacing, reference, edge)
    contrast = float(np.median(dev.expected) - np.percentile(sb, 2))
    resid = sm - sb
    peaks = off_lattice_peaks(resid, cols.xy, cols.spacing, contrast, int(edge))
    cand = gather(dev, cols.xy, peaks, img.shape, edge)
    t3 = time.perf_counter()
    timings = {"lattice": t1 - t0, "bulk_columns": t2 - t1, "residual": t3 - t2}
    return lat, bulk, resid, cols, cand, timings


def detect_stem(image: np.ndarray, source: str = "<array>", params: StemParams | None = None) -> StemDetection:
    """Find the point defects of one HAADF/ADF image against its own bulk lattice.

    Args:
        image: HxW image (counts or any linear intensity; brighter = heavier).
        source: name for error messages.
        params: finder parameters.

    Returns:
        The detection.

    Raises:
        InputError: the image shows no clear lattice.
    """
    p = params or StemParams()
    p.check()
    lat, bulk, resid, cols, cand, timings = measure(image, source, p.reference, p.border)
    found = cand.subset(select(cand, p.column_threshold, p.interstitial_threshold, p.min_relative))
    return StemDetection(np.asarray(image, np.float32), lat, bulk, resid, cols, cand, found, timings)
