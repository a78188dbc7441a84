"""The defect model folder: AE1/AE2 weights, class mixture, config JSON (versioned) and training curves."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from samiam import __version__
from samiam.defects.autoencoder import PatchAutoencoder
from samiam.defects.classes import ClassModel
from samiam.errors import ModelError
from samiam.io.files import atomic_write, write_json
from samiam.io.write import write_png

FORMAT_NAME = "samiam-defect-model"
FORMAT_VERSION = 3  # 2: class features = AE2 latent + shape descriptors; 3: persistent blobs, split instances
FILES = {"config": "config.json", "ae1": "ae1.pt", "ae2": "ae2.pt", "classes": "classes.npz"}


@dataclass
class DefectModel:
    """Everything ``samiam defects run`` needs.

    Attributes:
        ae1: the map autoencoder (32-d latent).
        ae2: the class autoencoder (8-d latent).
        classes: the Gaussian mixture over AE2 latents.
        config: the config JSON (versions, parameters, selection report, training images).
        path: the folder it was loaded from, if any.
    """

    ae1: PatchAutoencoder
    ae2: PatchAutoencoder
    classes: ClassModel
    config: dict = field(default_factory=dict)
    path: Path | None = None


def _save_state(model: PatchAutoencoder, path: Path) -> None:
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    atomic_write(path, lambda p: p.write_bytes(buf.getvalue()))


def write_curve(folder: Path, name: str, curve: list[dict]) -> None:
    """Write a training curve as ``<name>.csv`` and ``<name>.png`` (train/val loss per epoch)."""
    header = "epoch,train_loss,val_loss,lr\n"
    lines = "".join(f"{r['epoch']},{r['train_loss']:.6g},{r['val_loss']:.6g},{r['lr']:.3g}\n" for r in curve)
    atomic_write(folder / f"{name}.csv", lambda p: p.write_text(header + lines))
    write_png(folder / f"{name}.png", plot_curve(curve, name))


def plot_curve(curve: list[dict], title: str) -> np.ndarray:
    """Render a loss curve (log scale) as an RGB uint8 image with matplotlib's Agg backend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.2), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    epochs = [r["epoch"] for r in curve]
    ax.plot(epochs, [r["train_loss"] for r in curve], label="train")
    ax.plot(epochs, [r["val_loss"] for r in curve], label="validation")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE (robust sigma^2)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()


def save_model(model: DefectModel, folder: str | Path, curves: dict[str, list[dict]]) -> Path:
    """Write the model folder (the config JSON last, so its presence marks a complete model).

    Args:
        model: the trained model; ``model.config`` is completed with the format and versions.
        folder: output folder (created).
        curves: training curves by name (e.g. ``{"curve_ae1": [...], "curve_ae2": [...]}``).

    Returns:
        The folder.
    """
    folder = Path(folder)
    _save_state(model.ae1, folder / FILES["ae1"])
    _save_state(model.ae2, folder / FILES["ae2"])
    arrays = model.classes.to_arrays()
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write(folder / FILES["classes"], lambda p: p.write_bytes(buf.getvalue()))
    for name, curve in curves.items():
        if curve:  # a reused (not retrained) autoencoder has no curve
            write_curve(folder, name, curve)
    config = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "samiam_version": __version__,
        "torch_version": torch.__version__,
        **model.config,
        "ae1": model.ae1.config(),
        "ae2": model.ae2.config(),
        "classes": model.classes.selection,
    }
    write_json(folder / FILES["config"], config)
    model.config, model.path = config, folder
    return folder


def _load_state(path: Path, arch: dict, name: str) -> PatchAutoencoder:
    try:
        net = PatchAutoencoder(patch=int(arch["patch"]), latent=int(arch["latent"]), widths=tuple(arch["widths"]))
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    except FileNotFoundError:
        raise ModelError(f"{path}: missing {name} weights; the model folder is incomplete") from None
    except (KeyError, TypeError, ValueError, RuntimeError, OSError) as exc:
        raise ModelError(f"{path}: cannot load {name} weights ({type(exc).__name__}: {str(exc)[:120]})") from None
    net.eval()
    return net


def load_model(folder: str | Path) -> DefectModel:
    """Load a model folder written by ``save_model``.

    Raises:
        ModelError: missing folder or files, not a defect model, or another format version.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"{folder}: no such model folder; train one with 'samiam defects train IMAGES -o {folder}'")
    cfg_path = folder / FILES["config"]
    try:
        config = json.loads(cfg_path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{folder}: not a samiam defect model (no {FILES['config']})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{cfg_path}: not valid JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
        raise ModelError(
            f"{cfg_path}: not a samiam defect model (format is {config.get('format')!r})"
            if isinstance(config, dict)
            else f"{cfg_path}: not a samiam defect model"
        )
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelError(
            f"{folder}: model format version {version} (samiam {config.get('samiam_version', '?')}); this samiam "
            f"{__version__} reads version {FORMAT_VERSION}: retrain with 'samiam defects train'"
        )
    ae1 = _load_state(folder / FILES["ae1"], config.get("ae1", {}), "AE1")
    ae2 = _load_state(folder / FILES["ae2"], config.get("ae2", {}), "AE2")
    try:
        with np.load(folder / FILES["classes"], allow_pickle=False) as data:
            classes = ClassModel.from_arrays({k: data[k] for k in data.files}, config.get("classes", {}))
    except FileNotFoundError:
        raise ModelError(f"{folder / FILES['classes']}: missing; the model folder is incomplete") from None
    except (KeyError, ValueError, OSError) as exc:
        raise ModelError(f"{folder / FILES['classes']}: cannot load the class model ({exc})") from None
    return DefectModel(ae1, ae2, classes, config, folder)
