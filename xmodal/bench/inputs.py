"""Synthetic benchmark inputs shaped like the real data (no dataset needed)."""

from __future__ import annotations

import math

import torch


def lidar_sweeps(n_sweeps: int = 1, beams: int = 32, azimuths: int = 1084, seed: int = 0) -> torch.Tensor:
    """[n_sweeps * beams * azimuths, 5] nuScenes-like cloud in the LiDAR frame (x, y, z metres,
    intensity, time lag s): ~34.7k points per sweep (HDL-32E), ground at z = -1.84 m, obstacles
    at 3-80 m, each older sweep shifted 0.5 m back by the ego motion."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for s in range(n_sweeps):
        elev = torch.linspace(-30.67, 10.67, beams) * math.pi / 180
        az = torch.rand(azimuths, generator=g) * 2 * math.pi - math.pi
        e, a = (t.reshape(-1) for t in torch.meshgrid(elev, az, indexing="ij"))
        obstacle = 3 + 77 * torch.rand(e.shape, generator=g) ** 2
        ground = torch.where(e < 0, 1.84 / torch.tan(-e).clamp(min=1e-3), torch.full_like(e, 1e9))
        r = torch.minimum(obstacle, ground) / torch.cos(e) + 0.02 * torch.randn(e.shape, generator=g)
        x = r * torch.cos(e) * torch.cos(a) - 0.5 * s
        y = r * torch.cos(e) * torch.sin(a)
        z = r * torch.sin(e)
        out.append(torch.stack([x, y, z, torch.rand(e.shape, generator=g) * 255, torch.full_like(x, 0.05 * s)], 1))
    return torch.cat(out)


def camera_ring(image_size: tuple[int, int] = (900, 1600), hfov_deg: float = 70.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(K [3, 3], T_cam_from_lidar [6, 4, 4]): six pinhole cameras around the car at the
    nuScenes yaws (front, front-right, front-left, back, back-left, back-right), 1.6 m up."""
    h, w = image_size
    f = 0.5 * w / math.tan(math.radians(hfov_deg) / 2)
    K = torch.tensor([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]], dtype=torch.float64)
    # OpenCV camera axes in the LiDAR frame (camera looking along +x): x_cam = -y, y_cam = -z, z_cam = x
    base = torch.tensor([[0, -1, 0], [0, 0, -1], [1, 0, 0]], dtype=torch.float64)
    Ts = []
    for yaw in (0, -55, 55, 180, 110, -110):
        c, s = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))
        R_lidar_from_cam_yaw = torch.tensor([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=torch.float64)
        R = base @ R_lidar_from_cam_yaw.T  # lidar -> camera
        T = torch.eye(4, dtype=torch.float64)
        T[:3, :3] = R
        T[:3, 3] = -R @ torch.tensor([1.0, 0.0, 1.6], dtype=torch.float64)
        Ts.append(T)
    return K, torch.stack(Ts)


def bevdet_geometry(b: int = 1, n: int = 6, d: int = 59, fh: int = 16, fw: int = 44, image=(256, 704), dmin: float = 1.0) -> torch.Tensor:
    """[b, n, d, fh, fw, 3] frustum sample positions in the ego frame (metres) for a BEVDet-style
    6-camera ring: 256x704 input, stride 16, ``d`` depth bins of 1 m from ``dmin``."""
    h, w = image
    f = 0.5 * w / math.tan(math.radians(70) / 2)
    K = torch.tensor([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])
    us = torch.arange(fw) * (w / fw) + w / fw / 2
    vs = torch.arange(fh) * (h / fh) + h / fh / 2
    ds = torch.arange(d) * 1.0 + dmin
    dd, v, u = torch.meshgrid(ds, vs, us, indexing="ij")
    cam = torch.stack([u * dd, v * dd, dd], -1) @ torch.linalg.inv(K).T  # OpenCV camera frame
    ego0 = torch.stack([cam[..., 2], -cam[..., 0], -cam[..., 1]], -1)
    out = []
    for yaw in (0, -55, 55, 180, -110, 110)[:n]:
        c, s = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))
        R = torch.tensor([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
        out.append(ego0 @ R.T + torch.tensor([1.0, 0.0, 1.6]))
    g = torch.stack(out)
    return g[None].expand(b, *g.shape).contiguous()
