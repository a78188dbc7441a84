"""Percent/pixel conversions and the SAM prompt path with its embedding cache (tiny random SAM)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from samiam.labelstudio.errors import RequestError
from samiam.labelstudio.images import ImageResolver
from samiam.labelstudio.interactive import (
    InteractiveSegmenter,
    Prompts,
    percent_to_pixels,
    pixels_to_percent,
    rectangle_to_box,
)
from samiam.models.build import LoadedModel

from .conftest import IMAGE_H, IMAGE_W


def test_percent_pixel_round_trip() -> None:
    assert percent_to_pixels(25.0, 50.0, 200, 80) == (50.0, 40.0)
    assert percent_to_pixels(100.0, 0.0, 200, 80) == (200.0, 0.0)
    rng = np.random.default_rng(0)
    for x, y in rng.uniform(0, 100, (20, 2)):
        px, py = percent_to_pixels(x, y, 1023, 517)
        assert np.allclose(pixels_to_percent(px, py, 1023, 517), (x, y))


def test_rectangle_to_box_plain_rotated_and_clipped() -> None:
    np.testing.assert_allclose(rectangle_to_box(10, 20, 30, 40, 0, 200, 100), [20, 20, 80, 60])
    # 90 degrees clockwise about the top-left corner: the box swings to the left of (x, y), downwards.
    np.testing.assert_allclose(rectangle_to_box(50, 10, 10, 20, 90, 100, 100), [30, 10, 50, 20], atol=1e-4)
    # Out-of-image parts are clipped.
    np.testing.assert_allclose(rectangle_to_box(90, 90, 20, 20, 0, 100, 50), [90, 45, 100, 50])


@pytest.fixture
def image(micrograph_png: Path):
    return ImageResolver().load(str(micrograph_png))


def test_second_prompt_reuses_the_embedding(tiny_model: LoadedModel, image) -> None:
    seg = InteractiveSegmenter(tiny_model, cache_size=2)
    box = Prompts(np.zeros((0, 2), np.float32), np.zeros(0, np.int32), np.array([10, 10, 60, 50], np.float32))
    point = Prompts(np.array([[30.0, 40.0]], np.float32), np.array([1], np.int32))
    m1, s1 = seg.segment(image, box)
    m2, _ = seg.segment(image, point)
    m3, s3 = seg.segment(image, box)
    assert seg.encoder_runs == 1 and seg.cache.hits == 2
    assert m1.shape == (IMAGE_H, IMAGE_W) and m1.dtype == bool
    np.testing.assert_array_equal(m1, m3)
    assert s1 == s3


def test_embedding_cache_is_keyed_by_content_and_evicts(tiny_model: LoadedModel, image) -> None:
    seg = InteractiveSegmenter(tiny_model, cache_size=1)
    other = dataclasses.replace(image, digest="another-image")
    point = Prompts(np.array([[30.0, 40.0]], np.float32), np.array([1], np.int32))
    seg.segment(image, point)
    seg.segment(other, point)
    seg.segment(image, point)  # evicted by the other image: encoded again
    assert seg.encoder_runs == 3


def test_prompt_errors(tiny_model: LoadedModel, image) -> None:
    point = Prompts(np.array([[30.0, 40.0]], np.float32), np.array([1], np.int32))
    box_only = dataclasses.replace(tiny_model, name="box-only", point_prompts=False)
    with pytest.raises(RequestError, match="box prompts only"):
        InteractiveSegmenter(box_only).segment(image, point)
    with pytest.raises(RequestError, match="no prompt"):
        InteractiveSegmenter(tiny_model).segment(image, Prompts(np.zeros((0, 2)), np.zeros(0, np.int32)))
    negative = Prompts(np.array([[30.0, 40.0]], np.float32), np.array([0], np.int32))
    with pytest.raises(RequestError, match="only negative"):
        InteractiveSegmenter(tiny_model).segment(image, negative)
