"""Hand-held scanning trajectories: one smooth loop through the middle of the room.

The camera walks an ellipse inside the free middle of the room at eye height (1.25-1.6 m) and
looks across the room at a target that sweeps along the opposite walls, pitched down towards
furniture height, with smooth hand-shake. Each wall region (and the furniture in front of it)
stays in view for about a sixth of the loop, so with 20 frames every object is seen from
several positions and angles; the middle table is seen from all sides.
"""

from __future__ import annotations

import math

import numpy as np


def look_at(eye: np.ndarray, target: np.ndarray, roll: float = 0.0) -> np.ndarray:
    """[4, 4] camera (OpenCV: x right, y down, z forward) -> world pose, z up in the world."""
    fwd = target - eye
    fwd = fwd / np.linalg.norm(fwd)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    c, s = math.cos(roll), math.sin(roll)
    right, down = c * right + s * down, -s * right + c * down
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = right, down, fwd, eye
    return T


def _smooth_noise(rng: np.random.Generator, n: int, k: int = 3) -> np.ndarray:
    """[n] smooth periodic noise in about [-1, 1] (a few random harmonics over the loop)."""
    t = np.arange(n) / max(n, 1) * 2 * np.pi
    out = np.zeros(n)
    for h in range(1, k + 1):
        out += rng.normal(0, 1 / h) * np.sin(h * t + rng.uniform(0, 2 * np.pi))
    return out / 1.5


def scan_trajectory(room_size: tuple[float, float, float], n_frames: int, rng: np.random.Generator,
                    inset: float = 1.3) -> np.ndarray:
    """[M, 4, 4] camera -> room poses of one loop (room frame: floor at z = 0, walls at 0, W / D)."""
    W, D, H = room_size
    cx, cy = W / 2, D / 2
    a, b = max(W / 2 - inset, 0.25), max(D / 2 - inset, 0.25)
    A, B = W / 2 - 0.4, D / 2 - 0.4  # target ellipse near the walls
    theta0 = rng.uniform(0, 2 * np.pi)
    direction = rng.choice([-1.0, 1.0])
    nx, ny, nz = (_smooth_noise(rng, n_frames) for _ in range(3))
    sweep, pitch, roll = (_smooth_noise(rng, n_frames) for _ in range(3))
    poses = []
    for k in range(n_frames):
        th = theta0 + direction * 2 * np.pi * k / n_frames
        eye = np.array([cx + a * math.cos(th) + 0.1 * nx[k], cy + b * math.sin(th) + 0.1 * ny[k],
                        1.42 + 0.12 * nz[k]])
        eye[2] = np.clip(eye[2], 1.25, min(1.6, H - 0.5))
        ph = th + np.pi + 0.45 * sweep[k]
        target = np.array([cx + A * math.cos(ph), cy + B * math.sin(ph), 0.9 + 0.3 * pitch[k]])
        poses.append(look_at(eye, target, roll=math.radians(3.0) * roll[k]))
    return np.stack(poses)
