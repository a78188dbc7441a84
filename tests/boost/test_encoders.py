from pathlib import Path

import numpy as np
import pytest

import samiam.models  # noqa: F401  (torchvision shim before timm)
from samiam.boost.encoders import HARMONICS, N_RADIAL, fft_features, make_encoder
from samiam.errors import ModelError, ParameterError
from samiam.synth.stem import LATTICES, render_material


def _crop(name: str, angle: float, seed: int, side: int = 48) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = render_material(LATTICES[name], 128, 128, rng, angle=angle)
    img = img / max(float(img.max()), 1e-6) + rng.normal(0, 0.08, img.shape)  # detector noise
    return img[40 : 40 + side, 40 : 40 + side].astype(np.float32)


def test_fft_features_separate_lattices_whatever_their_orientation():
    angles = (0.0, 0.3, 0.7, 1.1)
    crops = [_crop(n, a, 10 * i + j) for i, n in enumerate(("square", "hexagonal")) for j, a in enumerate(angles)]
    truth = np.repeat([0, 1], len(angles))
    f = fft_features(np.stack(crops))
    z = (f - f.mean(0)) / (f.std(0) + 1e-9)  # as the booster standardises them

    def nn_accuracy(cols: slice) -> float:
        d = np.linalg.norm(z[:, None, cols] - z[None, :, cols], axis=2)
        np.fill_diagonal(d, np.inf)
        return float((truth[d.argmin(1)] == truth).mean())

    n_radial = N_RADIAL - 1
    # the angular harmonics (4-fold vs 6-fold symmetry) do not depend on the grain orientation
    assert nn_accuracy(slice(n_radial, n_radial + len(HARMONICS))) == 1.0
    assert nn_accuracy(slice(None)) >= 0.75


def test_mixed_crop_sizes_keep_order():
    enc = make_encoder("fft")
    crops = [_crop("square", 0, 1, 48), _crop("hexagonal", 0, 2, 32), _crop("square", 0, 3, 48)]
    f = enc(crops)
    assert f.shape[0] == 3
    np.testing.assert_allclose(f[0], fft_features(crops[0][None])[0], rtol=1e-5)
    np.testing.assert_allclose(f[1], fft_features(crops[1][None])[0], rtol=1e-5)


def test_unknown_encoder():
    with pytest.raises(ParameterError, match="unknown encoder"):
        make_encoder("sift")


def test_timm_encoder_with_local_weights(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import timm  # samiam.boost.encoders imported samiam.models (the torchvision shim) first
    import torch

    path = tmp_path / "test_resnet.pth"
    torch.save(timm.create_model("test_resnet", pretrained=False, num_classes=0).state_dict(), path)
    enc = make_encoder("timm:test_resnet", str(path), "cpu")
    f = enc([_crop("square", 0, 1), _crop("hexagonal", 0, 2, 32)])
    assert f.shape[0] == 2 and f.shape[1] > 0 and np.isfinite(f).all()
    with pytest.raises(ParameterError, match="unknown timm model"):
        make_encoder("timm:no_such_net_xyz", None, "cpu")
    bad = tmp_path / "bad.pth"
    torch.save({"foo": torch.zeros(1)}, bad)
    with pytest.raises(ModelError, match="does not fit timm model"):
        make_encoder("timm:test_resnet", str(bad), "cpu")


def test_timm_pretrained_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="--encoder-weights"):
        make_encoder("timm:test_resnet", None, "cpu")
