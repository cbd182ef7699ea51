"""The tiny CLIP of the embedded default: its open_clip model config, file format and teacher.

``xmodal teacher fit-tiny-clip`` (:mod:`xmodal.models.teachers.tiny_clip_fit`) trains a small
open_clip ``CLIP`` (a ModifiedResNet image tower and a 2-layer text transformer, both with the
open_clip code and BPE tokenizer) on crops and captions of a synthetic driving world and writes
``FILE``:

- ``FILE`` (``torch.save``): ``{"state_dict": <open_clip CLIP state dict>, "xmodal_tiny_clip":
  {"schema_version", "model_cfg", "preprocess_cfg", "teacher": {default dense settings},
  "metrics", "train", "world", "created"}}``. open_clip's own ``load_checkpoint`` reads it (it
  takes the ``state_dict`` key).
- ``FILE`` with suffix ``.json``: a sidecar in open_clip's config format (``{"model_cfg",
  "preprocess_cfg"}``) plus the same ``xmodal_tiny_clip`` record minus the weights, so that
  ``{type: open_clip, model: FILE.json, weights: FILE}`` loads the same model, and people can
  read the metrics.

``teacher: {type: tiny_clip, weights: FILE}`` reads the model config from ``FILE`` itself and
builds the model through the same OpenCLIP teacher code (:class:`OpenClipTeacher`); the dense
defaults it was evaluated with (``output_stride``, ``image_size``) come from the file and can be
overridden.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional, Union

import torch

from xmodal.errors import ConfigError, SchemaError
from xmodal.models.teachers.base import file_fingerprint, require_weights
from xmodal.models.teachers.openclip import OpenClipTeacher, _validate_common, build_clip
from xmodal.registry import TEACHERS

__all__ = [
    "TINY_CLIP_SCHEMA",
    "TinyClipTeacherConfig",
    "TinyClipTeacher",
    "tiny_clip_model_config",
    "save_tiny_clip",
    "read_tiny_clip",
    "sidecar_path",
]

#: Bump when the layout of the tiny-CLIP file changes; loaders refuse other versions.
TINY_CLIP_SCHEMA = 1
RECORD = "xmodal_tiny_clip"
_HOW = (
    "Fit one on a synthetic world: `xmodal synth driving --out data/synth-driving --scenes 4 "
    "--samples 10 && xmodal teacher fit-tiny-clip --data data/synth-driving --out <file>`."
)


def tiny_clip_model_config(
    width: int = 16, embed_dim: int = 128, image_size: int = 64, layers: tuple[int, ...] = (1, 1, 1, 1),
    text_width: int = 64, text_layers: int = 2, context_length: int = 16, vit_patch: int | None = None,
) -> dict[str, Any]:
    """open_clip model config (``CLIP(**cfg)``) of the tiny CLIP: a ModifiedResNet of base
    ``width`` (layer4 has ``32 * width`` channels, heads of 64) and a small causal text transformer.
    ``vit_patch``: a ViT tower instead (patch size ``vit_patch``, ``8 * width`` wide, ``layers[0]``
    blocks) -- the alternative measured against the ResNet."""
    if vit_patch:
        vision = {"image_size": image_size, "layers": int(layers[0]), "width": 8 * width, "head_width": 32,
                  "patch_size": vit_patch, "mlp_ratio": 2.0}
    else:
        vision = {"image_size": image_size, "layers": list(layers), "width": width, "head_width": 64}
    return {
        "embed_dim": embed_dim,
        "vision_cfg": vision,
        "text_cfg": {
            "context_length": context_length, "vocab_size": 49408, "width": text_width,
            "heads": max(1, text_width // 32), "layers": text_layers,
        },
    }


def sidecar_path(path: str | os.PathLike) -> Path:
    """``model.pt`` -> ``model.json`` (the open_clip-format config next to the weights)."""
    return Path(path).with_suffix(".json")


def save_tiny_clip(path: str | os.PathLike, model: torch.nn.Module, record: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``path`` (weights + record) and its JSON sidecar atomically; returns both paths.

    ``record`` holds ``model_cfg``, ``preprocess_cfg``, ``teacher`` (dense defaults), ``metrics``,
    ``train`` and anything else JSON-ready; ``schema_version`` is added here.
    """
    from xmodal.utils.atomic import atomic_write

    record = {"schema_version": TINY_CLIP_SCHEMA, **record}
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    path = Path(path)
    with atomic_write(path, "wb") as f:
        torch.save({"state_dict": state, RECORD: record}, f)
    side = sidecar_path(path)
    sidecar = {"model_cfg": record["model_cfg"], "preprocess_cfg": record.get("preprocess_cfg", {}), RECORD: record}
    with atomic_write(side, "w") as f:
        json.dump(sidecar, f, indent=2, default=str)
    return path, side


