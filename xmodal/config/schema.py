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

from xmodal.registry import DATASETS, LOSSES, MODELS, TEACHERS, TRANSFORMS

__all__ = [
    "CheckpointConfig",
    "EvalConfig",
    "ExperimentConfig",
    "InitConfig",
    "LogConfig",
    "OptimizerConfig",
    "ScheduleConfig",
    "TrainConfig",
    "VoxelGridConfig",
]


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
class OptimizerConfig:
    """The optimizer: ``sgd`` (SLidR: momentum 0.9, dampening 0.1), ``adamw`` or ``adam``."""

    type: Literal["sgd", "adamw", "adam"] = "sgd"
    momentum: float = 0.9  # sgd
    dampening: float = 0.1  # sgd (SLidR uses 0.1)
    nesterov: bool = False  # sgd
    betas: tuple[float, float] = (0.9, 0.999)  # adam / adamw
    head_lr: Optional[float] = None  # lr of parameters named ``head.*`` (SLidR fine-tune: 2.0); null = lr

    def validate(self) -> None:
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov needs momentum > 0 and dampening = 0.")
        if self.head_lr is not None and not self.head_lr > 0:
            raise ValueError(f"head_lr must be > 0 or null, got {self.head_lr}.")


@dataclass(frozen=True)
class ScheduleConfig:
    """Learning-rate schedule per optimizer step: linear warmup from ``warmup_start * lr`` over
    ``warmup_steps``, then ``cosine`` decay to ``min_lr_ratio * lr`` at the last step, or
    ``constant``."""

    type: Literal["cosine", "constant"] = "cosine"
    warmup_steps: int = 0
    warmup_start: float = 0.0  # factor of lr at step 0 of the warmup
    min_lr_ratio: float = 0.0

    def validate(self) -> None:
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}.")
        if not 0 <= self.warmup_start <= 1 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError("warmup_start and min_lr_ratio must be in [0, 1].")


@dataclass(frozen=True)
class CheckpointConfig:
    """Atomic checkpoints in ``<run>/checkpoints/``: every ``interval`` optimizer steps (0 = only
    at the end of each epoch) and at the end; ``keep`` most recent step checkpoints are kept
    (``last.pt`` always points at the newest)."""

    interval: int = 0
    keep: int = 2

    def validate(self) -> None:
        if self.interval < 0 or self.keep < 1:
            raise ValueError("interval must be >= 0 and keep >= 1.")


@dataclass(frozen=True)
class InitConfig:
    """Init-from-weights (not resume): load ``path``'s model weights, renaming key prefixes by
    ``remap`` (``[[from, to], ...]``, applied in order; ``to: ""`` strips), and report missing /
    unexpected keys; ``strict`` fails on any."""

    path: Optional[str] = None
    remap: list[tuple[str, str]] = field(default_factory=list)
    strict: bool = False


@dataclass(frozen=True)
class TrainConfig:
    """The training loop. ``batch_size`` is per process (per GPU); the global batch is
    ``batch_size * world_size * grad_accum``. ``max_steps`` (optimizer steps) overrides
    ``epochs`` when set."""

    epochs: int = 1
    max_steps: Optional[int] = None
    batch_size: int = 2
    grad_accum: int = 1  # micro-batches per optimizer step
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    num_workers: int = 2
    amp: Literal["off", "fp16", "bf16"] = "off"
    grad_clip: Optional[float] = None  # max gradient norm; null = no clipping
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    init: InitConfig = field(default_factory=InitConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def validate(self) -> None:
        for key in ("epochs", "batch_size", "grad_accum"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}.")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1 or null, got {self.max_steps}.")
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
class EvalConfig:
    """``eval:``, how ``xmodal eval`` measures a backbone on labelled LiDAR scans.

    ``linear-probe``: the backbone is frozen (eval mode, BatchNorm statistics kept). With
    ``probe_features: memory`` its per-point features are extracted once from the training scans
    of ``dataset`` (no augmentation; at most ``probe_max_points_per_scan`` labelled points per
    scan) and a head (``model.head``) is trained on them for ``probe_epochs`` with AdamW (fast,
    for small data); with ``online`` the head trains with the ``train:`` loop on augmented scans
    (SLidR's protocol, for real data). ``finetune``: the whole segmentation model trains with the
    ``train:`` loop from ``pretrained``. Both score ``val`` with the last weights
    (``checkpoint_choice: last``; xmodal never selects on the validation set).
    """

    protocol: Literal["linear-probe", "finetune"] = "linear-probe"
    pretrained: Optional[str] = None  # backbone checkpoint (null = random init)
    checkpoint_choice: Literal["last"] = "last"
    val: Optional[Annotated[Any, DATASETS]] = None  # the evaluation scans (e.g. the val info file)
    probe_epochs: int = 20
    probe_lr: float = 1e-2
    probe_weight_decay: float = 1e-4
    probe_batch_points: int = 65536
    probe_features: Literal["memory", "online"] = "memory"
    probe_max_points_per_scan: Optional[int] = None
    submission_dir: Optional[str] = None  # also export val predictions in the lidarseg format
    devkit_eval_set: Optional[str] = None  # and score the export with the devkit (mini_val, val)

    def validate(self) -> None:
        if self.probe_epochs < 1 or self.probe_batch_points < 1 or not self.probe_lr > 0:
            raise ValueError("probe_epochs and probe_batch_points must be >= 1 and probe_lr > 0.")
        if self.devkit_eval_set and not self.submission_dir:
            raise ValueError("devkit_eval_set needs submission_dir (the export the devkit scores).")


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
    # training-time joint augmentations, applied in order (xmodal.data.transforms)
    transforms: list[Annotated[Any, TRANSFORMS]] = field(default_factory=list)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def validate(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", self.name):
            raise ValueError(
                f"name {self.name!r} is used as a folder name; use letters, digits and . _ + - "
                "(starting with a letter or digit)."
            )
