"""Image-to-LiDAR distillation model: the LiDAR student, its heads and its loss.

``model: {type: lidar_distill}`` holds what trains (the MinkUNet backbone, an optional point head,
an optional trainable image head) and the loss; the frozen teacher is **not** part of it (it is
never wrapped in DDP): its dense maps arrive in ``batch.teacher_feats`` [I, D, h, w] (from a
teacher cache, or computed online by :func:`teacher_prepare_batch` before the forward).

Two recipes, picked by the top-level ``loss:``:

- ``superpixel_infonce`` (SLidR): backbone -> per-point features f [N, C] (L2-normalised);
  image head = trainable 1x1 conv D -> C on the teacher map, bilinear upsampling to the image,
  L2-normalised per pixel; both mean-pooled per superpixel; InfoNCE (:mod:`xmodal.losses.
  superpixel_contrast`).
- ``pointwise`` (ScaLR / OpenScene): backbone -> point head (linear C -> D) -> f [N, D]; the teacher
  map sampled bilinearly at each pair's pixel centre; L2 / cosine between normalised features
  (:mod:`xmodal.losses.pointwise`). No trainable image head.

``forward(batch)`` returns ``{"loss", "logs"}``. ``backbone`` is what downstream protocols keep
(``backbone.*`` keys of the checkpoint).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from xmodal.errors import ConfigError, DataError
from xmodal.ops import normalize_channels
from xmodal.models.encoders.minkunet import MinkUNetConfig
from xmodal.models.zero_loss import zero_loss
from xmodal.registry import ENCODERS, LOSSES, MODELS
from xmodal.structures import LidarCameraBatch

__all__ = ["LidarDistillConfig", "LidarDistillModel", "sample_feature_map", "teacher_prepare_batch"]


def sample_feature_map(
    maps: torch.Tensor,  # [I, D, h, w] maps spanning their images
    camera: torch.Tensor,  # [M] int64 image index
    row: torch.Tensor,  # [M] int64 pixel row in the image (0..H-1)
    col: torch.Tensor,  # [M] int64 pixel column (0..W-1)
    image_size: tuple[int, int],  # (H, W) of the images
) -> torch.Tensor:
    """[M, D] the maps' values at the pixel centres, bilinear, exactly what
    ``F.interpolate(maps, (H, W), mode="bilinear", align_corners=False)[camera, :, row, col]``
    gives, without building the full-resolution maps."""
    n, d, h, w = maps.shape
    H, W = image_size
    fy = ((row.to(maps.dtype) + 0.5) * (h / H) - 0.5).clamp(min=0)
    fx = ((col.to(maps.dtype) + 0.5) * (w / W) - 0.5).clamp(min=0)
    y0, x0 = fy.floor().long().clamp(max=h - 1), fx.floor().long().clamp(max=w - 1)
    y1, x1 = (y0 + 1).clamp(max=h - 1), (x0 + 1).clamp(max=w - 1)
    wy, wx = (fy - y0).unsqueeze(1), (fx - x0).unsqueeze(1)
    flat = maps.permute(0, 2, 3, 1).reshape(-1, d)  # [(I h w), D]
    base = camera * (h * w)

    def at(y, x):
        return flat.index_select(0, base + y * w + x)

    top = at(y0, x0) * (1 - wx) + at(y0, x1) * wx
    bottom = at(y1, x0) * (1 - wx) + at(y1, x1) * wx
    return top * (1 - wy) + bottom * wy


@dataclass(frozen=True)
class LidarDistillConfig:
    """``model: {type: lidar_distill}``. ``teacher_dim`` is the teacher's feature dimension D
    (check it against your teacher / cache: a mismatch fails at the first batch with a message).
    ``point_head``: a linear layer C -> D after the backbone (pointwise recipes need it when C != D).
    ``image_head``: SLidR's trainable 1x1 conv D -> C (superpixel recipes)."""

    backbone: Annotated[Any, ENCODERS] = field(default_factory=lambda: MinkUNetConfig())
    teacher_dim: int = 64
    point_head: bool = False
    image_head: bool = True
    normalize: bool = True  # L2-normalise point and pixel features before pooling (SLidR)


