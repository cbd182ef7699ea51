"""The nuScenes sensor rig: LIDAR_TOP (Velodyne HDL-32E) and six cameras.

Frames (as in nuScenes):

- ego: x forward, y left, z up, origin at the centre of the rear axle on the ground;
- LIDAR_TOP: yawed -90 deg relative to ego, so its x points to the ego's right, y forward, z up;
- cameras: OpenCV (x right, y down, z forward).

Extrinsics and intrinsics are close to the real nuScenes calibration (log n015, 1600x900);
each scene (= log) gets its own small perturbation of them, as real logs do.

Timing (as on the real car): LiDAR sweeps at 20 Hz; a LiDAR timestamp is the end of its
rotation; each camera is triggered when the rotating LiDAR crosses the centre of its field of
view, so its timestamp is the LiDAR's plus a per-camera offset within the 50 ms sweep
(:data:`CAMERA_TIME_OFFSETS_US`, measured on real nuScenes data). Cameras run at 12 Hz.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xmodal.data.nuscenes_info import CAMERAS
from xmodal.geometry.projection import pixel_rays, scale_intrinsics
from xmodal.geometry.transforms import matrix_to_quaternion, rot_xyz

FULL_WIDTH, FULL_HEIGHT = 1600, 900

LIDAR_HZ = 20
CAMERA_HZ = 12
KEYFRAME_HZ = 2
LIDAR_PERIOD_US = 1_000_000 // LIDAR_HZ  # 50 ms
CAMERA_PERIOD_US = 1_000_000 // CAMERA_HZ  # 83.3 ms
LIDAR_SWEEPS_PER_KEYFRAME = LIDAR_HZ // KEYFRAME_HZ  # 10: keyframe + 9 sweeps
CAMERA_SWEEPS_PER_KEYFRAME = CAMERA_HZ // KEYFRAME_HZ  # 6: keyframe + 5 sweeps

#: Camera timestamp minus the LiDAR keyframe timestamp (microseconds), from real nuScenes.
CAMERA_TIME_OFFSETS_US: dict[str, int] = {
    "CAM_FRONT_LEFT": -43_107,
    "CAM_FRONT": -35_491,
    "CAM_FRONT_RIGHT": -27_612,
    "CAM_BACK_RIGHT": -20_058,
    "CAM_BACK": -10_426,
    "CAM_BACK_LEFT": -528,
}

# channel: (yaw deg in ego, translation in ego (m), focal (px), cx, cy) at 1600x900.
_CAMERAS = {
    "CAM_FRONT": (0.0, (1.700, 0.016, 1.511), 1266.4, 816.3, 491.5),
    "CAM_FRONT_RIGHT": (-55.0, (1.551, -0.493, 1.496), 1260.8, 808.0, 495.3),
    "CAM_FRONT_LEFT": (55.0, (1.524, 0.495, 1.509), 1272.6, 826.6, 479.8),
    "CAM_BACK": (180.0, (0.028, 0.003, 1.579), 809.2, 829.2, 481.8),
    "CAM_BACK_LEFT": (110.0, (1.036, 0.485, 1.591), 1256.7, 792.1, 492.8),
    "CAM_BACK_RIGHT": (-110.0, (1.015, -0.481, 1.562), 1259.5, 807.3, 501.2),
}

# HDL-32E: 32 beams from -30.67 to +10.67 deg, ~1085 firings per revolution at 20 Hz.
LIDAR_BEAMS = 32
LIDAR_ELEVATIONS_DEG = np.linspace(-30.67, 10.67, LIDAR_BEAMS)
LIDAR_AZIMUTHS = 1085
LIDAR_TRANSLATION = (0.944, 0.0, 1.840)
LIDAR_MIN_RANGE, LIDAR_MAX_RANGE = 1.0, 100.0

# OpenCV camera axes expressed in the ego frame for a camera looking along ego +x.
_CAM_BASE = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


@dataclass(frozen=True)
class CameraSpec:
    """One camera of a scene's rig (extrinsics in the ego frame, intrinsics at the written size)."""

    channel: str
    R_ego_cam: np.ndarray  # [3, 3] OpenCV camera -> ego
    t_ego_cam: np.ndarray  # [3] metres, ego frame
    K: np.ndarray  # [3, 3] pixels, for the written image size
    width: int
    height: int
    time_offset_us: int

    def record(self) -> dict:
        """Fields of the nuScenes ``calibrated_sensor`` record (without tokens)."""
        return {
            "translation": [float(v) for v in self.t_ego_cam],
            "rotation": [float(v) for v in matrix_to_quaternion(self.R_ego_cam)],
            "camera_intrinsic": [[float(v) for v in row] for row in self.K],
        }

    def ray_directions(self) -> np.ndarray:
        """[H*W, 3] unit ray directions through pixel centres, camera frame, row-major."""
        d = pixel_rays(self.K, (self.height, self.width))
        return d / np.linalg.norm(d, axis=1, keepdims=True)


