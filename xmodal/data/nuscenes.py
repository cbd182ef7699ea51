"""nuScenes keyframe dataset read from an info file (``xmodal prepare nuscenes``).

The same class reads real nuScenes and the synthetic world of ``xmodal synth driving``: nothing
here knows which one it is. Per keyframe it returns a :class:`NuScenesSample` with the LiDAR
points (optionally with previous sweeps moved into the keyframe frame), the camera images, the
full lidar -> camera calibration chain per camera, lidarseg labels in the 16 evaluation classes
(the devkit's mapping, 0 = ignore), boxes in the LiDAR frame and the CAN-bus IMU window.

Frames: "lidar" = the keyframe's LIDAR_TOP sensor frame (nuScenes: x right, y forward, z up,
metres); cameras are OpenCV (x right, y down, z forward).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from xmodal.data.image_io import read_index_image, read_rgb
from xmodal.data.labels import NUSCENES_GENERAL_TO_EVAL, map_labels
from xmodal.data.nuscenes_info import CAMERAS, load_infos
from xmodal.errors import ConfigError, DataError
from xmodal.geometry import lidar_camera_visibility
from xmodal.geometry.projection import transform_points
from xmodal.registry import DATASETS

POINT_DIM = 5  # x, y, z, intensity, ring (nuScenes .pcd.bin layout)
#: ``labels_general`` of sweep points, which have no lidarseg labels (0 would mean "noise").
SWEEP_LABEL = 255


@dataclass
class NuScenesDatasetConfig:
    """Options of :class:`NuScenesDataset` (config section ``dataset: {type: nuscenes}``)."""

    info_file: str
    root: str | None = None  # dataroot; default: the one recorded in the info file
    sweeps: int = 0  # previous LiDAR sweeps to add, moved into the keyframe LiDAR frame
    cameras: list[str] = field(default_factory=lambda: list(CAMERAS))
    load_images: bool = True
    load_masks: bool = False  # per-camera GT masks (synthetic worlds only)
    imu_window: float = 1.0  # seconds of CAN-bus IMU before the keyframe (0 = none)
    nan_points: Literal["error", "drop"] = "error"

    def validate(self) -> None:
        bad = [c for c in self.cameras if c not in CAMERAS]
        if bad:
            raise ConfigError(f"dataset.cameras: unknown camera(s) {bad}; allowed: {list(CAMERAS)}")
        if self.sweeps < 0 or self.imu_window < 0:
            raise ConfigError("dataset.sweeps and dataset.imu_window must be >= 0")


@dataclass
class ImuWindow:
    """CAN-bus ``ms_imu`` messages (100 Hz) in ``[t_key - window, t_key]``; ego (IMU) frame."""

    utime: np.ndarray  # [T] int64 microseconds
    linear_accel: np.ndarray  # [T, 3] m/s^2, includes gravity (z ~ +9.81 at rest)
    rotation_rate: np.ndarray  # [T, 3] rad/s
    q: np.ndarray  # [T, 4] orientation (w, x, y, z), ego -> global


@dataclass
class NuScenesSample:
    """One keyframe. C = number of cameras, N = points, M = boxes."""

    token: str
    scene_name: str
    timestamp: int  # microseconds (LiDAR keyframe)
    points: np.ndarray  # [N, 5] float32 x, y, z (lidar frame, m), intensity, ring
    time_lag: np.ndarray  # [N] float32 seconds before the keyframe (0 for keyframe points)
    labels: np.ndarray | None  # [N] uint8 16-class eval ids, 0 = ignore (sweep points: 0)
    labels_general: np.ndarray | None  # [N] uint8 32-class general ids; SWEEP_LABEL for sweeps
    cameras: list[str]
    images: np.ndarray | None  # [C, H, W, 3] uint8 RGB
    masks: np.ndarray | None  # [C, H, W] uint8 general ids (synthetic GT), if asked and present
    image_sizes: np.ndarray  # [C, 2] (height, width)
    intrinsics: np.ndarray  # [C, 3, 3] float64 pixels
    T_cam_from_lidar: np.ndarray  # [C, 4, 4] float64, full chain with each camera's ego pose
    boxes: np.ndarray  # [M, 7] float64 x, y, z (centre, lidar frame), w, l, h, yaw (rad)
    box_names: list[str]
    box_tokens: list[str]
    imu: ImuWindow | None

    def project(self, ci: int, min_depth: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Points into camera ``ci``: ``uv`` [N, 2], ``depth`` [N], ``valid`` [N] (inside the image,
        deeper than ``min_depth``), ``visible`` [N] (valid and passing the z-buffer); see
        ``xmodal.geometry.lidar_camera_visibility``."""
        size = (int(self.image_sizes[ci][0]), int(self.image_sizes[ci][1]))
        return lidar_camera_visibility(
            self.points[:, :3].astype(np.float64), self.T_cam_from_lidar[ci], self.intrinsics[ci], size, min_depth
        )

    @property
    def lidar2img(self) -> np.ndarray:
        """[C, 4, 4] ``K @ T_cam_from_lidar`` (K padded to 4x4)."""
        K4 = np.tile(np.eye(4), (len(self.cameras), 1, 1))
        K4[:, :3, :3] = self.intrinsics
        return K4 @ self.T_cam_from_lidar


