"""The experiment config: typed sections, each checked when the config is loaded.

Sections whose shape depends on ``type:`` (``dataset``, ``model``, ``teacher``, ``loss``) are
``Annotated[Any, REGISTRY]``: the loader finds the dataclass registered under that ``type:``.
Fixed sections (``train``) are plain dataclasses. A dataclass may define ``validate()``, which
raises ``ValueError`` with a message when an invariant between its keys does not hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Optional

from xmodal.registry import DATASETS, LOSSES, MODELS, TEACHERS

__all__ = ["ExperimentConfig", "TrainConfig", "LogConfig", "VoxelGridConfig"]


@dataclass(frozen=True)
class LogConfig:
    """Where training curves go: TensorBoard by default, wandb only when asked for."""

    tensorboard: bool = True
    wandb: bool = False
    interval: int = 10  # steps between log lines and scalar writes

    def validate(self) -> None:
        if self.interval < 1:
            raise ValueError(f"interval must be >= 1 step, got {self.interval}.")


@dataclass(frozen=True)
class TrainConfig:
    """The training loop. ``batch_size`` is per process (per GPU); the global batch is
    ``batch_size * world_size``."""

    epochs: int = 1
    batch_size: int = 2
    lr: float = 1e-3
    weight_decay: float = 0.0
    num_workers: int = 2
    amp: Literal["off", "fp16", "bf16"] = "off"
    grad_clip: Optional[float] = None  # max gradient norm; null = no clipping
    log: LogConfig = field(default_factory=LogConfig)

    def validate(self) -> None:
        for key in ("epochs", "batch_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}.")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}.")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}.")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 or null, got {self.grad_clip}.")


@dataclass(frozen=True)
class VoxelGridConfig:
    """A regular voxel grid over an axis-aligned box, in the LiDAR frame (x fwd, y left, z up, m).

    Embed it in encoder or dataset configs that voxelize (``grid: VoxelGridConfig``). Loading
    fails unless every extent of ``point_cloud_range`` is a whole number of voxels.
    """

    point_cloud_range: tuple[float, float, float, float, float, float] = (
        -51.2, -51.2, -5.0, 51.2, 51.2, 3.0,
    )  # x_min, y_min, z_min, x_max, y_max, z_max
    voxel_size: tuple[float, float, float] = (0.1, 0.1, 0.2)  # x, y, z

    def validate(self) -> None:
        from xmodal.geometry.grid import grid_cells

        grid_cells(self.point_cloud_range[:3], self.point_cloud_range[3:], self.voxel_size)

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        """Voxels along x, y, z."""
        from xmodal.geometry.grid import grid_cells

        return tuple(grid_cells(self.point_cloud_range[:3], self.point_cloud_range[3:], self.voxel_size))  # type: ignore[return-value]


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: ``work_dir/name`` is its run folder.

    ``name`` defaults to the config file's name when loaded with :func:`load_config`.
    """

    name: str
    seed: int = 0
    work_dir: str = "runs"
    train: TrainConfig = field(default_factory=TrainConfig)
    dataset: Optional[Annotated[Any, DATASETS]] = None
    model: Optional[Annotated[Any, MODELS]] = None  # the student network (encoder + heads)
    teacher: Optional[Annotated[Any, TEACHERS]] = None
    loss: Optional[Annotated[Any, LOSSES]] = None

    def validate(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", self.name):
            raise ValueError(
                f"name {self.name!r} is used as a folder name; use letters, digits and . _ + - "
                "(starting with a letter or digit)."
            )
