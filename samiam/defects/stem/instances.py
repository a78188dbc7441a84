"""Pseudo-labels and instances: columns and off-lattice peaks past the thresholds become defects."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samiam.defects.instances import DefectInstance
from samiam.defects.stem.residual import ColumnDeviations, OffLatticePeaks

PSEUDO_LABELS = ("vacancy-like", "substitution-like", "interstitial-like")
# Thresholds in robust sigmas, chosen by leave-images-out cross-validation on the synthetic set
# (benchmarks/defects/run_stem_benchmark.py, STEM_RESULTS.md).
# Each default is the mean of the two folds' choices rounded up to the 0.25 grid (up: fewer false
# detections on defect-free images): columns 4.25 / 4.25, off-lattice 5.0 / 6.75, min relative 0.25 / 0.2.
COLUMN_THRESHOLD = 4.25
INTERSTITIAL_THRESHOLD = 6.0
# Smallest deviation called a defect, as a fraction of the column contrast (chosen the same way).
MIN_RELATIVE = 0.25


@dataclass
class Candidates:
    """Every column and off-lattice peak of one image, with its deviation from the bulk.

    Attributes:
        xy: (N, 2) float (x, y): the columns first, then the off-lattice peaks.
        z: (N,) robust z-score (signed for columns; off-lattice peaks are positive).
        relative: (N,) deviation relative to the column contrast.
        distance: (N,) distance to the nearest lattice column / spacing (0 for columns).
        on_lattice: (N,) bool, True for columns.
    """

    xy: np.ndarray
    z: np.ndarray
    relative: np.ndarray
    distance: np.ndarray
    on_lattice: np.ndarray

    def __len__(self) -> int:
        return len(self.z)

    def subset(self, keep: np.ndarray) -> Candidates:
        return Candidates(self.xy[keep], self.z[keep], self.relative[keep], self.distance[keep], self.on_lattice[keep])


def gather(cols: ColumnDeviations, xy: np.ndarray, peaks: OffLatticePeaks, shape: tuple, border: float) -> Candidates:
    """Columns and off-lattice peaks as one candidate list, dropping those within ``border`` px of the edge."""
    c = Candidates(
        np.concatenate([xy, peaks.xy]),
        np.concatenate([cols.z, peaks.z]),
        np.concatenate([cols.relative, peaks.relative]),
        np.concatenate([np.zeros(len(xy)), peaks.distance]),
        np.concatenate([np.ones(len(xy), bool), np.zeros(len(peaks.xy), bool)]),
    )
    h, w = shape
    x, y = c.xy[:, 0], c.xy[:, 1]
    inside = (x >= border) & (x < w - border) & (y >= border) & (y < h - border)
    return c.subset(inside)


def select(
    c: Candidates,
    column: float = COLUMN_THRESHOLD,
    interstitial: float = INTERSTITIAL_THRESHOLD,
    min_relative: float = MIN_RELATIVE,
) -> np.ndarray:
    """Indices of the defects: columns with |z| >= ``column``, off-lattice peaks with z >= ``interstitial``,
    both deviating by at least ``min_relative`` of the column contrast."""
    hit = np.where(c.on_lattice, np.abs(c.z) >= column, c.z >= interstitial) & (np.abs(c.relative) >= min_relative)
    return np.flatnonzero(hit)


def pseudo_labels(c: Candidates) -> np.ndarray:
    """int (N,) index into ``PSEUDO_LABELS``: dark column, bright column, off-lattice."""
    return np.where(c.on_lattice, np.where(c.z < 0, 0, 1), 2)


def descriptors(c: Candidates) -> np.ndarray:
    """(N, 2) dose-independent class descriptors: relative deviation (clipped to +-3) and off-lattice (0/1).

    Measured against (relative, log magnitude, lattice distance) and (relative, lattice distance):
    those split one kind into several K-means classes (AMI 0.74-0.89 vs 0.94-1.0; STEM_RESULTS.md).
    """
    rel = np.clip(c.relative, -3, 3)
    return np.stack([rel, (~c.on_lattice).astype(np.float64)], 1)


def to_instances(c: Candidates, spacing: float, shape: tuple) -> list[DefectInstance]:
    """One ``DefectInstance`` per defect: a box of one column spacing around it; contrast = relative deviation."""
    h, w = shape
    half = max(1, int(round(spacing / 2)))
    out = []
    for i, ((x, y), rel) in enumerate(zip(c.xy, c.relative, strict=True)):  # one per defect (tens)
        x0, y0 = max(0, int(round(x)) - half), max(0, int(round(y)) - half)
        x1, y1 = min(w, int(round(x)) + half + 1), min(h, int(round(y)) + half + 1)
        out.append(
            DefectInstance(
                id=i + 1,
                bbox=[x0, y0, x1 - x0, y1 - y0],
                centroid=[float(x), float(y)],
                area=int((x1 - x0) * (y1 - y0)),
                contrast=float(rel),
            )
        )
    return out