def read_points(path: str | os.PathLike, allow_nan: bool = False) -> np.ndarray:
    """Read a nuScenes ``.pcd.bin`` (float32 x, y, z, intensity, ring) as [N, 5].

    Non-finite points raise a DataError unless ``allow_nan`` (then they are returned as read).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"LiDAR file '{path}' is missing; re-extract the samples/sweeps archive.")
    raw = np.fromfile(path, dtype=np.float32)
    if raw.size % POINT_DIM:
        raise DataError(
            f"LiDAR file '{path}' is truncated: {path.stat().st_size} bytes is not a multiple of "
            f"{POINT_DIM * 4} (5 float32 per point). Re-extract or regenerate it."
        )
    points = raw.reshape(-1, POINT_DIM)
    bad = ~np.isfinite(points).all(axis=1)
    if bad.any() and not allow_nan:
        raise DataError(
            f"LiDAR file '{path}' holds {int(bad.sum())} non-finite points (NaN/inf). Fix the "
            "file, or set dataset.nan_points=drop to drop them."
        )
    return points


_FIX = "re-extract the samples archive (or regenerate the world)"


@DATASETS.register("nuscenes", config=NuScenesDatasetConfig)
class NuScenesDataset:
    """Keyframes of a nuScenes info file; ``dataset[i]`` is a :class:`NuScenesSample`."""

    def __init__(self, cfg: NuScenesDatasetConfig) -> None:
        cfg.validate()
        self.cfg = cfg
        self.infos = load_infos(cfg.info_file)
        self.meta = self.infos["metainfo"]
        self.root = Path(cfg.root or self.meta["dataroot"])
        if not self.root.is_dir():
            raise DataError(
                f"nuScenes dataroot '{self.root}' (from "
                f"{'dataset.root' if cfg.root else 'the info file ' + repr(cfg.info_file)}) does "
                "not exist; set dataset.root to where the data lives now."
            )
        if cfg.sweeps > self.meta["max_sweeps"]:
            raise ConfigError(
                f"dataset.sweeps={cfg.sweeps} but '{cfg.info_file}' was prepared with "
                f"--max-sweeps {self.meta['max_sweeps']}; prepare again with more sweeps."
            )
        self._imu_cache: dict[str, dict[str, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.infos["data_list"])

    def _lidarseg(self, info: dict) -> np.ndarray | None:
        rel = info["lidar"]["lidarseg_path"]
        if rel is None:
            return None
        path = self.root / rel
        if not path.is_file():
            raise DataError(f"lidarseg labels '{path}' are missing; extract the lidarseg archive.")
        return np.fromfile(path, dtype=np.uint8)

    def _imu(self, info: dict) -> ImuWindow | None:
        rel = info["can_bus_imu"]
        if rel is None or self.cfg.imu_window <= 0:
            return None
        if rel not in self._imu_cache:
            path = self.root / rel
            try:
                msgs = json.loads(path.read_text())
                self._imu_cache[rel] = {
                    "utime": np.array([m["utime"] for m in msgs], dtype=np.int64),
                    "linear_accel": np.array([m["linear_accel"] for m in msgs], dtype=np.float64).reshape(-1, 3),
                    "rotation_rate": np.array([m["rotation_rate"] for m in msgs], dtype=np.float64).reshape(-1, 3),
                    "q": np.array([m["q"] for m in msgs], dtype=np.float64).reshape(-1, 4),
                }
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise DataError(
                    f"CAN-bus file '{path}' could not be read ({type(exc).__name__}: {exc}); it must be "
                    "a JSON list of ms_imu messages with utime, linear_accel[3], rotation_rate[3], q[4]. "
                    "Re-extract the CAN bus expansion, or set dataset.imu_window=0 to skip the IMU."
                ) from exc
        data = self._imu_cache[rel]
        t1 = info["timestamp"]
        keep = (data["utime"] >= t1 - int(self.cfg.imu_window * 1e6)) & (data["utime"] <= t1)
        return ImuWindow(**{k: v[keep] for k, v in data.items()})

    def __getitem__(self, index: int) -> NuScenesSample:
        info = self.infos["data_list"][index]
        cfg = self.cfg
        drop = cfg.nan_points == "drop"
        points = read_points(self.root / info["lidar"]["path"], allow_nan=drop)
        general = self._lidarseg(info)
        if general is not None and len(general) != len(points):
            raise DataError(
                f"lidarseg '{self.root / info['lidar']['lidarseg_path']}' has {len(general)} labels "
                f"for {len(points)} points in '{self.root / info['lidar']['path']}'; one of the two "
                "files is corrupt. Re-extract (or regenerate) both."
            )
        if drop:
            keep = np.isfinite(points).all(axis=1)
            points, general = points[keep], None if general is None else general[keep]
        parts, lags, gen_parts = [points], [np.zeros(len(points), np.float32)], [general]
        for sweep in info["sweeps"][: cfg.sweeps]:
            sp = read_points(self.root / sweep["path"], allow_nan=drop)
            sp = sp[np.isfinite(sp).all(axis=1)] if drop else sp.copy()
            sp[:, :3] = transform_points(sweep["T_lidar_from_sweep"], sp[:, :3])
            parts.append(sp)
            lags.append(np.full(len(sp), sweep["time_lag"], np.float32))
            gen_parts.append(None if general is None else np.full(len(sp), SWEEP_LABEL, np.uint8))
        general_all = None if general is None else np.concatenate(gen_parts)
        labels = None
        if general is not None:
            labels = np.zeros(len(general_all), np.uint8)  # sweep points: 0 = ignore
            labels[: len(general)] = map_labels(general, NUSCENES_GENERAL_TO_EVAL, "lidarseg")
        cams = [c for c in cfg.cameras if c in info["cams"]]
        cam_infos = [info["cams"][c] for c in cams]
        images = masks = None
        if cfg.load_images:
            images = np.stack([read_rgb(self.root / c["path"], "image", _FIX) for c in cam_infos])
        if cfg.load_masks and all(c["semantic_path"] for c in cam_infos):
            masks = np.stack([read_index_image(self.root / c["semantic_path"], "GT mask", _FIX) for c in cam_infos])
        ann = info["annotations"]
        return NuScenesSample(
            token=info["token"],
            scene_name=info["scene_name"],
            timestamp=info["timestamp"],
            points=np.concatenate(parts).astype(np.float32, copy=False),
            time_lag=np.concatenate(lags),
            labels=labels,
            labels_general=general_all,
            cameras=cams,
            images=images,
            masks=masks,
            image_sizes=np.array([[c["height"], c["width"]] for c in cam_infos], dtype=np.int64).reshape(-1, 2),
            intrinsics=np.stack([c["K"] for c in cam_infos]) if cams else np.zeros((0, 3, 3)),
            T_cam_from_lidar=np.stack([c["T_cam_from_lidar"] for c in cam_infos]) if cams else np.zeros((0, 4, 4)),
            boxes=ann["boxes"],
            box_names=list(ann["names"]),
            box_tokens=list(ann["tokens"]),
            imu=self._imu(info),
        )
