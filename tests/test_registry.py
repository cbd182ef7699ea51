"""Registry: register / get / build, messages for unknown names, lazy import locations."""

import importlib.util
import sys
import textwrap
import types
import uuid
from dataclasses import dataclass

import pytest

from xmodal.errors import ConfigError
from xmodal.registry import DATASETS, Registry, UnknownTypeError


@dataclass(frozen=True)
class BoxConfig:
    size: float = 1.0


@dataclass(frozen=True)
class SphereConfig:
    radius: float


def make_registry() -> Registry:
    reg = Registry("widget")

    @reg.register("box", config=BoxConfig)
    class Box:
        def __init__(self, cfg: BoxConfig, scale: float = 1.0):
            self.cfg, self.scale = cfg, scale

    @reg.register("sphere", config=SphereConfig)
    def sphere(cfg: SphereConfig) -> tuple:
        return ("sphere", cfg.radius)

    return reg


def test_register_get_names_build():
    reg = make_registry()
    assert reg.names() == ["box", "sphere"]
    assert "box" in reg and "cube" not in reg
    assert reg.config_class("sphere") is SphereConfig
    assert reg.name_of(BoxConfig) == "box"
    box = reg.build(BoxConfig(size=2.0), scale=3.0)
    assert type(box) is reg.get("box") and box.cfg.size == 2.0 and box.scale == 3.0
    assert reg.build(SphereConfig(radius=0.5)) == ("sphere", 0.5)


def test_build_from_mapping_validates_first():
    reg = make_registry()
    assert reg.build({"type": "sphere", "radius": 2}) == ("sphere", 2.0)
    with pytest.raises(ConfigError, match=r"Unknown key 'radiuss'.*Did you mean 'radius'"):
        reg.build({"type": "sphere", "radiuss": 2})


def test_get_unknown_lists_names_and_closest():
    reg = make_registry()
    with pytest.raises(UnknownTypeError) as info:
        reg.get("boxx")
    msg = str(info.value)
    assert isinstance(info.value, ConfigError)
    assert "Unknown widget type 'boxx'" in msg
    assert "Did you mean 'box'?" in msg
    assert "Registered widget types: box, sphere." in msg
    assert info.value.names == ["box", "sphere"]


def test_registration_mistakes_are_caught():
    reg = make_registry()
    with pytest.raises(ValueError, match="already registered"):
        reg.register("box", config=SphereConfig)(lambda cfg: cfg)
    with pytest.raises(TypeError, match="already the config of widget type 'box'"):
        reg.register("cube", config=BoxConfig)(lambda cfg: cfg)
    with pytest.raises(TypeError, match="must be a dataclass"):
        reg.register("plain", config=dict)

    @dataclass
    class Unregistered:
        pass

    with pytest.raises(TypeError, match="not the config of any registered widget"):
        reg.build(Unregistered())


@pytest.fixture
def plugin_package(tmp_path, monkeypatch):
    """A throwaway package on sys.path whose modules register into a test registry."""
    holder = types.ModuleType("xm_test_holder")  # tests put their registry in holder.REG
    monkeypatch.setitem(sys.modules, "xm_test_holder", holder)
    pkg = f"xm_plugins_{uuid.uuid4().hex[:8]}"
    root = tmp_path / pkg
    root.mkdir()
    (root / "__init__.py").write_text("")
    register = """
        from dataclasses import dataclass
        from xm_test_holder import REG

        @dataclass
        class {cls}Config:
            value: int = 0

        @REG.register("{name}", config={cls}Config)
        class {cls}:
            def __init__(self, cfg):
                self.cfg = cfg
    """
    (root / "good.py").write_text(textwrap.dedent(register.format(cls="Good", name="good")))
    (root / "other.py").write_text(textwrap.dedent(register.format(cls="Other", name="other")))
    (root / "broken.py").write_text("import xm_no_such_dependency\n")
    (root / "_private.py").write_text("raise RuntimeError('private modules are not imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield pkg, holder
    for name in [m for m in sys.modules if m.startswith(pkg)]:
        del sys.modules[name]


def test_lazy_location_registers_on_first_lookup(plugin_package):
    pkg, holder = plugin_package
    locations = [f"{pkg}.good", f"{pkg}.not_written_yet", "xm_no_such_package.sub"]
    reg = holder.REG = Registry("gadget", locations=locations)
    assert f"{pkg}.good" not in sys.modules  # nothing imported at construction
    assert reg.config_class("good").__name__ == "GoodConfig"
    assert reg.names() == ["good"]
    assert reg.missing_locations() == [f"{pkg}.not_written_yet", "xm_no_such_package.sub"]
    assert reg.import_errors() == {}


def test_lazy_location_missing_module_is_reported_when_lookup_fails(plugin_package):
    pkg, holder = plugin_package
    reg = holder.REG = Registry("gadget", locations=[f"{pkg}.good", f"{pkg}.later"])
    with pytest.raises(UnknownTypeError) as info:
        reg.get("later_type")
    msg = str(info.value)
    assert f"Not present yet: {pkg}.later." in msg
    assert f"Modules searched: {pkg}.good." in msg
    assert info.value.missing == [f"{pkg}.later"] and not info.value.failed


def test_lazy_location_that_fails_to_import_is_reported(plugin_package):
    pkg, holder = plugin_package
    reg = holder.REG = Registry("gadget", locations=[f"{pkg}.broken", f"{pkg}.good"])
    assert reg.get("good").__name__ == "Good"  # a broken neighbour does not block others
    with pytest.raises(UnknownTypeError) as info:
        reg.get("broken_type")
    assert f"Module {pkg}.broken failed to import (ModuleNotFoundError" in str(info.value)
    assert "xm_no_such_dependency" in str(info.value)
    assert isinstance(info.value.__cause__, ModuleNotFoundError)
    assert list(reg.import_errors()) == [f"{pkg}.broken"]


def test_lazy_package_wildcard_imports_public_modules(plugin_package):
    pkg, holder = plugin_package
    reg = holder.REG = Registry("gadget", locations=[f"{pkg}.*", "xm_no_such_package.*"])
    assert reg.names() == ["good", "other"]
    assert f"{pkg}._private" not in sys.modules
    assert list(reg.import_errors()) == [f"{pkg}.broken"]
    assert reg.missing_locations() == ["xm_no_such_package"]


def test_builtin_dataset_locations_import_cleanly():
    """The modules named in DATASETS' locations either do not exist yet or import without error."""
    assert DATASETS.locations == ("xmodal.data.nuscenes", "xmodal.data.scannet", "xmodal.data.lidar_camera")
    assert DATASETS.import_errors() == {}
    for module in DATASETS.locations:
        assert module in sys.modules or module in DATASETS.missing_locations()


def test_same_code_imported_under_two_names_registers_once(plugin_package, tmp_path, monkeypatch):
    """`python -m pkg.mod` runs a module as __main__ and it may be imported again by name."""
    pkg, holder = plugin_package
    reg = holder.REG = Registry("gadget", locations=[f"{pkg}.good"])
    assert "good" in reg
    spec = importlib.util.spec_from_file_location("__xm_alias__", tmp_path / pkg / "good.py")
    alias = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "__xm_alias__", alias)
    spec.loader.exec_module(alias)  # registers "good" again, from the same file
    assert reg.names() == ["good"]