def read_tiny_clip(path: str | os.PathLike, key: str = "teacher.weights") -> tuple[dict, dict]:
    """``(state_dict, record)`` of a tiny-CLIP file, checking its format and schema version."""
    p = require_weights(path, key, _HOW)
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"{key}: '{p}' could not be read ({type(exc).__name__}: {exc}); it is truncated or not a tiny-CLIP file. {_HOW}") from None
    if not isinstance(ckpt, dict) or RECORD not in ckpt or "state_dict" not in ckpt:
        raise ConfigError(
            f"{key}: '{p}' is not a tiny-CLIP file (no '{RECORD}' record). For other OpenCLIP weights "
            "use `type: open_clip` with `model:` and `weights:`."
        )
    record = ckpt[RECORD]
    if record.get("schema_version") != TINY_CLIP_SCHEMA:
        raise SchemaError(
            f"{key}: '{p}' is a tiny-CLIP file of schema_version {record.get('schema_version')!r}; this "
            f"xmodal reads schema {TINY_CLIP_SCHEMA}. Fit it again with `xmodal teacher fit-tiny-clip "
            f"--data <dataroot> --out {p}`."
        )
    return ckpt["state_dict"], record


@dataclass
class TinyClipTeacherConfig:
    """``teacher: {type: tiny_clip, weights: FILE}`` (FILE from ``xmodal teacher fit-tiny-clip``).

    image_size, output_stride: override the defaults stored in FILE (what the fit evaluated);
    dense: ``value`` (the attention-pool value path, the only one for a ResNet tower).
    """

    weights: str
    image_size: Optional[Union[int, list[int]]] = None
    output_stride: Optional[int] = None
    dense: Literal["value"] = "value"
    mean: Optional[list[float]] = None
    std: Optional[list[float]] = None

    def validate(self) -> None:
        _validate_common(self, "teacher")


@TEACHERS.register("tiny_clip", config=TinyClipTeacherConfig)
class TinyClipTeacher(OpenClipTeacher):
    """The tiny CLIP as a frozen OpenCLIP teacher (same code path as ``type: open_clip``)."""

    def __init__(self, cfg: TinyClipTeacherConfig) -> None:
        import open_clip

        super(OpenClipTeacher, self).__init__()  # Teacher.__init__ only; built below
        cfg.validate()
        weights = require_weights(cfg.weights, "teacher.weights", _HOW)
        _, record = read_tiny_clip(weights)
        model_cfg = copy.deepcopy(record["model_cfg"])
        clip = build_clip(model_cfg, "teacher.weights (its model_cfg)")
        open_clip.load_checkpoint(clip, str(weights), strict=True)
        defaults = record.get("teacher", {})
        image_size = cfg.image_size if cfg.image_size is not None else defaults.get("image_size")
        stride = cfg.output_stride or defaults.get("output_stride")
        self._setup(
            clip, model_cfg, record.get("preprocess_cfg", {}), name=f"tiny_clip:{Path(weights).stem}",
            image_size=image_size, dense=cfg.dense, output_stride=stride, mean=cfg.mean, std=cfg.std,
        )
        self.record = record
        self._identity = {
            "type": "tiny_clip", "weights_fingerprint": file_fingerprint(weights),
            "image_size": image_size, "output_stride": self.output_stride, "dense": cfg.dense,
        }
