import numpy as np
import pytest
import torch

from samiam.defects.autoencoder import PatchAutoencoder
from samiam.defects.maps import MapParams, compute_maps, vote_windows
from samiam.defects.patches import window_grid, windows
from samiam.errors import ParameterError


def _brute_vote(labels, grid, k):
    h, w = grid.shape
    votes = np.zeros((k, h, w), int)
    for j in range(grid.ny):
        for i in range(grid.nx):
            y, x = j * grid.stride, i * grid.stride
            sl = (slice(y, min(y + grid.size, h)), slice(x, min(x + grid.size, w)))
            votes[labels[j, i]][sl] += 1
    return votes.argmax(0)


@pytest.mark.parametrize("shape, stride", [((40, 52), 8), ((37, 45), 5), ((32, 32), 32)])
def test_vote_windows_matches_brute_force(shape, stride):
    grid = window_grid(shape, 16, stride)
    labels = np.random.default_rng(0).integers(0, 3, (grid.ny, grid.nx))
    assert np.array_equal(vote_windows(labels, grid, 3), _brute_vote(labels, grid, 3))


def test_window_grid_covers_the_image():
    grid = window_grid((100, 70), 32, 8)
    assert grid.padded_shape[0] >= 100 and grid.padded_shape[1] >= 70
    w = windows(np.arange(100 * 70, dtype=np.float32).reshape(100, 70), grid)
    assert w.shape == (grid.count, 32, 32)
    assert w[0, 0, 0] == 0 and w[1, 0, 0] == 8  # row-major, stride 8


def test_maps_have_image_shape_and_flag_an_unseen_bump():
    torch.manual_seed(0)
    model = PatchAutoencoder().eval()  # untrained: reconstructs nothing, error follows the input
    img = np.zeros((64, 80), np.float32)
    yy, xx = np.mgrid[0:64, 0:80]
    img += 5 * np.exp(-((yy - 30) ** 2 + (xx - 40) ** 2) / 8.0)
    maps = compute_maps(model, img, MapParams(stride=8, k_max=3))
    assert maps.error.shape == img.shape and maps.character.shape == img.shape
    assert np.unravel_index(maps.error.argmax(), img.shape) == pytest.approx((30, 40), abs=3)


def test_map_params_are_checked():
    with pytest.raises(ParameterError, match="stride"):
        MapParams(stride=0).check(32)
    with pytest.raises(ParameterError, match="error mode"):
        MapParams(error_mode="max").check(32)
