"""From an :class:`~xmodal.config.ExperimentConfig` to the objects a run needs.

``build_dataset``, ``build_model`` and ``build_teacher`` read the config's ``dataset`` /
``transforms``, ``model`` / ``loss`` and ``teacher`` sections through the registries;
:func:`train` puts them into the :class:`xmodal.engine.Trainer` (``xmodal train``). The teacher
stays outside the trained model: it runs in the trainer's ``prepare_batch`` under
``inference_mode`` and is never wrapped in DDP.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch

from xmodal.errors import ConfigError
from xmodal.registry import DATASETS, MODELS, TEACHERS

__all__ = ["build_dataset", "build_model", "build_teacher", "collate_for", "run_dir_of", "train"]


def run_dir_of(cfg) -> Path:
    """``work_dir/name``: the run folder of ``cfg``."""
    return Path(cfg.work_dir) / cfg.name


def build_dataset(cfg, dataset_cfg: Any = None, augment: bool = True):
    """The dataset of ``dataset_cfg`` (default ``cfg.dataset``), with ``cfg.transforms`` when
    ``augment``."""
    dcfg = dataset_cfg if dataset_cfg is not None else cfg.dataset
    if dcfg is None:
        raise ConfigError("the config has no `dataset:` section; add one (e.g. _base_/datasets/nuscenes_synth.yaml)")
    if not (augment and cfg.transforms):
        return DATASETS.build(dcfg)
    from xmodal.data.transforms import build_transforms

    return DATASETS.build(dcfg, transforms=build_transforms(list(cfg.transforms)))


def build_model(cfg) -> torch.nn.Module:
    """The model of ``cfg.model`` (and ``cfg.loss``), its initial weights drawn from ``cfg.seed``
    alone (the global torch RNG is reseeded): the same config gives the same start whatever drew
    random numbers earlier in the process (``xmodal demo`` trains several models in one), and a
    probe's "random init" row is the pretraining's starting point."""
    torch.manual_seed(cfg.seed)
    if cfg.model is None:
        raise ConfigError("the config has no `model:` section (type: lidar_distill or lidar_segmentation)")
    return MODELS.build(cfg.model, cfg.loss)


def build_teacher(cfg):
    """The frozen teacher of ``cfg.teacher`` (None when the config has none)."""
    return None if cfg.teacher is None else TEACHERS.build(cfg.teacher)


def collate_for(model: torch.nn.Module):
    """The collate of a model: distillation batches need pairs (scans without any are dropped and
    counted); segmentation batches take every scan."""
    from xmodal.models.lidar_distill import LidarDistillModel
    from xmodal.structures import collate_lidar_camera

    return functools.partial(collate_lidar_camera, require_pairs=isinstance(model, LidarDistillModel))


def train(cfg, run_dir: str | Path | None = None, resume: bool | str = "auto", progress: bool = True) -> dict:
    """Train ``cfg`` into ``run_dir`` (default ``work_dir/name``); returns the trainer's summary.

    The model's initial weights come from ``cfg.seed`` (:func:`build_model`)."""
    from xmodal.engine import Trainer
    from xmodal.models.lidar_distill import LidarDistillModel, teacher_prepare_batch

    model = build_model(cfg)
    dataset = build_dataset(cfg)
    teacher = build_teacher(cfg)
    if isinstance(model, LidarDistillModel):
        cache = getattr(dataset, "teacher_cache", None)
        if teacher is None and cache is None:
            raise ConfigError(
                "model.type=lidar_distill needs teacher features: set a top-level `teacher:` (computed online) or "
                "dataset.teacher_cache (a cache built with xmodal.data.teacher_cache)"
            )
    trainer = Trainer(
        cfg, model, dataset, collate_for(model), run_dir or run_dir_of(cfg),
        prepare_batch=teacher_prepare_batch(teacher), resume=resume, progress=progress,
    )
    return trainer.fit()
