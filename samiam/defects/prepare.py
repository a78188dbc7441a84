"""Turn raw heights into the normalised map every defect step uses: flatten, find steps, level, scale."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samiam.defects.annotation import annotation_mask, fill_masked
from samiam.defects.flatten import check_heights, flatten_heights, robust_sigma
from samiam.defects.steps import StepEdges, StepParams, detect_steps, level_terraces
from samiam.errors import InputError


@dataclass
class PreparedImage:
    """A height map ready for the autoencoders.

    Attributes:
        heights: float32 HxW levelled heights divided by their robust sigma, clipped to +-clip.
        flat: float64 HxW flattened heights in the file's units (before terrace levelling).
        steps: detected step edges and terraces.
        scale: robust sigma of the levelled heights (file units), the unit of ``heights``.
        annotation: bool HxW burned-in annotation (scale bar, text, frame), filled before
            flattening and never a defect.
    """

    heights: np.ndarray
    flat: np.ndarray
    steps: StepEdges
    scale: float
    annotation: np.ndarray | None = None

    @property
    def exclude(self) -> np.ndarray:
        """Pixels that can never be defects: the step band and burned-in annotation."""
        return self.steps.band if self.annotation is None else self.steps.band | self.annotation


def prepare_heights(
    raw: np.ndarray,
    source: str = "<array>",
    *,
    steps: StepParams | None = None,
    detect: bool = True,
    clip: float = 10.0,
) -> PreparedImage:
    """Fill burned-in annotation, flatten (line-by-line + plane), detect steps, level each terrace, normalise.

    Args:
        raw: HxW heights as read from the file.
        source: name used in error messages.
        steps: step-edge parameters.
        detect: find and level step edges (False: global flattening only).
        clip: normalised heights are clipped to +-clip robust sigmas.

    Returns:
        The prepared image.

    Raises:
        InputError: not 2-D, NaN heights, or a flat (constant) image.
    """
    z = check_heights(raw, source)
    annotation = annotation_mask(z)
    flat = flatten_heights(fill_masked(z, annotation))
    if detect:
        edges = detect_steps(flat, steps)
    else:
        empty = np.zeros(flat.shape, bool)
        edges = StepEdges(empty, empty.copy(), np.ones(flat.shape, np.int32), 0)
    levelled = level_terraces(flat, edges)
    scale = robust_sigma(levelled[~edges.band]) if (~edges.band).any() else robust_sigma(levelled)
    if not scale > 0:
        raise InputError(f"{source}: heights are constant after flattening; nothing to analyse")
    heights = np.clip(levelled / scale, -clip, clip).astype(np.float32)
    return PreparedImage(heights=heights, flat=flat, steps=edges, scale=float(scale), annotation=annotation)
