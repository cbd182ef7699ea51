"""Frames, calibration chains, projection and occlusion tests (see docs/conventions.md)."""

from xmodal.geometry.occlusion import (
    depth_map_visibility,
    lidar_camera_visibility,
    rgbd_visibility,
    zbuffer_cell,
    zbuffer_visibility,
)
from xmodal.geometry.projection import pixel_rays, project_points, scale_intrinsics, transform_points
from xmodal.geometry.transforms import (
    invert_transform,
    lidar_to_camera_transform,
    matrix_to_quaternion,
    quaternion_to_matrix,
    rigid_transform,
)

__all__ = [
    "depth_map_visibility",
    "invert_transform",
    "lidar_camera_visibility",
    "lidar_to_camera_transform",
    "matrix_to_quaternion",
    "pixel_rays",
    "project_points",
    "quaternion_to_matrix",
    "rgbd_visibility",
    "rigid_transform",
    "scale_intrinsics",
    "transform_points",
    "zbuffer_cell",
    "zbuffer_visibility",
]