@dataclass(frozen=True)
class LidarSpec:
    """LIDAR_TOP of a scene's rig (extrinsics in the ego frame)."""

    R_ego_lidar: np.ndarray  # [3, 3] LiDAR -> ego
    t_ego_lidar: np.ndarray  # [3] metres

    def record(self) -> dict:
        return {
            "translation": [float(v) for v in self.t_ego_lidar],
            "rotation": [float(v) for v in matrix_to_quaternion(self.R_ego_lidar)],
            "camera_intrinsic": [],
        }

    @staticmethod
    def ray_directions() -> tuple[np.ndarray, np.ndarray]:
        """Unit directions [32*1085, 3] in the LiDAR frame and ring ids [32*1085].

        Order is firing order (azimuth-major, beams within a firing); ring 0 is the lowest
        beam (-30.67 deg), ring 31 the highest (+10.67 deg).
        """
        el = np.deg2rad(LIDAR_ELEVATIONS_DEG)
        az = np.linspace(0.0, 2 * np.pi, LIDAR_AZIMUTHS, endpoint=False)
        azg, elg = np.meshgrid(az, el, indexing="ij")  # [A, B]
        d = np.stack([np.cos(elg) * np.cos(azg), np.cos(elg) * np.sin(azg), np.sin(elg)], -1)
        rings = np.broadcast_to(np.arange(LIDAR_BEAMS), azg.shape)
        return d.reshape(-1, 3), rings.reshape(-1).astype(np.float32)


@dataclass(frozen=True)
class Rig:
    lidar: LidarSpec
    cameras: tuple[CameraSpec, ...]

    def camera(self, channel: str) -> CameraSpec:
        return next(c for c in self.cameras if c.channel == channel)


def image_size(image_scale: float) -> tuple[int, int]:
    """(width, height) of written images at ``image_scale`` (1 -> 1600x900)."""
    return max(8, int(round(FULL_WIDTH * image_scale))), max(8, int(round(FULL_HEIGHT * image_scale)))


def make_rig(rng: np.random.Generator, image_scale: float) -> Rig:
    """The nuScenes rig with a per-log perturbation (~0.3 deg, ~1 cm, ~0.3 % focal length)."""
    width, height = image_size(image_scale)
    sx, sy = width / FULL_WIDTH, height / FULL_HEIGHT
    cams = []
    for channel in CAMERAS:
        yaw, t, f, cx, cy = _CAMERAS[channel]
        roll, pitch, dyaw = rng.normal(0.0, np.deg2rad(0.3), 3)
        R = rot_xyz(roll, pitch, np.deg2rad(yaw) + dyaw) @ _CAM_BASE
        f = f * (1.0 + rng.normal(0.0, 0.003))
        K = scale_intrinsics([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]], sx, sy)
        cams.append(
            CameraSpec(
                channel=channel,
                R_ego_cam=R,
                t_ego_cam=np.asarray(t) + rng.normal(0.0, 0.01, 3),
                K=K,
                width=width,
                height=height,
                time_offset_us=CAMERA_TIME_OFFSETS_US[channel],
            )
        )
    roll, pitch, dyaw = rng.normal(0.0, np.deg2rad(0.5), 3)
    lidar = LidarSpec(
        R_ego_lidar=rot_xyz(roll, pitch, -np.pi / 2 + dyaw),
        t_ego_lidar=np.asarray(LIDAR_TRANSLATION) + rng.normal(0.0, 0.01, 3),
    )
    return Rig(lidar=lidar, cameras=tuple(cams))
