"""Rigid transforms and the nuScenes calibration chain (host side, float64 numpy).

Conventions (docs/conventions.md):
- quaternions are ``(w, x, y, z)``, unit norm, as in nuScenes tables;
- a 4x4 ``T_a_from_b`` maps homogeneous points in frame *b* to frame *a* (``p_a = T @ p_b``);
- a nuScenes ``calibrated_sensor`` record is ``T_ego_from_sensor``; an ``ego_pose`` record is
  ``T_global_from_ego`` at the sample_data timestamp.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np


def quaternion_to_matrix(q: Sequence[float]) -> np.ndarray:
    """Rotation matrix ``[3, 3]`` float64 from a quaternion ``(w, x, y, z)`` (normalised here)."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quaternion(R: np.ndarray) -> np.ndarray:
    """Quaternion ``(w, x, y, z)`` with ``w >= 0`` from a rotation matrix ``[3, 3]``."""
    R = np.asarray(R, dtype=np.float64)
    tr = np.trace(R)
    if tr > 0:
        s = 2.0 * np.sqrt(tr + 1.0)
        q = [0.25 * s, (R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s]
    elif R[0, 0] > R[1, 1] and R[0, 0] > R[2, 2]:
        s = 2.0 * np.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2])
        q = [(R[2, 1] - R[1, 2]) / s, 0.25 * s, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s]
    elif R[1, 1] > R[2, 2]:
        s = 2.0 * np.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2])
        q = [(R[0, 2] - R[2, 0]) / s, (R[0, 1] + R[1, 0]) / s, 0.25 * s, (R[1, 2] + R[2, 1]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1])
        q = [(R[1, 0] - R[0, 1]) / s, (R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, 0.25 * s]
    q = np.asarray(q)
    q /= np.linalg.norm(q)
    return q if q[0] >= 0 else -q


def rot_z(yaw) -> np.ndarray:
    """Rotation about +z by ``yaw`` radians: [3, 3] for a scalar, [..., 3, 3] for an array."""
    yaw = np.asarray(yaw, dtype=np.float64)
    c, s = np.cos(yaw), np.sin(yaw)
    R = np.zeros(yaw.shape + (3, 3))
    R[..., 0, 0], R[..., 0, 1], R[..., 1, 0], R[..., 1, 1], R[..., 2, 2] = c, -s, s, c, 1.0
    return R


def rot_xyz(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """[3, 3] ``Rz(yaw) @ Ry(pitch) @ Rx(roll)`` (radians; extrinsic x, then y, then z)."""
    cr, sr, cp, sp = np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch)
    rx = np.array([[1.0, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1.0, 0], [-sp, 0, cp]])
    return rot_z(yaw) @ ry @ rx


def yaw_quaternion(yaw) -> np.ndarray:
    """Quaternion ``(w, x, y, z)`` of a rotation by ``yaw`` about +z: [4] or [..., 4]."""
    yaw = np.asarray(yaw, dtype=np.float64)
    zero = np.zeros_like(yaw)
    return np.stack([np.cos(yaw / 2), zero, zero, np.sin(yaw / 2)], -1)


def rigid_transform(rotation: Sequence[float] | np.ndarray, translation: Sequence[float]) -> np.ndarray:
    """4x4 float64 transform from a quaternion ``(w, x, y, z)`` or a ``[3, 3]`` matrix and a
    translation ``[3]`` (metres)."""
    rot = np.asarray(rotation, dtype=np.float64)
    T = np.eye(4)
    T[:3, :3] = rot if rot.shape == (3, 3) else quaternion_to_matrix(rot)
    T[:3, 3] = np.asarray(translation, dtype=np.float64)
    return T


def invert_transform(T: np.ndarray) -> np.ndarray:
    """Inverse of a rigid 4x4 transform (``R^T``, ``-R^T t``), exact for rotations."""
    T = np.asarray(T, dtype=np.float64)
    inv = np.eye(4)
    inv[:3, :3] = T[:3, :3].T
    inv[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return inv


def record_transform(record: Mapping) -> np.ndarray:
    """4x4 transform of a nuScenes ``calibrated_sensor`` or ``ego_pose`` record."""
    return rigid_transform(record["rotation"], record["translation"])


def lidar_to_camera_transform(
    lidar_calib: Mapping,
    lidar_ego_pose: Mapping,
    cam_ego_pose: Mapping,
    cam_calib: Mapping,
) -> np.ndarray:
    """``T_cam_from_lidar`` [4, 4] float64 through the full nuScenes chain.

    lidar -> ego (at lidar time) -> global -> ego (at camera time) -> camera. The two ego poses
    differ because each camera fires at its own timestamp while the car moves; using one pose for
    both is the common bug this function exists to avoid.

    Args:
        lidar_calib: ``calibrated_sensor`` record of the LiDAR (``T_ego_from_lidar``).
        lidar_ego_pose: ``ego_pose`` record at the LiDAR timestamp (``T_global_from_ego``).
        cam_ego_pose: ``ego_pose`` record at the camera timestamp.
        cam_calib: ``calibrated_sensor`` record of the camera (``T_ego_from_cam``).
    """
    return (
        invert_transform(record_transform(cam_calib))
        @ invert_transform(record_transform(cam_ego_pose))
        @ record_transform(lidar_ego_pose)
        @ record_transform(lidar_calib)
    )
