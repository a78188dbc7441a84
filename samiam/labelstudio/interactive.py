"""Interactive prompts (points, boxes) → one SAM mask, with image embeddings cached per image.

Label Studio gives geometry in percent of the image size (``x``, ``y``, ``width``, ``height``
in 0..100, rectangles rotated by ``rotation`` degrees clockwise about their top-left corner).
SAM takes pixel coordinates: a point at ``x`` percent is at ``x / 100 * W`` pixels (continuous
coordinates, 0 = left edge of the first pixel), a rectangle becomes the axis-aligned box
``x1, y1, x2, y2`` around its (rotated) corners, clipped to the image.

The image encoder (the expensive part) runs once per image and model: its output is kept in an
LRU cache keyed by the image's content digest and the model name, so later clicks on the same
image run only the prompt encoder and the mask decoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

import samiam.models  # noqa: F401  (torchvision shim before segment_anything)
from samiam.labelstudio.errors import RequestError
from samiam.labelstudio.images import LoadedImage
from samiam.labelstudio.lru import LRUCache
from samiam.models.build import LoadedModel


def percent_to_pixels(x_pct: float, y_pct: float, width: int, height: int) -> tuple[float, float]:
    """Convert a Label Studio point (percent of the image) to pixel coordinates.

    Args:
        x_pct: x in percent of the width (0..100).
        y_pct: y in percent of the height (0..100).
        width: image width in pixels.
        height: image height in pixels.

    Returns:
        (x, y) in pixels.
    """
    return x_pct / 100.0 * width, y_pct / 100.0 * height


def pixels_to_percent(x: float, y: float, width: int, height: int) -> tuple[float, float]:
    """Inverse of ``percent_to_pixels``."""
    return x * 100.0 / width, y * 100.0 / height


def rectangle_to_box(
    x_pct: float, y_pct: float, w_pct: float, h_pct: float, rotation: float, width: int, height: int
) -> np.ndarray:
    """Convert a Label Studio rectangle (percent, rotation in degrees) to a pixel box.

    Args:
        x_pct, y_pct: top-left corner in percent.
        w_pct, h_pct: size in percent of the image width / height.
        rotation: clockwise rotation in degrees about the top-left corner.
        width, height: image size in pixels.

    Returns:
        float32 ``[x1, y1, x2, y2]`` in pixels: the axis-aligned box around the rectangle,
        clipped to the image.
    """
    x0, y0 = percent_to_pixels(x_pct, y_pct, width, height)
    w, h = w_pct / 100.0 * width, h_pct / 100.0 * height
    corners = np.array([[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]])
    if rotation:
        t = np.deg2rad(rotation)  # clockwise on screen = counter-clockwise in y-down maths
        rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
        corners = corners @ rot.T
    corners += [x0, y0]
    x1, y1 = corners.min(axis=0)
    x2, y2 = corners.max(axis=0)
    return np.array(
        [np.clip(x1, 0, width), np.clip(y1, 0, height), np.clip(x2, 0, width), np.clip(y2, 0, height)],
        dtype=np.float32,
    )


@dataclass
class Prompts:
    """SAM prompts in pixel coordinates.

    Attributes:
        points: (N, 2) float32 ``x, y``.
        point_labels: (N,) int32, 1 = foreground, 0 = background.
        box: float32 ``[x1, y1, x2, y2]`` or None.
    """

    points: np.ndarray
    point_labels: np.ndarray
    box: np.ndarray | None = None

    @property
    def empty(self) -> bool:
        return len(self.points) == 0 and self.box is None


@dataclass
class Embedding:
    """Image encoder output for one image, what ``SamPredictor`` keeps after ``set_image``."""

    features: torch.Tensor
    original_size: tuple[int, int]
    input_size: tuple[int, int]


class InteractiveSegmenter:
    """Answers point/box prompts on an image with one mask, reusing cached image embeddings.

    Args:
        model: the loaded SAM-family model.
        cache_size: number of image embeddings kept (a SAM ViT-B embedding is 4 MB).
    """

    def __init__(self, model: LoadedModel, cache_size: int = 8) -> None:
        self.model = model
        self.cache: LRUCache[Embedding] = LRUCache(cache_size)

    @property
    def encoder_runs(self) -> int:
        """How many times the image encoder ran (cache misses)."""
        return self.cache.misses

    def _predictor(self):  # noqa: ANN202
        from segment_anything import SamPredictor

        return SamPredictor(self.model.sam)

    def embedding(self, image: LoadedImage) -> Embedding:
        """The image embedding, from the cache or computed now.

        Args:
            image: the task image (its digest is the cache key).

        Returns:
            The embedding.
        """

        def compute() -> Embedding:
            predictor = self._predictor()
            predictor.set_image(image.micrograph.to_uint8_rgb())
            return Embedding(predictor.features, predictor.original_size, predictor.input_size)

        return self.cache.get_or_compute((image.digest, self.model.name), compute)

    def segment(self, image: LoadedImage, prompts: Prompts) -> tuple[np.ndarray, float]:
        """Predict one mask for the prompts.

        A single point is ambiguous: SAM's three candidate masks are computed and the one with the
        highest predicted IoU is kept. Several points, or a box, give one mask.

        Args:
            image: the task image.
            prompts: points and/or a box in pixels.

        Returns:
            (HxW bool mask, predicted IoU).

        Raises:
            RequestError: no prompt, or points for a box-only model.
        """
        if prompts.empty:
            raise RequestError("no prompt: place a positive point or draw a rectangle")
        if len(prompts.points) and not self.model.point_prompts:
            raise RequestError(
                f"model {self.model.name} answers box prompts only: draw a rectangle, or start the backend "
                "with a point-capable model (vit_b, vit_l, vit_h or vit_t)"
            )
        if len(prompts.points) and not (prompts.point_labels == 1).any() and prompts.box is None:
            raise RequestError("only negative points: add a positive point or a rectangle")
        emb = self.embedding(image)
        predictor = self._predictor()
        predictor.features = emb.features
        predictor.original_size = emb.original_size
        predictor.input_size = emb.input_size
        predictor.is_image_set = True
        multimask = prompts.box is None and len(prompts.points) == 1
        masks, scores, _ = predictor.predict(
            point_coords=prompts.points if len(prompts.points) else None,
            point_labels=prompts.point_labels if len(prompts.points) else None,
            box=prompts.box,
            multimask_output=multimask,
        )
        best = int(np.argmax(scores))
        return masks[best].astype(bool), float(scores[best])
