"""``xmodal prepare nuscenes``: read a nuScenes folder once with the devkit and write an info file.

The info file holds everything a training loader needs per keyframe (file paths relative to the
dataroot, the calibration chain for every camera, sweeps, boxes in the LiDAR frame, the CAN-bus
file), so that training never opens the devkit database. It carries ``schema_version``; a loader
given a file of another version refuses it and says which command rewrites it.

Frames: ``T_a_from_b`` maps points in frame *b* to frame *a* (4x4 float64); "lidar" is the
LIDAR_TOP sensor frame of the keyframe (for nuScenes: x right, y forward, z up).
"""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np

from xmodal import __version__
from xmodal.data.labels import NUSCENES_GENERAL_INDEX
from xmodal.errors import DataError, SchemaError
from xmodal.geometry.transforms import invert_transform, lidar_to_camera_transform, record_transform
from xmodal.utils.atomic import atomic_write, writable_parent

#: Bump when the layout of the info file changes; loaders refuse other versions.
NUSCENES_INFO_SCHEMA = 1

CAMERAS: tuple[str, ...] = (
    "CAM_FRONT",
    "CAM_FRONT_RIGHT",
    "CAM_FRONT_LEFT",
    "CAM_BACK",
    "CAM_BACK_LEFT",
    "CAM_BACK_RIGHT",
)
LIDAR = "LIDAR_TOP"
#: Extra folder of per-camera ground-truth masks written by ``xmodal synth driving`` (not nuScenes).
SEMANTIC_DIR = "semantic"
VERSIONS = ("v1.0-mini", "v1.0-trainval", "v1.0-test")


def semantic_mask_path(filename: str) -> str:
    """GT mask of a camera image, relative to the dataroot (synthetic worlds only):
    ``samples|sweeps/CAM_X/<name>.jpg`` -> ``semantic/CAM_X/<name>.png`` (uint8 general ids)."""
    parts = Path(filename).parts  # ('samples' | 'sweeps', channel, name.jpg)
    return str(Path(SEMANTIC_DIR, parts[-2], Path(parts[-1]).stem + ".png"))


def _prepare_command(meta: dict, out: str | os.PathLike) -> str:
    """The command that (re)writes the info file ``out`` described by ``meta``."""
    return (
        f"xmodal prepare nuscenes --root {meta.get('dataroot', '<dataroot>')} "
        f"--version {meta.get('version', '<version>')} --split {meta.get('split', '<split>')} "
        f"--max-sweeps {meta.get('max_sweeps', 10)} --out {out}"
    )


