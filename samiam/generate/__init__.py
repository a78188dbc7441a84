"""Mask generation: SAM's point-grid generator and a box-prompt grid for box-only models."""
