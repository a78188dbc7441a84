"""Defect mask: high reconstruction error OR rare high-error character clusters, then morphological clean-up."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage as ndi

from samiam.defects.blobs import (
    BlobParams,
    Blobs,
    blob_mask,
    detect_blobs,
    gate_blobs,
    half_max_outline,
    lattice_period,
)
from samiam.defects.calibrate import Calibration, calibrate
from samiam.defects.flatten import robust_sigma
from samiam.defects.steps import component_shapes
from samiam.errors import ParameterError


@dataclass
class MaskParams:
    """Defect-mask parameters.

    Attributes:
        error_threshold: a pixel is a defect candidate when its error exceeds the image's median
            error by this many robust sigmas of the error map.
        rare_cluster: character clusters covering less than this fraction of the image are
            "rare"; a rare cluster whose mean error z-score exceeds ``cluster_error`` is added.
        cluster_error: mean error z-score a rare cluster needs to be added.
        max_aspect: components longer than ``max_aspect`` x their width (scan lines, step remnants)
            are removed.
        erode: erosion iterations (3x3) after the line filter.
        smooth: median-filter size (px, odd) that smooths the outlines; 0 = off.
        dilate: dilation iterations (3x3) after smoothing.
        min_area: components smaller than this (px) are dropped.
        open_size: side (px) of the square structuring element of the final opening; 0 = off.
    """

    error_threshold: float = 3.0
    rare_cluster: float = 0.05
    cluster_error: float = 2.0
    max_aspect: float = 5.0
    erode: int = 1
    smooth: int = 5
    dilate: int = 2
    min_area: int = 20
    open_size: int = 3

    def check(self) -> None:
        """Raise ParameterError for out-of-range values."""
        if self.error_threshold <= 0:
            raise ParameterError(f"error threshold must be > 0 robust sigmas, got {self.error_threshold}")
        if not 0 <= self.rare_cluster < 1:
            raise ParameterError(f"rare-cluster fraction must be in [0, 1), got {self.rare_cluster}")
        if self.max_aspect < 1:
            raise ParameterError(f"max aspect ratio must be >= 1, got {self.max_aspect}")
        if min(self.erode, self.dilate, self.min_area, self.open_size, self.smooth) < 0:
            raise ParameterError("erode, dilate, min_area, open_size and smooth must be >= 0")

    def to_dict(self) -> dict:
        return asdict(self)


def error_zscore(error: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
    """(error - median) / robust sigma, with the statistics taken outside ``exclude``."""
    sel = error if exclude is None or exclude.all() else error[~exclude]
    med, sigma = float(np.median(sel)), robust_sigma(sel)
    return ((error - med) / max(sigma, 1e-12)).astype(np.float32)


def rare_clusters(character: np.ndarray, error_z: np.ndarray, params: MaskParams) -> list[int]:
    """Character clusters that are rare and have a high mean error z-score."""
    k = int(character.max()) + 1
    counts = np.bincount(character.ravel(), minlength=k)
    sums = np.bincount(character.ravel(), weights=error_z.ravel(), minlength=k)
    frac = counts / character.size
    mean_err = sums / np.maximum(counts, 1)
    pick = (frac > 0) & (frac < params.rare_cluster) & (mean_err > params.cluster_error)
    return [int(c) for c in np.nonzero(pick)[0]]


def remove_line_like(mask: np.ndarray, max_aspect: float) -> np.ndarray:
    """Drop connected components whose major/minor axis ratio exceeds ``max_aspect``."""
    labels, n = ndi.label(mask, structure=np.ones((3, 3)))
    if n == 0:
        return mask.copy()
    _, elongation = component_shapes(labels, n)
    keep = np.concatenate([[False], elongation <= max_aspect])
    return keep[labels]


def clean_mask(mask: np.ndarray, params: MaskParams) -> np.ndarray:
    """Morphological clean-up: line filter, erosion, smoothing, dilation, area filter, opening."""
    import cv2

    out = remove_line_like(mask, params.max_aspect)
    square = np.ones((3, 3), bool)
    if params.erode:
        out = ndi.binary_erosion(out, square, iterations=params.erode)
    if params.smooth > 1:
        size = params.smooth | 1
        out = cv2.medianBlur(out.astype(np.uint8) * 255, size) > 127
    if params.dilate:
        out = ndi.binary_dilation(out, square, iterations=params.dilate)
    if params.min_area > 1:
        labels, n = ndi.label(out, structure=square)
        if n:
            areas = np.bincount(labels.ravel(), minlength=n + 1)
            keep = areas >= params.min_area
            keep[0] = False
            out = keep[labels]
    if params.open_size > 1:
        out = ndi.binary_opening(out, np.ones((params.open_size, params.open_size), bool))
    return out


def blob_defect_mask(
    heights: np.ndarray,
    error_z: np.ndarray,
    exclude: np.ndarray,
    blobs: BlobParams,
    params: MaskParams | None = None,
    responses: tuple[list[np.ndarray], np.ndarray] | None = None,
    calibration: Calibration | None = None,
) -> tuple[np.ndarray, Blobs, float | None, Calibration]:
    """Defect mask from the scale-matched blob detector, gated by the AE1 error.

    Blobs (``blobs.detect_blobs`` at scales from the lattice period up) whose AE1 error z-score
    stays below ``blobs.error_gate`` inside their disk are dropped (AE1 reconstructs what is
    periodic or common); the rest are drawn as disks; line-like unions (rows of blobs along a
    scan glitch) and components below ``min_area`` are removed; the disks are grown to the
    defects' half-maximum outlines (``blobs.outline``), and ``exclude`` is cleared.

    Args:
        heights: HxW normalised heights.
        error_z: HxW AE1 error z-score.
        exclude: bool HxW pixels that can never be defects.
        blobs: blob-detector parameters.
        params: mask parameters (``max_aspect``, ``min_area``).
        responses: precomputed ``blobs.blob_responses`` (same scale settings), or None.
        calibration: precomputed ``calibrate.calibrate(heights)``, or None.

    Returns:
        (mask, the blobs kept, lattice period in px or None, the image's calibration).
    """
    p = params or MaskParams()
    p.check()
    cal = calibration if calibration is not None else calibrate(heights)
    period = cal.spacing if blobs.scale_unit == "feature" else lattice_period(heights)
    found = detect_blobs(heights, blobs, period, exclude, cal, responses)
    if blobs.error_gate > 0:
        found = gate_blobs(found, error_z, blobs.error_gate, blobs.radius_factor)
    raw = blob_mask(found, heights.shape, blobs.radius_factor) & ~exclude
    out = remove_line_like(raw, p.max_aspect)
    if p.min_area > 1:
        labels, n = ndi.label(out, structure=np.ones((3, 3)))
        if n:
            keep = np.bincount(labels.ravel(), minlength=n + 1) >= p.min_area
            keep[0] = False
            out = keep[labels]
    if blobs.outline:
        out |= half_max_outline(heights, found, blobs.radius_factor) & ~exclude
    return out, found, period, cal


def defect_mask(
    error: np.ndarray,
    character: np.ndarray,
    exclude: np.ndarray,
    params: MaskParams | None = None,
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Binary defect mask of one image.

    Args:
        error: HxW reconstruction-error map.
        character: HxW character cluster map.
        exclude: bool HxW pixels that can never be defects (the step-edge band).
        params: mask parameters.

    Returns:
        (mask, error z-score map, selected rare clusters).
    """
    p = params or MaskParams()
    p.check()
    z = error_zscore(error, exclude)
    raw = z > p.error_threshold
    clusters = rare_clusters(character, z, p) if p.rare_cluster > 0 else []
    if clusters:
        raw |= np.isin(character, clusters)
    raw &= ~exclude
    return clean_mask(raw, p) & ~exclude, z, clusters
