"""Registries keyed by the ``type:`` of a config section.

Each registered class or function comes with a config dataclass; the loader looks the dataclass
up by ``type:`` to validate the section, and :meth:`Registry.build` calls the object with the
validated config::

    from xmodal.registry import DATASETS

    @dataclass
    class NuScenesDatasetConfig:
        info_file: str
        sweeps: int = 0

    @DATASETS.register("nuscenes", config=NuScenesDatasetConfig)
    class NuScenesDataset:
        def __init__(self, cfg: NuScenesDatasetConfig): ...

    dataset = DATASETS.build(cfg.dataset)   # NuScenesDataset(cfg.dataset)

Registries import their ``locations`` lazily, on the first lookup that needs them, so a config
saying ``type: nuscenes`` works even when nothing imported :mod:`xmodal.data.nuscenes` yet. A
location ending in ``.*`` means every module of that package. A location that does not exist
(yet) is skipped; a location that exists but fails to import is reported, with its error, by any
lookup that then misses.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.util
import os
import pkgutil
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any

from xmodal.errors import ConfigError

__all__ = [
    "Registry",
    "UnknownTypeError",
    "DATASETS",
    "TRANSFORMS",
    "MODELS",
    "ENCODERS",
    "HEADS",
    "TEACHERS",
    "LOSSES",
]


class UnknownTypeError(ConfigError):
    """A ``type:`` name that no module registered.

    Attributes say which registry and name, which names exist, and which lazy locations were
    missing or failed to import (so callers, and tests, can tell "not written yet" from "broken").
    """

    def __init__(
        self,
        registry: str,
        name: Any,
        names: Sequence[str],
        missing: Sequence[str] = (),
        failed: Mapping[str, str] | None = None,
        location: str = "",
        searched: Sequence[str] = (),
    ):
        self.registry, self.name, self.names = registry, name, list(names)
        self.missing, self.failed, self.location = list(missing), dict(failed or {}), location
        self.searched = list(searched)
        super().__init__(self._message())

    def at(self, location: str) -> UnknownTypeError:
        """The same error with where the name was set: ``"at 'dataset.type' (set in 'x.yaml')"``."""
        return UnknownTypeError(
            self.registry, self.name, self.names, self.missing, self.failed, location,
            self.searched,
        )

    def _message(self) -> str:
        msg = f"Unknown {self.registry} type {self.name!r}"
        msg += f" {self.location}." if self.location else "."
        close = difflib.get_close_matches(str(self.name), self.names, n=1, cutoff=0.6)
        if close:
            msg += f" Did you mean {close[0]!r}?"
        if self.names:
            msg += f" Registered {self.registry} types: {', '.join(self.names)}."
        else:
            msg += f" No {self.registry} types are registered."
        if self.searched:
            msg += f" Modules searched: {', '.join(self.searched)}."
        for loc, err in self.failed.items():
            msg += f" Module {loc} failed to import ({err}); its types are missing until it does."
        if self.missing:
            msg += f" Not present yet: {', '.join(self.missing)}."
        return msg + " Use a registered name, or import the module that registers it first."


@dataclasses.dataclass(frozen=True)
class _Entry:
    name: str
    obj: Callable[..., Any]
    config: type


class Registry:
    """Named constructors (classes or functions), each with the config dataclass it takes.

    Args:
        name: singular noun used in messages (``"dataset"`` -> "Unknown dataset type ...").
        locations: modules imported on the first lookup that needs them; ``"pkg.*"`` imports
            every public module of ``pkg``. Missing modules are skipped.
    """

    def __init__(self, name: str, locations: Sequence[str] = ()):
        self.name = name
        self.locations = tuple(locations)
        self._entries: dict[str, _Entry] = {}
        self._by_config: dict[type, str] = {}
        self._pending = list(locations)
        self._missing: list[str] = []
        self._failed: dict[str, str] = {}
        self._failed_exc: list[BaseException] = []
        self._imported: list[str] = []

    # -- registration ----------------------------------------------------------------------
    def register(self, name: str, *, config: type) -> Callable[[Callable], Callable]:
        """Decorator: register ``obj`` as ``type: name``; ``obj(cfg)`` builds it from ``config``."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"{self.name} registry: name must be a non-empty string, got {name!r}")
        if not (isinstance(config, type) and dataclasses.is_dataclass(config)):
            raise TypeError(
                f"{self.name} type {name!r}: config must be a dataclass, got {config!r}"
            )

        def decorator(obj: Callable) -> Callable:
            old = self._entries.get(name)
            if old is not None and _origin(old.obj) != _origin(obj):
                raise ValueError(
                    f"{self.name} type {name!r} is already registered by {_qualname(old.obj)}; "
                    f"choose another name for {_qualname(obj)}."
                )
            other = self._by_config.get(config)
            if other is not None and other != name:
                raise TypeError(
                    f"{config.__qualname__} is already the config of {self.name} type {other!r}; "
                    f"give {name!r} its own dataclass (e.g. `class {name.title()}Config("
                    f"{config.__qualname__}): pass`) so a config names exactly one type."
                )
            if old is not None:  # the same code imported again (reload, `python -m`): replace
                self._by_config.pop(old.config, None)
            self._entries[name] = _Entry(name, obj, config)
            self._by_config[config] = name
            return obj

        return decorator

    # -- lookup ----------------------------------------------------------------------------
    def get(self, name: str) -> Callable[..., Any]:
        """The registered class or function; :class:`UnknownTypeError` (a ConfigError) if none."""
        return self._entry(name).obj

    def config_class(self, name: str) -> type:
        """The config dataclass registered with ``name``."""
        return self._entry(name).config

    def name_of(self, config_cls: type) -> str:
        """The ``type:`` name whose config dataclass is ``config_cls``."""
        if config_cls not in self._by_config:
            self._import_locations()
        try:
            return self._by_config[config_cls]
        except KeyError:
            raise TypeError(
                f"{config_cls.__qualname__} is not the config of any registered {self.name} type "
                f"(registered: {', '.join(self.names()) or 'none'})."
            ) from None

    def names(self) -> list[str]:
        """All registered names (after importing the lazy locations), sorted."""
        self._import_locations()
        return sorted(self._entries)

    def import_errors(self) -> dict[str, str]:
        """Lazy locations that exist but failed to import: ``{module: "ExcType: message"}``."""
        self._import_locations()
        return dict(self._failed)

    def missing_locations(self) -> list[str]:
        """Lazy locations that do not exist (yet)."""
        self._import_locations()
        return list(self._missing)

    def __contains__(self, name: object) -> bool:
        if name not in self._entries:
            self._import_locations()
        return name in self._entries

    def __repr__(self) -> str:
        return f"Registry({self.name!r}, names={sorted(self._entries)}, pending={self._pending})"

    def build(self, cfg: Any, *args: Any, **kwargs: Any) -> Any:
        """Instantiate from a validated config dataclass: ``obj(cfg, *args, **kwargs)``.

        ``cfg`` may also be a mapping with a ``type`` key; it is validated first.
        """
        if isinstance(cfg, Mapping):
            from xmodal.config.convert import from_dict  # late: config imports this module

            cfg = from_dict(Annotated[Any, self], dict(cfg), source="<mapping passed to build()>")
        return self._entries[self.name_of(type(cfg))].obj(cfg, *args, **kwargs)

    def _entry(self, name: str) -> _Entry:
        if isinstance(name, str) and name in self._entries:
            return self._entries[name]
        self._import_locations()
        if isinstance(name, str) and name in self._entries:
            return self._entries[name]
        err = UnknownTypeError(
            self.name, name, sorted(self._entries), self._missing, self._failed,
            searched=self._imported,
        )
        raise err from (self._failed_exc[0] if self._failed_exc else None)

    # -- lazy locations --------------------------------------------------------------------
    def _import_locations(self) -> None:
        while self._pending:
            loc = self._pending.pop(0)
            if loc.endswith(".*"):
                package = self._import(loc[:-2])
                for info in pkgutil.iter_modules(getattr(package, "__path__", [])):
                    if not info.name.startswith("_"):
                        self._import(f"{package.__name__}.{info.name}")
            else:
                self._import(loc)

    def _import(self, module: str) -> Any:
        try:
            spec = importlib.util.find_spec(module)
        except ModuleNotFoundError:  # a parent package does not exist
            spec = None
        except Exception as exc:  # a parent package failed while importing
            return self._record_failure(module, exc)
        if spec is None:
            self._missing.append(module)
            return None
        try:
            imported = importlib.import_module(module)
        except Exception as exc:
            return self._record_failure(module, exc)
        self._imported.append(module)
        return imported

    def _record_failure(self, module: str, exc: Exception) -> None:
        self._failed[module] = f"{type(exc).__name__}: {exc}"
        self._failed_exc.append(exc)
        return None


def _origin(obj: Any) -> tuple[str, str]:
    """Where ``obj`` is defined: (qualname, source file), so that a module imported twice under
    two names (``python -m pkg.mod`` runs it as ``__main__``) is recognized as the same code."""
    module = sys.modules.get(getattr(obj, "__module__", ""), None)
    source = getattr(module, "__file__", None)
    where_ = os.path.realpath(source) if source else getattr(obj, "__module__", "?")
    return getattr(obj, "__qualname__", repr(obj)), where_


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


# The library's registries. Modules register into them at import; the locations below are
# imported on first lookup. A location that does not exist yet is skipped.
DATASETS = Registry("dataset", locations=["xmodal.data.nuscenes", "xmodal.data.scannet", "xmodal.data.lidar_camera"])
TRANSFORMS = Registry("transform", locations=["xmodal.data.transforms.*"])
MODELS = Registry("model", locations=["xmodal.models.*"])
ENCODERS = Registry("encoder", locations=["xmodal.models.encoders.*"])
HEADS = Registry("head", locations=["xmodal.models.heads.*"])
TEACHERS = Registry("teacher", locations=["xmodal.models.teachers.*"])
LOSSES = Registry("loss", locations=["xmodal.losses.*"])
