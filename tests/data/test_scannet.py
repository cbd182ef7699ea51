"""ScanNet loader and ``prepare scannet`` on a tiny synthetic world in the real layout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from xmodal.data.scannet import (SCHEMA_VERSION, ScanNetDataset, ScanNetFrame, ScanNetScene, prepare_scannet,
                                 read_ply, write_ply)
from xmodal.data.scannet.ply import mesh_vertex_array
from xmodal.data.synth.indoor import generate_indoor_world
from xmodal.errors import DataError, SchemaError

FRAMES = 3


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("scannet") / "world"
    generate_indoor_world(root, scenes=2, frames=FRAMES, seed=1, progress=False)
    return root


@pytest.fixture()
def copy(world, tmp_path) -> Path:
    """A private copy of the world that a test may damage."""
    dst = tmp_path / "root"
    shutil.copytree(world, dst)
    return dst


def test_prepare_writes_versioned_info(world, tmp_path):
    out = tmp_path / "info" / "scannet.json"
    summary = prepare_scannet(world, out, progress=False)
    assert summary["scenes"] == 2 and summary["frames"] == 2 * FRAMES and summary["invalid_poses"] == 0
    info = json.loads(out.read_text())
    assert info["schema_version"] == SCHEMA_VERSION
    assert [(s["name"], s["split"]) for s in info["scenes"]] == [("scene0000_00", "train"), ("scene0001_00", "val")]
    s = info["scenes"][0]
    assert s["mesh"] == "scans/scene0000_00/scene0000_00_vh_clean_2.ply"
    assert s["frame_ids"] == ["0", "1", "2"] and s["color_size"] == [484, 648] and s["depth_size"] == [480, 640]
    assert s["has_label_images"] is True


def test_dataset_sample(world, tmp_path):
    out = tmp_path / "info.json"
    prepare_scannet(world, out, progress=False)
    ds = ScanNetDataset(out, "train")
    assert len(ds) == 1 and ds.scene_names == ["scene0000_00"]
    sc = ds[0]
    assert isinstance(sc, ScanNetScene)
    n = len(sc.vertices)
    assert sc.vertices.shape == (n, 3) and sc.vertices.dtype == np.float32
    assert sc.colors.shape == (n, 3) and sc.colors.dtype == np.uint8
    assert sc.labels.shape == (n,) and sc.labels.dtype == np.int64
    assert set(np.unique(sc.labels)) <= set(range(20)) | {255}
    assert (sc.labels == 255).any() and (sc.labels < 20).sum() > 0.8 * n  # ceiling etc. ignored
    assert sc.faces.shape[1] == 3 and sc.faces.max() < n
    assert len(sc.frames) == FRAMES
    fr = sc.frames[1]
    assert isinstance(fr, ScanNetFrame) and fr.frame_id == "1"
    assert fr.image.shape == (484, 648, 3) and fr.image.dtype == np.uint8
    assert fr.depth.shape == (480, 640) and fr.depth.dtype == np.float32
    assert 0.3 < np.median(fr.depth[fr.depth > 0]) < 8.0  # metres
    assert fr.pose.shape == (4, 4) and fr.pose.dtype == np.float64
    assert fr.intrinsic_color.shape == fr.intrinsic_depth.shape == (3, 3)
    assert fr.label is not None and fr.label.shape == (484, 648)
    # Vertices are in the (unaligned) scan frame; axis_alignment brings them to the room frame.
    aligned = sc.vertices @ sc.axis_alignment[:3, :3].T + sc.axis_alignment[:3, 3]
    assert aligned[:, 2].min() == pytest.approx(0.0, abs=1e-3)  # floor at z = 0
    assert ScanNetDataset(out, "val")[0].name == "scene0001_00"


def test_dataset_from_root_folder_stride_and_max_frames(world):
    ds = ScanNetDataset(world, "val", frame_stride=2)
    assert [f.frame_id for f in ds[0].frames] == ["0", "2"]
    ds = ScanNetDataset(world, "train", max_frames=1)
    assert len(ds[0].frames) == 1 and ds[0].frames.poses().shape == (1, 4, 4)


def test_real_layout_without_our_extras(copy):
    """Real ScanNet has no label_nyu40/ and no xmodal_world.json: the loader must not care."""
    for d in copy.glob("scans/*/label_nyu40"):
        shutil.rmtree(d)
    (copy / "xmodal_world.json").unlink()
    fr = ScanNetDataset(copy, "train")[0].frames[0]
    assert fr.label is None and fr.image.shape == (484, 648, 3)


def test_invalid_pose_is_skipped(copy, tmp_path):
    pose = copy / "scans" / "scene0000_00" / "pose" / "1.txt"
    pose.write_text("-inf -inf -inf -inf\n" * 4)  # ScanNet marks lost tracking like this
    summary = prepare_scannet(copy, tmp_path / "i.json", progress=False)
    assert summary["invalid_poses"] == 1
    assert ScanNetDataset(tmp_path / "i.json", "train")[0].frames.frame_ids == ["0", "2"]


def test_test_split_without_labels(copy):
    (copy / "scannetv2_test.txt").write_text("scene0001_00\n")
    (copy / "scans" / "scene0001_00" / "scene0001_00_vh_clean_2.labels.ply").unlink()
    sc = ScanNetDataset(copy, "test")[0]
    assert (sc.labels == 255).all() and len(sc.vertices) > 0


# --------------------------------------------------------------------------- bad input
def test_missing_root(tmp_path):
    with pytest.raises(DataError, match="does not exist") as e:
        prepare_scannet(tmp_path / "nope", tmp_path / "i.json", progress=False)
    assert "nope" in str(e.value)
    assert not (tmp_path / "i.json").exists()


@pytest.mark.parametrize("which", ["scene0000_00_vh_clean_2.ply", "scene0000_00_vh_clean_2.labels.ply"])
def test_missing_mesh_or_labels(copy, tmp_path, which):
    (copy / "scans" / "scene0000_00" / which).unlink()
    with pytest.raises(DataError, match="missing") as e:
        prepare_scannet(copy, tmp_path / "i.json", progress=False)
    assert which in str(e.value)
    assert not (tmp_path / "i.json").exists()  # nothing half-written


def test_truncated_ply(copy, tmp_path):
    p = copy / "scans" / "scene0001_00" / "scene0001_00_vh_clean_2.ply"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(DataError, match="truncated") as e:
        prepare_scannet(copy, tmp_path / "i.json", progress=False)
    assert str(p) in str(e.value)
    assert not (tmp_path / "i.json").exists()


def test_nan_vertices(copy, tmp_path):
    p = copy / "scans" / "scene0000_00" / "scene0000_00_vh_clean_2.ply"
    mesh = read_ply(p)
    mesh.vertex["x"][5] = np.nan
    write_ply(p, mesh.vertex, mesh.faces)
    with pytest.raises(DataError, match="NaN") as e:
        prepare_scannet(copy, tmp_path / "i.json", progress=False)
    assert str(p) in str(e.value)


def test_missing_frame_image(copy, tmp_path):
    (copy / "scans" / "scene0000_00" / "depth" / "2.png").unlink()
    with pytest.raises(DataError, match=r"depth/2\.png"):
        prepare_scannet(copy, tmp_path / "i.json", progress=False)


def test_frame_removed_after_prepare(copy, tmp_path):
    out = tmp_path / "i.json"
    prepare_scannet(copy, out, progress=False)
    (copy / "scans" / "scene0000_00" / "color" / "1.jpg").unlink()
    frames = ScanNetDataset(out, "train")[0].frames
    frames[0]  # still fine
    with pytest.raises(DataError, match=r"color/1\.jpg.*xmodal prepare scannet"):
        frames[1]


def test_schema_version_mismatch(world, tmp_path):
    out = tmp_path / "i.json"
    prepare_scannet(world, out, progress=False)
    info = json.loads(out.read_text())
    info["schema_version"] = SCHEMA_VERSION + 1
    out.write_text(json.dumps(info))
    with pytest.raises(SchemaError) as e:
        ScanNetDataset(out, "train")
    msg = str(e.value)
    assert "schema_version" in msg and f"xmodal prepare scannet --root {info['root']} --split train,val --out {out}" in msg


def test_not_an_info_file(tmp_path):
    (tmp_path / "x.json").write_text("[1, 2]")
    with pytest.raises(SchemaError, match="xmodal prepare scannet"):
        ScanNetDataset(tmp_path / "x.json")


# --------------------------------------------------------------------------- PLY reader
def test_ply_roundtrip_ascii_and_polygons(tmp_path):
    xyz = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    rgb = np.arange(15, dtype=np.uint8).reshape(5, 3)
    faces = np.array([[0, 1, 2], [2, 3, 4]])
    write_ply(tmp_path / "m.ply", mesh_vertex_array(xyz, rgb, np.array([1, 2, 3, 4, 40])), faces)
    m = read_ply(tmp_path / "m.ply")
    np.testing.assert_array_equal(m.xyz, xyz)
    np.testing.assert_array_equal(m.rgb, rgb)
    np.testing.assert_array_equal(m.faces, faces)
    assert m.vertex["label"].tolist() == [1, 2, 3, 4, 40]
    lines = ["ply", "format ascii 1.0", "element vertex 4", "property float x", "property float y",
             "property float z", "element face 1", "property list uchar int vertex_indices", "end_header",
             "0 0 0", "1 0 0", "1 1 0", "0 1 0", "4 0 1 2 3"]
    (tmp_path / "a.ply").write_text("\n".join(lines) + "\n")
    a = read_ply(tmp_path / "a.ply")
    assert a.faces.tolist() == [[0, 1, 2], [0, 2, 3]] and a.rgb.shape == (4, 3)
    (tmp_path / "bad.ply").write_bytes(b"not a ply")
    with pytest.raises(DataError, match="not a PLY"):
        read_ply(tmp_path / "bad.ply")
