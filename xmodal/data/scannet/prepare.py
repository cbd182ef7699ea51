"""``xmodal prepare scannet``: index a ScanNet root into a versioned JSON info file.

The info file lists, per scene: its split, the mesh and label PLY paths (relative to the root),
the vertex count, the axis alignment, the frame folder and the ids of the frames with a valid
pose whose colour, depth and pose files all exist. Loading it with another
:data:`SCHEMA_VERSION` fails with a message that says what to run.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from xmodal.data.labels import NYU40_CLASSES
from xmodal.data.scannet import files as F
from xmodal.data.scannet.ply import PlyMesh, read_ply
from xmodal.errors import DataError, SchemaError, where
from xmodal.utils.atomic import atomic_write, writable_parent

#: Bump when the info layout changes; loaders refuse other versions.
SCHEMA_VERSION = 1
INFO_KIND = "xmodal.scannet.info"


def prepare_command(root: str | os.PathLike = "<root>", out: str | os.PathLike = "<info.json>",
                    splits: Sequence[str] = ("train", "val")) -> str:
    """The command that (re)writes the info file ``out`` for ``splits``."""
    return f"xmodal prepare scannet --root {os.fspath(root)} --split {','.join(splits)} --out {os.fspath(out)}"


def load_mesh(
    mesh_path: Path, labels_path: Path | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Read and check a scene mesh (+ labels).

    Returns:
        vertices: [N, 3] float32, world frame (ScanNet: z up), metres.
        colors: [N, 3] uint8.
        faces: [F, 3] int64.
        nyu40: [N] int64 NYU40 ids (0 = unannotated), or None without ``labels_path``.
    """
    mesh: PlyMesh = read_ply(mesh_path)
    xyz = mesh.xyz
    bad = ~np.isfinite(xyz).all(1)
    if bad.any():
        raise DataError(f"mesh {where(mesh_path)} has {int(bad.sum())} vertices with NaN/inf "
                        f"coordinates (first: vertex {int(np.flatnonzero(bad)[0])}); the file is "
                        "corrupt: re-download or regenerate it.")
    nyu40 = None
    if labels_path is not None:
        lab = read_ply(labels_path)
        if len(lab.vertex) != len(xyz):
            raise DataError(f"labels {where(labels_path)} has {len(lab.vertex)} vertices but the mesh "
                            f"{where(mesh_path)} has {len(xyz)}; they must come from the same scan.")
        if "label" not in (lab.vertex.dtype.names or ()):
            raise DataError(f"labels {where(labels_path)} has no vertex property 'label' (NYU40 id).")
        nyu40 = lab.vertex["label"].astype(np.int64)
        if nyu40.size and (nyu40.min() < 0 or nyu40.max() >= len(NYU40_CLASSES)):
            raise DataError(f"labels {where(labels_path)} hold ids in [{nyu40.min()}, {nyu40.max()}]; "
                            f"NYU40 ids must lie in [0, {len(NYU40_CLASSES) - 1}].")
    return xyz, mesh.rgb, mesh.faces, nyu40


def scan_scene(
    root: Path,
    scene: str,
    split: str,
    frames_root: Path | None = None,
    check_mesh: bool = True,
) -> dict[str, Any]:
    """Index one scene folder. Raises :class:`DataError` naming the file on any problem."""
    scans = "scans_test" if split == "test" and (root / "scans_test" / scene).is_dir() else F.SCANS_DIR
    scene_dir = root / scans / scene
    if not scene_dir.is_dir():
        raise DataError(f"scene folder {where(scene_dir)} (listed in the {split} split) does not "
                        "exist; download / regenerate it or remove it from the split list.")
    mesh = scene_dir / F.mesh_name(scene)
    labels = scene_dir / F.labels_name(scene)
    if not mesh.is_file():
        raise DataError(f"mesh {where(mesh)} is missing; download the '_vh_clean_2.ply' file of "
                        f"{scene} (or regenerate the synthetic world).")
    if not labels.is_file():
        if split != "test":
            raise DataError(f"labels {where(labels)} are missing for {split} scene {scene}; "
                            "download the '_vh_clean_2.labels.ply' file (or regenerate the world).")
        labels = None
    num_vertices = None
    if check_mesh:
        xyz, _, _, _ = load_mesh(mesh, labels)
        num_vertices = len(xyz)
    meta_path = scene_dir / f"{scene}.txt"
    align = F.axis_alignment(F.read_scene_meta(meta_path), meta_path)

    fdir = (frames_root / scene) if frames_root is not None else scene_dir
    color_ids = F.list_stems(fdir / F.COLOR_DIR, F.COLOR_EXT)
    if not color_ids:
        raise DataError(f"no colour frames in {where(fdir / F.COLOR_DIR)}; export the frames with "
                        "ScanNet's SensReader (color/, depth/, pose/, intrinsic/) first.")
    depth_ids = set(F.list_stems(fdir / F.DEPTH_DIR, F.DEPTH_EXT))
    pose_ids = set(F.list_stems(fdir / F.POSE_DIR, F.POSE_EXT))
    for ids, sub, ext, what in ((depth_ids, F.DEPTH_DIR, F.DEPTH_EXT, "depth image"),
                                (pose_ids, F.POSE_DIR, F.POSE_EXT, "pose")):
        missing = [i for i in color_ids if i not in ids]
        if missing:
            raise DataError(f"{what} {where(fdir / sub / (missing[0] + ext))} is missing "
                            f"({len(missing)} of {len(color_ids)} frames lack one); re-export the "
                            "frames of this scene.")
    intr = fdir / F.INTRINSIC_DIR
    K_color = F.read_intrinsic(intr / "intrinsic_color.txt")
    K_depth = F.read_intrinsic(intr / "intrinsic_depth.txt")
    valid, invalid = [], []
    for fid in color_ids:
        (valid if F.pose_is_valid(F.read_pose(fdir / F.POSE_DIR / (fid + F.POSE_EXT))) else invalid).append(fid)
    if not valid:
        raise DataError(f"every pose in {where(fdir / F.POSE_DIR)} is invalid (non-finite or not "
                        "a rigid transform); re-export the frames of this scene.")
    label_ids = set(F.list_stems(fdir / F.LABEL_DIR, F.LABEL_EXT))
    return {
        "name": scene,
        "split": split,
        "mesh": os.path.relpath(mesh, root),
        "labels": os.path.relpath(labels, root) if labels is not None else None,
        "num_vertices": num_vertices,
        "axis_alignment": align.tolist(),
        "frames_dir": os.path.relpath(fdir, root),
        "color_size": list(F.image_size(fdir / F.COLOR_DIR / (valid[0] + F.COLOR_EXT))),
        "depth_size": list(F.image_size(fdir / F.DEPTH_DIR / (valid[0] + F.DEPTH_EXT))),
        "intrinsic_color": K_color.tolist(),
        "intrinsic_depth": K_depth.tolist(),
        "frame_ids": valid,
        "invalid_pose_ids": invalid,
        "has_label_images": bool(label_ids) and all(i in label_ids for i in valid),
    }


