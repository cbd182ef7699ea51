"""The frozen-teacher contract shared by every image teacher.

A :class:`Teacher` maps RGB images to a dense feature map that spans the whole image::

    feats = teacher(images)   # images [B, 3, H, W] uint8 0..255 or float 0..1, RGB
                              # feats  [B, D, h, w] float32, D = teacher.feature_dim

Cell ``(i, j)`` of the map is centred at pixel ``((i + 0.5) H / h, (j + 0.5) W / w)``, so
``F.interpolate(feats, (H, W), mode="bilinear", align_corners=False)`` gives per-pixel features
(the meaning :mod:`xmodal.structures.lidar_camera` gives ``teacher_feats``). Teachers resize the
whole image to a size their network accepts (a multiple of its stride or patch size, see
:func:`network_size`) and return the map of that resized image, which keeps the contract.

Frozen means: parameters have ``requires_grad=False``; ``train(True)`` leaves the module in
eval mode; the forward runs under :func:`torch.inference_mode` (bf16 autocast on CUDA only) and
returns an ordinary tensor (cloned out of inference mode), so it can enter a student's loss. The
teacher follows its input: the first call on another device moves the (frozen) weights there.
Teachers are never wrapped in DDP.

Vision-language teachers also embed text (:meth:`Teacher.encode_text`, L2-normalized, in the
same space as their dense features) and build zero-shot classifiers
(:meth:`Teacher.class_embeddings`).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xmodal.errors import ConfigError

__all__ = [
    "Teacher",
    "network_size",
    "resize_images",
    "to_unit_float",
    "require_weights",
    "file_fingerprint",
    "shift_cells",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """``[B, 3, H, W]`` uint8 (0..255) or float (0..1) RGB -> float32 in [0, 1]."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"teacher input must be [B, 3, H, W] RGB images, got shape {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    if not images.is_floating_point():
        raise ValueError(f"teacher input must be uint8 (0..255) or float (0..1), got dtype {images.dtype}")
    return images.float()


def network_size(
    height: int, width: int, image_size: int | Sequence[int] | None, multiple: int
) -> tuple[int, int]:
    """The size ``(h, w)`` (pixels) an ``height x width`` image is resized to before the network.

    ``image_size``: None keeps the input size; an int scales the image so its *shorter* side has
    that many pixels (aspect kept); ``[h, w]`` is an exact size. Each side is then rounded to the
    nearest multiple of ``multiple`` (the network's stride or patch size; halves up), at least one
    multiple: 225 x 400 -> 224 x 416 for a multiple of 32.
    """
    if image_size is None:
        h, w = float(height), float(width)
    elif isinstance(image_size, int):
        s = image_size / min(height, width)
        h, w = height * s, width * s
    else:
        h, w = (float(v) for v in image_size)
    def snap(v: float) -> int:  # nearest multiple, halves rounded up
        return max(multiple, int(math.floor(v / multiple + 0.5)) * multiple)

    return snap(h), snap(w)


def resize_images(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``x`` [B, C, H, W] to ``size`` (antialiased when shrinking); the
    identity when the size already matches."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def require_weights(path: str | os.PathLike | None, key: str, how: str) -> Path:
    """Check that the local weights file ``path`` (config key ``key``) exists.

    Nothing downloads at run time: a missing file raises a ConfigError that names the key and
    path and says, in ``how``, where to put the file or how to get it.
    """
    if path is None or str(path) == "":
        raise ConfigError(f"{key} is required: set it to a local weights file. {how}")
    p = Path(os.path.expanduser(str(path)))
    if not p.is_file():
        raise ConfigError(
            f"{key}: the weights file '{p}' does not exist (nothing is downloaded at run time). {how}"
        )
    return p


def file_fingerprint(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """``sha256:<first 16 hex>`` of a file: identifies a weights file in cache manifests."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return "sha256:" + h.hexdigest()[:16]


class Teacher(nn.Module):
    """Base class of frozen image teachers (see the module docstring for the contract).

    Subclasses set ``feature_dim`` and ``name``, build their network in ``__init__``, call
    :meth:`freeze` at the end, and implement :meth:`dense` on normalized-free float images.

    Attributes:
        feature_dim: D, channels of the dense map (for CLIP teachers: the joint embedding dim).
        name: short human-readable name (``"open_clip:RN50"``, ``"torchvision:resnet50"``...).
    """

    feature_dim: int
    name: str

    def __init__(self) -> None:
        super().__init__()
        self.feature_dim = 0
        self.name = type(self).__name__
        self._identity: dict[str, Any] = {}

    # -- frozen ----------------------------------------------------------------------------
    def freeze(self) -> Teacher:
        """No gradients, eval mode; call at the end of ``__init__``."""
        self.requires_grad_(False)
        super().train(False)
        return self

    def train(self, mode: bool = True) -> Teacher:
        """Frozen teachers stay in eval mode whatever ``mode`` says (BatchNorm statistics and
        dropout never change)."""
        return super().train(False)

    # -- identity (for caches) ---------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        """JSON-ready description that changes whenever the features would: teacher type, its
        config and a fingerprint of its weights file. Feature caches store and compare it."""
        return {"name": self.name, "feature_dim": self.feature_dim, **self._identity}

    # -- forward -----------------------------------------------------------------------------
    def dense(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` [B, 3, H, W] float32 RGB in [0, 1] on the teacher's device ->
        ``[B, D, h, w]`` map spanning the image. Implemented by subclasses; called by
        :meth:`forward` under inference mode."""
        raise NotImplementedError

    def _follow(self, x: torch.Tensor) -> None:
        ref = next(self.parameters(), None)
        if ref is None:
            ref = next(self.buffers(), None)
        if ref is not None and ref.device != x.device:
            self.to(x.device)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` uint8 / float RGB -> ``[B, D, h, w]`` float32 dense features."""
        self._follow(images)
        with torch.inference_mode():
            x = to_unit_float(images)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=x.is_cuda):
                feats = self.dense(x)
            feats = feats.float()
        return feats.clone()  # an ordinary tensor, usable in a student's loss

    # -- text --------------------------------------------------------------------------------
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """``[T, D]`` L2-normalized text embeddings (vision-language teachers only)."""
        raise TypeError(
            f"teacher {self.name!r} is an image-only teacher: it has no text encoder, so "
            "encode_text / class_embeddings / zero-shot use are not available. Use a "
            "vision-language teacher (type: open_clip or tiny_clip)."
        )

    def class_embeddings(self, classes: dict[str, list[str]], templates: list[str]) -> torch.Tensor:
        """Zero-shot classifier ``[K, D]`` (K = len(classes), in dict order): per class, the mean
        of the L2-normalized embeddings of every ``template.format(synonym)``, re-normalized."""
        if not classes:
            raise ValueError("class_embeddings: classes is empty")
        if not templates:
            raise ValueError("class_embeddings: templates is empty; pass e.g. ['a photo of a {}.']")
        rows = []
        for cls, synonyms in classes.items():
            names = list(synonyms) or [cls]
            texts = [t.format(s) for s in names for t in templates]
            rows.append(F.normalize(self.encode_text(texts).mean(0), dim=-1))
        return torch.stack(rows)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, feature_dim={self.feature_dim}"


def shift_cells(x: torch.Tensor, t: float) -> torch.Tensor:
    """``out[..., p, q] = x(p + t, q + t)``: the map ``x`` [..., h, w] resampled (linearly, with
    replicated borders) at positions shifted by ``t`` cells along rows and columns.

    Teachers use it to move a map whose cells are centred off the contract's ``(p + 0.5) *
    stride`` onto it: a map centred at ``p * stride + c`` pixels needs ``t = 0.5 - c / stride``.
    """
    if t == 0:
        return x
    lo = math.floor(t)
    frac = t - lo
    pad = abs(lo) + 1
    h, w = x.shape[-2:]
    xp = F.pad(x, (pad, pad, pad, pad), mode="replicate")

    def take(r: int, c: int) -> torch.Tensor:  # x(p + r, q + c) for integers r, c
        return xp[..., pad + r: pad + r + h, pad + c: pad + c + w]

    taps = [(lo, 1.0 - frac), (lo + 1, frac)]
    out = None
    for r, wr in taps:
        for c, wc in taps:
            if wr * wc:
                term = take(r, c) * (wr * wc)
                out = term if out is None else out + term
    return out
