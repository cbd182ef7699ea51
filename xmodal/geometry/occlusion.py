"""Occlusion tests for projected points.

Two settings, both in the camera (OpenCV) frame with depth = camera z in metres:

- indoor (ScanNet): a dense sensor depth map exists; a point is visible where the map's depth at
  its pixel agrees with the point's depth (:func:`depth_map_visibility`).
- outdoor (nuScenes): no depth map; a coarse z-buffer is built from the projected LiDAR points
  themselves, and a point is visible when nothing projected near it is clearly in front of it
  (:func:`zbuffer_visibility`). This removes points the LiDAR sees but the camera, mounted
  elsewhere on the car, does not (parallax behind poles, cars, pedestrians).
"""

from __future__ import annotations

import numpy as np

from xmodal.geometry.projection import pixel_indices, project_points, transform_points
from xmodal.geometry.transforms import invert_transform


def depth_map_visibility(
    uv: np.ndarray,  # [N, 2] pixel coords in the depth map's pixels (u = column, v = row)
    depth: np.ndarray,  # [N] point depth (camera z), metres
    depth_map: np.ndarray,  # [H, W] metres, 0 = no measurement
    abs_tol: float = 0.1,
    rel_tol: float = 0.05,
) -> np.ndarray:
    """[N] bool: inside the map, measured, and ``|map - depth| <= abs_tol + rel_tol * depth``."""
    h, w = depth_map.shape
    rows, cols = pixel_indices(uv)
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w) & (depth > 0)
    out = np.zeros(len(depth), dtype=bool)
    d_map = depth_map[rows[inside], cols[inside]]
    out[inside] = (d_map > 0) & (np.abs(d_map - depth[inside]) <= abs_tol + rel_tol * depth[inside])
    return out


def zbuffer_cell(fx: float, beam_spacing_deg: float = 1.33) -> int:
    """Z-buffer cell size in pixels: the LiDAR's vertical beam spacing seen by a camera of focal
    length ``fx`` pixels (HDL-32E: 1.33 degrees), so that a foreground object's projected beams
    leave no gap for hidden background points. 29 px for nuScenes' 1600x900 cameras."""
    return max(2, int(round(fx * np.tan(np.deg2rad(beam_spacing_deg)))))


def zbuffer_visibility(
    uv: np.ndarray,  # [N, 2] pixel coords (u = column, v = row)
    depth: np.ndarray,  # [N] camera z, metres
    image_size: tuple[int, int],  # (height, width) pixels
    cell: int = 8,  # pixels; see zbuffer_cell() for LiDAR
    dilate: int = 1,
    abs_tol: float = 0.5,
    rel_tol: float = 0.1,
    valid: np.ndarray | None = None,  # [N] bool, points to consider (default: all inside)
) -> np.ndarray:
    """[N] bool visibility from a z-buffer of the points themselves.

    The image is cut into ``cell`` x ``cell`` pixel cells; each cell keeps the nearest depth of
    the points that fall in it, then a min-filter over ``(2 * dilate + 1)^2`` cells spreads it
    (LiDAR is sparse: a foreground object must hide background points that fall between its
    own projected points). A point is visible when
    ``depth <= zmin(cell) + abs_tol + rel_tol * zmin(cell)``.

    Host-side wrapper (float64) of the multi-camera op :func:`xmodal.ops.zbuffer_visibility`,
    which holds the implementation.
    """
    import torch

    from xmodal.ops.occlusion import zbuffer_visibility as _zbuffer

    uv_t = torch.from_numpy(np.ascontiguousarray(uv, dtype=np.float64).reshape(-1, 2))
    depth_t = torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float64).reshape(-1))
    valid_t = None if valid is None else torch.from_numpy(np.ascontiguousarray(valid, dtype=bool).reshape(-1))
    vis = _zbuffer(
        uv_t, (int(image_size[0]), int(image_size[1])), depth=depth_t, valid=valid_t,
        cell=int(cell), dilate=int(dilate), abs_tol=float(abs_tol), rel_tol=float(rel_tol),
    )
    return vis.numpy()


def rgbd_visibility(
    points: np.ndarray,  # [N, 3] world frame, metres
    T_world_from_cam: np.ndarray,  # [4, 4] camera (OpenCV) -> world, the frame's pose
    K_depth: np.ndarray,  # [3, 3] intrinsics of the depth map, pixels
    depth_map: np.ndarray,  # [h, w] metres, 0 = no measurement
    K_color: np.ndarray | None = None,  # [3, 3] intrinsics of the colour image (same pose)
    color_size: tuple[int, int] | None = None,  # (H, W) of the colour image
    abs_tol: float = 0.05,
    rel_tol: float = 0.02,
    min_depth: float = 0.05,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project world points into a registered RGB-D frame and depth-test them.

    A point is visible when it projects into the depth map with ``depth > min_depth`` and passes
    :func:`depth_map_visibility`; with ``K_color`` it must also fall inside the colour image.
    Returns ``uv`` [N, 2] (colour pixels if ``K_color`` is given, else depth pixels),
    ``depth`` [N] (camera z, m) and ``visible`` [N] bool.
    """
    cam = transform_points(invert_transform(T_world_from_cam), points)
    uv_d, depth, valid = project_points(cam, np.eye(4), K_depth, depth_map.shape, min_depth=min_depth)
    visible = valid & depth_map_visibility(uv_d, depth, depth_map, abs_tol, rel_tol)
    if K_color is None:
        return uv_d, depth, visible
    uv_c, _, valid_c = project_points(cam, np.eye(4), K_color, color_size, min_depth=min_depth)
    return uv_c, depth, visible & valid_c


def lidar_camera_visibility(
    points: np.ndarray,  # [N, 3] LiDAR frame, metres
    T_cam_from_lidar: np.ndarray,  # [4, 4] full chain (camera's own ego pose)
    K: np.ndarray,  # [3, 3] pixels
    image_size: tuple[int, int],  # (H, W)
    min_depth: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Project LiDAR points into a camera and tell which ones the camera sees.

    Returns ``uv`` [N, 2], ``depth`` [N] (camera z, m), ``valid`` [N] (deeper than ``min_depth``
    and inside the image) and ``visible`` [N] (valid and passing the LiDAR z-buffer,
    :func:`zbuffer_visibility` with a cell of :func:`zbuffer_cell` pixels).
    """
    uv, depth, valid = project_points(points, T_cam_from_lidar, K, image_size, min_depth)
    visible = zbuffer_visibility(uv, depth, image_size, cell=zbuffer_cell(K[0, 0]), valid=valid)
    return uv, depth, valid, visible
