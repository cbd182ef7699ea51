"""The superpixel cache and `xmodal prepare superpixels`: layout, resume, manifest checks, errors."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xmodal.cli.main import main
from xmodal.data.superpixels import (
    find_camera_images,
    load_superpixels,
    method_tag,
    prepare_superpixels,
    superpixel_dir,
    superpixel_path,
)
from xmodal.errors import DataError
from xmodal.ops.slic import slic


@pytest.fixture()
def small_nuscenes(driving_world, tmp_path):
    """A copy of one keyframe's six cameras of the synthetic world (and its version folder):
    the session world stays untouched."""
    root = tmp_path / "nuscenes"
    (root / "v1.0-mini").mkdir(parents=True)
    for cam in sorted((driving_world / "samples").glob("CAM_*")):
        first = min(cam.glob("*.jpg"))
        (root / "samples" / cam.name).mkdir(parents=True)
        shutil.copy(first, root / "samples" / cam.name / first.name)
    return root


def test_tags_name_method_and_parameters():
    assert method_tag() == "slic_n150_c6_s3_fast"
    assert method_tag("skimage", 1000, 10, 0.5) == "slic_n1000_c10_s0p5_skimage"
    assert superpixel_path("/d", "samples/CAM_FRONT/a.jpg", "t") == Path("/d/superpixels/t/samples/CAM_FRONT/a.png")
    with pytest.raises(DataError, match="relative"):
        superpixel_path("/d", "../x.jpg", "t")


def test_prepare_twice_resumes_and_round_trips(small_nuscenes):
    first = prepare_superpixels(small_nuscenes, progress=False)
    assert first["dataset"] == "nuscenes" and first["images"] == 6
    assert first["computed"] == 6 and first["skipped"] == 0
    again = prepare_superpixels(small_nuscenes, progress=False)
    assert again["computed"] == 0 and again["skipped"] == 6

    tag = method_tag()
    manifest = json.loads((superpixel_dir(small_nuscenes, tag) / "manifest.json").read_text())
    assert manifest["method"] == "fast" and manifest["n_segments"] == 150 and manifest["dtype"] == "uint16"
    _, images = find_camera_images(small_nuscenes)
    for rel in images:
        png = superpixel_path(small_nuscenes, rel, tag)
        assert Image.open(png).mode == "I;16"
        labels = load_superpixels(png)
        assert labels.dtype == np.uint16
        assert np.unique(labels).size == labels.max() + 1  # ids 0..K-1, all used
        expected = slic(np.asarray(Image.open(small_nuscenes / rel).convert("RGB")))
        assert np.array_equal(labels, expected)


def test_force_recomputes_and_limit(small_nuscenes):
    assert prepare_superpixels(small_nuscenes, progress=False, limit=2)["computed"] == 2
    out = prepare_superpixels(small_nuscenes, progress=False, limit=3, force=True)
    assert out["images"] == 3 and out["computed"] == 3 and out["skipped"] == 0


def test_skimage_method_gets_its_own_cache(small_nuscenes):
    out = prepare_superpixels(small_nuscenes, method="skimage", progress=False, limit=1)
    assert out["tag"] == "slic_n150_c6_s3_skimage" and out["computed"] == 1
    assert not superpixel_dir(small_nuscenes, method_tag("fast")).exists()


def test_manifest_mismatch_asks_for_force_or_tag(small_nuscenes):
    prepare_superpixels(small_nuscenes, tag="mine", progress=False, limit=1)
    with pytest.raises(DataError, match=r"n_segments: cached 150 vs asked 300.*--force.*--tag"):
        prepare_superpixels(small_nuscenes, tag="mine", n_segments=300, progress=False, limit=1)
    out = prepare_superpixels(small_nuscenes, tag="mine", n_segments=300, progress=False, limit=1, force=True)
    assert out["computed"] == 1
    assert json.loads((superpixel_dir(small_nuscenes, "mine") / "manifest.json").read_text())["n_segments"] == 300


def test_unknown_or_empty_roots_are_rejected(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        prepare_superpixels(tmp_path / "missing", progress=False)
    (tmp_path / "other").mkdir()
    with pytest.raises(DataError, match=r"neither nuScenes .* nor ScanNet"):
        prepare_superpixels(tmp_path / "other", progress=False)
    (tmp_path / "empty" / "samples").mkdir(parents=True)
    with pytest.raises(DataError, match="no camera image"):
        prepare_superpixels(tmp_path / "empty", progress=False)


def test_scannet_layout(driving_world, tmp_path):
    src = min((driving_world / "samples" / "CAM_FRONT").glob("*.jpg"))
    color = tmp_path / "scannet" / "scans" / "scene0000_00" / "color"
    color.mkdir(parents=True)
    shutil.copy(src, color / "0.jpg")
    out = prepare_superpixels(tmp_path / "scannet", progress=False)
    assert out["dataset"] == "scannet" and out["computed"] == 1
    png = superpixel_path(tmp_path / "scannet", "scans/scene0000_00/color/0.jpg", out["tag"])
    assert load_superpixels(png).shape == (225, 400)


# ----------------------------------------------------------------------------- CLI
def test_cli_help():
    with pytest.raises(SystemExit) as e:
        main(["prepare", "superpixels", "--help"])
    assert e.value.code == 0


def test_cli_runs_twice_and_reports_errors(small_nuscenes, tmp_path, capsys):
    argv = ["prepare", "superpixels", "--root", str(small_nuscenes), "--quiet", "--threads", "1"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["computed"] == 6
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["skipped"] == 6

    assert main([*argv, "--n-segments", "99", "--tag", "slic_n150_c6_s3_fast"]) == 2
    err = capsys.readouterr().err
    assert "--force" in err and "Traceback" not in err

    (tmp_path / "nothing").mkdir()
    assert main(["prepare", "superpixels", "--root", str(tmp_path / "nothing"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "nothing" in err and "samples" in err and "scans" in err
