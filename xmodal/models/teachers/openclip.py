"""OpenCLIP image tower as a frozen teacher, with dense features in the joint image-text space.

``type: open_clip`` builds an open-clip-torch model from a model name (``RN50``, ``ViT-B-16``, ...
the configs that ship with the package) or from a custom model-config JSON, and loads a local
weights file (``weights:``; nothing downloads). Dense features (``[B, embed_dim, h, w]``) are
made so that ``normalize(feats) . encode_text(...)`` is a zero-shot segmentation:

- ViT, ``dense: value`` (MaskCLIP, Zhou et al. 2022): the last residual attention block is
  replaced, for the patch tokens, by its value path: with ``x`` the tokens entering the last
  block, ``f = ln_post(out_proj(W_v ln_1(x) + b_v)) @ proj`` (q.k attention, residual and MLP
  skipped). ``dense: tokens`` uses the ordinary last-block tokens, ``ln_post(x_L) @ proj``.
  Positional embeddings are interpolated (bicubic) to the patch grid of the input.
- ModifiedResNet (RN50, ...): the attention-pool trick, ``f = c_proj(v_proj(x))`` at every
  location of the layer4 map (no positional embedding; MaskCLIP). ``output_stride: 16 | 8``
  turns the stride of layer4 (and layer3) into dilation (a trous), so the map is the stride-32
  network evaluated every 16 / 8 pixels (at the original cells it equals the stride-32 map).

The global path (:meth:`OpenClipTeacher.encode_image`: CLS token / attention pool, then the
projection) equals open_clip's own ``encode_image``.

Weights files: anything ``open_clip.load_checkpoint`` reads (a state dict, a checkpoint with a
``state_dict`` key, an OpenAI JIT archive, ``.safetensors``). Get one on a machine with internet,
e.g. ``open_clip.create_model("RN50", pretrained="openai")`` then
``torch.save(model.state_dict(), "RN50_openai.pt")``, and copy it here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from xmodal.errors import ConfigError
from xmodal.models.teachers.base import (
    Teacher,
    file_fingerprint,
    network_size,
    require_weights,
    resize_images,
    shift_cells,
    to_unit_float,
)
from xmodal.registry import TEACHERS

__all__ = [
    "OpenClipTeacherConfig",
    "OpenClipTeacher",
    "load_model_config",
    "build_clip",
    "vit_forward",
    "resnet_forward",
    "dilate_modified_resnet",
]

DENSE_METHODS = ("value", "tokens")
_WEIGHTS_HOW = (
    "Put the OpenCLIP weights file there (on a machine with internet: "
    "`m = open_clip.create_model(<model>, pretrained=<tag>); torch.save(m.state_dict(), <file>)`), "
    "or, for the synthetic worlds, fit one with `xmodal teacher fit-tiny-clip --data <dataroot> --out <file>` "
    "and use `type: tiny_clip`."
)


@dataclass
class OpenClipTeacherConfig:
    """``teacher: {type: open_clip}``.

    model: an open_clip model name (``RN50``, ``ViT-B-16``) or a path to a model-config JSON
        (``{"embed_dim", "vision_cfg", "text_cfg"}`` or open_clip's ``{"model_cfg": ...,
        "preprocess_cfg": ...}``).
    weights: local weights file (required).
    image_size: resize before the network: None = the image's own size, an int = shorter side
        in pixels, ``[h, w]`` = exact; rounded to a multiple of the stride / patch size.
    dense: ``value`` (MaskCLIP value path; ViT and ResNet) or ``tokens`` (ViT only).
    output_stride: ResNet only: 32 (default), 16 or 8 (dilated layer4 / layer3+4).
    mean, std: input normalization (default: the preprocess config of the JSON, else OpenAI's).
    """

    model: str
    weights: Optional[str] = None
    image_size: Optional[Union[int, list[int]]] = None
    dense: Literal["value", "tokens"] = "value"
    output_stride: Optional[int] = None
    mean: Optional[list[float]] = None
    std: Optional[list[float]] = None

    def validate(self) -> None:
        _validate_common(self, "teacher")


def _validate_common(cfg: Any, section: str) -> None:
    if cfg.output_stride not in (None, 8, 16, 32):
        raise ConfigError(f"{section}.output_stride must be 32, 16 or 8 (ResNet towers), got {cfg.output_stride!r}")
    if isinstance(cfg.image_size, list) and len(cfg.image_size) != 2:
        raise ConfigError(f"{section}.image_size must be an int (shorter side) or [height, width], got {cfg.image_size!r}")
    for key in ("mean", "std"):
        v = getattr(cfg, key)
        if v is not None and len(v) != 3:
            raise ConfigError(f"{section}.{key} must have 3 values (R, G, B), got {v!r}")


# ----------------------------------------------------------------------------- model building
def load_model_config(model: str) -> tuple[dict, dict]:
    """``(model_cfg, preprocess_cfg)`` of an open_clip model name or a model-config JSON path."""
    import open_clip

    if model.endswith(".json") or os.path.sep in model or os.path.isfile(model):
        path = Path(os.path.expanduser(model))
        if not path.is_file():
            raise ConfigError(
                f"teacher.model: the model-config JSON '{path}' does not exist; pass an open_clip "
                "model name (e.g. RN50, ViT-B-16) or the path of a JSON with embed_dim, vision_cfg, text_cfg."
            )
        try:
            raw = json.loads(path.read_text())
        except ValueError as exc:
            raise ConfigError(f"teacher.model: '{path}' is not valid JSON ({exc}).") from None
        cfg, pre = (raw["model_cfg"], raw.get("preprocess_cfg", {})) if "model_cfg" in raw else (raw, {})
        missing = [k for k in ("embed_dim", "vision_cfg", "text_cfg") if k not in cfg]
        if missing:
            raise ConfigError(f"teacher.model: the model config '{path}' lacks {missing}; see open_clip/model_configs/*.json.")
        return dict(cfg), dict(pre)
    cfg = open_clip.get_model_config(model.replace("/", "-"))
    if cfg is None:
        import difflib

        names = open_clip.list_models()
        close = difflib.get_close_matches(model, names, n=3)
        raise ConfigError(
            f"teacher.model: {model!r} is not an open_clip model name"
            + (f" (did you mean {', '.join(close)}?)" if close else "")
            + "; pass a name from open_clip.list_models() or the path of a model-config JSON."
        )
    return dict(cfg), {}


def build_clip(model_cfg: dict, where_: str = "teacher.model") -> nn.Module:
    """An ``open_clip.CLIP`` (random weights, fp32, CPU) from a model config dict."""
    from open_clip.model import CLIP

    vision, text = model_cfg.get("vision_cfg", {}), model_cfg.get("text_cfg", {})
    if vision.get("timm_model_name"):
        raise ConfigError(
            f"{where_}: timm vision towers (vision_cfg.timm_model_name) have no dense path here; "
            "use an OpenAI-style ViT / ModifiedResNet config, or `type: image_net` for a timm network."
        )
    if text.get("hf_model_name") or text.get("hf_tokenizer_name") or model_cfg.get("custom_text"):
        raise ConfigError(
            f"{where_}: Hugging Face text towers / tokenizers need downloads; use a config with the "
            "built-in text transformer and tokenizer (as the OpenAI CLIP and tiny CLIP configs)."
        )
    cfg = {k: v for k, v in model_cfg.items() if k not in ("custom_text",)}
    return CLIP(**cfg)


def _load_weights(model: nn.Module, path: Path, key: str) -> None:
    import open_clip

    try:
        open_clip.load_checkpoint(model, str(path), strict=True)
    except RuntimeError as exc:
        msg = str(exc).split("\n")
        raise ConfigError(
            f"{key}: '{path}' does not fit the model ({' '.join(m.strip() for m in msg[:3])[:400]}); "
            "use the weights of the same open_clip model config."
        ) from None
    except Exception as exc:
        raise ConfigError(f"{key}: '{path}' could not be read as OpenCLIP weights ({type(exc).__name__}: {exc}).") from None


# ----------------------------------------------------------------------------- ViT
def _vit_pos_embed(visual: nn.Module, grid: tuple[int, int]) -> torch.Tensor:
    """[1 + gh*gw, C] positional embedding for ``grid``, interpolated bicubically (as open_clip's
    ``resize_pos_embed``) when it differs from the model's own grid."""
    pos = visual.positional_embedding
    old = tuple(visual.grid_size)
    if tuple(grid) == old:
        return pos
    cls, img = pos[:1], pos[1:]
    img = img.reshape(1, old[0], old[1], -1).permute(0, 3, 1, 2)
    img = F.interpolate(img.float(), size=grid, mode="bicubic", antialias=True, align_corners=False).to(pos.dtype)
    return torch.cat([cls, img.permute(0, 2, 3, 1).reshape(grid[0] * grid[1], -1)], dim=0)


def vit_forward(visual: nn.Module, x: torch.Tensor, dense: str = "value") -> tuple[torch.Tensor, torch.Tensor]:
    """OpenCLIP ``VisionTransformer`` on normalized ``x`` [B, 3, H, W] (H, W multiples of the
    patch size) -> ``(pooled [B, E], dense [B, E, H/p, W/p])`` (E = output / embed dim).

    ``pooled`` is what ``visual(x)`` returns (same pooling and projection); ``dense`` is the
    MaskCLIP value path of the last block (``value``) or the last tokens (``tokens``), see the
    module docstring.
    """
    if visual.attn_pool is not None:
        raise ConfigError("teacher.model: ViT towers with an attentional pooler (CoCa) have no dense path; use a CLIP ViT.")
    blocks = visual.transformer.resblocks
    last = blocks[-1]
    if not isinstance(getattr(last, "attn", None), nn.MultiheadAttention):
        raise ConfigError("teacher.model: the dense value path needs standard attention blocks (block_type default).")
    B = x.shape[0]
    t = visual.conv1(x)  # [B, C, gh, gw]
    grid = (t.shape[-2], t.shape[-1])
    t = t.flatten(2).transpose(1, 2)
    cls = visual.class_embedding.reshape(1, 1, -1).expand(B, -1, -1).to(t.dtype)
    t = torch.cat([cls, t], dim=1) + _vit_pos_embed(visual, grid).to(t.dtype)
    t = visual.ln_pre(t)
    batch_first = getattr(visual.transformer, "batch_first", True)
    if not batch_first:
        t = t.transpose(0, 1)
    for blk in blocks[:-1]:
        t = blk(t)
    out = last(t)
    if not batch_first:
        t, out = t.transpose(0, 1), out.transpose(0, 1)
    pooled, _ = visual._pool(out)
    if visual.proj is not None:
        pooled = pooled @ visual.proj
    if dense == "value":
        attn = last.attn
        c = t.shape[-1]
        w_v = attn.in_proj_weight[2 * c:]
        b_v = attn.in_proj_bias[2 * c:] if attn.in_proj_bias is not None else None
        v = F.linear(last.ln_1(t[:, 1:]), w_v, b_v)
        tokens = attn.out_proj(v)
    elif dense == "tokens":
        tokens = out[:, 1:]
    else:
        raise ConfigError(f"teacher.dense must be one of {DENSE_METHODS}, got {dense!r}")
    tokens = visual.ln_post(tokens)
    if visual.proj is not None:
        tokens = tokens @ visual.proj
    return pooled, tokens.transpose(1, 2).reshape(B, -1, grid[0], grid[1])


# ----------------------------------------------------------------------------- ModifiedResNet
class _DensePool(nn.Module):
    """Stride-1 replacement of ``AvgPool2d(2)`` after a dilation ``d``: mean of the 2x2 cells
    ``x[p], x[p + d]`` (rows and columns), zero-free replicate padding at the far border."""

    def __init__(self, d: int):
        super().__init__()
        self.d = d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.d
        x = F.pad(x, (0, d, 0, d), mode="replicate")
        return 0.25 * (x[..., :-d, :-d] + x[..., d:, :-d] + x[..., :-d, d:] + x[..., d:, d:])


def dilate_modified_resnet(visual: nn.Module, output_stride: int) -> int:
    """Turn the stride of layer4 (``output_stride=16``) or layer3 + layer4 (``8``) of an OpenCLIP
    ``ModifiedResNet`` into dilation, in place. Returns the factor ``k = 32 / output_stride``:
    ``map[..., ::k, ::k]`` is the stride-32 map exactly (before :func:`resnet_forward` re-centres)."""
    if output_stride == 32:
        return 1
    layers = {16: [visual.layer4], 8: [visual.layer3, visual.layer4]}[output_stride]
    d = 1
    for layer in layers:
        first = layer[0]
        if not isinstance(first.avgpool, nn.AvgPool2d):
            raise ConfigError("teacher.output_stride: this ResNet is already dilated")
        # the first block's conv2 runs before its pool: it keeps the incoming dilation
        first.conv2.dilation, first.conv2.padding = (d, d), (d, d)
        first.avgpool = _DensePool(d)
        if first.downsample is not None:
            first.downsample[0] = _DensePool(d)  # the "-1" AvgPool2d
        d *= 2
        for blk in list(layer)[1:]:
            blk.conv2.dilation, blk.conv2.padding = (d, d), (d, d)
    return d


def _attnpool(pool: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """OpenCLIP ``AttentionPool2d`` on ``x`` [B, C, h, w] of any grid: ``pool(x)`` itself when the
    grid is the model's, else the same computation with the positional embedding interpolated
    bicubically to ``h x w``."""
    pos = pool.positional_embedding
    side = int(round((pos.shape[0] - 1) ** 0.5))
    if tuple(x.shape[-2:]) == (side, side):
        return pool(x)
    img = pos[1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
    img = F.interpolate(img.float(), size=x.shape[-2:], mode="bicubic", align_corners=False).to(pos.dtype)
    pos = torch.cat([pos[:1], img[0].flatten(1).T], dim=0)
    t = x.flatten(2).permute(2, 0, 1)  # (HW)NC
    t = torch.cat([t.mean(dim=0, keepdim=True), t], dim=0) + pos[:, None, :].to(t.dtype)
    out, _ = F.multi_head_attention_forward(
        query=t, key=t, value=t, embed_dim_to_check=t.shape[-1], num_heads=pool.num_heads,
        q_proj_weight=pool.q_proj.weight, k_proj_weight=pool.k_proj.weight, v_proj_weight=pool.v_proj.weight,
        in_proj_weight=None, in_proj_bias=torch.cat([pool.q_proj.bias, pool.k_proj.bias, pool.v_proj.bias]),
        bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0, out_proj_weight=pool.c_proj.weight,
        out_proj_bias=pool.c_proj.bias, use_separate_proj_weight=True, training=False, need_weights=False,
    )
    return out[0]


def resnet_forward(visual: nn.Module, x: torch.Tensor, k: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """OpenCLIP ``ModifiedResNet`` (dilated by ``k``, see :func:`dilate_modified_resnet`) on
    normalized ``x`` [B, 3, H, W] (multiples of 32) -> ``(pooled [B, E], dense [B, E, kH/32, kW/32])``.

    ``pooled`` = the attention pool of the stride-32 cells (= ``visual(x)`` when undilated);
    ``dense`` = ``c_proj(v_proj(x4))`` at every location of the layer4 map ``x4``.
    """
    f = visual.stem(x)
    f = visual.layer4(visual.layer3(visual.layer2(visual.layer1(f))))
    pool = visual.attnpool
    pooled = _attnpool(pool, f[..., ::k, ::k] if k > 1 else f)
    v = F.linear(f.permute(0, 2, 3, 1), pool.v_proj.weight, pool.v_proj.bias)
    dense = F.linear(v, pool.c_proj.weight, pool.c_proj.bias).permute(0, 3, 1, 2)
    # dilated cell p is centred at p * stride + 16 px; the contract wants (p + 0.5) * stride
    return pooled, shift_cells(dense, 0.5 - k / 2) if k > 1 else dense


# ----------------------------------------------------------------------------- teacher
def _is_resnet(visual: nn.Module) -> bool:
    return hasattr(visual, "attnpool") and hasattr(visual, "layer4")


@TEACHERS.register("open_clip", config=OpenClipTeacherConfig)
class OpenClipTeacher(Teacher):
    """Frozen OpenCLIP teacher (dense + global image features, text embeddings)."""

    def __init__(self, cfg: OpenClipTeacherConfig) -> None:
        super().__init__()
        cfg.validate()
        model_cfg, pre = load_model_config(cfg.model)
        weights = require_weights(cfg.weights, "teacher.weights", _WEIGHTS_HOW)
        clip = build_clip(model_cfg)
        _load_weights(clip, weights, "teacher.weights")
        label = Path(cfg.model).stem if cfg.model.endswith(".json") else cfg.model
        self._setup(
            clip, model_cfg, pre, name=f"open_clip:{label}", image_size=cfg.image_size, dense=cfg.dense,
            output_stride=cfg.output_stride, mean=cfg.mean, std=cfg.std,
        )
        self._identity = {
            "type": "open_clip", "model": model_cfg,
            "weights_fingerprint": file_fingerprint(weights), "image_size": cfg.image_size,
            "dense": cfg.dense, "output_stride": self.output_stride, "mean": self.mean.flatten().tolist(),
            "std": self.std.flatten().tolist(),
        }

    def _setup(
        self, clip: nn.Module, model_cfg: dict, preprocess_cfg: dict, *, name: str, image_size: Any,
        dense: str, output_stride: int | None, mean: Any = None, std: Any = None,
    ) -> None:
        """Shared by ``open_clip`` and ``tiny_clip``: keep the model, set dense path and stride."""
        from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
        from open_clip.tokenizer import SimpleTokenizer

        self.clip = clip
        self.model_cfg = model_cfg
        self.name = name
        self.feature_dim = int(model_cfg["embed_dim"])
        self.image_size = image_size
        self.dense_method = dense
        visual = clip.visual
        self.is_resnet = _is_resnet(visual)
        if self.is_resnet:
            if dense != "value":
                raise ConfigError(f"teacher.dense={dense!r}: ResNet towers have only the 'value' (attention-pool) path.")
            self.output_stride = int(output_stride or 32)
            self.k = dilate_modified_resnet(visual, self.output_stride)
            self.multiple = 32
        else:
            patch = int(visual.patch_size[0])
            if output_stride not in (None, patch):
                raise ConfigError(f"teacher.output_stride={output_stride}: a ViT's stride is its patch size ({patch}); leave it unset.")
            self.output_stride, self.k, self.multiple = patch, 1, patch
        mean = mean or preprocess_cfg.get("mean") or OPENAI_DATASET_MEAN
        std = std or preprocess_cfg.get("std") or OPENAI_DATASET_STD
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        ctx = int(model_cfg.get("text_cfg", {}).get("context_length", 77))
        self.tokenizer = SimpleTokenizer(context_length=ctx)
        self.freeze()

    # -- image -------------------------------------------------------------------------------
    def _towers(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (x - self.mean) / self.std
        if self.is_resnet:
            return resnet_forward(self.clip.visual, x, self.k)
        return vit_forward(self.clip.visual, x, self.dense_method)

    def dense(self, images: torch.Tensor) -> torch.Tensor:
        size = network_size(images.shape[-2], images.shape[-1], self.image_size, self.multiple)
        return self._towers(resize_images(images, size))[1]

    def encode_image(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Global embedding ``[B, E]`` (CLS token / attention pool + projection, as open_clip's
        ``encode_image``; L2-normalized unless ``normalize=False``) of ``images`` (uint8 / float
        RGB) resized to the model's own ``image_size``."""
        self._follow(images)
        size = self.clip.visual.image_size
        size = (size, size) if isinstance(size, int) else tuple(size)
        with torch.inference_mode():
            x = to_unit_float(images)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=x.is_cuda):
                pooled = self._towers(resize_images(x, size))[0].float()
            if normalize:
                pooled = F.normalize(pooled, dim=-1)
        return pooled.clone()

    # -- text --------------------------------------------------------------------------------
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """``[T, E]`` L2-normalized text embeddings (open_clip's BPE tokenizer, shipped with the package)."""
        if isinstance(texts, str):
            texts = [texts]
        device = next(self.parameters()).device
        tokens = self.tokenizer(list(texts)).to(device)
        with torch.inference_mode():
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
                emb = self.clip.encode_text(tokens).float()
            emb = F.normalize(emb, dim=-1)
        return emb.clone()
