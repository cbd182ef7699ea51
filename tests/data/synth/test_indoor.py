"""``xmodal synth indoor``: ScanNet layout, geometry, labels, 2D/3D agreement, determinism."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xmodal.data.labels import NYU40_CLASSES, NYU40_TO_SCANNET20, SCANNET20_CLASSES, SCANNET_IGNORE
from xmodal.data.scannet import read_ply
from xmodal.data.synth.indoor import IndoorConfig, generate_indoor_world
from xmodal.data.synth.indoor.check import label_agreement
from xmodal.errors import XmodalError

SCENES = ("scene0000_00", "scene0001_00")
FRAMES = 6
# Small and coarse: enough to check determinism and the output folder handling quickly.
QUICK = IndoorConfig(edge=0.08, color_scale=0.25, depth_scale=0.25)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, dict]:
    """The tiny test world: 2 scenes x 6 frames at the default settings."""
    root = tmp_path_factory.mktemp("indoor") / "world"
    summary = generate_indoor_world(root, scenes=2, frames=FRAMES, seed=0, progress=False)
    return root, summary


def _scene_dir(root: Path, name: str) -> Path:
    return root / "scans" / name


def test_scannet_layout(world):
    root, summary = world
    assert summary["scenes"] == 2 and summary["frames"] == 2 * FRAMES
    assert (root / "scannetv2_train.txt").read_text().split() == ["scene0000_00"]
    assert (root / "scannetv2_val.txt").read_text().split() == ["scene0001_00"]
    for name in SCENES:
        d = _scene_dir(root, name)
        for f in (f"{name}_vh_clean_2.ply", f"{name}_vh_clean_2.labels.ply", f"{name}.txt",
                  "intrinsic/intrinsic_color.txt", "intrinsic/intrinsic_depth.txt",
                  "intrinsic/extrinsic_color.txt", "intrinsic/extrinsic_depth.txt"):
            assert (d / f).is_file(), f
        for sub, ext in (("color", ".jpg"), ("depth", ".png"), ("pose", ".txt"), ("label_nyu40", ".png")):
            assert sorted(p.name for p in (d / sub).iterdir()) == sorted(f"{i}{ext}" for i in range(FRAMES))
    meta = json.loads((root / "xmodal_world.json").read_text())
    assert [s["name"] for s in meta["world"]] == list(SCENES)


def test_ply_header_matches_scannet(world):
    root, _ = world
    head = (_scene_dir(root, "scene0000_00") / "scene0000_00_vh_clean_2.labels.ply").read_bytes()[:400]
    header = head.split(b"end_header")[0].decode()
    assert "format binary_little_endian 1.0" in header
    props = [ln for ln in header.splitlines() if ln.startswith("property")]
    assert props == ["property float x", "property float y", "property float z", "property uchar red",
                     "property uchar green", "property uchar blue", "property uchar alpha",
                     "property ushort label", "property list uchar int vertex_indices"]


def test_ply_readable_by_open3d_and_own_reader(world):
    o3d = pytest.importorskip("open3d")
    root, _ = world
    path = _scene_dir(root, "scene0000_00") / "scene0000_00_vh_clean_2.ply"
    mine = read_ply(path)
    mesh = o3d.io.read_triangle_mesh(str(path))
    assert len(mesh.vertices) == len(mine.vertex) > 50_000  # dense enough to carry texture
    np.testing.assert_array_equal(np.asarray(mesh.vertices, np.float32), mine.xyz)
    np.testing.assert_array_equal(np.asarray(mesh.triangles), mine.faces)
    np.testing.assert_allclose(np.asarray(mesh.vertex_colors) * 255, mine.rgb, atol=1e-3)
    labels = read_ply(path.with_name("scene0000_00_vh_clean_2.labels.ply"))
    np.testing.assert_array_equal(labels.xyz, mine.xyz)
    assert labels.vertex["label"].max() < len(NYU40_CLASSES)
    # Textures: vertex colours vary within a class, not one flat colour per object.
    wall = labels.vertex["label"] == 1
    assert mine.rgb[wall].std(0).mean() > 3


def test_scannet20_classes_present(world):
    root, summary = world
    assert len(summary["scannet20_classes"]) == 20  # the two room types together hold all 20
    for name in SCENES:
        nyu = read_ply(_scene_dir(root, name) / f"{name}_vh_clean_2.labels.ply").vertex["label"]
        s20 = set(NYU40_TO_SCANNET20[np.unique(nyu)].tolist()) - {SCANNET_IGNORE}
        assert len(s20) >= 12, (name, [SCANNET20_CLASSES[i] for i in sorted(s20)])


def test_frames_units_and_sizes(world):
    root, _ = world
    d = _scene_dir(root, "scene0001_00")
    depth = Image.open(d / "depth" / "0.png")
    assert depth.mode == "I;16" and depth.size == (640, 480)  # ScanNet depth: 640x480 uint16 mm
    mm = np.asarray(depth)
    assert mm.dtype == np.uint16
    valid = mm[mm > 0]
    assert valid.size > 0.99 * mm.size and 300 < np.median(valid) < 8000  # millimetres
    color = Image.open(d / "color" / "0.jpg")
    assert color.format == "JPEG" and color.mode == "RGB" and color.size == (648, 484)  # half of 1296x968
    label = np.asarray(Image.open(d / "label_nyu40" / "0.png"))
    assert label.shape == (484, 648) and label.max() < len(NYU40_CLASSES)
    K_c = np.loadtxt(d / "intrinsic" / "intrinsic_color.txt")
    K_d = np.loadtxt(d / "intrinsic" / "intrinsic_depth.txt")
    assert K_c.shape == K_d.shape == (4, 4)
    assert K_c[0, 0] == pytest.approx(1170.187988 / 2, abs=1e-3) and K_d[0, 0] == pytest.approx(577.590698)
    assert K_c[0, 0] / 648 == pytest.approx(1170.187988 / 1296)  # same field of view as ScanNet


def test_poses_rigid_and_inside_room(world):
    root, _ = world
    for name in SCENES:
        d = _scene_dir(root, name)
        align = np.array((d / f"{name}.txt").read_text().split("axisAlignment = ")[1].split("\n")[0].split(),
                         float).reshape(4, 4)
        size = next(s["room_size"] for s in json.loads((root / "xmodal_world.json").read_text())["world"]
                    if s["name"] == name)
        for i in range(FRAMES):
            T = np.loadtxt(d / "pose" / f"{i}.txt")
            R = T[:3, :3]
            np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-5)
            assert np.linalg.det(R) == pytest.approx(1.0, abs=1e-5)
            np.testing.assert_array_equal(T[3], [0, 0, 0, 1])
            np.testing.assert_allclose(np.linalg.inv(T) @ T, np.eye(4), atol=1e-9)
            c = (align @ T)[:3, 3]  # camera centre in the axis-aligned room frame
            assert 0.5 < c[0] < size[0] - 0.5 and 0.5 < c[1] < size[1] - 0.5 and 1.0 < c[2] < 2.0


def test_label_agreement_2d_3d(world):
    root, _ = world
    r = label_agreement(root)
    print(f"\n2D/3D label agreement over {r['frames']} frames, {r['visible_vertices']} visible vertices: "
          f"ScanNet-20 {r['scannet20']:.4f} (interior {r['scannet20_interior']:.4f}), "
          f"NYU40 {r['nyu40']:.4f} (interior {r['nyu40_interior']:.4f})")
    assert r["scannet20_interior"] >= 0.98 and r["nyu40_interior"] >= 0.98
    assert r["scannet20"] >= 0.92 and r["nyu40"] >= 0.92  # includes silhouette / contact vertices


def test_objects_seen_from_several_views(world):
    root, _ = world
    for scene in json.loads((root / "xmodal_world.json").read_text())["world"]:
        views = [o["views"] for o in scene["objects"]]
        assert min(views) >= 1 and np.mean(np.array(views) >= 2) > 0.6  # 6 frames; 20 give >= 3 each


def _tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_deterministic_for_a_seed(tmp_path):
    a = generate_indoor_world(tmp_path / "a", scenes=1, frames=2, seed=3, progress=False, config=QUICK)
    generate_indoor_world(tmp_path / "b", scenes=1, frames=2, seed=3, progress=False, config=QUICK)
    generate_indoor_world(tmp_path / "c", scenes=1, frames=2, seed=4, progress=False, config=QUICK)
    assert a["frames"] == 2
    assert _tree_hash(tmp_path / "a") == _tree_hash(tmp_path / "b")
    assert _tree_hash(tmp_path / "a") != _tree_hash(tmp_path / "c")


def test_refuses_non_empty_out_unless_force(tmp_path):
    out = tmp_path / "w"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(XmodalError, match="not empty"):
        generate_indoor_world(out, scenes=1, frames=1, progress=False, config=QUICK)
    assert (out / "keep.txt").read_text() == "mine"
    # --force replaces only an earlier output of this command, never someone's own folder
    with pytest.raises(XmodalError, match="not written by this command"):
        generate_indoor_world(out, scenes=1, frames=1, progress=False, config=QUICK, force=True)
    assert (out / "keep.txt").read_text() == "mine"
    (out / "keep.txt").unlink()
    generate_indoor_world(out, scenes=1, frames=1, progress=False, config=QUICK, seed=1)
    generate_indoor_world(out, scenes=1, frames=1, progress=False, config=QUICK, force=True)
    assert json.loads((out / "xmodal_world.json").read_text())["seed"] == 0


def test_force_never_deletes_the_current_directory(tmp_path, monkeypatch):
    out = tmp_path / "w"
    out.mkdir()
    (out / "xmodal_world.json").write_text("{}")
    monkeypatch.chdir(out)
    with pytest.raises(XmodalError, match="holds the current directory"):
        generate_indoor_world(".", scenes=1, frames=1, progress=False, config=QUICK, force=True)
    assert (out / "xmodal_world.json").exists()


def test_stale_partial_folders_are_cleaned(tmp_path):
    stale = tmp_path / ".w.partial-999999999-abc"  # a pid that cannot run
    stale.mkdir()
    generate_indoor_world(tmp_path / "w", scenes=1, frames=1, progress=False, config=QUICK)
    assert not stale.exists() and not list(tmp_path.glob(".w.partial-*"))


def test_failure_leaves_nothing_half_written(tmp_path, monkeypatch):
    from xmodal.data.synth.indoor import writer

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(writer, "write_frame", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        generate_indoor_world(tmp_path / "w", scenes=1, frames=1, progress=False, config=QUICK)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_label_agreement_on_more_rooms(tmp_path, full_size):
    """Agreement on fresh rooms (reduced: 2 rooms x 8 frames; --full: 8 rooms x 20 frames)."""
    scenes, frames = (8, 20) if full_size else (2, 8)
    root = tmp_path / "world"
    generate_indoor_world(root, scenes=scenes, frames=frames, seed=11, progress=False)
    r = label_agreement(root)
    print(f"\n{scenes}x{frames}: ScanNet-20 {r['scannet20']:.4f} (interior {r['scannet20_interior']:.4f})")
    assert r["scannet20_interior"] >= 0.98 and r["scannet20"] >= 0.92


@pytest.mark.parametrize("kwargs, name", [
    (dict(scenes=1.5), "--scenes"), (dict(frames=0), "--frames"), (dict(seed=-1), "--seed"),
])
def test_bad_arguments_name_the_argument(tmp_path, kwargs, name):
    with pytest.raises(XmodalError, match=name):
        generate_indoor_world(tmp_path / "w", progress=False, **kwargs)
    assert not (tmp_path / "w").exists()


def test_bad_indoor_config_values():
    from xmodal.data.synth.indoor import IndoorConfig

    with pytest.raises(XmodalError, match="IndoorConfig.color_scale"):
        IndoorConfig(color_scale=0)
