"""Chaining transforms: :class:`Compose` and :func:`build_transforms` (from config sections)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from xmodal.errors import ConfigError
from xmodal.registry import TRANSFORMS
from xmodal.structures.lidar_camera import LidarCameraSample

__all__ = ["Transform", "Compose", "build_transforms"]

#: ``t(sample, rng) -> new sample``; all randomness from ``rng``; the input is never modified.
Transform = Callable[[LidarCameraSample, np.random.Generator], LidarCameraSample]


class Compose:
    """Apply ``transforms`` in order, all drawing from the one ``rng`` passed to the call."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        for k, t in enumerate(transforms):
            if not callable(t):
                raise TypeError(f"Compose: transforms[{k}] is not callable ({type(t).__name__})")
        self.transforms = list(transforms)

    def __call__(self, sample: LidarCameraSample, rng: np.random.Generator) -> LidarCameraSample:
        for t in self.transforms:
            sample = t(sample, rng)
        return sample

    def __len__(self) -> int:
        return len(self.transforms)

    def __repr__(self) -> str:
        return f"Compose([{', '.join(repr(t) for t in self.transforms)}])"


def build_transforms(cfgs: Sequence[Any] | None) -> Compose:
    """A :class:`Compose` of ``TRANSFORMS.build(cfg)`` for each entry of ``cfgs`` (the config's
    ``transforms:`` list): a config dataclass of a registered transform, a mapping with a
    ``type:`` key, or an already-built callable. ``None`` or ``[]`` gives the identity."""
    built: list[Transform] = []
    for k, cfg in enumerate(cfgs or []):
        if isinstance(cfg, Mapping) or (dataclasses.is_dataclass(cfg) and not isinstance(cfg, type)):
            try:
                built.append(TRANSFORMS.build(cfg))
            except ConfigError as exc:
                raise type(exc)(f"transforms[{k}]: {exc}") from exc
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"transforms[{k}]: {exc}") from exc
        elif callable(cfg):
            built.append(cfg)
        else:
            raise TypeError(
                f"transforms[{k}]: expected a transform config (dataclass or mapping with 'type:') or a "
                f"callable, got {type(cfg).__name__}; registered types: {', '.join(TRANSFORMS.names())}"
            )
    return Compose(built)
