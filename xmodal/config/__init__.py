"""Configs: YAML with ``_base_`` inheritance and ``key.sub=value`` overrides -> typed dataclasses.

::

    cfg = load_config("configs/demo_synth-driving.yaml", ["train.lr=1e-3"])
    cfg.train.lr                       # 0.001
    dump_config(cfg, "runs/x/config.yaml")
    assert load_config("runs/x/config.yaml") == cfg

Every unknown key or bad value fails at load time with the dotted key, the file (or override)
that set it, and what is allowed. See :mod:`xmodal.config.loader` for the merge rules and
:mod:`xmodal.config.convert` for the supported field types.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

from xmodal.config.convert import from_dict, to_dict
from xmodal.config.loader import load_yaml_tree, parse_override
from xmodal.config.schema import ExperimentConfig, LogConfig, TrainConfig, VoxelGridConfig
from xmodal.config.yaml_io import dump_yaml
from xmodal.errors import where
from xmodal.utils.atomic import atomic_write

__all__ = [
    "load_config",
    "config_from_dict",
    "config_to_dict",
    "dump_config",
    "load_yaml_tree",
    "parse_override",
    "ExperimentConfig",
    "TrainConfig",
    "LogConfig",
    "VoxelGridConfig",
]

T = TypeVar("T")


def load_config(
    path: str | os.PathLike,
    overrides: Iterable[str] = (),
    schema: type[T] = ExperimentConfig,  # type: ignore[assignment]
) -> T:
    """Load ``path`` (with its ``_base_`` files), apply ``key.sub=value`` overrides, validate.

    Raises :class:`xmodal.errors.ConfigError` naming the key, the file or override that set it,
    and the allowed keys or values. ``name`` defaults to the file's name (without ``.yaml``).
    """
    data, prov = load_yaml_tree(path, overrides)
    if "name" not in data and "name" in getattr(schema, "__dataclass_fields__", {}):
        data["name"] = Path(path).name.removesuffix(".yaml").removesuffix(".yml")
        prov[("name",)] = f"by default (the name of {where(path)})"
    return from_dict(schema, data, prov, source=where(path))


def config_from_dict(
    data: dict[str, Any],
    schema: type[T] = ExperimentConfig,  # type: ignore[assignment]
    source: str = "<dict>",
) -> T:
    """Validate an already merged mapping (no ``_base_``); errors say ``source``."""
    return from_dict(schema, data, source=source)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Plain mapping of a config (tuples as lists, components with their ``type:``)."""
    return to_dict(cfg)


def dump_config(cfg: Any, path: str | os.PathLike) -> None:
    """Write ``cfg`` as YAML, atomically; :func:`load_config` reads it back to an equal config."""
    text = "# Resolved config written by xmodal; load it with xmodal.config.load_config.\n"
    with atomic_write(path, "w") as f:
        f.write(text + dump_yaml(config_to_dict(cfg)))

