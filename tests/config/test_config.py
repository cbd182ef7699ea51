"""Config loading: `_base_`, `_delete_`, overrides, validation messages, round trip, run info."""

import enum
import json
import shutil
import subprocess
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Optional

import pytest

from xmodal.config import (
    ExperimentConfig,
    TrainConfig,
    VoxelGridConfig,
    config_from_dict,
    config_to_dict,
    dump_config,
    load_config,
    load_yaml_tree,
)
from xmodal.errors import ConfigError
from xmodal.registry import Registry, UnknownTypeError
from xmodal.utils import run_info

REPO = Path(__file__).resolve().parents[2]

# -- a throwaway schema with its own registry, so these tests depend on no dataset module ------
WIDGETS = Registry("widget")


@dataclass(frozen=True)
class BoxConfig:
    size: float = 1.0
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class SphereConfig:
    radius: float


@WIDGETS.register("box", config=BoxConfig)
class Box:
    def __init__(self, cfg: BoxConfig):
        self.cfg = cfg


@WIDGETS.register("sphere", config=SphereConfig)
def sphere(cfg: SphereConfig) -> tuple:
    return ("sphere", cfg.radius)


class Mode(enum.Enum):
    FAST = "fast"
    EXACT = "exact"


@dataclass(frozen=True)
class DemoConfig:
    name: str = "demo"
    seed: int = 0
    train: TrainConfig = field(default_factory=TrainConfig)
    grid: VoxelGridConfig = field(default_factory=VoxelGridConfig)
    widget: Optional[Annotated[Any, WIDGETS]] = None
    parts: list[Annotated[Any, WIDGETS]] = field(default_factory=list)
    cameras: tuple[str, ...] = ("CAM_FRONT",)
    weights: dict[str, float] = field(default_factory=dict)
    mode: Mode = Mode.FAST
    note: Optional[str] = None


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def load(path, overrides=()):
    return load_config(path, overrides, schema=DemoConfig)


def error_of(path, overrides=(), schema=DemoConfig) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides, schema=schema)
    return str(info.value)


# -- _base_ -------------------------------------------------------------------------------------
def test_base_chain_multi_level_relative_to_each_file(tmp_path, monkeypatch):
    write(tmp_path, "_base_/runtime.yaml", "seed: 1\ntrain: {epochs: 5, lr: 0.1}\n")
    write(tmp_path, "_base_/mid/schedule.yaml", "_base_: ../runtime.yaml\ntrain: {epochs: 7}\n")
    top = write(tmp_path, "recipes/top.yaml", "_base_: ../_base_/mid/schedule.yaml\nseed: 3\n")
    monkeypatch.chdir(REPO)  # paths are relative to the files, not to the working folder
    cfg = load(top)
    assert (cfg.seed, cfg.train.epochs, cfg.train.lr) == (3, 7, 0.1)
    assert cfg.train.batch_size == TrainConfig().batch_size  # dataclass default


def test_base_list_merges_in_order_later_wins(tmp_path):
    write(tmp_path, "a.yaml", "train: {lr: 0.1, epochs: 2}\ncameras: [CAM_FRONT, CAM_BACK]\n")
    write(tmp_path, "b.yaml", "train: {lr: 0.2}\ncameras: [CAM_BACK]\n")
    top = write(tmp_path, "top.yaml", "_base_: [a.yaml, b.yaml]\ntrain: {batch_size: 4}\n")
    cfg = load(top)
    assert (cfg.train.lr, cfg.train.epochs, cfg.train.batch_size) == (0.2, 2, 4)
    assert cfg.cameras == ("CAM_BACK",)  # lists are replaced, not concatenated


def test_base_cycle_is_reported(tmp_path):
    write(tmp_path, "a.yaml", "_base_: b.yaml\n")
    write(tmp_path, "b.yaml", "_base_: [c.yaml]\n")
    write(tmp_path, "c.yaml", "_base_: a.yaml\n")
    msg = error_of(tmp_path / "a.yaml")
    assert "Cycle in _base_" in msg
    assert msg.count("a.yaml") == 2 and "b.yaml" in msg and "c.yaml" in msg


def test_missing_base_file_is_named_with_the_file_listing_it(tmp_path):
    top = write(tmp_path, "sub/top.yaml", "_base_: [../_base_/nope.yaml]\n")
    msg = error_of(top)
    assert f"Base config '{tmp_path / '_base_' / 'nope.yaml'}' not found" in msg
    assert f"listed in _base_ of '{top}'" in msg


