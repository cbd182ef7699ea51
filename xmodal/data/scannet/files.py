"""The ScanNet folder layout and readers for its small files.

Real ScanNet (v2) after download and frame export with the Python ``SensReader``
(``reader.py --export_color_images --export_depth_images --export_poses --export_intrinsics``)::

    <root>/
      scannetv2_train.txt, scannetv2_val.txt, scannetv2_test.txt   split lists (one scene per line;
                                      from ScanNet's Tasks/Benchmark, also looked up there)
      scans/sceneXXXX_XX/
        sceneXXXX_XX_vh_clean_2.ply          mesh, world frame (z up, metres), vertex colours
        sceneXXXX_XX_vh_clean_2.labels.ply   same vertices + ``ushort label`` (NYU40 id)
        sceneXXXX_XX.txt                     scan meta (``axisAlignment = 16 floats``, sizes, ...)
        color/<frame>.jpg                    RGB, 1296x968
        depth/<frame>.png                    uint16 millimetres, 640x480, 0 = no measurement
        pose/<frame>.txt                     4x4 camera-to-world (may hold ``-inf`` when tracking
                                             was lost: such frames are skipped)
        intrinsic/intrinsic_color.txt, intrinsic_depth.txt, extrinsic_color.txt,
                  extrinsic_depth.txt        4x4 matrices

Frames may also live under another folder (``frames_root/<scene>/color/...``). Our extra, not
part of ScanNet: ``label_nyu40/<frame>.png`` per-pixel NYU40 ids aligned with ``color/``, written
by ``xmodal synth indoor``; it is read when present and never required.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from xmodal.data.image_io import open_image, read_index_image, read_rgb
from xmodal.errors import DataError, where

SCANS_DIR = "scans"
COLOR_DIR = "color"
DEPTH_DIR = "depth"
POSE_DIR = "pose"
INTRINSIC_DIR = "intrinsic"
LABEL_DIR = "label_nyu40"  # our extra folder (synthetic ground truth), optional
COLOR_EXT, DEPTH_EXT, POSE_EXT, LABEL_EXT = ".jpg", ".png", ".txt", ".png"
DEPTH_SCALE = 1000.0  # depth PNG units per metre (ScanNet: millimetres)
SPLITS = ("train", "val", "test")
SCENE_NAME = re.compile(r"^scene\d{4}_\d{2}$")


def mesh_name(scene: str) -> str:
    return f"{scene}_vh_clean_2.ply"


def labels_name(scene: str) -> str:
    return f"{scene}_vh_clean_2.labels.ply"


def split_file_name(split: str) -> str:
    return f"scannetv2_{split}.txt"


def find_split_file(root: Path, split: str) -> Path:
    """``scannetv2_<split>.txt`` in ``root``, ``root/Tasks/Benchmark`` or ``root/splits``."""
    name = split_file_name(split)
    for cand in (root / name, root / "Tasks" / "Benchmark" / name, root / "splits" / name):
        if cand.is_file():
            return cand
    raise DataError(
        f"split list {where(root / name)} not found (also looked in Tasks/Benchmark/ and splits/); "
        f"copy {name} from ScanNet's Tasks/Benchmark folder into the root."
    )


def read_split(path: Path) -> list[str]:
    names = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    bad = [n for n in names if not SCENE_NAME.match(n)]
    if bad:
        raise DataError(f"split list {where(path)} has lines that are not scene names, e.g. "
                        f"{bad[0]!r}; expected 'sceneXXXX_XX' per line.")
    return names


def read_matrix(path: Path, what: str = "matrix") -> np.ndarray:
    """[4, 4] float64 from a whitespace-separated text file (may contain non-finite values)."""
    if not path.is_file():
        raise DataError(f"{what} file {where(path)} is missing; re-export the frames of this scene "
                        "or re-run `xmodal prepare scannet`.")
    try:
        vals = np.array(path.read_text().split(), dtype=np.float64)
    except ValueError:
        raise DataError(f"{what} file {where(path)} does not hold numbers; re-export it.") from None
    if vals.size != 16:
        raise DataError(f"{what} file {where(path)} holds {vals.size} numbers, expected a 4x4 "
                        "matrix (16); re-export it.")
    return vals.reshape(4, 4)


def read_pose(path: Path) -> np.ndarray:
    """[4, 4] float64 camera (OpenCV: x right, y down, z forward) -> world. Non-finite entries
    mean ScanNet lost tracking for the frame; callers treat such frames as invalid."""
    return read_matrix(path, "pose")


def pose_is_valid(T: np.ndarray, tol: float = 1e-3) -> bool:
    """Finite, rotation block orthonormal with det +1, last row [0, 0, 0, 1]."""
    if not np.all(np.isfinite(T)):
        return False
    R = T[:3, :3]
    return (np.abs(R.T @ R - np.eye(3)).max() < tol and abs(np.linalg.det(R) - 1) < tol
            and np.allclose(T[3], [0, 0, 0, 1], atol=tol))


def read_intrinsic(path: Path) -> np.ndarray:
    """[3, 3] float64 pinhole intrinsics (pixels) from ScanNet's 4x4 ``intrinsic_*.txt``."""
    M = read_matrix(path, "intrinsics")
    K = M[:3, :3].copy()
    if not (np.all(np.isfinite(K)) and K[0, 0] > 0 and K[1, 1] > 0 and K[2, 2] == 1):
        raise DataError(f"intrinsics {where(path)} are not a pinhole matrix ([[fx,0,cx],[0,fy,cy],"
                        "[0,0,1]] with fx, fy > 0); re-export them.")
    return K


