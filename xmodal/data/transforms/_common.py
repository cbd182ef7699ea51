"""Checks shared by the transforms (private: the registry does not import ``_`` modules)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from xmodal.structures.lidar_camera import LidarCameraSample


def check_interval(
    owner: str, key: str, value: Sequence[float], *, low: float | None = None, high: float | None = None,
    open_low: bool = False,
) -> None:
    """``value`` is a finite ``(a, b)`` with ``a <= b`` inside ``[low, high]`` (``(low, high]``
    with ``open_low``); ValueError naming ``owner.key`` otherwise."""
    if len(value) != 2 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in value):
        raise ValueError(f"{owner}.{key} must be two finite numbers (low, high), got {value!r}")
    a, b = value
    if a > b:
        raise ValueError(f"{owner}.{key} must have low <= high, got {value!r}")
    if low is not None and (a < low or (open_low and a <= low)):
        bound = f"> {low}" if open_low else f">= {low}"
        raise ValueError(f"{owner}.{key} must be {bound}, got {value!r}")
    if high is not None and b > high:
        raise ValueError(f"{owner}.{key} must be <= {high}, got {value!r}")


def check_probability(owner: str, key: str, p: float) -> None:
    if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{owner}.{key} is a probability in [0, 1], got {p!r}")


def check_count(owner: str, key: str, n: int, minimum: int = 0) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < minimum:
        raise ValueError(f"{owner}.{key} must be an integer >= {minimum}, got {n!r}")


def check_call(owner: str, sample: LidarCameraSample, rng: np.random.Generator) -> None:
    """The arguments of ``transform(sample, rng)``: a sample with ``points`` [N, 3+] and a
    ``numpy.random.Generator`` (the only source of randomness)."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{owner}: rng must be a numpy.random.Generator (e.g. np.random.default_rng(seed)), got "
            f"{type(rng).__name__}; all randomness comes from it so that runs resume exactly"
        )
    if not isinstance(sample, LidarCameraSample):
        raise TypeError(f"{owner}: expected a LidarCameraSample, got {type(sample).__name__}")
    pts = sample.points
    if not isinstance(pts, torch.Tensor) or pts.dim() != 2 or pts.shape[1] < 3:
        shape = tuple(pts.shape) if isinstance(pts, torch.Tensor) else type(pts).__name__
        raise ValueError(f"{owner}: sample {sample.token!r}: points must be a [N, 3+] tensor, got {shape}")


def num_images(owner: str, sample: LidarCameraSample) -> int:
    """Number of images C of ``sample``, checking that its pairs, superpixels and teacher maps
    agree with it (ValueError naming the sample and the field otherwise)."""
    c = sample.num_cameras
    where = f"{owner}: sample {sample.token!r}"
    if sample.images is not None and sample.images.dim() != 4:
        raise ValueError(f"{where}: images must be [C, 3, H, W], got {tuple(sample.images.shape)}")
    pairs = sample.pairs
    if len(pairs):
        if int(pairs.camera.max()) >= c or int(pairs.camera.min()) < 0:
            raise ValueError(
                f"{where}: pairs.camera holds values in [{int(pairs.camera.min())}, {int(pairs.camera.max())}] "
                f"but the sample has {c} image(s)"
            )
        if int(pairs.point.max()) >= sample.points.shape[0] or int(pairs.point.min()) < 0:
            raise ValueError(
                f"{where}: pairs.point holds values up to {int(pairs.point.max())} but the sample has "
                f"{sample.points.shape[0]} points"
            )
    if sample.superpixels is not None and sample.images is not None:
        want = (c, *sample.images.shape[-2:])
        if tuple(sample.superpixels.shape) != want:
            raise ValueError(f"{where}: superpixels must be [C, H, W] = {want}, got {tuple(sample.superpixels.shape)}")
    if sample.teacher_feats is not None:
        tf = sample.teacher_feats
        if tf.dim() != 4 or tf.shape[0] != c:
            raise ValueError(f"{where}: teacher_feats must be [C={c}, D, h, w], got {tuple(tf.shape)}")
    return c
