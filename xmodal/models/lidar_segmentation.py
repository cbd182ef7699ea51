"""LiDAR semantic segmentation: a backbone and a per-point classification head.

``model: {type: lidar_segmentation}``: the MinkUNet backbone (``backbone.*`` keys, the same names
as in :class:`~xmodal.models.lidar_distill.LidarDistillModel`, so a distilled checkpoint loads
with no remapping) and a head ``linear`` or ``bn_linear`` (BatchNorm1d + linear) on its
per-point features. Classes are the dataset's evaluation ids ``1 .. num_classes`` with 0 =
ignore (nuScenes lidarseg: 16 classes); the head has ``num_classes`` outputs, output ``c - 1``
scores class ``c``, so a prediction is never "ignore".

``freeze_backbone`` (linear probing) keeps the backbone in eval mode (BatchNorm statistics
frozen, as in SLidR) with no gradients. The loss is cross-entropy over labelled points (SLidR
adds a Lovász-softmax term for fine-tuning; not implemented here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from xmodal.models.encoders.minkunet import MinkUNetConfig
from xmodal.models.zero_loss import zero_loss
from xmodal.registry import ENCODERS, MODELS
from xmodal.structures import LidarCameraBatch

__all__ = ["LidarSegmentationConfig", "LidarSegmentationModel", "build_head"]


@dataclass(frozen=True)
class LidarSegmentationConfig:
    """``model: {type: lidar_segmentation}``."""

    backbone: Annotated[Any, ENCODERS] = field(default_factory=lambda: MinkUNetConfig())
    num_classes: int = 16
    head: Literal["linear", "bn_linear"] = "linear"
    freeze_backbone: bool = False

    def validate(self) -> None:
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}.")


def build_head(kind: str, channels: int, num_classes: int) -> nn.Module:
    """``linear`` or ``bn_linear`` classification head on [N, channels] features."""
    if kind == "linear":
        return nn.Linear(channels, num_classes)
    return nn.Sequential(nn.BatchNorm1d(channels), nn.Linear(channels, num_classes))


@MODELS.register("lidar_segmentation", config=LidarSegmentationConfig)
class LidarSegmentationModel(nn.Module):
    """See the module docstring. ``forward(batch)`` -> ``{"loss", "logs", "logits"}``."""

    def __init__(self, cfg: LidarSegmentationConfig, loss_cfg: Any = None):
        super().__init__()
        self.cfg = cfg
        self.backbone = ENCODERS.build(cfg.backbone)
        self.head = build_head(cfg.head, self.backbone.out_channels, cfg.num_classes)
        if cfg.freeze_backbone:
            self.backbone.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.cfg.freeze_backbone:
            self.backbone.eval()
        return self

    def logits(self, points: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """[N, num_classes] scores of the points (LiDAR frame input); column c-1 is class c."""
        if self.cfg.freeze_backbone:
            with torch.no_grad():
                feats = self.backbone(points, offsets)
        else:
            feats = self.backbone(points, offsets)
        return self.head(feats)

    def forward(self, batch: LidarCameraBatch) -> dict:
        if batch.points.shape[0] == 0:  # an empty batch: a zero loss over every parameter (DDP)
            return {"loss": zero_loss(self), "logs": {}, "logits": batch.points.new_zeros(0, self.cfg.num_classes)}
        logits = self.logits(batch.points, batch.offsets)
        labels = batch.labels
        if labels is None:
            return {"loss": logits.sum() * 0.0, "logs": {}, "logits": logits}
        target = labels - 1  # 0 (ignore) -> -1
        n = int((target >= 0).sum())
        loss = F.cross_entropy(logits, target, ignore_index=-1) if n else logits.sum() * 0.0
        with torch.no_grad():
            acc = (logits.argmax(1) == target)[target >= 0].float().mean() if n else torch.tensor(0.0)
        return {"loss": loss, "logs": {"acc": acc, "labelled": torch.tensor(float(n))}, "logits": logits}