def check_dataroot(root: str | os.PathLike, version: str) -> Path:
    """Check ``root/version`` holds nuScenes tables; raise a DataError saying what to do."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(
            f"nuScenes dataroot '{root}' does not exist. Point --root at the folder that holds "
            f"'{version}/', 'samples/' and 'sweeps/', or make a synthetic one with "
            f"'xmodal synth driving --out {root}'."
        )
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("v1.0-"))
    if version not in VERSIONS and version not in found:
        raise DataError(
            f"unknown nuScenes version '{version}' (--version). Known versions: "
            f"{', '.join(VERSIONS)}; found in '{root}': {', '.join(found) or 'none'}."
        )
    if not (root / version).is_dir():
        raise DataError(
            f"'{root / version}' does not exist: the dataroot has no tables for version "
            f"'{version}'. Versions found there: {', '.join(found) or 'none'}."
        )
    for table in ("scene", "sample", "sample_data", "calibrated_sensor", "ego_pose", "sensor"):
        if not (root / version / f"{table}.json").is_file():
            raise DataError(
                f"'{root / version / (table + '.json')}' is missing: the nuScenes tables are "
                f"incomplete. Re-extract the metadata archive (or regenerate the synthetic world)."
            )
    return root


def split_scenes(version: str, split: str) -> list[str] | None:
    """Scene names of a devkit split (``mini_train``, ``val``, ...); None for ``all``."""
    if split == "all":
        return None
    from nuscenes.utils.splits import create_splits_scenes

    splits = create_splits_scenes(verbose=False)
    allowed = {
        "v1.0-mini": ("mini_train", "mini_val"),
        "v1.0-trainval": ("train", "val", "train_detect", "train_track"),
        "v1.0-test": ("test",),
    }.get(version, tuple(splits))
    if split not in allowed:
        raise DataError(
            f"split '{split}' (--split) does not belong to version '{version}'; allowed: "
            f"{', '.join(allowed)}, or 'all'."
        )
    return list(splits[split])


def _sweeps(nusc: Any, lidar_sd: dict, T_lidar_from_global: np.ndarray, max_sweeps: int) -> list[dict]:
    """Previous non-key LiDAR sweeps, newest first, each with its transform to the keyframe."""
    out = []
    sd = lidar_sd
    while len(out) < max_sweeps and sd["prev"]:
        sd = nusc.get("sample_data", sd["prev"])
        T = (
            T_lidar_from_global
            @ record_transform(nusc.get("ego_pose", sd["ego_pose_token"]))
            @ record_transform(nusc.get("calibrated_sensor", sd["calibrated_sensor_token"]))
        )
        out.append(
            {
                "token": sd["token"],
                "path": sd["filename"],
                "timestamp": sd["timestamp"],
                "time_lag": (lidar_sd["timestamp"] - sd["timestamp"]) * 1e-6,
                "T_lidar_from_sweep": T,
            }
        )
    return out


def _boxes(nusc: Any, sample: dict, T_lidar_from_global: np.ndarray) -> dict:
    """Annotated boxes in the keyframe LiDAR frame: [M, 7] (x, y, z, w, l, h, yaw)."""
    rows, names, tokens, instances, npts, vis = [], [], [], [], [], []
    for ann_token in sample["anns"]:
        ann = nusc.get("sample_annotation", ann_token)
        T = T_lidar_from_global @ record_transform(ann)
        yaw = float(np.arctan2(T[1, 0], T[0, 0]))  # heading of the box x (length) axis
        w, l, h = ann["size"]
        rows.append([*T[:3, 3], w, l, h, yaw])
        names.append(ann["category_name"])
        tokens.append(ann["token"])
        instances.append(ann["instance_token"])
        npts.append(ann["num_lidar_pts"])
        vis.append(ann["visibility_token"])
    return {
        "boxes": np.asarray(rows, dtype=np.float64).reshape(-1, 7),
        "names": names,
        "tokens": tokens,
        "instance_tokens": instances,
        "num_lidar_pts": np.asarray(npts, dtype=np.int64),
        "visibility": vis,
    }


def build_infos(
    root: str | os.PathLike,
    version: str,
    split: str = "all",
    max_sweeps: int = 10,
    progress: bool = True,
) -> dict:
    """Read the nuScenes tables with the devkit and return the info dict (see module doc)."""
    root = check_dataroot(root, version)
    scenes = split_scenes(version, split)
    from nuscenes.nuscenes import NuScenes
    from tqdm import tqdm

    try:
        nusc = NuScenes(version=version, dataroot=str(root), verbose=False)
    except Exception as exc:  # the devkit raises bare AssertionErrors / KeyErrors
        raise DataError(
            f"the nuScenes devkit could not open '{root / version}': {exc!r}. "
            "The tables are incomplete or inconsistent; re-extract (or regenerate) the dataset."
        ) from exc
    has_lidarseg = hasattr(nusc, "lidarseg") and len(getattr(nusc, "lidarseg", [])) > 0
    can_dir = root / "can_bus"
    lidarseg_files = {r["sample_data_token"]: r["filename"] for r in getattr(nusc, "lidarseg", [])}
    by_name = {s["name"]: s for s in nusc.scene}
    if scenes is None:
        chosen = list(nusc.scene)
    else:
        chosen = [by_name[n] for n in scenes if n in by_name]
        if not chosen:
            raise DataError(
                f"none of the scenes of split '{split}' are in '{root / version}' "
                f"(it holds {', '.join(sorted(by_name)[:5])}...)."
            )
    infos, missing = [], []
    samples = [
        s for scene in chosen for s in _scene_samples(nusc, scene)
    ]
    for sample in tqdm(samples, desc=f"prepare {version}/{split}", disable=not progress):
        scene = nusc.get("scene", sample["scene_token"])
        lidar_sd = nusc.get("sample_data", sample["data"][LIDAR])
        lidar_cs = nusc.get("calibrated_sensor", lidar_sd["calibrated_sensor_token"])
        lidar_pose = nusc.get("ego_pose", lidar_sd["ego_pose_token"])
        T_global_from_lidar = record_transform(lidar_pose) @ record_transform(lidar_cs)
        T_lidar_from_global = invert_transform(T_global_from_lidar)
        lidarseg_path = lidarseg_files.get(lidar_sd["token"])
        cams = {}
        for cam in CAMERAS:
            if cam not in sample["data"]:
                continue
            sd = nusc.get("sample_data", sample["data"][cam])
            cs = nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
            pose = nusc.get("ego_pose", sd["ego_pose_token"])
            sem = semantic_mask_path(sd["filename"])
            cams[cam] = {
                "token": sd["token"],
                "path": sd["filename"],
                "timestamp": sd["timestamp"],
                "height": sd["height"],
                "width": sd["width"],
                "K": np.asarray(cs["camera_intrinsic"], dtype=np.float64),
                "T_ego_from_cam": record_transform(cs),
                "T_global_from_ego": record_transform(pose),
                "T_cam_from_lidar": lidar_to_camera_transform(lidar_cs, lidar_pose, pose, cs),
                "semantic_path": sem if (root / sem).is_file() else None,
            }
            missing += [p for p in [sd["filename"]] if not (root / p).is_file()]
        if not (root / lidar_sd["filename"]).is_file():
            missing.append(lidar_sd["filename"])
        can_file = can_dir / f"{scene['name']}_ms_imu.json"
        infos.append(
            {
                "token": sample["token"],
                "scene_token": scene["token"],
                "scene_name": scene["name"],
                "timestamp": sample["timestamp"],
                "lidar": {
                    "token": lidar_sd["token"],
                    "path": lidar_sd["filename"],
                    "timestamp": lidar_sd["timestamp"],
                    "T_ego_from_lidar": record_transform(lidar_cs),
                    "T_global_from_ego": record_transform(lidar_pose),
                    "lidarseg_path": lidarseg_path,
                },
                "sweeps": _sweeps(nusc, lidar_sd, T_lidar_from_global, max_sweeps),
                "cams": cams,
                "annotations": _boxes(nusc, sample, T_lidar_from_global),
                "can_bus_imu": str(can_file.relative_to(root)) if can_file.is_file() else None,
            }
        )
    if missing:
        raise DataError(
            f"{len(missing)} sensor files referenced by '{root / version}' are missing, e.g. "
            f"'{root / missing[0]}'. Extract all sample (and sweep) archives into '{root}'."
        )
    return {
        "schema_version": NUSCENES_INFO_SCHEMA,
        "metainfo": {
            "dataset": "nuscenes",
            "version": version,
            "split": split,
            "dataroot": str(root.resolve()),
            "max_sweeps": max_sweeps,
            "cameras": list(CAMERAS),
            "lidarseg": has_lidarseg,
            "general_classes": sorted(NUSCENES_GENERAL_INDEX, key=NUSCENES_GENERAL_INDEX.get),
            "xmodal_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        },
        "data_list": infos,
    }


def _scene_samples(nusc: Any, scene: dict) -> list[dict]:
    out, token = [], scene["first_sample_token"]
    while token:
        sample = nusc.get("sample", token)
        out.append(sample)
        token = sample["next"]
    return out


def prepare_nuscenes(
    root: str | os.PathLike,
    version: str,
    out: str | os.PathLike,
    split: str = "all",
    max_sweeps: int = 10,
    progress: bool = True,
) -> dict:
    """Write the info file for ``root``/``version`` to ``out`` atomically; return a summary."""
    t0 = time.perf_counter()
    if max_sweeps < 0:
        raise DataError(f"--max-sweeps must be >= 0, got {max_sweeps}.")
    writable_parent(out)
    infos = build_infos(root, version, split, max_sweeps, progress)
    with atomic_write(out, "wb") as f:
        pickle.dump(infos, f, protocol=pickle.HIGHEST_PROTOCOL)
    return {
        "out": str(out),
        "version": version,
        "split": split,
        "samples": len(infos["data_list"]),
        "scenes": len({i["scene_token"] for i in infos["data_list"]}),
        "seconds": round(time.perf_counter() - t0, 2),
    }


def load_infos(path: str | os.PathLike) -> dict:
    """Load an info file written by :func:`prepare_nuscenes`, checking its schema version."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"nuScenes info file '{path}' does not exist. Write it with "
            f"'{_prepare_command({}, path)}'."
        )
    try:
        with open(path, "rb") as f:
            infos = pickle.load(f)
    except Exception as exc:
        raise DataError(
            f"nuScenes info file '{path}' could not be read ({exc!r}); it is truncated or not an "
            f"info file. Write it again with '{_prepare_command({}, path)}'."
        ) from exc
    meta = infos.get("metainfo", {}) if isinstance(infos, dict) else {}
    found = infos.get("schema_version") if isinstance(infos, dict) else None
    if found != NUSCENES_INFO_SCHEMA or meta.get("dataset") != "nuscenes":
        cmd = _prepare_command(meta, path)
        raise SchemaError(
            f"info file '{path}' has schema_version {found!r} (dataset "
            f"{meta.get('dataset')!r}); this xmodal reads nuScenes schema "
            f"{NUSCENES_INFO_SCHEMA}. Rewrite it with '{cmd}'."
        )
    return infos