def test_missing_config_and_bad_yaml_name_the_file(tmp_path):
    assert "Config file" in error_of(tmp_path / "absent.yaml")
    bad = write(tmp_path, "bad.yaml", "train: {lr: [1, 2}\n")
    assert f"Config file '{bad}' is not valid YAML" in error_of(bad)
    listy = write(tmp_path, "list.yaml", "- a\n- b\n")
    assert "must hold a mapping" in error_of(listy)


# -- _delete_ -----------------------------------------------------------------------------------
def test_delete_replaces_inherited_section(tmp_path):
    write(tmp_path, "base.yaml", "widget: {type: box, size: 2.0, tags: [a]}\n")
    top = write(
        tmp_path, "top.yaml",
        "_base_: base.yaml\nwidget: {_delete_: true, type: sphere, radius: 0.5}\n",
    )
    assert load(top).widget == SphereConfig(radius=0.5)
    merged = write(tmp_path, "merged.yaml", "_base_: base.yaml\nwidget: {tags: [b]}\n")
    assert load(merged).widget == BoxConfig(size=2.0, tags=("b",))


def test_type_switch_without_delete_explains_the_fix(tmp_path):
    write(tmp_path, "base.yaml", "widget: {type: box, size: 2.0}\n")
    top = write(tmp_path, "top.yaml", "_base_: base.yaml\nwidget: {type: sphere, radius: 1}\n")
    msg = error_of(top)
    assert f"Unknown key 'widget.size' (set in '{tmp_path / 'base.yaml'}')" in msg
    assert "add '_delete_: true'" in msg


# -- overrides ----------------------------------------------------------------------------------
def test_overrides_nested_lists_mappings_and_coercion(tmp_path):
    top = write(tmp_path, "top.yaml", "train: {lr: 0.1}\nwidget: {type: box}\n")
    cfg = load(top, [
        "train.lr=1e-3",
        "train.epochs=3",
        "cameras=[CAM_FRONT,CAM_BACK]",
        "widget.tags=[x, y]",
        "weights.teacher=2",  # int -> float
        "grid.voxel_size=[0.2, 0.2, 0.4]",
        "mode=exact",
        "note=null",
    ])
    assert cfg.train.lr == 1e-3 and isinstance(cfg.train.lr, float)
    assert cfg.train.epochs == 3
    assert cfg.cameras == ("CAM_FRONT", "CAM_BACK")
    assert cfg.widget == BoxConfig(tags=("x", "y"))
    assert cfg.weights == {"teacher": 2.0} and isinstance(cfg.weights["teacher"], float)
    assert cfg.grid.voxel_size == (0.2, 0.2, 0.4) and cfg.mode is Mode.EXACT
    replaced = load(top, ["widget={_delete_: true, type: sphere, radius: 2}"])
    assert replaced.widget == SphereConfig(radius=2.0)


def test_override_str_to_int_rejected(tmp_path):
    top = write(tmp_path, "top.yaml", "seed: 1\n")
    msg = error_of(top, ["train.epochs=ten"])
    assert msg == (
        "Bad value for 'train.epochs' (set by command-line override 'train.epochs=ten'): "
        "expected an integer, got the string 'ten'."
    )
    assert "expected an integer, got the number 1.5" in error_of(top, ["seed=1.5"])
    assert "expected a string, got the number 7" in error_of(top, ["note=7"])
    assert "expected true or false" in error_of(top, ["train.log.wandb=1"])


def test_override_new_unknown_key_rejected(tmp_path):
    top = write(tmp_path, "top.yaml", "seed: 1\n")
    msg = error_of(top, ["train.lrr=0.1"])
    assert "Unknown key 'train.lrr' (set by command-line override 'train.lrr=0.1')." in msg
    assert "Did you mean 'train.lr'?" in msg
    assert "Allowed keys in section 'train': epochs, max_steps, batch_size, grad_accum, lr, weight_decay" in msg
    assert "Unknown key 'extra'" in error_of(top, ["extra.deep.key=1"])


@pytest.mark.parametrize("bad", ["train", "=3", "train..lr=1", "_base_=x.yaml", "a=[1, 2"])
def test_malformed_override(tmp_path, bad):
    top = write(tmp_path, "top.yaml", "seed: 1\n")
    assert f"Command-line override {bad!r}" in error_of(top, [bad])


# -- validation messages ------------------------------------------------------------------------
def test_unknown_key_message_names_key_file_allowed_and_suggestion(tmp_path):
    base = write(tmp_path, "_base_/runtime.yaml", "train:\n  epochs: 2\n  bach_size: 4\n")
    top = write(tmp_path, "top.yaml", "_base_: _base_/runtime.yaml\n")
    msg = error_of(top)
    assert msg == (
        f"Unknown key 'train.bach_size' (set in '{base}'). Did you mean 'train.batch_size'? "
        "Allowed keys in section 'train': epochs, max_steps, batch_size, grad_accum, lr, weight_decay, "
        "optimizer, schedule, num_workers, amp, grad_clip, checkpoint, init, log."
    )
    top_level = write(tmp_path, "top2.yaml", "sed: 3\n")
    msg = error_of(top_level)
    assert "Did you mean 'seed'? Allowed keys in top-level config: name, seed" in msg


