"""Defect instances: connected components of the defect mask with box, centroid and area."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi


@dataclass
class DefectInstance:
    """One connected defect region.

    Attributes:
        id: 1-based instance id (its value in the instance label map).
        bbox: [x, y, w, h] in pixels.
        centroid: [x, y] in pixels.
        area: pixel count.
        contrast: mean normalised height inside minus the median of a ring around it
            (robust sigmas; > 0 = protrusion/peak, < 0 = depression/trough).
        cls: defect class (GMM component), -1 if not classified.
        probability: posterior probability of ``cls``.
        soft: posterior probability of every class.
        name: few-shot class name (``naming.assign_names``; ``unknown`` when far from every
            example), or None when no examples were given.
        name_distance: distance to the nearest class prototype (standardised class features).
    """

    id: int
    bbox: list[int]
    centroid: list[float]
    area: int
    contrast: float = 0.0
    cls: int = -1
    probability: float = 0.0
    soft: list[float] = field(default_factory=list)
    name: str | None = None
    name_distance: float | None = None

    def to_json(self) -> dict:
        named = {} if self.name is None else {"name": self.name, "name_distance": round(float(self.name_distance), 4)}
        return {
            "id": self.id,
            "bbox": self.bbox,
            "centroid": [round(c, 2) for c in self.centroid],
            "area": self.area,
            "contrast": round(self.contrast, 3),
            "class": self.cls,
            "class_probability": round(self.probability, 4),
            "soft_assignments": [round(s, 4) for s in self.soft],
            **named,
        }


def find_instances(
    mask: np.ndarray, heights: np.ndarray, ring: int = 4, regions: np.ndarray | None = None
) -> tuple[np.ndarray, list[DefectInstance]]:
    """Label the defects of ``mask`` (connected components, or the given regions) and measure them.

    Args:
        mask: bool HxW defect mask.
        heights: HxW normalised heights (for the contrast sign).
        ring: width (px) of the ring around each defect used as its local background.
        regions: optional int HxW labels 1..n splitting ``mask`` into defects (0 outside it), e.g.
            ``blobs.blob_regions``; default: the 8-connected components.

    Returns:
        (int32 HxW instance label map, instances in label order).
    """
    if regions is None:
        labels, n = ndi.label(mask, structure=np.ones((3, 3)))
    else:
        if regions.shape != mask.shape:
            raise ValueError(f"regions must have the mask's shape {mask.shape}, got {regions.shape}")
        labels = np.where(mask, regions, 0)
        n = int(labels.max())
    if n == 0:
        return labels.astype(np.int32), []
    idx = np.arange(1, n + 1)
    slices = ndi.find_objects(labels)
    area = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    cy, cx = np.array(ndi.center_of_mass(np.ones(mask.shape), labels, idx)).T
    inside = ndi.mean(heights, labels, idx)
    grown = ndi.grey_dilation(labels, size=(2 * ring + 1, 2 * ring + 1))
    ring_labels = np.where(mask, 0, grown)
    ring_med = np.array(ndi.median(heights, ring_labels, idx), dtype=np.float64)
    ring_med = np.where(np.isfinite(ring_med), ring_med, 0.0)
    out = []
    for i, sl in enumerate(slices):  # one entry per instance (not per pixel)
        y0, y1, x0, x1 = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
        out.append(
            DefectInstance(
                id=i + 1,
                bbox=[int(x0), int(y0), int(x1 - x0), int(y1 - y0)],
                centroid=[float(cx[i]), float(cy[i])],
                area=int(area[i]),
                contrast=float(inside[i] - ring_med[i]),
            )
        )
    return labels.astype(np.int32), out
