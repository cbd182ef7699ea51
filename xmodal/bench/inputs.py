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


def nuscenes_rig(seed: int = 0, image_scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(lidar2img [6, 4, 4] float64, image_sizes [6, 2] (H, W)) of the synthetic world's nuScenes
    rig (1600x900 cameras at ``image_scale`` 1)."""
    import numpy as np

    from xmodal.data.synth.driving.rig import make_rig
    from xmodal.geometry.transforms import invert_transform

    rig = make_rig(np.random.default_rng(seed), image_scale)
    T_ego_lidar = np.eye(4)
    T_ego_lidar[:3, :3], T_ego_lidar[:3, 3] = rig.lidar.R_ego_lidar, rig.lidar.t_ego_lidar
    mats, sizes = [], []
    for cam in rig.cameras:
        T_ego_cam = np.eye(4)
        T_ego_cam[:3, :3], T_ego_cam[:3, 3] = cam.R_ego_cam, cam.t_ego_cam
        K4 = np.eye(4)
        K4[:3, :3] = cam.K
        mats.append(K4 @ invert_transform(T_ego_cam) @ T_ego_lidar)
        sizes.append((cam.height, cam.width))
    return torch.from_numpy(np.stack(mats)), torch.tensor(sizes)


def scan_cloud(n: int, seed: int = 0, shuffle: bool = False) -> torch.Tensor:
    """[n, 5] float32 points in HDL-32E firing order (what .pcd.bin files hold): stacked scans of
    walls at 5-60 m and the ground, 3 % dropouts, each scan slightly moved; ``shuffle`` destroys
    the order (the worst case for the projection's compaction)."""
    import numpy as np

    from xmodal.data.synth.driving.rig import LidarSpec

    rng = np.random.default_rng(seed)
    d, _ = LidarSpec.ray_directions()
    a = len(d) // 32
    out, total = [], 0
    while total < n:
        wall = np.repeat(rng.integers(5, 60, size=a // 20 + 1).astype(float), 20)[:a]
        wall = wall[:, None].repeat(32, 1).reshape(-1) * (1 + 0.05 * rng.standard_normal(len(d)))
        ground = np.where(d[:, 2] < -1e-3, 1.84 / np.maximum(-d[:, 2], 1e-3), np.inf)
        r = np.minimum(wall, ground)
        p = (d * r[:, None])[(rng.random(len(d)) < 0.97) & (r < 100) & (r > 1)]
        yaw = rng.normal(0, 0.05)
        c, s = np.cos(yaw), np.sin(yaw)
        out.append(p @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T + rng.normal(0, 1, 3) * [1, 3, 0])
        total += len(out[-1])
    p = np.concatenate(out)[:n]
    if shuffle:
        p = p[rng.permutation(len(p))]
    pts = np.zeros((len(p), 5), np.float32)
    pts[:, :3], pts[:, 3] = p, rng.random(len(p)) * 255
    return torch.from_numpy(pts)


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
