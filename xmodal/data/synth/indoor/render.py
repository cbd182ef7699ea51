"""Ray-cast RGB-D frames and label images from the scene mesh with open3d (Embree).

Cameras are pinhole, OpenCV frame (x right, y down, z forward); ``pose`` is camera -> world
(4x4). The ray through pixel ``(row, col)`` passes through ``(u, v) = (col + 0.5, row + 0.5)``
— the convention of :func:`xmodal.geometry.project_points` — and has camera-frame direction
``K^-1 [u, v, 1]`` (z = 1), so the hit distance *is* the depth (camera z) in metres.

- depth: cast at the depth camera's resolution; Kinect-like noise ``sigma = 1.5 mm * z^2``;
  written by the caller as uint16 millimetres (0 = no hit).
- colour: cast at the colour camera's resolution; the hit triangle's vertex colours are blended
  with the barycentric coordinates (so 2D and 3D colours agree), then a per-frame exposure,
  vignetting and sensor noise are applied.
- labels: the NYU40 id of the hit triangle at the colour resolution (0 = no hit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xmodal.geometry import pixel_rays


def raycasting_scene(vertices: np.ndarray, faces: np.ndarray, threads: int = 0):
    """An open3d ``RaycastingScene`` holding one triangle mesh (float32 / uint32 copies);
    ``threads`` ray-casting threads (0 = all cores; results do not depend on it)."""
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene(nthreads=threads)
    scene.add_triangles(o3d.core.Tensor(np.ascontiguousarray(vertices, np.float32)),
                        o3d.core.Tensor(np.ascontiguousarray(faces, np.uint32)))
    return scene


def camera_rays(K: np.ndarray, pose: np.ndarray, size: tuple[int, int], dirs: np.ndarray | None = None) -> np.ndarray:
    """[H*W, 6] float32 rays (origin, direction with camera z = 1) in the pose's world frame."""
    d_cam = pixel_rays(K, size) if dirs is None else dirs
    rays = np.empty((len(d_cam), 6), np.float32)
    rays[:, :3] = pose[:3, 3]
    rays[:, 3:] = d_cam @ pose[:3, :3].T
    return rays


@dataclass
class RenderedFrame:
    depth: np.ndarray  # [h, w] float32 metres, 0 = no hit
    color: np.ndarray  # [H, W, 3] uint8
    label: np.ndarray  # [H, W] uint8 NYU40 ids, 0 = no hit


class Renderer:
    """Renders frames of one scene mesh (world frame, metres)."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray, face_labels: np.ndarray,
                 threads: int = 0):
        self.scene = raycasting_scene(vertices, faces, threads)
        self.faces = np.asarray(faces, np.int64)
        self.colors = np.asarray(colors, np.float32)  # [N, 3] 0..255
        self.face_labels = np.asarray(face_labels).astype(np.uint8)
        self._dirs: dict = {}  # cached pixel directions per camera

    def _cast(self, K, pose, size):
        import open3d as o3d

        key = (tuple(np.asarray(K).ravel()), tuple(size))
        if key not in self._dirs:
            self._dirs[key] = pixel_rays(K, size)
        r = self.scene.cast_rays(o3d.core.Tensor(camera_rays(K, pose, size, self._dirs[key])))
        return r["t_hit"].numpy(), r["primitive_ids"].numpy(), r["primitive_uvs"].numpy()

    def depth(self, K: np.ndarray, pose: np.ndarray, size: tuple[int, int], rng: np.random.Generator,
              noise: bool = True) -> np.ndarray:
        """[h, w] float32 depth in metres (0 = nothing hit)."""
        t, _, _ = self._cast(K, pose, size)
        t = np.where(np.isfinite(t), t, 0.0)
        if noise:
            t = np.where(t > 0, t + rng.normal(0, 1, t.shape) * 0.0015 * t**2, 0.0)
        return t.reshape(size).astype(np.float32)

    def color_and_label(self, K: np.ndarray, pose: np.ndarray, size: tuple[int, int],
                        rng: np.random.Generator, noise: float = 2.5) -> tuple[np.ndarray, np.ndarray]:
        """([H, W, 3] uint8 colour, [H, W] uint8 NYU40 label) at the colour camera."""
        h, w = size
        t, prim, uv = self._cast(K, pose, size)
        hit = np.isfinite(t)
        prim = np.where(hit, prim, 0).astype(np.int64)
        tri = self.faces[prim]  # [P, 3]
        b1, b2 = uv[:, 0:1], uv[:, 1:2]
        rgb = (1 - b1 - b2) * self.colors[tri[:, 0]] + b1 * self.colors[tri[:, 1]] + b2 * self.colors[tri[:, 2]]
        # Camera effects: exposure / white balance per frame, vignetting, sensor noise.
        gain = rng.uniform(0.92, 1.08) * (1 + rng.normal(0, 0.015, 3))
        yy, xx = np.mgrid[0:h, 0:w]
        r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
        vig = (1 - 0.18 * r2).reshape(-1, 1)
        rgb = rgb * gain[None, :].astype(np.float32) * vig + rng.normal(0, noise, rgb.shape)
        rgb[~hit] = 0
        label = np.where(hit, self.face_labels[prim], 0).astype(np.uint8)
        return np.clip(rgb, 0, 255).round().astype(np.uint8).reshape(h, w, 3), label.reshape(h, w)
