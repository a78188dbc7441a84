import hashlib
from pathlib import Path

import pytest

from samiam.errors import ModelError
from samiam.models.download import cached_checkpoint, download_checkpoint, verified_sha256, verify_checkpoint
from samiam.models.registry import ModelSpec, get_spec, load_manifest


def _spec(tmp_path: Path, payload: bytes, sha: str | None = None) -> tuple[ModelSpec, Path]:
    src = tmp_path / "src" / "weights.pth"
    src.parent.mkdir()
    src.write_bytes(payload)
    digest = sha or hashlib.sha256(payload).hexdigest()
    spec = ModelSpec("toy", "sam", src.as_uri(), "toy.pth", digest, len(payload), True)
    return spec, src


def test_manifest_has_official_sam_checkpoints():
    specs = load_manifest()
    for name, tag in (("vit_b", "01ec64"), ("vit_l", "0b3195"), ("vit_h", "4b8939")):
        s = specs[name]
        assert s.url == f"https://dl.fbaipublicfiles.com/segment_anything/sam_{name}_{tag}.pth"
        assert len(s.sha256) == 64
    assert specs["litemedsam"].point_prompts is False
    with pytest.raises(ModelError, match="unknown model 'vit_x'"):
        get_spec("vit_x")


def test_download_verifies_and_caches(tmp_path: Path):
    spec, _ = _spec(tmp_path, b"weights" * 1000)
    cache = tmp_path / "cache"
    path = download_checkpoint(spec, cache, progress=False)
    assert path == cache / "toy.pth" and path.read_bytes() == b"weights" * 1000
    assert cached_checkpoint(spec, cache) == path
    assert verify_checkpoint(path, spec) == spec.sha256
    # second call finds the cached file and does not re-download
    assert download_checkpoint(spec, cache, url="file:///nonexistent", progress=False) == path


def test_download_with_wrong_hash_leaves_nothing(tmp_path: Path):
    spec, _ = _spec(tmp_path, b"tampered", sha="0" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(ModelError, match="SHA-256"):
        download_checkpoint(spec, cache, progress=False)
    assert list(cache.iterdir()) == []


def test_download_failure_is_a_model_error(tmp_path: Path):
    spec, _ = _spec(tmp_path, b"x")
    with pytest.raises(ModelError, match="download from"):
        download_checkpoint(spec, tmp_path / "c", url=(tmp_path / "nope.pth").as_uri(), progress=False)


def test_verify_rejects_wrong_file_and_uses_stamp(tmp_path: Path):
    spec, src = _spec(tmp_path, b"abc")
    other = tmp_path / "other.pth"
    other.write_bytes(b"abd")
    with pytest.raises(ModelError, match="does not match toy"):
        verify_checkpoint(other, spec)
    assert verified_sha256(src) == hashlib.sha256(b"abc").hexdigest()
    assert (src.parent / "weights.pth.sha256").exists()
    with pytest.raises(ModelError, match="not found"):
        verify_checkpoint(tmp_path / "missing.pth", spec)