def test_bad_literal_lists_the_choices(tmp_path):
    top = write(tmp_path, "top.yaml", "train: {amp: fp32}\n")
    assert error_of(top) == (
        f"Bad value for 'train.amp' (set in '{top}'): the string 'fp32' is not allowed. "
        "Choose one of: 'off', 'fp16', 'bf16'."
    )
    assert "Choose one of: 'fast', 'exact'" in error_of(top, ["train.amp=bf16", "mode=slow"])


def test_yaml_11_traps_are_read_as_yaml_12(tmp_path):
    top = write(tmp_path, "top.yaml", "train: {amp: off, lr: 1e-3}\nnote: 2024-01-01\n")
    cfg = load(top)
    assert cfg.train.amp == "off" and cfg.train.lr == 1e-3 and cfg.note == "2024-01-01"


def test_bad_type_lists_registered_names(tmp_path):
    top = write(tmp_path, "top.yaml", "widget: {type: boxx}\n")
    with pytest.raises(UnknownTypeError) as info:
        load(top)
    assert str(info.value) == (
        f"Unknown widget type 'boxx' at 'widget.type' (set in '{top}'). Did you mean 'box'? "
        "Registered widget types: box, sphere. "
        "Use a registered name, or import the module that registers it first."
    )
    parts = write(tmp_path, "parts.yaml", "parts: [{type: box}, {type: cone}]\n")
    assert "at 'parts[1].type'" in error_of(parts)
    untyped = write(tmp_path, "untyped.yaml", "widget: {size: 1}\n")
    assert "has no 'type:' key. Set one of the registered widget types: box, sphere" in error_of(
        untyped
    )


def test_missing_required_key(tmp_path):
    top = write(tmp_path, "top.yaml", "widget: {type: sphere}\n")
    assert error_of(top) == (
        f"Missing required key 'widget.radius' (section 'widget' set in '{top}'). Add it to the "
        "config file, or pass widget.radius=... on the command line."
    )


def test_validate_invariant_names_section_keys_and_files(tmp_path):
    base = write(tmp_path, "base.yaml", "grid: {point_cloud_range: [-50, -50, -5, 50, 50, 3]}\n")
    top = write(tmp_path, "top.yaml", "_base_: base.yaml\ngrid: {voxel_size: [0.15, 0.1, 0.2]}\n")
    msg = error_of(top)
    assert msg.startswith(
        f"Invalid section 'grid' (keys set in '{base}': point_cloud_range; "
        f"in '{top}': voxel_size): point_cloud_range extent along x (100 m) is not a whole "
        "number of voxels of 0.15 m (666.667)"
    )
    fine = load(top, ["grid.voxel_size=[0.25, 0.1, 0.2]"])
    assert fine.grid.grid_shape == (400, 1000, 40)
    assert "lr must be > 0" in error_of(top, ["grid.voxel_size=[0.1,0.1,0.2]", "train.lr=0"])


# -- round trip ---------------------------------------------------------------------------------
def test_dump_load_round_trip(tmp_path):
    top = write(tmp_path, "top.yaml", """\
        name: trip
        widget: {type: box, size: 2, tags: [a, '1e-3', 'off']}
        parts: [{type: sphere, radius: 1.5}, {type: box}]
        weights: {a: 1.0e-5, b: 3}
        mode: exact
        note: "2024-01-01"
        train: {amp: bf16, grad_clip: 1, log: {wandb: true}}
    """)
    cfg = load(top)
    dump_config(cfg, tmp_path / "out" / "config.yaml")
    again = load(tmp_path / "out" / "config.yaml")
    assert again == cfg
    assert config_to_dict(again)["parts"][0] == {"type": "sphere", "radius": 1.5}
    assert config_from_dict(config_to_dict(cfg), DemoConfig) == cfg


def test_experiment_config_round_trip_and_default_name(tmp_path):
    top = write(tmp_path, "my-recipe.yaml", "seed: 7\ntrain: {epochs: 3}\n")
    cfg = load_config(top)
    assert isinstance(cfg, ExperimentConfig) and cfg.name == "my-recipe" and cfg.dataset is None
    dump_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg


