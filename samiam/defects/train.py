"""Train a patch autoencoder: Adam + MSE, learning-rate reduction on plateau, early stopping, seeded."""

from __future__ import annotations

import contextlib
import copy
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from samiam.defects.autoencoder import PatchAutoencoder
from samiam.errors import ParameterError


@dataclass
class TrainConfig:
    """Optimiser settings.

    Attributes:
        epochs: maximum number of epochs.
        batch_size: patches per step.
        lr: Adam learning rate.
        val_fraction: share of patches held out for the validation loss.
        patience: epochs without validation improvement before stopping.
        lr_patience: epochs without improvement before the learning rate is halved.
        min_delta: relative improvement that counts as one.
    """

    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    val_fraction: float = 0.1
    patience: int = 5
    lr_patience: int = 2
    min_delta: float = 1e-3

    def check(self) -> None:
        """Raise ParameterError for out-of-range settings."""
        if self.epochs < 1:
            raise ParameterError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 2:
            raise ParameterError(f"batch size must be >= 2, got {self.batch_size}")
        if not 0 < self.lr < 1:
            raise ParameterError(f"learning rate must be in (0, 1), got {self.lr}")
        if not 0 < self.val_fraction < 0.5:
            raise ParameterError(f"validation fraction must be in (0, 0.5), got {self.val_fraction}")

    def to_dict(self) -> dict:
        return asdict(self)


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global generator; return a separate generator for splitting and shuffling."""
    torch.manual_seed(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


@contextlib.contextmanager
def deterministic_kernels():
    """Use torch's deterministic kernels inside the block, then restore the caller's setting."""
    previous = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=warn_only)


def _evaluate(model: PatchAutoencoder, data: torch.Tensor, batch: int, device: torch.device) -> float:
    model.eval()
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(data), batch):
            x = data[i : i + batch].to(device)
            recon, _ = model(x)
            total += float(((recon - x) ** 2).sum())
    return total / max(data.numel(), 1)


def train_autoencoder(
    model: PatchAutoencoder,
    patches: np.ndarray,
    config: TrainConfig,
    *,
    seed: int = 0,
    device: torch.device | None = None,
    desc: str = "train",
    progress: bool = True,
) -> list[dict]:
    """Fit ``model`` to reconstruct ``patches``; keep the weights of the best validation epoch.

    Args:
        model: the autoencoder (modified in place).
        patches: float32 (N, P, P) centred, normalised patches.
        config: optimiser settings.
        seed: seed for the split, shuffling and initialisation-independent randomness.
        device: torch device (default CPU).
        desc: progress-bar label.
        progress: show a tqdm bar over epochs.

    Returns:
        The training curve: one dict per epoch with epoch, train_loss, val_loss, lr.
    """
    from tqdm import tqdm

    config.check()
    device = device or torch.device("cpu")
    gen = seed_everything(seed)
    n = len(patches)
    if n < 10:
        raise ParameterError(f"{desc}: {n} training patches; at least 10 are needed")
    data = torch.from_numpy(np.ascontiguousarray(patches, np.float32)).unsqueeze(1)
    order = torch.randperm(n, generator=gen)
    n_val = max(1, int(round(config.val_fraction * n)))
    val, train = data[order[:n_val]], data[order[n_val:]]
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=config.lr_patience)
    loss_fn = nn.MSELoss()
    best, best_state, waited = float("inf"), copy.deepcopy(model.state_dict()), 0
    curve: list[dict] = []
    bar = tqdm(range(1, config.epochs + 1), desc=desc, unit="epoch", disable=not progress, leave=False)
    with deterministic_kernels():
        for epoch in bar:
            model.train()
            perm = torch.randperm(len(train), generator=gen)
            total, seen = 0.0, 0
            for i in range(0, len(train), config.batch_size):
                idx = perm[i : i + config.batch_size]
                if len(idx) < 2:  # batch norm needs two samples
                    continue
                x = train[idx].to(device)
                recon, _ = model(x)
                loss = loss_fn(recon, x)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
                seen += len(idx)
            val_loss = _evaluate(model, val, 1024, device)
            lr = opt.param_groups[0]["lr"]
            curve.append({"epoch": epoch, "train_loss": total / max(seen, 1), "val_loss": val_loss, "lr": lr})
            bar.set_postfix(train=f"{total / max(seen, 1):.4f}", val=f"{val_loss:.4f}")
            sched.step(val_loss)
            if val_loss < best * (1 - config.min_delta):
                best, best_state, waited = val_loss, copy.deepcopy(model.state_dict()), 0
            else:
                waited += 1
                if waited >= config.patience:
                    break
    model.load_state_dict(best_state)
    model.eval()
    return curve
