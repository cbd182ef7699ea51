"""Read a YAML config into one merged mapping, remembering which file set every key.

Rules:

- ``_base_: path`` or ``_base_: [a, b]`` (paths relative to the file's folder): the bases are
  merged in order, then the file itself on top. A base may have its own ``_base_``.
- Merging: mappings merge key by key; anything else (scalars, lists) is replaced. Later wins.
- ``_delete_: true`` inside a mapping replaces what the file's bases gave that key instead of
  merging into it (as in mmcv), e.g. to switch ``dataset.type`` without inheriting the old
  keys. It acts on the file's own ``_base_`` chain (a base listed later in the same ``_base_``
  list just wins key by key).
- Overrides ``key.sub=value`` are applied after all files, like a one-key file on top. The value
  is YAML: ``1e-3`` is a float, ``[CAM_FRONT, CAM_BACK]`` a list, ``null`` None,
  ``{_delete_: true, type: x}`` replaces a whole section.

Every key path maps to a source label (``in 'configs/x.yaml'`` or ``by command-line override
'train.lr=1e-3'``) that error messages quote.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from xmodal.config.yaml_io import parse_yaml
from xmodal.errors import ConfigError, where

BASE_KEY = "_base_"
DELETE_KEY = "_delete_"

KeyPath = tuple  # ("train", "lr") or ("dataset", "cameras", 1)
Provenance = dict  # KeyPath -> source label


def load_yaml_tree(
    path: str | os.PathLike, overrides: Iterable[str] = ()
) -> tuple[dict[str, Any], Provenance]:
    """The merged mapping of ``path`` (``_base_`` resolved, ``overrides`` applied) and its
    provenance (key path -> source label)."""
    data, prov = _load_file(Path(path), stack=())
    for text in overrides:
        keys, value = parse_override(text)
        layer: Any = value
        for key in reversed(keys):
            layer = {key: layer}
        label = f"by command-line override '{text}'"
        _merge(data, prov, layer, {p: label for p in _key_paths(layer)})
    return data, prov


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.lr=1e-3"`` -> ``(["train", "lr"], 0.001)``; the value is parsed as YAML."""
    key, sep, raw = text.partition("=")
    keys = key.strip().split(".")
    if not sep or not all(k.strip() for k in keys):
        raise ConfigError(
            f"Command-line override {text!r} is not of the form key.sub=value "
            "(e.g. train.lr=1e-3 or dataset.cameras=[CAM_FRONT,CAM_BACK])."
        )
    keys = [k.strip() for k in keys]
    if BASE_KEY in keys:
        raise ConfigError(
            f"Command-line override {text!r}: {BASE_KEY} can only be set inside a config file."
        )
    try:
        value = parse_yaml(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"Command-line override {text!r}: the value is not valid YAML ({_first_line(exc)}). "
            "Quote the value for the shell, e.g. 'dataset.cameras=[CAM_FRONT, CAM_BACK]'."
        ) from None
    return keys, value


def dotted(path: Sequence[Any]) -> str:
    """``("dataset", "cameras", 1)`` -> ``"dataset.cameras[1]"``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def source_of(prov: Provenance, path: Sequence[Any], default: str = "") -> str:
    """The label of the longest recorded prefix of ``path``."""
    path = tuple(path)
    for end in range(len(path), -1, -1):
        if path[:end] in prov:
            return prov[path[:end]]
    return default


# -- files ------------------------------------------------------------------------------------
def _load_file(path: Path, stack: tuple[Path, ...]) -> tuple[dict[str, Any], Provenance]:
    real = path.resolve()
    if real in [p.resolve() for p in stack]:
        chain = " -> ".join(str(p) for p in (*stack, path))
        raise ConfigError(f"Cycle in {BASE_KEY}: {chain}. Remove one of these {BASE_KEY} entries.")
    if not path.is_file():
        if stack:
            raise ConfigError(
                f"Base config {where(path)} not found; it is listed in {BASE_KEY} of "
                f"{where(stack[-1])} (paths are relative to that file's folder). Fix the path."
            )
        raise ConfigError(f"Config file {where(path)} not found. Check the path.")
    try:
        own = parse_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"Config file {where(path)} is not valid YAML: {exc}") from None
    if own is None:
        own = {}
    if not isinstance(own, dict):
        raise ConfigError(
            f"Config file {where(path)} must hold a mapping (key: value lines) at the top, "
            f"not a {type(own).__name__}."
        )
    bases = own.pop(BASE_KEY, [])
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(
            f"{BASE_KEY} in {where(path)} must be a path or a list of paths, got {bases!r}."
        )
    data: dict[str, Any] = {}
    prov: Provenance = {}
    for base in bases:
        base_path = Path(os.path.normpath(path.parent / base))
        _merge(data, prov, *_load_file(base_path, (*stack, path)))
    label = f"in {where(path)}"
    _merge(data, prov, own, {p: label for p in _key_paths(own)})
    return data, prov


# -- merging ----------------------------------------------------------------------------------
def _merge(
    dst: dict, dprov: Provenance, src: dict, sprov: Provenance, prefix: KeyPath = ()
) -> None:
    """Merge ``src`` into ``dst`` in place (see module rules); provenance follows the values."""
    for key, value in src.items():
        if key == DELETE_KEY:
            continue
        path = (*prefix, key)
        if isinstance(value, dict) and isinstance(dst.get(key), dict) and not value.get(DELETE_KEY):
            if path in sprov:
                dprov[path] = sprov[path]
            _merge(dst[key], dprov, value, sprov, path)
            continue
        for p in [p for p in dprov if p[: len(path)] == path]:
            del dprov[p]
        dprov.update({p: s for p, s in sprov.items() if p[: len(path)] == path})
        dst[key] = _without_delete(copy.deepcopy(value))


def _without_delete(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_delete(v) for k, v in value.items() if k != DELETE_KEY}
    return value


def _key_paths(value: Any, prefix: KeyPath = ()) -> Iterable[KeyPath]:
    """Every key path of nested mappings (lists are leaves)."""
    if isinstance(value, dict):
        for key, sub in value.items():
            if key != DELETE_KEY:
                yield (*prefix, key)
                yield from _key_paths(sub, (*prefix, key))


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
