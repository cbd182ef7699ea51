"""Point-only augmentations: rotation about z, x/y flips, isotropic scaling.

They move ``points[:, :3]`` (LiDAR frame, metres) by a random linear map about the LiDAR origin
and leave everything else as it is: the features after column 3, labels, images, superpixels,
teacher maps and the point <-> pixel pairs (pairs index points, which are only moved, so they
stay valid). The calibration that produced the pairs no longer maps the moved points to their
pixels: re-project only from the original points.

The map is computed in float64 and cast back to the points' dtype. Each call draws a fixed
number of values from ``rng`` (the same whatever the sample), so a seeded generator gives the
same augmentation on every rank and on resume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from xmodal.data.transforms._common import check_call, check_interval, check_probability
from xmodal.registry import TRANSFORMS
from xmodal.structures.lidar_camera import LidarCameraSample

__all__ = [
    "RotateZConfig", "RotateZ", "FlipXYConfig", "FlipXY", "ScaleConfig", "Scale", "apply_linear",
]


def apply_linear(points: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """A new ``[N, 3+F]`` tensor with ``xyz -> matrix @ xyz`` and the features copied.

    Args:
        points: [N, 3+F] LiDAR frame, metres (x, y, z, then features); not modified.
        matrix: [3, 3] float64 linear map about the LiDAR origin.
    """
    out = points.clone()
    xyz = points[:, :3].to(torch.float64) @ matrix.to(device=points.device, dtype=torch.float64).T
    out[:, :3] = xyz.to(points.dtype)
    return out


@dataclass(frozen=True)
class RotateZConfig:
    """``type: rotate_z``: rotate the cloud about the LiDAR z axis (counter-clockwise seen from
    above) by an angle drawn uniformly from ``degrees``."""

    degrees: tuple[float, float] = (-180.0, 180.0)  # (low, high) angle range, degrees

    def validate(self) -> None:
        check_interval("rotate_z", "degrees", self.degrees)


@TRANSFORMS.register("rotate_z", config=RotateZConfig)
class RotateZ:
    """Random rotation about z: ``x' = x cos a - y sin a``, ``y' = x sin a + y cos a``, ``z' = z``.
    Draws one value from ``rng``."""

    def __init__(self, cfg: RotateZConfig = RotateZConfig()) -> None:
        cfg.validate()
        self.cfg = cfg

    def __call__(self, sample: LidarCameraSample, rng: np.random.Generator) -> LidarCameraSample:
        check_call("rotate_z", sample, rng)
        a = math.radians(float(rng.uniform(*self.cfg.degrees)))
        c, s = math.cos(a), math.sin(a)
        rot = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
        return sample.replace(points=apply_linear(sample.points, rot))

    def __repr__(self) -> str:
        return f"RotateZ(degrees={self.cfg.degrees})"


@dataclass(frozen=True)
class FlipXYConfig:
    """``type: flip_xy``: mirror the cloud, ``x -> -x`` with probability ``p_x`` and,
    independently, ``y -> -y`` with probability ``p_y`` (SLidR: 0.5 each)."""

    p_x: float = 0.5
    p_y: float = 0.5

    def validate(self) -> None:
        check_probability("flip_xy", "p_x", self.p_x)
        check_probability("flip_xy", "p_y", self.p_y)


@TRANSFORMS.register("flip_xy", config=FlipXYConfig)
class FlipXY:
    """Random independent flips of x and y (a reflection when exactly one flips). Draws two values
    from ``rng``."""

    def __init__(self, cfg: FlipXYConfig = FlipXYConfig()) -> None:
        cfg.validate()
        self.cfg = cfg

    def __call__(self, sample: LidarCameraSample, rng: np.random.Generator) -> LidarCameraSample:
        check_call("flip_xy", sample, rng)
        u = rng.random(2)
        fx, fy = bool(u[0] < self.cfg.p_x), bool(u[1] < self.cfg.p_y)
        if not (fx or fy):
            return sample.replace()
        diag = torch.tensor([-1.0 if fx else 1.0, -1.0 if fy else 1.0, 1.0], dtype=torch.float64)
        return sample.replace(points=apply_linear(sample.points, torch.diag(diag)))

    def __repr__(self) -> str:
        return f"FlipXY(p_x={self.cfg.p_x}, p_y={self.cfg.p_y})"


@dataclass(frozen=True)
class ScaleConfig:
    """``type: scale``: multiply x, y, z by one factor drawn uniformly from ``range``."""

    range: tuple[float, float] = (0.95, 1.05)  # (low, high), low > 0

    def validate(self) -> None:
        check_interval("scale", "range", self.range, low=0.0, open_low=True)


@TRANSFORMS.register("scale", config=ScaleConfig)
class Scale:
    """Random isotropic scaling about the LiDAR origin. Draws one value from ``rng``."""

    def __init__(self, cfg: ScaleConfig = ScaleConfig()) -> None:
        cfg.validate()
        self.cfg = cfg

    def __call__(self, sample: LidarCameraSample, rng: np.random.Generator) -> LidarCameraSample:
        check_call("scale", sample, rng)
        f = float(rng.uniform(*self.cfg.range))
        return sample.replace(points=apply_linear(sample.points, torch.eye(3, dtype=torch.float64) * f))

    def __repr__(self) -> str:
        return f"Scale(range={self.cfg.range})"
