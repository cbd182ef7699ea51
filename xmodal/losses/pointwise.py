"""Point-wise feature distillation onto frozen teacher features (ScaLR, OpenScene).

For every point <-> pixel pair ``(p, i)`` with student feature ``f(p)`` [C] (after its head) and
teacher feature ``t(i)`` [C] (the teacher map sampled at the pixel centre)::

    l2      (ScaLR, Puy et al., CVPR 2024):  L = mean_pairs || f(p)/|f(p)| - t(i)/|t(i)| ||_2
    cosine  (OpenScene, Peng et al., CVPR 2023):  L = mean_pairs (1 - cos(f(p), t(i)))

ScaLR's loss is the mean of the (unsquared) L2 distances between normalised features; on unit
vectors ``||a - b||^2 = 2 - 2 cos``, so the two have the same minimiser and differ in how they
weight hard pairs. A point seen by two cameras gives two pairs (ScaLR picks one camera per scan).

Shapes: ``student`` [M, C], ``teacher`` [M, C], one row per pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from xmodal.registry import LOSSES

__all__ = ["PointwiseDistillConfig", "PointwiseDistill", "pointwise_distill"]

_EPS = 1e-8


def pointwise_distill(student: torch.Tensor, teacher: torch.Tensor, kind: str = "l2") -> torch.Tensor:
    """Scalar loss over paired rows (see the module docstring); 0 (differentiable) for M = 0."""
    if student.dim() != 2 or student.shape != teacher.shape:
        raise ValueError(f"pointwise_distill: student and teacher must both be [M, C], got {tuple(student.shape)} and {tuple(teacher.shape)}")
    if kind not in ("l2", "cosine"):
        raise ValueError(f"pointwise_distill: kind must be 'l2' or 'cosine', got {kind!r}")
    if student.shape[0] == 0:
        return student.sum() * 0.0
    s = F.normalize(student, dim=1, eps=_EPS)
    t = F.normalize(teacher.to(student.dtype), dim=1, eps=_EPS)
    if kind == "cosine":
        return (1.0 - (s * t).sum(1)).mean()
    # sqrt(2 - 2 cos) is not differentiable at 0; the eps keeps the gradient finite there
    return ((s - t).pow(2).sum(1) + 1e-12).sqrt().mean()


@dataclass(frozen=True)
class PointwiseDistillConfig:
    """``loss: {type: pointwise}``: ``kind: l2`` (ScaLR) or ``cosine`` (OpenScene)."""

    kind: Literal["l2", "cosine"] = "l2"


@LOSSES.register("pointwise", config=PointwiseDistillConfig)
class PointwiseDistill(torch.nn.Module):
    """:func:`pointwise_distill` with its ``kind`` from the config."""

    needs_superpixels = False

    def __init__(self, cfg: PointwiseDistillConfig):
        super().__init__()
        self.cfg = cfg

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> tuple[torch.Tensor, dict]:
        return pointwise_distill(student, teacher, self.cfg.kind), {"num_pairs": torch.tensor(float(student.shape[0]))}
