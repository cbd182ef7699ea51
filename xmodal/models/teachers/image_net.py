"""Any torchvision or timm image network as a frozen, image-only teacher (``type: image_net``).

``name`` picks the network: ``"torchvision:resnet50"`` (any ``torchvision.models.get_model``
name) or ``"timm:vit_small_patch16_224"`` (any ``timm.create_model`` name). Weights come from a
local file (``weights:``, a state dict or a checkpoint holding one under ``state_dict`` /
``model``; required) unless ``random_init: true``, which gives the *random-weights control*
teacher of the distillation papers (same architecture, weights drawn from the network's own
initialization with ``seed``).

Dense features come from ``layer``:

- torchvision: a node name of ``torchvision.models.feature_extraction`` (ResNets: ``layer1`` ..
  ``layer4``, default ``layer4``; VGG / MobileNet / EfficientNet / ConvNeXt: default ``features``).
  ``output_stride: 16 | 8`` on ResNets sets ``replace_stride_with_dilation`` (SLidR's dilated
  ResNet-50 is ``output_stride: 8`` = ``[False, True, True]``).
- timm: an index of ``forward_intermediates`` (ViTs: the block, patch tokens reshaped to the
  patch grid, prefix tokens dropped, ``final_norm`` applies the last norm; CNNs: the stage),
  default the last one. ``output_stride`` is passed to ``timm.create_model`` (CNNs).

CNN maps are moved by half a cell so their cells sit where the teacher contract says (a strided
"same" convolution centres output ``i`` on input pixel ``stride * i``); ViT patches already do.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import torch
from torch import nn

from xmodal.errors import ConfigError
from xmodal.models.teachers.base import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Teacher,
    file_fingerprint,
    network_size,
    require_weights,
    resize_images,
    shift_cells,
)
from xmodal.registry import TEACHERS

__all__ = ["ImageNetTeacherConfig", "ImageNetTeacher", "load_state_dict_file"]

_HOW = (
    "Save the network's weights on a machine with internet (e.g. `torch.save(torchvision.models.resnet50("
    "weights='IMAGENET1K_V2').state_dict(), 'resnet50.pth')`, or `timm.create_model(name, pretrained=True)"
    ".state_dict()`) and copy the file here; or set `random_init: true` for the random-weights control."
)


@dataclass
class ImageNetTeacherConfig:
    """``teacher: {type: image_net}``; see the module docstring for every key."""

    name: str
    weights: Optional[str] = None
    random_init: bool = False
    seed: int = 0
    layer: Optional[Union[str, int]] = None
    output_stride: Optional[int] = None
    final_norm: bool = True  # timm ViTs: apply the final norm to the chosen block's tokens
    image_size: Optional[Union[int, list[int]]] = None
    mean: Optional[list[float]] = None
    std: Optional[list[float]] = None
    kwargs: dict[str, Any] = field(default_factory=dict)  # extra constructor arguments

    def validate(self) -> None:
        lib = self.name.split(":", 1)[0]
        if ":" not in self.name or lib not in ("torchvision", "timm") or not self.name.split(":", 1)[1]:
            raise ConfigError(
                f"teacher.name must be 'torchvision:<model>' or 'timm:<model>' (e.g. torchvision:resnet50, "
                f"timm:vit_small_patch16_224), got {self.name!r}"
            )
        if self.output_stride not in (None, 8, 16, 32):
            raise ConfigError(f"teacher.output_stride must be 32, 16 or 8, got {self.output_stride!r}")
        if self.weights and self.random_init:
            raise ConfigError("teacher.weights and teacher.random_init: true exclude each other; keep one.")
        for key in ("mean", "std"):
            v = getattr(self, key)
            if v is not None and len(v) != 3:
                raise ConfigError(f"teacher.{key} must have 3 values (R, G, B), got {v!r}")


def load_state_dict_file(path: Any, key: str = "teacher.weights") -> dict[str, torch.Tensor]:
    """A state dict from a ``.pth`` / ``.pt`` (plain, or under ``state_dict`` / ``model``, DDP
    ``module.`` prefixes removed) or ``.safetensors`` file."""
    try:
        if str(path).endswith(".safetensors"):
            from safetensors.torch import load_file

            sd: Any = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"{key}: '{path}' could not be read as a state dict ({type(exc).__name__}: {exc}).") from None
    for k in ("state_dict", "model"):
        if isinstance(sd, dict) and isinstance(sd.get(k), dict):
            sd = sd[k]
    if not isinstance(sd, dict):
        raise ConfigError(f"{key}: '{path}' holds a {type(sd).__name__}, not a state dict.")
    return {(k[7:] if k.startswith("module.") else k): v for k, v in sd.items()}


_HEADS = ("fc", "head", "heads", "classifier", "fc_norm", "head_drop", "last_linear")


def _load(model: nn.Module, path: Any, needed: set[str] | None = None) -> None:
    """Load a state dict into ``model``; keys the features do not need may be missing (a backbone
    checkpoint without its classifier): ``needed`` names them, else the classifier heads."""
    sd = load_state_dict_file(path)
    try:
        res = model.load_state_dict(sd, strict=False)
    except RuntimeError as exc:  # shape mismatches
        head = " ".join(str(exc).split("\n")[:3])[:400]
        raise ConfigError(f"teacher.weights: '{path}' does not fit teacher.name's network ({head}); use the weights of the same architecture.") from None
    missing = [k for k in res.missing_keys if (k in needed if needed is not None else k.split(".")[0] not in _HEADS)]
    if missing or res.unexpected_keys:
        raise ConfigError(
            f"teacher.weights: '{path}' does not fit teacher.name's network (missing {missing[:5]}"
            f"{'...' if len(missing) > 5 else ''}, unexpected {res.unexpected_keys[:5]}"
            f"{'...' if len(res.unexpected_keys) > 5 else ''}); use the weights of the same architecture "
            "(keys as in its state_dict(); 'module.' prefixes are removed)."
        )


class _TorchvisionTrunk(nn.Module):
    def __init__(self, arch: str, cfg: ImageNetTeacherConfig):
        super().__init__()
        import torchvision
        from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

        kwargs = dict(cfg.kwargs)
        if cfg.output_stride and cfg.output_stride != 32:
            kwargs["replace_stride_with_dilation"] = {16: [False, False, True], 8: [False, True, True]}[cfg.output_stride]
        try:
            net = torchvision.models.get_model(arch, weights=None, **kwargs)
        except (ValueError, TypeError, NotImplementedError) as exc:
            raise ConfigError(
                f"teacher.name: torchvision cannot build {arch!r} with {kwargs} ({type(exc).__name__}: {exc}); "
                "output_stride 16 / 8 works on Bottleneck ResNets (resnet50 and up, resnext, wide_resnet)."
            ) from None
        names = get_graph_node_names(net)[1]

        def has(node: str) -> bool:  # a node, or a module whose last node it means
            return node in names or any(n.startswith(node + ".") for n in names)

        layer = cfg.layer or ("layer4" if has("layer4") else "features" if has("features") else None)
        if layer is None or not has(str(layer)):
            tops = list(dict.fromkeys(n.split(".")[0] for n in names if n != "x"))
            raise ConfigError(
                f"teacher.layer: {layer!r} is not a node or module of torchvision {arch}; choose one of "
                f"{', '.join(tops)} (or a dotted sub-node)."
            )
        self.layer = str(layer)
        needed = set(create_feature_extractor(net, {self.layer: "out"}).state_dict())
        if cfg.weights:
            _load(net, cfg.weights, needed)
        self.body = create_feature_extractor(net, {self.layer: "out"})
        self.multiple, self.is_vit = 32, False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)["out"]


class _TimmTrunk(nn.Module):
    def __init__(self, arch: str, cfg: ImageNetTeacherConfig):
        super().__init__()
        import timm

        kwargs = dict(cfg.kwargs)
        try:  # ViTs take dynamic_img_size (any input size, interpolated position embeddings)
            net = timm.create_model(arch, pretrained=False, **{"dynamic_img_size": True, **kwargs})
            is_vit = hasattr(net, "patch_embed")
        except TypeError:
            net, is_vit = None, False
        except Exception as exc:
            raise ConfigError(f"teacher.name: timm cannot build {arch!r} ({type(exc).__name__}: {exc}).") from None
        if is_vit and cfg.output_stride not in (None, int(net.patch_embed.patch_size[0])):
            raise ConfigError(f"teacher.output_stride: timm ViT {arch} has the stride of its patches; leave it unset.")
        if net is None:
            if cfg.output_stride and cfg.output_stride != 32:
                kwargs["output_stride"] = cfg.output_stride
            try:
                net = timm.create_model(arch, pretrained=False, **kwargs)
            except Exception as exc:
                raise ConfigError(f"teacher.name: timm cannot build {arch!r} with {kwargs} ({type(exc).__name__}: {exc}).") from None
        if cfg.weights:
            _load(net, cfg.weights)
        if not hasattr(net, "forward_intermediates"):
            raise ConfigError(f"teacher.name: timm {arch} has no forward_intermediates; pick another timm model.")
        self.net, self.is_vit, self.final_norm = net, is_vit, cfg.final_norm
        self.index = int(cfg.layer) if cfg.layer is not None else None
        self.pretrained_cfg = getattr(net, "pretrained_cfg", {}) or {}
        ps = getattr(getattr(net, "patch_embed", None), "patch_size", None)
        self.multiple = int(ps[0]) if is_vit and ps is not None else 32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        indices = 1 if self.index is None else [self.index]
        kw = {"norm": self.final_norm} if self.is_vit else {}
        try:
            return self.net.forward_intermediates(x, indices=indices, intermediates_only=True, output_fmt="NCHW", **kw)[-1]
        except (IndexError, AssertionError, ValueError) as exc:
            raise ConfigError(f"teacher.layer={self.index}: not an index of this network's intermediates ({exc}).") from None


@TEACHERS.register("image_net", config=ImageNetTeacherConfig)
class ImageNetTeacher(Teacher):
    """Frozen torchvision / timm network; image-only (no text)."""

    def __init__(self, cfg: ImageNetTeacherConfig) -> None:
        super().__init__()
        cfg.validate()
        lib, arch = cfg.name.split(":", 1)
        if not cfg.random_init:  # resolve the path once (~ expanded); the caller's config is not changed
            cfg = dataclasses.replace(cfg, weights=str(require_weights(cfg.weights, "teacher.weights", _HOW)))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.trunk = _TorchvisionTrunk(arch, cfg) if lib == "torchvision" else _TimmTrunk(arch, cfg)
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        if lib == "timm":
            mean = tuple(self.trunk.pretrained_cfg.get("mean", mean))
            std = tuple(self.trunk.pretrained_cfg.get("std", std))
        self.register_buffer("mean", torch.tensor(cfg.mean or mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.std or std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.name = cfg.name + (f"(random, seed {cfg.seed})" if cfg.random_init else "")
        self.image_size = cfg.image_size
        self.multiple = self.trunk.multiple
        self.freeze()
        with torch.no_grad():
            probe = self.trunk(torch.zeros(1, 3, 2 * self.multiple, 2 * self.multiple))
        if probe.ndim != 4:
            raise ConfigError(f"teacher.layer: {cfg.name} layer {cfg.layer!r} gives a {probe.ndim}-d tensor, not a [B, C, h, w] map; pick a convolutional stage.")
        self.feature_dim = int(probe.shape[1])
        self.stride = 2 * self.multiple // probe.shape[-1]
        self._identity = {
            "type": "image_net", "network": cfg.name,
            "weights_fingerprint": file_fingerprint(cfg.weights) if cfg.weights else None,
            "random_init": cfg.random_init, "seed": cfg.seed if cfg.random_init else None, "layer": cfg.layer,
            "output_stride": cfg.output_stride, "final_norm": cfg.final_norm, "image_size": cfg.image_size,
            "mean": self.mean.flatten().tolist(), "std": self.std.flatten().tolist(), "kwargs": cfg.kwargs,
        }

    def dense(self, images: torch.Tensor) -> torch.Tensor:
        size = network_size(images.shape[-2], images.shape[-1], self.image_size, self.multiple)
        x = (resize_images(images, size) - self.mean) / self.std
        feats = self.trunk(x)
        if not self.trunk.is_vit:  # "same"-padded strided convs centre cell i on pixel stride * i
            stride = size[0] / feats.shape[-2]
            feats = shift_cells(feats, 0.5 - 0.5 / stride)
        return feats
