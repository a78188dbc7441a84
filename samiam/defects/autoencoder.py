"""Convolutional patch autoencoders: AE1 (32-d latent, maps) and AE2 (8-d latent, defect classes)."""

from __future__ import annotations

import torch
from torch import nn


class PatchAutoencoder(nn.Module):
    """Conv encoder / transposed-conv decoder with batch norm for square single-channel patches.

    Three stride-2 stages take a ``patch`` x ``patch`` input down to (patch/8)^2 cells, a linear layer
    maps them to the latent vector, and the decoder mirrors the path back.

    Args:
        patch: patch side; a multiple of 8.
        latent: latent dimension.
        widths: channels of the three encoder stages.
    """

    def __init__(self, patch: int = 32, latent: int = 32, widths: tuple[int, int, int] = (8, 16, 32)):
        super().__init__()
        if patch % 8 or patch < 8:
            raise ValueError(f"patch side must be a positive multiple of 8, got {patch}")
        self.patch, self.latent, self.widths = patch, latent, tuple(widths)
        c1, c2, c3 = widths
        cells = patch // 8

        def down(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU())

        def up(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU())

        self.encoder = nn.Sequential(
            down(1, c1), down(c1, c2), down(c2, c3), nn.Flatten(), nn.Linear(c3 * cells * cells, latent)
        )
        self.decoder_in = nn.Linear(latent, c3 * cells * cells)
        self.decoder = nn.Sequential(up(c3, c2), up(c2, c1), nn.ConvTranspose2d(c1, 1, 4, stride=2, padding=1))
        self._cells = cells

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, P, P) patches -> (N, latent)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(N, latent) -> (N, 1, P, P) reconstructions."""
        h = self.decoder_in(z).view(-1, self.widths[2], self._cells, self._cells)
        return self.decoder(torch.relu(h))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (reconstruction, latent)."""
        z = self.encode(x)
        return self.decode(z), z

    def config(self) -> dict:
        """Constructor arguments, for the model dir's config JSON."""
        return {"patch": self.patch, "latent": self.latent, "widths": list(self.widths)}