def test_load_yaml_tree_reports_provenance(tmp_path):
    base = write(tmp_path, "base.yaml", "train: {lr: 0.1, epochs: 2}\nseed: 4\n")
    top = write(tmp_path, "top.yaml", "_base_: base.yaml\ntrain: {epochs: 3}\n")
    data, prov = load_yaml_tree(top, ["train.lr=0.5"])
    assert data == {"train": {"lr": 0.5, "epochs": 3}, "seed": 4}
    assert prov[("seed",)] == f"in '{base}'"
    assert prov[("train", "epochs")] == f"in '{top}'"
    assert prov[("train", "lr")] == "by command-line override 'train.lr=0.5'"


# -- run info -----------------------------------------------------------------------------------
def test_write_run_info_contents(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.argv", ["xmodal", "train", "cfg.yaml", "train.lr=1e-3"])
    cfg = load(write(tmp_path, "top.yaml", "widget: {type: box}\n"))
    info = run_info.write_run_info(tmp_path / "run", cfg, extra={"overrides": ["train.lr=1e-3"]})
    assert load(tmp_path / "run" / "config.yaml") == cfg
    stored = json.loads((tmp_path / "run" / "run_info.json").read_text())
    assert stored == info
    assert set(stored) >= {"git", "xmodal", "python", "packages", "time", "command", "extra"}
    assert stored["packages"]["pyyaml"] and "torch" in stored["packages"]
    assert stored["command"].endswith("xmodal train cfg.yaml train.lr=1e-3")
    assert stored["extra"] == {"overrides": ["train.lr=1e-3"]}
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.yaml", "run_info.json"]


def test_run_info_outside_a_git_checkout_and_without_git(tmp_path, monkeypatch):
    monkeypatch.setattr(run_info, "_SOURCE_ROOT", tmp_path)
    assert run_info.collect_run_info()["git"] == {"sha": "unknown", "dirty": None}
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    assert run_info.git_info(REPO) == {"sha": "unknown", "dirty": None}
    monkeypatch.setitem(run_info.PACKAGES, "not-installed", ("xm-no-such-dist",))
    assert run_info.package_versions()["not-installed"] is None


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_info_in_a_checkout(tmp_path):
    def git(*args):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path), *args],
            check=True, capture_output=True,
        )

    git("init", "-q")
    assert run_info.git_info(tmp_path)["sha"] == "unknown"  # no commit yet
    (tmp_path / "f.txt").write_text("a")
    git("add", "f.txt")
    git("commit", "-q", "-m", "x")
    info = run_info.git_info(tmp_path)
    assert len(info["sha"]) == 40 and info["dirty"] is False
    (tmp_path / "f.txt").write_text("b")
    assert run_info.git_info(tmp_path)["dirty"] is True
    (tmp_path / "sub").mkdir()
    assert run_info.git_info(tmp_path / "sub")["sha"] == "unknown"  # not the checkout's top


# -- shipped configs ----------------------------------------------------------------------------
SHIPPED = sorted(p for p in (REPO / "configs").rglob("*.yaml") if "_base_" not in p.parts)
BASES = sorted((REPO / "configs" / "_base_").rglob("*.yaml"))


def test_configs_are_shipped():
    assert SHIPPED and BASES


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_config_loads(path):
    try:
        cfg = load_config(path)
    except UnknownTypeError as exc:
        if exc.failed:  # a module that should register the type is broken: that is a failure
            raise
        pytest.skip(f"{exc.registry} type {exc.name!r} is not registered yet ({path.name})")
    assert cfg.name == path.stem


@pytest.mark.parametrize("path", BASES, ids=[str(p.relative_to(REPO / "configs")) for p in BASES])
def test_base_config_parses(path):
    data, _ = load_yaml_tree(path)
    assert isinstance(data, dict) and data


def test_duplicate_keys_are_rejected(tmp_path):
    cfg = tmp_path / "dup.yaml"
    cfg.write_text("seed: 1\ntrain:\n  lr: 0.1\n  lr: 0.2\n")
    with pytest.raises(ConfigError, match=r"(?s)dup.yaml.*duplicate key 'lr' \(first set on line 3\)"):
        load_config(cfg)


def test_changed_type_hint_names_the_type_the_key_belongs_to(tmp_path):
    (tmp_path / "base.yaml").write_text("dataset:\n  type: scannet\n  info_file: x.json\n  split: val\n")
    (tmp_path / "top.yaml").write_text("_base_: base.yaml\ndataset:\n  type: nuscenes\n")
    with pytest.raises(ConfigError, match=r"'split' belongs to type\(s\) scannet.*_delete_: true"):
        load_config(tmp_path / "top.yaml")
    with pytest.raises(ConfigError) as e:  # a plain typo gets no such hint
        load_config(tmp_path / "top.yaml", ["dataset={_delete_: true, type: nuscenes, info_file: a, bogus: 1}"])
    assert "belongs to" not in str(e.value) and "dataset.bogus" in str(e.value)
