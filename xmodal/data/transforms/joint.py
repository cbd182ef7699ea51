"""Joint LiDAR + camera augmentations that change which point <-> pixel pairs exist:
``drop_cuboids`` (remove the points of a random box) and ``flip_horizontal`` (mirror images).
``resized_crop`` lives in :mod:`xmodal.data.transforms.crop`.

Frames: points in the LiDAR frame (metres); pixel ``(row, col)`` covers ``[col, col + 1) x [row,
row + 1)`` of its image (docs/conventions.md). Teacher maps ``[C, D, h, w]`` span their image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from xmodal.data.transforms._common import check_call, check_count, check_probability, num_images
from xmodal.registry import TRANSFORMS
from xmodal.structures.lidar_camera import LidarCameraSample, PixelPairs

__all__ = ["DropCuboidsConfig", "DropCuboids", "FlipHorizontalConfig", "FlipHorizontal"]


@dataclass(frozen=True)
class DropCuboidsConfig:
    """``type: drop_cuboids`` (SLidR's DropCuboids).

    A box is centred on a random point; its side along each axis is ``f`` times the cloud's extent
    along that axis, with one ``f`` drawn uniformly from ``[0, max_fraction)``. The points strictly
    inside are removed. The drop is kept only if every image keeps at least ``min(min_pairs,
    pairs it had)`` pairs (an image that already had fewer than ``min_pairs`` must lose none), else
    the sample is returned unchanged.
    """

    max_fraction: float = 0.2  # largest box side, as a fraction of the cloud's extent per axis
    min_pairs: int = 1024  # pairs every image must keep (SLidR: 1024)

    def validate(self) -> None:
        if not isinstance(self.max_fraction, (int, float)) or not 0.0 <= self.max_fraction <= 1.0:
            raise ValueError(f"drop_cuboids.max_fraction must be in [0, 1], got {self.max_fraction!r}")
        check_count("drop_cuboids", "min_pairs", self.min_pairs)


@TRANSFORMS.register("drop_cuboids", config=DropCuboidsConfig)
class DropCuboids:
    """Remove the points inside a random axis-aligned box (LiDAR frame), with their labels and
    pairs; the remaining pairs are re-indexed to the kept points (order kept).

    Draws two values from ``rng`` when the cloud has points (the size, then the centre point).
    """

    def __init__(self, cfg: DropCuboidsConfig = DropCuboidsConfig()) -> None:
        cfg.validate()
        self.cfg = cfg

    def __call__(self, sample: LidarCameraSample, rng: np.random.Generator) -> LidarCameraSample:
        check_call("drop_cuboids", sample, rng)
        c = num_images("drop_cuboids", sample)
        pts = sample.points
        n = pts.shape[0]
        if n == 0:
            return sample.replace()
        frac = float(rng.random()) * self.cfg.max_fraction
        centre = pts[int(rng.integers(n)), :3]
        xyz = pts[:, :3]
        half = (xyz.max(0).values - xyz.min(0).values) * (frac / 2.0)
        inside = ((xyz > centre - half) & (xyz < centre + half)).all(1)  # [N]
        if not bool(inside.any()):
            return sample.replace()
        keep = ~inside
        pairs = sample.pairs
        new_pairs = pairs
        if len(pairs):
            new_index = torch.cumsum(keep, 0) - 1  # [N] row of each kept point in the output
            sel = pairs.select(keep[pairs.point])
            new_pairs = PixelPairs(new_index[sel.point], sel.camera, sel.row, sel.col)
            before = pairs.counts_per_camera(c)
            after = new_pairs.counts_per_camera(c)
            if bool((after < before.clamp(max=self.cfg.min_pairs)).any()):
                return sample.replace()
        labels = None if sample.labels is None else sample.labels[keep]
        return sample.replace(points=pts[keep], labels=labels, pairs=new_pairs)

    def __repr__(self) -> str:
        return f"DropCuboids(max_fraction={self.cfg.max_fraction}, min_pairs={self.cfg.min_pairs})"


@dataclass(frozen=True)
class FlipHorizontalConfig:
    """``type: flip_horizontal`` (SLidR's FlipHorizontal): mirror each image left-right with
    probability ``p``, independently per image."""

    p: float = 0.5

    def validate(self) -> None:
        check_probability("flip_horizontal", "p", self.p)


@TRANSFORMS.register("flip_horizontal", config=FlipHorizontalConfig)
class FlipHorizontal:
    """Flip the chosen images, their superpixels and teacher maps along the width; their pairs get
    ``col -> W - 1 - col``. A teacher map cell ``j`` of ``w`` becomes cell ``w - 1 - j``, which is
    exact because the map spans the image. Draws ``C`` values from ``rng`` (none without images).
    """

    def __init__(self, cfg: FlipHorizontalConfig = FlipHorizontalConfig()) -> None:
        cfg.validate()
        self.cfg = cfg

    def __call__(self, sample: LidarCameraSample, rng: np.random.Generator) -> LidarCameraSample:
        check_call("flip_horizontal", sample, rng)
        c = num_images("flip_horizontal", sample)
        if c == 0:
            return sample.replace()
        flip_np = rng.random(c) < self.cfg.p
        if not flip_np.any():
            return sample.replace()
        images = sample.images
        flip = torch.from_numpy(flip_np).to(images.device)  # [C] bool
        width = images.shape[-1]

        def mirror(t: torch.Tensor | None) -> torch.Tensor | None:
            if t is None:
                return None
            f = flip.to(t.device).view(-1, *([1] * (t.dim() - 1)))
            return torch.where(f, t.flip(-1), t)

        pairs = sample.pairs
        if len(pairs):
            on = flip.to(pairs.camera.device)[pairs.camera]
            pairs = PixelPairs(pairs.point, pairs.camera, pairs.row, torch.where(on, width - 1 - pairs.col, pairs.col))
        return sample.replace(
            images=mirror(images),
            superpixels=mirror(sample.superpixels),
            teacher_feats=mirror(sample.teacher_feats),
            pairs=pairs,
        )

    def __repr__(self) -> str:
        return f"FlipHorizontal(p={self.cfg.p})"
