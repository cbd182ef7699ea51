"""Generate one scene and the whole indoor world (see :func:`generate_indoor_world`)."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from xmodal.data.labels import NYU40_CLASSES, NYU40_TO_SCANNET20, SCANNET20_CLASSES, SCANNET_IGNORE
from xmodal.data.scannet import files as F
from xmodal.data.synth.indoor import writer
from xmodal.data.synth.indoor.layout import ROOM_TYPES, SCENE_TYPE_NAMES, build_room
from xmodal.data.synth.indoor.render import Renderer
from xmodal.data.synth.indoor.scene import build_scene_mesh
from xmodal.data.synth.indoor.trajectory import scan_trajectory
from xmodal.geometry import invert_transform, rgbd_visibility, scale_intrinsics
from xmodal.utils.atomic import staged_dir
from xmodal.utils.validate import check_int, check_number

#: ScanNet's usual calibration (scene0000_00): colour camera at 1296x968, depth at 640x480.
SCANNET_COLOR_SIZE = (968, 1296)  # (H, W)
SCANNET_COLOR_K = np.array([[1170.187988, 0.0, 647.75], [0.0, 1170.187988, 483.75], [0.0, 0.0, 1.0]])
SCANNET_DEPTH_SIZE = (480, 640)
SCANNET_DEPTH_K = np.array([[577.590698, 0.0, 318.905426], [0.0, 578.729797, 242.683609], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class IndoorConfig:
    """Settings of ``xmodal synth indoor`` beyond scenes / frames / seed.

    The default colour resolution is half of ScanNet's (648x484, fx = 585; same aspect and
    field of view): vertex colours carry texture at ~4 cm, which the half resolution already
    resolves, and it halves the time. ``color_scale=1`` writes the real 1296x968.
    """

    color_scale: float = 0.5  # x ScanNet's 1296x968 colour camera (aspect and FOV kept)
    depth_scale: float = 1.0  # x ScanNet's 640x480 depth camera
    edge: float = 0.04  # longest mesh edge, metres (vertex spacing of the texture)
    jpeg_quality: int = 92
    depth_noise: bool = True
    val_fraction: float = 0.25  # last scenes go to scannetv2_val.txt
    world_transform: bool = True  # random yaw / shift of the scan frame, undone by axisAlignment
    threads: int = 0  # open3d ray-casting threads (0 = all cores); output does not depend on it

    def __post_init__(self) -> None:
        check_number("IndoorConfig.color_scale", self.color_scale, 0.05, 2.0)
        check_number("IndoorConfig.depth_scale", self.depth_scale, 0.05, 2.0)
        check_number("IndoorConfig.edge", self.edge, 0.005, 0.5, " metres")
        check_int("IndoorConfig.jpeg_quality", self.jpeg_quality, 1, 100)
        check_number("IndoorConfig.val_fraction", self.val_fraction, 0.0, 1.0)
        check_int("IndoorConfig.threads", self.threads, 0, 1024)


def scaled_camera(K: np.ndarray, size: tuple[int, int], scale: float) -> tuple[np.ndarray, tuple[int, int]]:
    """Intrinsics and (H, W) of a camera resized by ``scale`` (continuous pixel coordinates)."""
    h, w = round(size[0] * scale), round(size[1] * scale)
    return scale_intrinsics(K, w / size[1], h / size[0]), (h, w)


def scene_name(index: int) -> str:
    return f"scene{index:04d}_00"


def split_of(index: int, n: int, val_fraction: float) -> str:
    n_val = 0 if n < 2 else max(1, int(round(n * val_fraction)))
    return "val" if index >= n - n_val else "train"


def _world_transform(rng: np.random.Generator, enabled: bool) -> np.ndarray:
    """``T_world_from_room``: ScanNet scan frames are z-up but not aligned with the walls."""
    if not enabled:
        return np.eye(4)
    yaw = rng.uniform(-np.pi, np.pi)
    c, s = math.cos(yaw), math.sin(yaw)
    T = np.eye(4)
    T[:2, :2] = [[c, -s], [s, c]]
    T[:3, 3] = (*rng.uniform(-3, 3, 2), rng.uniform(-0.05, 0.05))
    return T


def generate_scene(scene_dir: Path, index: int, seed: int, n_frames: int, cfg: IndoorConfig,
                   on_frame: Callable[[], None] | None = None) -> dict[str, Any]:
    """Build, render and write scene ``index`` of the world with ``seed`` into ``scene_dir``."""
    rng = np.random.default_rng([seed, index])
    kind = ROOM_TYPES[index % len(ROOM_TYPES)]
    name = scene_name(index)
    room = build_room(rng, kind, cfg.edge)
    mesh = build_scene_mesh(room, cfg.edge, cfg.threads)
    poses_room = scan_trajectory(room.size, n_frames, rng)
    T = _world_transform(rng, cfg.world_transform)
    verts = mesh.vertices @ T[:3, :3].T + T[:3, 3]
    poses = np.einsum("ij,njk->nik", T, poses_room)
    K_c, size_c = scaled_camera(SCANNET_COLOR_K, SCANNET_COLOR_SIZE, cfg.color_scale)
    K_d, size_d = scaled_camera(SCANNET_DEPTH_K, SCANNET_DEPTH_SIZE, cfg.depth_scale)

    scene_dir.mkdir(parents=True)
    writer.write_meshes(scene_dir, name, verts, mesh.faces, mesh.colors, mesh.nyu40)
    writer.write_intrinsics(scene_dir, K_c, K_d)
    writer.write_scene_meta(scene_dir, name, invert_transform(T), K_c, K_d, size_c, size_d, n_frames,
                            SCENE_TYPE_NAMES[kind])
    renderer = Renderer(verts, mesh.faces, mesh.colors, mesh.face_nyu40, cfg.threads)
    views = np.zeros(len(mesh.names), np.int64)
    for k in range(n_frames):
        depth = renderer.depth(K_d, poses[k], size_d, rng, cfg.depth_noise)
        color, label = renderer.color_and_label(K_c, poses[k], size_c, rng)
        writer.write_frame(scene_dir, str(k), color, depth, label, poses[k], cfg.jpeg_quality)
        views += _objects_seen(verts, mesh.instance, len(mesh.names), poses[k], K_d, depth)
        if on_frame is not None:
            on_frame()
    present = sorted(set(mesh.nyu40.tolist()))
    s20 = sorted({int(NYU40_TO_SCANNET20[i]) for i in present} - {SCANNET_IGNORE})
    objects = [{"name": n, "nyu40": NYU40_CLASSES[int(np.bincount(mesh.nyu40[mesh.instance == i]).argmax())]
                if (mesh.instance == i).any() else None, "views": int(views[i])}
               for i, n in enumerate(mesh.names)]
    return {
        "name": name,
        "kind": kind,
        "room_size": [round(x, 4) for x in room.size],
        "num_vertices": int(len(verts)),
        "num_faces": int(len(mesh.faces)),
        "num_frames": n_frames,
        "scannet20_classes": [SCANNET20_CLASSES[i] for i in s20],
        "objects": objects,
    }


def _objects_seen(verts, instance, n_obj, pose, K, depth, min_vertices: int = 30) -> np.ndarray:
    """[n_obj] 1 where at least ``min_vertices`` of an object's vertices are visible in the frame."""
    _, _, vis = rgbd_visibility(verts, pose, K, depth, abs_tol=0.03, rel_tol=0.02)
    return (np.bincount(instance[vis], minlength=n_obj) >= min_vertices).astype(np.int64)