def build_info(
    root: str | os.PathLike,
    split: str | Sequence[str] = ("train", "val"),
    frames_root: str | os.PathLike | None = None,
    progress: bool = True,
    check_mesh: bool = True,
) -> dict[str, Any]:
    """The info dict of :func:`prepare_scannet`, without writing it."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"ScanNet root {where(root)} does not exist or is not a folder; pass the "
                        "folder that holds scans/ and scannetv2_*.txt (or generate one with "
                        "`xmodal synth indoor --out DIR`).")
    splits = [split] if isinstance(split, str) else list(split)
    for s in splits:
        if s not in F.SPLITS:
            raise DataError(f"unknown ScanNet split {s!r}; choose from {list(F.SPLITS)}.")
    jobs = [(name, s) for s in splits for name in F.read_split(F.find_split_file(root, s))]
    fr = Path(frames_root) if frames_root is not None else None
    it = jobs
    if progress:
        from tqdm import tqdm

        it = tqdm(jobs, desc="prepare scannet", unit="scene")
    scenes = [scan_scene(root, name, s, fr, check_mesh) for name, s in it]
    return {
        "kind": INFO_KIND,
        "schema_version": SCHEMA_VERSION,
        "root": str(root.resolve()),
        "splits": splits,
        "depth_scale": F.DEPTH_SCALE,
        "scenes": scenes,
    }


def prepare_scannet(
    root: str | os.PathLike,
    out: str | os.PathLike,
    *,
    split: str | Sequence[str] = ("train", "val"),
    frames_root: str | os.PathLike | None = None,
    progress: bool = True,
    check_meshes: bool = True,
) -> dict[str, Any]:
    """Index a ScanNet root (real or ``xmodal synth indoor``) and write a JSON info file.

    Args:
        root: folder with ``scans/`` and ``scannetv2_{train,val}.txt``.
        out: info file to write (``.json``); written atomically, so a failure leaves nothing.
        split: one split or several (``train``, ``val``, ``test``); each scene records its split.
        frames_root: where exported frames live as ``<frames_root>/<scene>/color/...``
            (default: inside each scan folder, ``scans/<scene>/color/...``).
        check_meshes: read every mesh and label file to check sizes, vertex counts and NaNs
            (on full ScanNet this reads ~10 GB; the dataset checks again when it loads a scene).

    Returns:
        summary: ``{"scenes": n, "frames": n, "invalid_poses": n, "out": path, "seconds": s}``.
    """
    t0 = time.time()
    out = writable_parent(out)
    info = build_info(root, split, frames_root, progress, check_meshes)
    with atomic_write(out, "w") as f:
        json.dump(info, f, indent=1)
    return {
        "scenes": len(info["scenes"]),
        "frames": sum(len(s["frame_ids"]) for s in info["scenes"]),
        "invalid_poses": sum(len(s["invalid_pose_ids"]) for s in info["scenes"]),
        "out": str(out),
        "seconds": time.time() - t0,
    }


def load_info(path: str | os.PathLike) -> dict[str, Any]:
    """Read an info file and check its kind and :data:`SCHEMA_VERSION`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"info file {where(path)} does not exist; create it with "
                        f"`{prepare_command(out=path)}`.")
    try:
        info = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"info file {where(path)} is not valid JSON ({e}); re-create it with "
                        f"`{prepare_command(out=path)}`.") from None
    if not isinstance(info, dict) or info.get("kind") != INFO_KIND:
        raise SchemaError(f"{where(path)} is not a ScanNet info file of xmodal; create one with "
                          f"`{prepare_command(out=path)}`.")
    version = info.get("schema_version")
    if version != SCHEMA_VERSION:
        raise SchemaError(
            f"info file {where(path)} has schema_version {version!r}, this xmodal reads "
            f"{SCHEMA_VERSION}; re-create it with "
            f"`{prepare_command(info.get('root', '<root>'), path, info.get('splits', ('train', 'val')))}`."
        )
    return info
