"""Plain data (from YAML) <-> typed dataclasses, with errors that say key, file and what is allowed.

Supported field types: ``bool``, ``int``, ``float`` (an int is accepted), ``str``, ``pathlib.Path``,
``Literal[...]``, ``Enum`` subclasses, ``Optional``/unions, ``list[X]``, ``tuple[X, ...]``,
fixed ``tuple[X, Y]``, ``dict[str, X]``, nested dataclasses, ``Any``, and registry components
``Annotated[Any, REGISTRY]``: a mapping whose ``type:`` names the registered config dataclass.

After a dataclass is built, its ``validate()`` method (if any) is called; it raises ``ValueError``
(or :class:`ConfigError`) with a message, which is reported with the section and the files that
set its keys. Invariants that span keys (voxel size vs range) belong there.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import re
import types
import typing
from pathlib import Path, PurePath
from typing import Any, Literal, Union

from xmodal.config.loader import Provenance, dotted, source_of
from xmodal.errors import ConfigError
from xmodal.registry import Registry, UnknownTypeError

__all__ = ["from_dict", "to_dict"]

_NONE = type(None)


def from_dict(
    schema: Any, data: Any, prov: Provenance | None = None, source: str = "<dict>"
) -> Any:
    """Validate ``data`` against ``schema`` (a dataclass or a type hint) and build it.

    ``prov`` maps key paths to source labels (see :mod:`xmodal.config.loader`); keys without
    one are reported as set ``in <source>``.
    """
    return _Converter(prov or {}, f"in {source}").convert(data, schema, ())


def to_dict(obj: Any, schema: Any = None) -> Any:
    """Plain YAML-ready data from a config dataclass; components get their ``type:`` back."""
    return _plain(obj, type(obj) if schema is None else schema)


# -- type hint helpers -------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def _registry_of(hint: Any) -> Registry | None:
    if typing.get_origin(hint) is typing.Annotated:
        return next((m for m in hint.__metadata__ if isinstance(m, Registry)), None)
    return None


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (Union, types.UnionType)


def _strip_optional(hint: Any) -> Any:
    if _is_union(hint):
        arms = [a for a in typing.get_args(hint) if a is not _NONE]
        return arms[0] if len(arms) == 1 else Any
    return hint


def _type_name(hint: Any) -> str:
    if hint in _NAMES:
        return _NAMES[hint]
    if dataclasses.is_dataclass(hint) or _registry_of(hint):
        return "a mapping (a section of keys)"
    origin = typing.get_origin(hint)
    if origin in (list, tuple):
        return "a list"
    if origin is dict:
        return "a mapping"
    return getattr(hint, "__name__", str(hint))


_NAMES = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "a string",
    Path: "a path (string)",
    _NONE: "null",
}


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return f"a list {value!r}" if len(repr(value)) < 60 else "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"{type(value).__name__} {value!r}"


# -- plain -> typed ----------------------------------------------------------------------------
class _Converter:
    def __init__(self, prov: Provenance, default_source: str):
        self.prov, self.default = prov, default_source

    def source(self, path: tuple) -> str:
        return source_of(self.prov, path, self.default)

    def error(self, path: tuple, msg: str) -> ConfigError:
        return ConfigError(f"Bad value for '{dotted(path)}' (set {self.source(path)}): {msg}")

    def convert(self, value: Any, hint: Any, path: tuple) -> Any:
        if hint is Any or hint is object:
            return value
        registry = _registry_of(hint)
        if registry is not None:
            return self.component(registry, value, path)
        if typing.get_origin(hint) is typing.Annotated:
            return self.convert(value, typing.get_args(hint)[0], path)
        if _is_union(hint):
            return self.union(value, typing.get_args(hint), path)
        if typing.get_origin(hint) is Literal:
            choices = typing.get_args(hint)
            if value in choices and type(value) in {type(c) for c in choices}:
                return value
            raise self.error(
                path, f"{_describe(value)} is not allowed. Choose one of: "
                f"{', '.join(repr(c) for c in choices)}."
            )
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            for member in hint:
                if value == member.value or value == member.name:
                    return member
            raise self.error(
                path, f"{_describe(value)} is not allowed. Choose one of: "
                f"{', '.join(repr(m.value) for m in hint)}."
            )
        if dataclasses.is_dataclass(hint):
            return self.dataclass(hint, value, path)
        origin = typing.get_origin(hint) or hint
        if origin in (list, tuple):
            return self.sequence(hint, origin, value, path)
        if origin is dict:
            if not isinstance(value, dict):
                raise self.error(path, f"expected a mapping, got {_describe(value)}.")
            args = typing.get_args(hint)
            sub = args[1] if len(args) == 2 else Any
            return {k: self.convert(v, sub, (*path, k)) for k, v in value.items()}
        return self.scalar(hint, value, path)

    def scalar(self, hint: Any, value: Any, path: tuple) -> Any:
        if hint is _NONE and value is None:
            return None
        if hint is bool and isinstance(value, bool):
            return value
        if hint is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if hint is str and isinstance(value, str):
            return value
        if isinstance(hint, type) and issubclass(hint, PurePath) and isinstance(value, str):
            return hint(value)
        if hint not in _NAMES:
            raise TypeError(f"config field '{dotted(path)}' has an unsupported type {hint!r}")
        advice = ""
        if hint in (str, Path) and isinstance(value, (int, float, bool)):
            advice = " Quote it in YAML to make it a string."
        elif hint is int and isinstance(value, float):
            advice = " Write a whole number."
        raise self.error(path, f"expected {_type_name(hint)}, got {_describe(value)}.{advice}")

    def union(self, value: Any, arms: tuple, path: tuple) -> Any:
        if value is None and _NONE in arms:
            return None
        arms = tuple(a for a in arms if a is not _NONE) if value is not None else arms
        if len(arms) == 1:
            return self.convert(value, arms[0], path)
        for arm in arms:
            try:
                return self.convert(value, arm, path)
            except ConfigError:
                continue
        names = " or ".join(_type_name(a) for a in arms)
        raise self.error(path, f"expected {names}, got {_describe(value)}.")

    def sequence(self, hint: Any, origin: type, value: Any, path: tuple) -> Any:
        if not isinstance(value, (list, tuple)):
            raise self.error(
                path, f"expected a list, got {_describe(value)}. Write it as [a, b, ...]."
            )
        args = typing.get_args(hint)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise self.error(
                    path, f"expected a list of {len(args)} values, got {len(value)}: {value!r}."
                )
            return tuple(
                self.convert(v, a, (*path, i)) for i, (v, a) in enumerate(zip(value, args))
            )
        sub = args[0] if args else Any
        items = [self.convert(v, sub, (*path, i)) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items

    def component(self, registry: Registry, value: Any, path: tuple) -> Any:
        if not isinstance(value, dict):
            raise self.error(
                path, f"expected a mapping with a 'type:' key, got {_describe(value)}."
            )
        if "type" not in value:
            raise ConfigError(
                f"Section '{dotted(path)}' (set {self.source(path)}) has no 'type:' key. "
                f"Set one of the registered {registry.name} types: "
                f"{', '.join(registry.names()) or 'none registered'}."
            )
        name = value["type"]
        type_path = (*path, "type")
        if not isinstance(name, str):
            raise self.error(type_path, f"expected a string, got {_describe(name)}.")
        try:
            cls = registry.config_class(name)
        except UnknownTypeError as exc:
            where = f"at '{dotted(type_path)}' (set {self.source(type_path)})"
            raise exc.at(where) from exc.__cause__
        rest = {k: v for k, v in value.items() if k != "type"}
        return self.dataclass(cls, rest, path, component=registry)

    def dataclass(
        self, cls: type, value: Any, path: tuple, component: Registry | None = None
    ) -> Any:
        if not isinstance(value, dict):
            raise self.error(
                path, f"expected a mapping (a section of keys), got {_describe(value)}."
            )
        hints = _hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        for key in value:
            if key not in fields:
                raise self.unknown_key(path, key, list(fields), component)
        kwargs = {}
        for name, f in fields.items():
            if name in value:
                kwargs[name] = self.convert(value[name], hints[name], (*path, name))
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                key = dotted((*path, name))
                section = (
                    f"section '{dotted(path)}' set {self.source(path)}"
                    if path
                    else f"top level of the config {self.default}"
                )
                raise ConfigError(
                    f"Missing required key '{key}' ({section}). Add it to the config file, or "
                    f"pass {key}=... on the command line."
                )
        try:
            obj = cls(**kwargs)
            validate = getattr(obj, "validate", None)
            if callable(validate):
                validate()
        except (ValueError, TypeError, ConfigError) as exc:
            raise ConfigError(
                f"Invalid {self.section_name(path)} ({self.section_sources(path, value, str(exc))})"
                f": {exc}"
            ) from exc
        return obj

    def unknown_key(
        self, path: tuple, key: Any, allowed: list[str], component: Registry | None
    ) -> ConfigError:
        full = (*path, key)
        if component is not None:
            allowed = ["type", *allowed]
        msg = f"Unknown key '{dotted(full)}' (set {self.source(full)})."
        close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        if close:
            msg += f" Did you mean '{dotted((*path, close[0]))}'?"
        msg += f" Allowed keys in {self.section_name(path)}: {', '.join(allowed) or 'none'}."
        if component is not None:
            type_source = self.source((*path, "type"))
            other_types = [
                n for n in component.names()
                if str(key) in {f.name for f in dataclasses.fields(component.config_class(n))}
            ]
            if other_types and type_source != self.source(full):
                msg += (
                    f" '{key}' belongs to type(s) {', '.join(other_types)}; the section's type was set "
                    f"{type_source}. If you changed 'type:', add '_delete_: true' next to it so "
                    "keys of the old type are not inherited."
                )
        return ConfigError(msg)

    def section_name(self, path: tuple) -> str:
        return f"section '{dotted(path)}'" if path else "top-level config"

    def section_sources(self, path: tuple, value: dict, message: str = "") -> str:
        """``keys set in 'a.yaml': x, y; by command-line override 'z=1': z``.

        Only the keys named in ``message`` are listed when it names any.
        """
        keys = [k for k in value if re.search(rf"\b{re.escape(str(k))}\b", message)] or value
        by_source: dict[str, list[str]] = {}
        for key in keys:
            by_source.setdefault(self.source((*path, key)), []).append(str(key))
        if not by_source:
            return f"set {self.source(path)}"
        return "keys set " + "; ".join(f"{src}: {', '.join(k)}" for src, k in by_source.items())


# -- typed -> plain ----------------------------------------------------------------------------
def _plain(value: Any, hint: Any) -> Any:
    if value is None:
        return None
    hint = _strip_optional(hint)
    if typing.get_origin(hint) is typing.Annotated and _registry_of(hint) is None:
        hint = typing.get_args(hint)[0]
    registry = _registry_of(hint)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        hints = _hints(type(value))
        out = {"type": registry.name_of(type(value))} if registry is not None else {}
        for f in dataclasses.fields(value):
            if f.init:
                out[f.name] = _plain(getattr(value, f.name), hints[f.name])
        return out
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, PurePath):
        return str(value)
    args = typing.get_args(hint)
    if isinstance(value, (list, tuple)):
        if typing.get_origin(hint) is tuple and args and args[-1] is not Ellipsis:
            return [_plain(v, a) for v, a in zip(value, args)]
        return [_plain(v, args[0] if args else Any) for v in value]
    if isinstance(value, dict):
        sub = args[1] if typing.get_origin(hint) is dict and len(args) == 2 else Any
        return {k: _plain(v, sub) for k, v in value.items()}
    return value
