"""``xmodal teacher fit-tiny-clip`` on the tiny driving world: the file loads back through the
teacher registry (``tiny_clip`` and ``open_clip`` + sidecar) with the contracted shapes; the
cache command reads it. Quality is not tested here (a few steps only)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from xmodal.cli.main import main
from xmodal.errors import ConfigError, DataError, SchemaError
from xmodal.models.teachers.prompts import NUSCENES_CLASS_PROMPTS, TEMPLATES
from xmodal.models.teachers.tiny_clip import read_tiny_clip
from xmodal.registry import TEACHERS


@pytest.fixture(scope="module")
def tiny_clip_file(driving_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_clip") / "tiny_clip.pt"
    rc = main(["teacher", "fit-tiny-clip", "--data", str(driving_world), "--out", str(out), "--steps", "2", "--quiet"])
    assert rc == 0
    return out


def test_fit_writes_file_and_sidecar_with_metrics(tiny_clip_file, capsys):
    _, record = read_tiny_clip(tiny_clip_file)
    side = json.loads(tiny_clip_file.with_suffix(".json").read_text())
    assert side["model_cfg"] == record["model_cfg"] and "xmodal_tiny_clip" in side
    m = record["metrics"]
    assert 0 <= m["crop_zero_shot"]["top1"] <= 1 and 0 <= m["dense_zero_shot"]["miou"] <= 1
    assert 0 <= m["dense_zero_shot"]["pixel_acc"] <= 1 and m["dense_zero_shot"]["classes_present"] > 3
    assert record["train"]["steps_done"] == 2 and record["world"]["heldout_scenes"] == ["scene-0103"]
    assert record["train"]["total_seconds"] > 0


def test_loads_through_registry_with_contract_shapes(tiny_clip_file, driving_world):
    t = TEACHERS.build({"type": "tiny_clip", "weights": str(tiny_clip_file)})
    assert t.feature_dim == 128 and t.output_stride == 8 and not t.training
    assert all(not p.requires_grad for p in t.parameters())
    img = torch.randint(0, 256, (2, 3, 225, 400), dtype=torch.uint8)
    f = t(img)
    assert f.shape == (2, 128, 28, 52) and f.dtype == torch.float32
    ce = t.class_embeddings(NUSCENES_CLASS_PROMPTS, TEMPLATES)
    assert ce.shape == (16, 128)
    torch.testing.assert_close(ce.norm(dim=-1), torch.ones(16))
    # the same file through the generic OpenCLIP path (sidecar JSON = open_clip model config)
    oc = TEACHERS.build({"type": "open_clip", "model": str(tiny_clip_file.with_suffix(".json")),
                         "weights": str(tiny_clip_file), "output_stride": 8})
    torch.testing.assert_close(oc(img), f)
    torch.testing.assert_close(oc.encode_text(["a photo of a car."]), t.encode_text(["a photo of a car."]))
    s32 = TEACHERS.build({"type": "tiny_clip", "weights": str(tiny_clip_file), "output_stride": 32})
    assert s32(img).shape == (2, 128, 7, 13)


def test_cache_command_reads_the_file(tiny_clip_file, driving_world, tmp_path):
    from xmodal.data.teacher_cache import TeacherCache

    out = tmp_path / "cache"
    rc = main(["teacher", "cache", "--root", str(driving_world), "--teacher", str(tiny_clip_file), "--out", str(out),
               "--limit", "3", "--pca-dim", "16", "--quiet"])
    assert rc == 0
    t = TEACHERS.build({"type": "tiny_clip", "weights": str(tiny_clip_file)})
    cache = TeacherCache(out, expect=t)
    rel = cache.relpaths()[0]
    assert cache.feature_dim == 16 and cache.load(rel).shape == (16, 28, 52)
    assert cache.load(rel, decode=True).shape == (128, 28, 52)
    assert "xmodal teacher cache" in json.loads((out / "manifest.json").read_text())["command"]


def test_bad_files_and_data(tmp_path, tiny_clip_file):
    bad = tmp_path / "plain.pt"
    torch.save({"a": torch.zeros(1)}, bad)
    with pytest.raises(ConfigError, match="not a tiny-CLIP file"):
        TEACHERS.build({"type": "tiny_clip", "weights": str(bad)})
    ckpt = torch.load(tiny_clip_file, weights_only=True)
    ckpt["xmodal_tiny_clip"]["schema_version"] = 99
    old = tmp_path / "old.pt"
    torch.save(ckpt, old)
    with pytest.raises(SchemaError, match="fit-tiny-clip"):
        TEACHERS.build({"type": "tiny_clip", "weights": str(old)})
    assert main(["teacher", "fit-tiny-clip", "--data", str(tmp_path), "--out", str(tmp_path / "x.pt"), "--steps", "1", "--quiet"]) == 2
    with pytest.raises(DataError, match="xmodal synth driving"):
        from xmodal.models.teachers.tiny_clip_fit import load_world

        load_world(tmp_path)


def test_crop_sampler_labels_match_masks(driving_world):
    from xmodal.models.teachers.tiny_clip_fit import CropSampler, FitConfig, load_world

    w = load_world(driving_world)
    assert w.images.shape[1:] == (225, 400, 3) and w.heldout.sum() == 18
    s = CropSampler(w.images, w.masks, FitConfig(input=64), np.random.default_rng(0))
    crops, labels, cells = s.sample_cells(32)
    assert crops.shape == (32, 3, 64, 64) and 0 <= float(crops.min()) and float(crops.max()) <= 1
    assert labels.min() >= 1 and labels.max() <= 16 and cells.shape == (32, 2, 2)
