"""Transforms, projection and occlusion tests against hand-written expectations and the devkit."""

import numpy as np
import pytest
from pyquaternion import Quaternion

from xmodal.geometry import (
    depth_map_visibility,
    invert_transform,
    lidar_to_camera_transform,
    matrix_to_quaternion,
    project_points,
    quaternion_to_matrix,
    rigid_transform,
    transform_points,
    zbuffer_visibility,
)


def random_quaternion(rng):
    q = rng.normal(size=4)
    return q / np.linalg.norm(q)


@pytest.mark.parametrize("seed", range(5))
def test_quaternion_matches_pyquaternion_and_round_trips(seed):
    rng = np.random.default_rng(seed)
    q = random_quaternion(rng)
    R = quaternion_to_matrix(q)
    np.testing.assert_allclose(R, Quaternion(q).rotation_matrix, atol=1e-12)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    q2 = matrix_to_quaternion(R)
    assert np.allclose(q2, q) or np.allclose(q2, -q)


def test_matrix_to_quaternion_branches():
    # 180-degree rotations exercise the non-trace branches.
    for axis in np.eye(3):
        R = quaternion_to_matrix([0.0, *axis])
        np.testing.assert_allclose(quaternion_to_matrix(matrix_to_quaternion(R)), R, atol=1e-12)


def test_invert_transform():
    rng = np.random.default_rng(0)
    T = rigid_transform(random_quaternion(rng), rng.normal(size=3))
    np.testing.assert_allclose(invert_transform(T) @ T, np.eye(4), atol=1e-12)


def _record(rng):
    return {"rotation": list(random_quaternion(rng)), "translation": list(rng.normal(size=3) * 5)}


def test_lidar_to_camera_chain_matches_devkit_step_by_step():
    """The devkit's map_pointcloud_to_image moves points in four steps; the chain must agree."""
    rng = np.random.default_rng(1)
    lidar_cs, lidar_pose, cam_pose, cam_cs = (_record(rng) for _ in range(4))
    pts = rng.normal(size=(50, 3)) * 10
    # devkit order: sensor->ego(t_lidar)->global->ego(t_cam)->cam, with pyquaternion
    p = pts.T.copy()
    p = Quaternion(lidar_cs["rotation"]).rotation_matrix @ p + np.array(lidar_cs["translation"])[:, None]
    p = Quaternion(lidar_pose["rotation"]).rotation_matrix @ p + np.array(lidar_pose["translation"])[:, None]
    p = p - np.array(cam_pose["translation"])[:, None]
    p = Quaternion(cam_pose["rotation"]).rotation_matrix.T @ p
    p = p - np.array(cam_cs["translation"])[:, None]
    p = Quaternion(cam_cs["rotation"]).rotation_matrix.T @ p
    T = lidar_to_camera_transform(lidar_cs, lidar_pose, cam_pose, cam_cs)
    np.testing.assert_allclose(transform_points(T, pts), p.T, atol=1e-9)


def test_project_points_hand_computed():
    K = np.array([[100.0, 0, 50], [0, 100, 40], [0, 0, 1]])
    pts = np.array([[0.0, 0, 10], [1, 0.5, 10], [0, 0, 0.5], [0, 0, -5], [10, 0, 10]])
    uv, depth, valid = project_points(pts, np.eye(4), K, (80, 100), min_depth=1.0)
    np.testing.assert_allclose(uv[0], [50, 40])
    np.testing.assert_allclose(uv[1], [60, 45])
    np.testing.assert_allclose(depth, [10, 10, 0.5, -5, 10])
    assert valid.tolist() == [True, True, False, False, False]  # too near, behind, outside


def test_depth_map_visibility():
    depth_map = np.full((4, 4), 2.0)
    depth_map[0, 0] = 0.0  # no measurement
    uv = np.array([[1.5, 1.5], [2.5, 2.5], [0.5, 0.5], [9.0, 9.0]])
    depth = np.array([2.05, 3.0, 2.0, 2.0])
    assert depth_map_visibility(uv, depth, depth_map).tolist() == [True, False, False, False]


def test_zbuffer_hides_points_behind_a_nearer_one():
    uv = np.array([[10.0, 10.0], [11.0, 11.0], [40.0, 40.0], [12.0, 9.0]])
    depth = np.array([5.0, 20.0, 20.0, 5.4])
    vis = zbuffer_visibility(uv, depth, (64, 64), cell=8, dilate=1)
    # far point next to the near one is hidden; the lone far point and the near cluster are kept
    assert vis.tolist() == [True, False, True, True]
    # a neighbouring cell (dilation) still hides it; without dilation the next cell does not
    uv2 = np.array([[10.0, 10.0], [17.0, 10.0]])
    assert zbuffer_visibility(uv2, np.array([5.0, 20.0]), (64, 64), cell=8, dilate=1).tolist() == [True, False]
    assert zbuffer_visibility(uv2, np.array([5.0, 20.0]), (64, 64), cell=8, dilate=0).tolist() == [True, True]



def test_yaw_helpers_agree_with_quaternions():
    from xmodal.geometry.transforms import rot_xyz, rot_z, yaw_quaternion

    yaws = np.array([-2.0, 0.3, 1.7])
    for yaw, R, q in zip(yaws, rot_z(yaws), yaw_quaternion(yaws)):
        np.testing.assert_allclose(R, quaternion_to_matrix(q), atol=1e-12)
        np.testing.assert_allclose(rot_z(yaw), R)
        np.testing.assert_allclose(rot_xyz(0.0, 0.0, yaw), R, atol=1e-12)
    R = rot_xyz(0.1, -0.2, 0.3)
    np.testing.assert_allclose(R, Quaternion(axis=[0, 0, 1], angle=0.3).rotation_matrix
                               @ Quaternion(axis=[0, 1, 0], angle=-0.2).rotation_matrix
                               @ Quaternion(axis=[1, 0, 0], angle=0.1).rotation_matrix, atol=1e-12)
