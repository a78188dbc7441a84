from pathlib import Path

import pytest
import torch

from samiam.errors import ModelError, ParameterError
from samiam.models.build import load_model
from samiam.models.device import pick_device


def test_pick_device_cpu_and_errors():
    assert pick_device("cpu").type == "cpu"
    assert pick_device(None).type in ("cpu", "cuda", "mps")
    with pytest.raises(ParameterError, match="unknown device"):
        pick_device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="CUDA is not available"):
            pick_device("cuda")


def test_tiny_random_model(tiny_model):
    assert tiny_model.name == "tiny-random" and tiny_model.point_prompts
    assert tiny_model.image_size == 128
    assert tiny_model.describe()["checkpoint_sha256"] is None


def test_unknown_model_and_bad_checkpoints(tmp_path: Path):
    with pytest.raises(ModelError, match="unknown model 'sam9'"):
        load_model("sam9")
    bad = tmp_path / "vit_b.pth"
    bad.write_bytes(b"not the real checkpoint")
    with pytest.raises(ModelError, match="does not match vit_b"):
        load_model("vit_b", checkpoint=bad)
    with pytest.raises(ModelError, match="not a loadable PyTorch checkpoint"):
        load_model("vit_b", checkpoint=bad, verify=False)
    with pytest.raises(ModelError, match="checkpoint file not found"):
        load_model("vit_b", checkpoint=tmp_path / "missing.pth", verify=False)
    with pytest.raises(ModelError, match="needs an explicit model name"):
        load_model("auto", checkpoint=bad)


def test_vit_b_without_cache_says_how_to_get_it(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SAMIAM_CACHE", str(tmp_path))
    with pytest.raises(ModelError, match="samiam weights download vit_b"):
        load_model("vit_b")


def test_architecture_mismatch_is_reported(tmp_path: Path):
    from samiam.models.build import build_tiny_random_sam

    path = tmp_path / "tiny.pth"
    torch.save(build_tiny_random_sam().state_dict(), path)
    with pytest.raises(ModelError, match="does not fit the vit_b architecture"):
        load_model("vit_b", checkpoint=path, verify=False)


@pytest.mark.slow
def test_litemedsam_real_weights_load_strict_and_auto_falls_back(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SAMIAM_CACHE", str(tmp_path))  # empty cache: auto → litemedsam
    m = load_model("auto", device="cpu")
    assert m.name == "litemedsam" and not m.point_prompts and m.image_size == 256
    assert m.sha256 == "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"
    assert "LiteMedSAM" in m.reason


def test_vit_t_needs_mobile_sam_or_says_so(tmp_path: Path):
    import importlib.util

    if importlib.util.find_spec("mobile_sam") is not None:
        pytest.skip("mobile_sam is installed here")
    ck = tmp_path / "mobile_sam.pt"
    ck.write_bytes(b"x")
    with pytest.raises(ModelError, match="mobilesam-mirror"):
        load_model("vit_t", checkpoint=ck)