_FIX = "restore it (re-export the frames / regenerate the world), then re-run `xmodal prepare scannet`"


def read_color(path: Path) -> np.ndarray:
    """[H, W, 3] uint8 RGB."""
    return read_rgb(path, "colour image", _FIX)


def read_depth(path: Path, scale: float = DEPTH_SCALE) -> np.ndarray:
    """[h, w] float32 metres (0 = no measurement) from a uint16 PNG in 1/``scale`` metres."""
    img = open_image(path, "depth image", _FIX)
    arr = np.asarray(img)
    if arr.ndim != 2 or arr.dtype not in (np.uint16, np.int32, np.uint8):
        raise DataError(f"depth image {where(path)} is not a single-channel 16-bit PNG "
                        f"(mode {img.mode}); ScanNet depth is uint16 millimetres.")
    return arr.astype(np.float32) / np.float32(scale)


def read_label_image(path: Path) -> np.ndarray:
    """[H, W] int64 NYU40 ids (our ``label_nyu40`` extra)."""
    return read_index_image(path, "label image", _FIX).astype(np.int64)


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) from the image header, without decoding it."""
    from PIL import Image

    if not path.is_file():
        raise DataError(f"image {where(path)} is missing; re-export the frames of this scene.")
    with Image.open(path) as img:
        w, h = img.size
    return h, w


def read_scene_meta(path: Path) -> dict[str, str]:
    """``key = value`` lines of ``sceneXXXX_XX.txt`` (empty dict when the file is absent)."""
    if not path.is_file():
        return {}
    out = {}
    for ln in path.read_text().splitlines():
        if "=" in ln:
            k, v = ln.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def axis_alignment(meta: dict[str, str], path: Path) -> np.ndarray:
    """[4, 4] float64 ``axisAlignment`` (world -> axis-aligned room frame); identity if absent."""
    if "axisAlignment" not in meta:
        return np.eye(4)
    try:
        vals = np.array(meta["axisAlignment"].split(), dtype=np.float64)
    except ValueError:
        vals = np.zeros(0)
    if vals.size != 16:
        raise DataError(f"{where(path)}: axisAlignment must hold 16 numbers; re-download the file.")
    return vals.reshape(4, 4)


def frame_sort_key(stem: str):
    return (0, int(stem), "") if stem.isdigit() else (1, 0, stem)


def list_stems(folder: Path, ext: str) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted((n[: -len(ext)] for n in os.listdir(folder) if n.endswith(ext)), key=frame_sort_key)
