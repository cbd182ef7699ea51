"""Every config under configs/ runs two optimizer steps (and its evaluation) on the tiny synthetic
world. What each test swaps, and only that: the data paths (the tiny world instead of real
nuScenes), the teacher weights (random: a random-weights control ResNet-50 for SLidR, a tiny
random OpenCLIP ViT for the ViT-B/16 config, whose 600 MB of weights do not belong in a unit
test), the label split of the 1 % fine-tune (the mini_train scene list: SLidR's 1 % scenes are not
in a mini world, SLidR issue #19), and the budget (2 steps, batch 1, no workers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from xmodal.config import load_config

ROOT = Path(__file__).resolve().parents[1]
# recipes: configs that train something (the dataset-only configs of the data browser have no model)
CONFIGS = sorted(p for p in (ROOT / "configs").rglob("*.yaml") if "_base_" not in p.parts and load_config(p).model is not None)
TINY_VIT = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def world(driving_world, tmp_path_factory):
    from xmodal.data.lidar_camera import NuScenesPairsConfig, NuScenesPairsDataset
    from xmodal.data.nuscenes_info import prepare_nuscenes
    from xmodal.data.superpixels import prepare_superpixels
    from xmodal.data.teacher_cache import build_teacher_cache
    from xmodal.models.teachers.openclip import OpenClipTeacher, OpenClipTeacherConfig, build_clip

    tmp = tmp_path_factory.mktemp("configs")
    infos = {s: tmp / f"{s}.pkl" for s in ("mini_train", "mini_val")}
    for s, p in infos.items():
        prepare_nuscenes(driving_world, "v1.0-mini", p, split=s, max_sweeps=0, progress=False)
    prepare_superpixels(driving_world, method="fast", progress=False)
    (tmp / "tiny_vit.json").write_text(json.dumps(TINY_VIT))
    torch.manual_seed(0)
    torch.save(build_clip(TINY_VIT).state_dict(), tmp / "tiny_vit.pt")
    teacher = OpenClipTeacher(OpenClipTeacherConfig(model=str(tmp / "tiny_vit.json"), weights=str(tmp / "tiny_vit.pt")))
    ds = NuScenesPairsDataset(NuScenesPairsConfig(info_file=str(infos["mini_train"])))
    rels = sorted({r for i in range(len(ds)) for r in ds.image_relpaths(i)})
    build_teacher_cache(teacher, driving_world, rels, tmp / "cache", progress=False)
    return {"root": driving_world, "infos": infos, "tmp": tmp, "dim": teacher.feature_dim}


def _overrides(path: Path, w: dict) -> list[str]:
    raw = load_config(path)
    o = [f"work_dir={w['tmp'] / 'runs'}", f"dataset.info_file={w['infos']['mini_train']}", "train.max_steps=2",
         "train.batch_size=1", "train.num_workers=0", "train.log.tensorboard=false"]
    if raw.dataset.superpixels:
        o.append("dataset.superpixels=slic_n150_c6_s3_fast")
    if getattr(raw.dataset, "teacher_cache", None):
        o += [f"dataset.teacher_cache={w['tmp'] / 'cache'}", f"model.teacher_dim={w['dim']}"]
    teacher = raw.teacher
    if teacher is not None and type(teacher).__name__ == "ImageNetTeacherConfig":
        o += ["teacher.weights=null", "teacher.random_init=true"]
    elif teacher is not None:
        o += [f"teacher.model={w['tmp'] / 'tiny_vit.json'}", f"teacher.weights={w['tmp'] / 'tiny_vit.pt'}",
              f"model.teacher_dim={w['dim']}"]
    if raw.eval.val is not None:
        o += [f"eval.val.info_file={w['infos']['mini_val']}", "eval.probe_epochs=1"]
    if raw.dataset.split_file:
        o.append(f"dataset.split_file={ROOT / 'data/splits/nuscenes_mini_train_scenes.txt'}")
    return o


@pytest.mark.parametrize("path", CONFIGS, ids=[str(p.relative_to(ROOT / "configs")) for p in CONFIGS])
def test_config_runs_two_steps(path, world):
    from xmodal.evaluation.protocols import evaluate
    from xmodal.experiment import train

    cfg = load_config(path, _overrides(path, world))
    if cfg.model.__class__.__name__ == "LidarDistillConfig":
        summary = train(cfg, resume=False, progress=False)
        assert summary["steps"] == 2 and all(map(lambda v: v == v, summary["losses"]))
        assert (Path(summary["run_dir"]) / "model_final.pt").is_file()
    else:
        result = evaluate(cfg, progress=False)
        assert result["val"]["miou"] is not None and result["protocol"]["name"] == cfg.eval.protocol


def test_bad_input_messages(tmp_path):
    """A voxel size that does not divide the range fails when the config loads, naming the key and
    a range that fits; missing teacher weights fail when the teacher is built, naming the key, the
    path and how to get the file."""
    from xmodal.errors import ConfigError
    from xmodal.experiment import build_teacher

    slidr = ROOT / "configs" / "pretrain-minkunet34-resnet50-slidr_nuscenes.yaml"
    with pytest.raises(ConfigError, match=r"not a whole number of voxels.*(change the range|voxel_size)"):
        load_config(slidr, ["model.backbone.coords=cubic", "model.backbone.voxel_size=[0.3,0.3,0.3]",
                            "model.backbone.point_range=[-51.2,-51.2,-5,51.2,51.2,3]"])
    cfg = load_config(slidr, [f"teacher.weights={tmp_path / 'nowhere.pth'}"])
    with pytest.raises(ConfigError, match=r"teacher\.weights.*nowhere\.pth"):
        build_teacher(cfg)


def test_initial_weights_follow_the_seed_not_the_process(world, tmp_path):
    """``train`` builds its model from ``cfg.seed``: random numbers drawn before it (``xmodal demo``
    trains several models in one process) change nothing; another seed changes the start."""
    from xmodal.experiment import train

    path = ROOT / "configs/demo/pretrain-minkunet14-tinyclip-pointwise_synth-driving.yaml"
    base = _overrides(path, world) + ["train.max_steps=1", f"work_dir={tmp_path}"]
    first = []
    for name, seed, draw in (("a", 0, 0), ("b", 0, 1000), ("c", 1, 0)):
        torch.rand(draw)
        summary = train(load_config(path, base + [f"name={name}", f"seed={seed}"]), resume=False, progress=False)
        first.append(summary["losses"][0])
    assert first[0] == first[1] and first[2] != first[0]
