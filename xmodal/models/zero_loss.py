"""The loss of a batch with nothing to learn from."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["zero_loss"]


def zero_loss(module: nn.Module) -> torch.Tensor:
    """A zero scalar that still touches every trainable parameter of ``module``: under DDP every
    rank must produce gradients for the same parameters, even when its batch was empty."""
    return sum(p.sum() * 0.0 for p in module.parameters() if p.requires_grad)
