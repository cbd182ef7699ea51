"""Projection of 3D points into pinhole cameras (host side, numpy).

Camera frame is OpenCV: x right, y down, z forward (metres). Pixel coordinates ``uv`` are
``(u, v) = (column, row)`` in continuous pixel units where pixel ``(row, col)`` covers
``[col, col + 1) x [row, row + 1)``: its centre is at ``(col + 0.5, row + 0.5)`` and the pixel
containing a point is ``(floor(v), floor(u))`` (as SLidR / ScaLR index pixels). OpenCV's own
convention puts pixel centres at integer coordinates instead; the two differ by half a pixel.
The synthetic worlds cast their rays through ``(col + 0.5, row + 0.5)``, so they are exact
under this convention, and intrinsics scale with the image as ``K * s``.
"""

from __future__ import annotations

import numpy as np


def transform_points(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to ``points`` [N, 3] (any frame -> the target frame of ``T``)."""
    points = np.asarray(points)
    return points[:, :3] @ T[:3, :3].T.astype(points.dtype) + T[:3, 3].astype(points.dtype)


def project_points(
    points: np.ndarray,  # [N, 3] source frame (e.g. LiDAR), metres
    T_cam_from_src: np.ndarray,  # [4, 4] source -> camera (OpenCV)
    K: np.ndarray,  # [3, 3] intrinsics in pixels
    image_size: tuple[int, int],  # (height, width) in pixels
    min_depth: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project points into a camera image.

    Returns:
        uv: [N, 2] float pixel coordinates (u = column, v = row); meaningless where not valid.
        depth: [N] camera z in metres.
        valid: [N] bool, ``depth > min_depth`` and ``0 <= u < width`` and ``0 <= v < height``.
    """
    h, w = image_size
    cam = transform_points(T_cam_from_src, points)
    depth = cam[:, 2]
    z = np.where(np.abs(depth) < 1e-9, 1e-9, depth)
    uvw = cam @ np.asarray(K, dtype=cam.dtype).T
    uv = uvw[:, :2] / z[:, None]
    valid = (depth > min_depth) & (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
    return uv, depth, valid


def pixel_indices(uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer ``(row, col)`` of the pixels containing ``uv`` [N, 2] (floor)."""
    return np.floor(uv[:, 1]).astype(np.int64), np.floor(uv[:, 0]).astype(np.int64)


def pixel_rays(K: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """[H*W, 3] camera-frame directions ``K^-1 [u, v, 1]`` (z = 1) through the pixel centres
    ``(col + 0.5, row + 0.5)``, row-major: the rays a ray caster must use to be exact under
    this module's pixel convention."""
    h, w = image_size
    v, u = np.mgrid[0:h, 0:w]
    pix = np.stack([u.ravel() + 0.5, v.ravel() + 0.5, np.ones(h * w)], 1)
    return pix @ np.linalg.inv(np.asarray(K, dtype=np.float64)).T


def scale_intrinsics(K: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Intrinsics [3, 3] of the same camera with the image resized by ``sx`` (width) and ``sy``
    (height); exact under this module's pixel convention (no half-pixel shift)."""
    K = np.array(K, dtype=np.float64)
    K[0] *= sx
    K[1] *= sy
    K[2] = (0.0, 0.0, 1.0)
    return K
