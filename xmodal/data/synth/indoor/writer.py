"""Write a scene in the ScanNet layout (see :mod:`xmodal.data.scannet.files` for the real one).

Files that follow the real ScanNet download / SensReader export exactly::

    scans/sceneXXXX_XX/sceneXXXX_XX_vh_clean_2.ply          binary LE, float xyz, uchar rgba, faces
    scans/sceneXXXX_XX/sceneXXXX_XX_vh_clean_2.labels.ply   + ushort label (NYU40 id)
    scans/sceneXXXX_XX/sceneXXXX_XX.txt                     scan meta (axisAlignment, sizes, fx...)
    scans/sceneXXXX_XX/color/<i>.jpg                        RGB JPEG
    scans/sceneXXXX_XX/depth/<i>.png                        uint16 millimetres, 0 = no hit
    scans/sceneXXXX_XX/pose/<i>.txt                         4x4 camera -> world, "%f"
    scans/sceneXXXX_XX/intrinsic/{intrinsic,extrinsic}_{color,depth}.txt   4x4
    scannetv2_train.txt, scannetv2_val.txt                  split lists

Our extras (never needed by the loader): ``scans/<scene>/label_nyu40/<i>.png`` (uint8 NYU40 id
of the triangle seen by each colour pixel) and ``xmodal_world.json`` (generator settings, rooms,
objects and how many frames see each one).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xmodal.data.scannet import files as F
from xmodal.data.scannet.ply import mesh_vertex_array, write_ply

PLY_COMMENT = "xmodal synth indoor (ScanNet vh_clean_2 layout)"


def _write_matrix(path: Path, M: np.ndarray) -> None:
    # SensReader's SensorData.py writes each row with np.savetxt(fmt='%f').
    path.write_text("".join(" ".join(f"{x:f}" for x in row) + "\n" for row in np.asarray(M, np.float64)))


def write_meshes(scene_dir: Path, name: str, vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray,
                 nyu40: np.ndarray) -> None:
    """``<name>_vh_clean_2.ply`` and ``<name>_vh_clean_2.labels.ply`` (vertices: world frame, m)."""
    write_ply(scene_dir / F.mesh_name(name), mesh_vertex_array(vertices, colors), faces, PLY_COMMENT)
    write_ply(scene_dir / F.labels_name(name), mesh_vertex_array(vertices, colors, nyu40), faces, PLY_COMMENT)


def write_intrinsics(scene_dir: Path, K_color: np.ndarray, K_depth: np.ndarray) -> None:
    d = scene_dir / F.INTRINSIC_DIR
    d.mkdir(parents=True, exist_ok=True)
    for name, K in (("intrinsic_color.txt", K_color), ("intrinsic_depth.txt", K_depth)):
        M = np.eye(4)
        M[:3, :3] = K
        _write_matrix(d / name, M)
    for name in ("extrinsic_color.txt", "extrinsic_depth.txt"):  # depth is registered to colour
        _write_matrix(d / name, np.eye(4))


def write_scene_meta(scene_dir: Path, name: str, axis_alignment: np.ndarray, K_color: np.ndarray,
                     K_depth: np.ndarray, color_size: tuple[int, int], depth_size: tuple[int, int],
                     n_frames: int, scene_type: str) -> None:
    """``<name>.txt`` with the keys of the real scan meta file."""
    def mat(M):
        return " ".join(f"{x:f}" for x in np.asarray(M, np.float64).ravel())

    lines = {
        "axisAlignment": mat(axis_alignment),
        "colorHeight": color_size[0],
        "colorToDepthExtrinsics": mat(np.eye(4)),
        "colorWidth": color_size[1],
        "depthHeight": depth_size[0],
        "depthWidth": depth_size[1],
        "fx_color": f"{K_color[0, 0]:f}", "fx_depth": f"{K_depth[0, 0]:f}",
        "fy_color": f"{K_color[1, 1]:f}", "fy_depth": f"{K_depth[1, 1]:f}",
        "mx_color": f"{K_color[0, 2]:f}", "mx_depth": f"{K_depth[0, 2]:f}",
        "my_color": f"{K_color[1, 2]:f}", "my_depth": f"{K_depth[1, 2]:f}",
        "numColorFrames": n_frames,
        "numDepthFrames": n_frames,
        "numIMUmeasurements": 0,
        "sceneType": scene_type,
    }
    (scene_dir / f"{name}.txt").write_text("".join(f"{k} = {v}\n" for k, v in lines.items()))


def write_frame(scene_dir: Path, frame_id: str, color: np.ndarray, depth_m: np.ndarray, label: np.ndarray,
                pose: np.ndarray, jpeg_quality: int = 92) -> None:
    """One exported frame: colour JPEG, depth PNG (uint16 mm), pose txt, NYU40 label PNG (extra)."""
    from PIL import Image

    for sub in (F.COLOR_DIR, F.DEPTH_DIR, F.POSE_DIR, F.LABEL_DIR):
        (scene_dir / sub).mkdir(exist_ok=True)
    Image.fromarray(color).save(scene_dir / F.COLOR_DIR / f"{frame_id}{F.COLOR_EXT}", quality=jpeg_quality)
    mm = np.clip(np.round(depth_m * F.DEPTH_SCALE), 0, 65535).astype(np.uint16)
    Image.fromarray(mm).save(scene_dir / F.DEPTH_DIR / f"{frame_id}{F.DEPTH_EXT}", compress_level=1)
    Image.fromarray(label.astype(np.uint8)).save(scene_dir / F.LABEL_DIR / f"{frame_id}{F.LABEL_EXT}",
                                                 compress_level=1)
    _write_matrix(scene_dir / F.POSE_DIR / f"{frame_id}{F.POSE_EXT}", pose)


def write_splits(root: Path, splits: dict[str, list[str]]) -> None:
    for split, names in splits.items():
        (root / F.split_file_name(split)).write_text("".join(n + "\n" for n in names))
