"""Optimizer and learning-rate schedule from ``cfg.train``.

- :func:`build_optimizer`: ``sgd`` (momentum, dampening, nesterov), ``adam`` or ``adamw``, with
  ``weight_decay`` on every trainable parameter. With ``optimizer.head_lr`` set, parameters whose
  name (on the unwrapped model) starts with ``head.`` form a second group with that lr.
- :func:`lr_factor`: the schedule as a pure function of the optimizer step ``i`` (0-based, the
  step about to be taken) out of ``T`` steps, ``W`` warmup steps::

      i < W:        warmup_start + (1 - warmup_start) * i / W
      cosine, i>=W: min_lr_ratio + (1 - min_lr_ratio) * (1 + cos(pi * (i - W) / (T - 1 - W))) / 2
      constant:     1

  so the first step after warmup runs at ``lr`` and the last step (``i = T - 1``) at
  ``min_lr_ratio * lr``. Every group's lr is its own base lr times this factor.
- :func:`build_scheduler`: a ``torch.optim.lr_scheduler.LambdaLR`` over :func:`lr_factor`, stepped
  once per optimizer step. Its state (the step count) goes into checkpoints; the shape of the
  schedule comes from the config, so a resumed run with more ``max_steps`` stretches it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from xmodal.config.schema import ScheduleConfig, TrainConfig
from xmodal.errors import ConfigError

__all__ = ["HEAD_PREFIX", "param_groups", "build_optimizer", "lr_factor", "build_scheduler"]

HEAD_PREFIX = "head."


def param_groups(model: nn.Module, lr: float, head_lr: float | None) -> list[dict]:
    """Trainable parameters in one group at ``lr``, or two (``body``, ``head``) with ``head_lr``.

    Each group carries a ``name`` key (``"body"`` / ``"head"``) for logging.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ConfigError("the model has no trainable parameters (all have requires_grad=False).")
    if head_lr is None:
        return [{"name": "body", "params": [p for _, p in named], "lr": lr}]
    head = [p for n, p in named if n.startswith(HEAD_PREFIX)]
    body = [p for n, p in named if not n.startswith(HEAD_PREFIX)]
    if not head:
        tops = sorted({n.split(".")[0] for n, _ in named})
        raise ConfigError(
            f"train.optimizer.head_lr={head_lr} is set but the model has no trainable parameter named "
            f"'{HEAD_PREFIX}*' (its top-level modules: {', '.join(tops)}). Name the head module 'head' "
            "or set train.optimizer.head_lr=null."
        )
    groups = [{"name": "head", "params": head, "lr": head_lr}]
    if body:
        groups.insert(0, {"name": "body", "params": body, "lr": lr})
    return groups


def build_optimizer(model: nn.Module, train: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer of ``train.optimizer`` over ``model``'s trainable parameters (unwrapped
    model: names must not carry DDP's ``module.`` prefix)."""
    opt = train.optimizer
    groups = param_groups(model, train.lr, opt.head_lr)
    if opt.type == "sgd":
        return torch.optim.SGD(
            groups, lr=train.lr, momentum=opt.momentum, dampening=opt.dampening,
            nesterov=opt.nesterov, weight_decay=train.weight_decay,
        )
    if opt.type == "adam":
        return torch.optim.Adam(groups, lr=train.lr, betas=tuple(opt.betas), weight_decay=train.weight_decay)
    if opt.type == "adamw":
        return torch.optim.AdamW(groups, lr=train.lr, betas=tuple(opt.betas), weight_decay=train.weight_decay)
    raise ConfigError(f"train.optimizer.type={opt.type!r} is not one of sgd, adam, adamw.")


def lr_factor(step: int, total_steps: int, schedule: ScheduleConfig) -> float:
    """The lr multiplier at optimizer step ``step`` (0-based) of ``total_steps`` (formula above)."""
    warmup = schedule.warmup_steps
    if step < warmup:
        return schedule.warmup_start + (1.0 - schedule.warmup_start) * step / warmup
    if schedule.type == "constant":
        return 1.0
    span = total_steps - 1 - warmup
    progress = min(1.0, (step - warmup) / span) if span > 0 else 1.0
    return schedule.min_lr_ratio + (1.0 - schedule.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, schedule: ScheduleConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR giving every group ``base_lr * lr_factor(step)``; call ``.step()`` after each
    optimizer step. A warmup longer than the run (a two-step smoke test of a real config) just
    stays in warmup."""
    def factor(step: int) -> float:  # a closure, so LambdaLR keeps it out of its state_dict
        return lr_factor(step, total_steps, schedule)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