@MODELS.register("lidar_distill", config=LidarDistillConfig)
class LidarDistillModel(nn.Module):
    """See the module docstring. Built as ``LidarDistillModel(cfg.model, loss_cfg)``."""

    def __init__(self, cfg: LidarDistillConfig, loss_cfg: Any):
        super().__init__()
        if loss_cfg is None:
            raise ConfigError("model.type=lidar_distill needs a top-level `loss:` (type: superpixel_infonce or pointwise)")
        self.cfg = cfg
        self.backbone = ENCODERS.build(cfg.backbone)
        c = self.backbone.out_channels
        self.loss_fn = LOSSES.build(loss_cfg)
        self.superpixel = bool(getattr(self.loss_fn, "needs_superpixels", False))
        if self.superpixel and not cfg.image_head and cfg.teacher_dim != c:
            raise ConfigError(
                f"model: superpixel InfoNCE compares point features (backbone.out_channels={c}) with pixel features "
                f"(teacher_dim={cfg.teacher_dim}); set model.image_head=true or make them equal"
            )
        if not self.superpixel and not cfg.point_head and cfg.teacher_dim != c:
            raise ConfigError(
                f"model: pointwise distillation needs backbone.out_channels ({c}) == teacher_dim ({cfg.teacher_dim}); "
                "set model.point_head=true to add a linear head"
            )
        self.point_head = nn.Linear(c, cfg.teacher_dim) if cfg.point_head else nn.Identity()
        self.image_head = nn.Conv2d(cfg.teacher_dim, c, 1) if (cfg.image_head and self.superpixel) else None

    def _teacher_maps(self, batch: LidarCameraBatch) -> torch.Tensor:
        t = batch.teacher_feats
        if t is None:
            raise DataError(
                "lidar_distill: the batch has no teacher features; set dataset.teacher_cache or a top-level `teacher:` "
                "(computed online)"
            )
        if t.shape[1] != self.cfg.teacher_dim:
            raise ConfigError(f"model.teacher_dim={self.cfg.teacher_dim} but the teacher gives {t.shape[1]}-d features; set model.teacher_dim={t.shape[1]}")
        return t.float()

    def point_features(self, batch: LidarCameraBatch) -> torch.Tensor:
        """[N, C] backbone features of the batch's points (LiDAR frame input)."""
        return self.backbone(batch.points, batch.offsets)

    def forward(self, batch: LidarCameraBatch) -> dict:
        if len(batch.pairs) == 0:  # every scan of this batch was skipped (no visible point)
            return {"loss": zero_loss(self), "logs": {"pairs": torch.tensor(0.0)}}
        maps = self._teacher_maps(batch)
        feats = self.point_head(self.point_features(batch))
        pairs = batch.pairs
        H, W = batch.images.shape[-2:] if batch.images is not None else batch.superpixels.shape[-2:]
        if self.superpixel:
            if batch.superpixels is None:
                raise DataError("superpixel_infonce needs superpixels: set dataset.superpixels to a cache tag (xmodal prepare superpixels)")
            pix = self.image_head(maps) if self.image_head is not None else maps
            pix = F.interpolate(pix, (H, W), mode="bilinear", align_corners=False)
            if self.cfg.normalize:
                feats, pix = F.normalize(feats, dim=1), normalize_channels(pix)
            loss, logs = self.loss_fn(feats, pix, pairs, batch.superpixels, batch.num_superpixels)
        else:
            target = sample_feature_map(maps, pairs.camera, pairs.row, pairs.col, (H, W))
            loss, logs = self.loss_fn(feats.index_select(0, pairs.point), target)
        logs = {**logs, "pairs": torch.tensor(float(len(pairs)))}
        return {"loss": loss, "logs": logs}


def teacher_prepare_batch(teacher: nn.Module | None) -> Callable[[LidarCameraBatch, torch.device], LidarCameraBatch]:
    """``prepare_batch`` for the trainer: move the batch to ``device`` and, when the batch has no
    cached teacher maps, run the frozen ``teacher`` on its images (outside the DDP model)."""

    def prepare(batch: LidarCameraBatch, device: torch.device) -> LidarCameraBatch:
        batch = batch.to(device)
        if batch.teacher_feats is None and teacher is not None and batch.images is not None:
            teacher.to(device)
            # a clone outside inference mode: inference tensors cannot enter the autograd graph
            batch = batch.replace(teacher_feats=teacher(batch.images).clone())
        return batch

    return prepare