def generate_indoor_world(out, *, scenes: int = 2, frames: int = 20, seed: int = 0, force: bool = False,
                          progress: bool = True, config: IndoorConfig | None = None) -> dict[str, Any]:
    """Write ``scenes`` furnished rooms with ``frames`` RGB-D frames each in the ScanNet layout.

    Layout and which files are ScanNet's vs our extras: :mod:`xmodal.data.synth.indoor.writer`.
    Deterministic for ``seed`` (scene ``i`` depends only on ``(seed, i)``). The world is built
    in a temporary sibling folder and moved into ``out`` only when complete; a non-empty ``out``
    is refused unless ``force``.

    Returns:
        summary: ``scenes``, ``frames`` (total), ``seconds``, ``frames_per_second``,
        ``scenes_per_second``, ``vertices`` (total), ``scannet20_classes`` (present anywhere),
        ``out``.
    """
    cfg = config or IndoorConfig()
    check_int("--scenes", scenes, 1, 10000)
    check_int("--frames", frames, 1, 100000)
    check_int("--seed", seed, 0, 2**32 - 1)
    t0 = time.time()
    bar = None
    infos = []
    try:
        with staged_dir(out, force, marker="xmodal_world.json") as tmp:
            if progress:  # after staged_dir's checks: no bar before a refusal
                from tqdm import tqdm

                bar = tqdm(total=scenes * frames, desc="synth indoor", unit="frame")
            splits: dict[str, list[str]] = {"train": [], "val": []}
            for i in range(scenes):
                if bar is not None:
                    bar.set_postfix_str(scene_name(i))
                info = generate_scene(tmp / F.SCANS_DIR / scene_name(i), i, seed, frames, cfg,
                                      bar.update if bar is not None else None)
                info["split"] = split_of(i, scenes, cfg.val_fraction)
                splits[info["split"]].append(info["name"])
                infos.append(info)
            writer.write_splits(tmp, splits)
            meta = {"generator": "xmodal synth indoor", "seed": seed, "scenes": scenes, "frames": frames,
                    "config": asdict(cfg), "world": infos}
            (tmp / "xmodal_world.json").write_text(json.dumps(meta, indent=1))
    finally:
        if bar is not None:
            bar.close()
    dt = time.time() - t0
    classes = sorted({c for s in infos for c in s["scannet20_classes"]}, key=SCANNET20_CLASSES.index)
    return {
        "scenes": scenes,
        "frames": scenes * frames,
        "seconds": dt,
        "frames_per_second": scenes * frames / dt,
        "scenes_per_second": scenes / dt,
        "vertices": sum(s["num_vertices"] for s in infos),
        "scannet20_classes": classes,
        "out": str(Path(out)),
    }
