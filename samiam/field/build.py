"""The material field of one image in one call: lattice → window → descriptors → materials → map."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from samiam.errors import ParameterError
from samiam.field.cluster import SCALES, FieldClusters, assign_untextured, cluster_field, reduce_features
from samiam.field.descriptors import GridDescriptors, window_descriptors
from samiam.field.labelmap import smooth_posterior, upsample_posterior
from samiam.field.lattice import LatticeEstimate, estimate_lattice, window_for


@dataclass
class FieldConfig:
    """Settings of the dense material field.

    Attributes:
        periods: texture window side in lattice periods (the period is measured on each image).
        window: fixed window side in px instead (0 = from the lattice).
        stride_frac: distance between window centres as a fraction of the window.
        k0: clusters of the initial over-clustering.
        merge_valley: automatic K merges clusters whose density valley ratio exceeds this.
        min_material_frac: clusters under this fraction of the image are not materials.
        smooth_cells: spatial smoothing of the grid posterior, in grid cells.
        max_components: PCA dimensions kept at most.
        max_saturated: windows with more than this fraction of saturated pixels carry no texture.
        scale: descriptor standardisation, "noise" (within-material noise) or "robust" (spread
            over the image); see ``reduce_features``.
    """

    periods: float = 4.0
    window: int = 0
    stride_frac: float = 0.25
    k0: int = 8
    merge_valley: float = 0.5
    min_material_frac: float = 0.01
    smooth_cells: float = 2.0
    max_components: int = 8
    max_saturated: float = 0.1
    scale: str = "robust"

    def validate(self) -> FieldConfig:
        """Check ranges; return self.

        Raises:
            ParameterError: a value outside its range.
        """
        if not 1.0 <= self.periods <= 16.0:
            raise ParameterError(f"field periods must be in [1, 16], got {self.periods}")
        if self.window and (self.window < 8 or self.window % 2):
            raise ParameterError(f"field window must be 0 (auto) or an even number >= 8, got {self.window}")
        if not 0.05 <= self.stride_frac <= 1.0:
            raise ParameterError(f"field stride fraction must be in [0.05, 1], got {self.stride_frac}")
        if self.k0 < 2:
            raise ParameterError(f"field k0 must be >= 2, got {self.k0}")
        if not 0.0 < self.merge_valley < 1.0:
            raise ParameterError(f"merge valley must be in (0, 1), got {self.merge_valley}")
        if not 0.0 <= self.min_material_frac < 0.5:
            raise ParameterError(f"min material fraction must be in [0, 0.5), got {self.min_material_frac}")
        if self.smooth_cells < 0:
            raise ParameterError(f"smoothing must be >= 0 cells, got {self.smooth_cells}")
        if not 0.0 < self.max_saturated <= 1.0:
            raise ParameterError(f"max saturated fraction must be in (0, 1], got {self.max_saturated}")
        if self.scale not in SCALES:
            raise ParameterError(f"field scale must be one of {SCALES}, got {self.scale!r}")
        if self.max_components < 1:
            raise ParameterError(f"max components must be >= 1, got {self.max_components}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class MaterialField:
    """The field of one image.

    Attributes:
        labels: (H, W) int material index 0..K-1 of every pixel (saturated ones included).
        confidence: (H, W) float32 posterior of the chosen material.
        posterior: (H, W, K) float32 upsampled posterior.
        clusters: the grid-level result (labels, posterior, reason).
        lattice: the period estimate.
        window: window side (px); stride: grid step (px).
        info: run-record facts (window, stride, K and why, timings).
    """

    labels: np.ndarray
    confidence: np.ndarray
    posterior: np.ndarray
    clusters: FieldClusters
    lattice: LatticeEstimate
    window: int
    stride: int
    info: dict = field(default_factory=dict)

    @property
    def n_materials(self) -> int:
        return self.clusters.n_materials


def material_field(
    image: np.ndarray,
    n_materials: int = 0,
    cfg: FieldConfig | None = None,
    *,
    max_materials: int = 6,
    pixel_size_nm: float | None = None,
    seed: int = 0,
    saturated: np.ndarray | None = None,
) -> MaterialField:
    """Compute the dense material field of an image.

    Args:
        image: HxW float image in [0, 1].
        n_materials: K, or 0 to choose it.
        cfg: field settings (defaults if None).
        max_materials: upper bound on the automatic K.
        pixel_size_nm: pixel size if the file gives one (reported with the period).
        seed: K-means seed.
        saturated: (H, W) bool, pixels at the detector's limit (``saturated_pixels``); windows
            mostly made of them take no part in finding the materials, and then join the material
            of nearest mean brightness (``assign_untextured``).

    Returns:
        The field.
    """
    cfg = (cfg or FieldConfig()).validate()
    if image.ndim != 2:
        raise ParameterError(f"expected a 2-D image, got shape {image.shape}")
    timings: dict[str, float] = {}
    t = time.perf_counter()
    lattice = estimate_lattice(image, pixel_size_nm)
    window = cfg.window or window_for(lattice, image.shape, cfg.periods)
    window = min(window, 2 * (min(image.shape) // 2))
    stride = max(2, int(round(window * cfg.stride_frac)))
    desc = window_descriptors(image, window, stride)
    timings["descriptors"] = time.perf_counter() - t
    t = time.perf_counter()
    lag = max(1, int(round(1.0 / cfg.stride_frac)))  # windows that do not overlap
    z = reduce_features(desc.features, desc.groups, cfg.max_components, lag, cfg.scale)
    valid = None
    if saturated is not None and saturated.any():
        frac = cv2.blur(saturated.astype(np.float32), (window, window))
        valid = frac[np.ix_(desc.centre_y, desc.centre_x)] < cfg.max_saturated
    clusters = cluster_field(
        z,
        n_materials,
        k0=cfg.k0,
        max_materials=max_materials,
        merge_valley=cfg.merge_valley,
        min_material_frac=cfg.min_material_frac,
        seed=seed,
        valid=valid,
    )
    if valid is not None:
        clusters = assign_untextured(clusters, desc.features[..., desc.groups["intensity"].start])
    timings["cluster"] = time.perf_counter() - t
    t = time.perf_counter()
    # every window has a material here (untextured ones were assigned), so every pixel gets one
    full, labels = _pixel_map(clusters.posterior, desc, image.shape, cfg.smooth_cells)
    present = np.unique(labels)
    if n_materials and len(present) < clusters.n_materials:
        # K was asked for: two overlapping Gaussians can leave the smaller material no pixel of the
        # soft map; the grid partition itself has K parts, so map that instead
        hard = np.eye(clusters.n_materials, dtype=np.float32)[clusters.labels]
        full, labels = _pixel_map(hard, desc, image.shape, cfg.smooth_cells)
        present = np.unique(labels)
        clusters.reason["mapped"] = "grid partition (the soft posterior left a material no pixel)"
    confidence = np.take_along_axis(full, labels[..., None], -1)[..., 0]
    if len(present) < clusters.n_materials:  # a material that wins no pixel is none
        clusters = clusters.keep(present)
        full = full[..., present]
        remap = np.zeros(int(present.max()) + 1, np.int64)
        remap[present] = np.arange(len(present))
        labels = remap[labels]
    timings["map"] = time.perf_counter() - t
    info = {
        "window": window,
        "stride": stride,
        "lattice_period_px": None if lattice.period_px is None else round(lattice.period_px, 2),
        "lattice_period_nm": None if lattice.period_nm is None else round(lattice.period_nm, 4),
        "lattice_strength": round(lattice.strength, 3),
        "materials": clusters.n_materials,
        "materials_reason": clusters.reason,
        "timings": {k: round(v, 4) for k, v in timings.items()},
    }
    return MaterialField(labels, confidence, full, clusters, lattice, window, stride, info)


def _pixel_map(
    posterior: np.ndarray, desc: GridDescriptors, shape: tuple[int, int], smooth_cells: float
) -> tuple[np.ndarray, np.ndarray]:
    """Grid posterior → (full-resolution posterior, labels)."""
    full = upsample_posterior(smooth_posterior(posterior, smooth_cells), desc.centre_y, desc.centre_x, shape)
    return full, full.argmax(-1)


def saturated_pixels(raw: np.ndarray, min_frac: float = 0.005) -> np.ndarray:
    """Pixels at the detector's limits: the exact maximum (or minimum) value of the raw data, when
    at least ``min_frac`` of the image sits there (a clipped detector or export; in an unclipped
    image the extreme value is held by a handful of pixels).

    Args:
        raw: HxW raw values.
        min_frac: fraction of pixels at one extreme from which it counts as saturation.

    Returns:
        (H, W) bool.
    """
    out = np.zeros(raw.shape, bool)
    finite = np.isfinite(raw)
    if not finite.any():
        return out
    for value in (np.nanmax(raw), np.nanmin(raw)):
        at = raw == value
        if at.mean() >= min_frac:
            out |= at
    return out
