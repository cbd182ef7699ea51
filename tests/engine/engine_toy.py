"""A tiny deterministic training problem for the engine tests (no BatchNorm, no spconv).

- :class:`ToyDataset`: ``n`` samples of 8 features; each item gets augmentation noise from a
  generator seeded by ``(seed, epoch, index)`` (``set_epoch`` picks the epoch), as the real
  datasets do. Indices in ``drop`` come back as None and the collate drops them.
- :func:`collate`: stacks into a :class:`ToyBatch` and counts dropped items in ``skipped``.
- :func:`prepare_batch`: moves the batch to the device and runs a frozen "teacher" (a fixed
  linear map) to make the regression target, as a distillation recipe does.
- :class:`ToyModel`: ``body`` (Linear-tanh, optional dropout) and ``head`` (Linear); returns
  ``{"loss": mse, "logs": {"mae": ...}}``.
- :func:`run_toy`: builds it all from a dict of ``train`` keys and runs the Trainer.

``toy_train.py`` runs :func:`run_toy` in a subprocess (torchrun or a plain python).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from xmodal.config import config_from_dict
from xmodal.engine import Hook, Trainer

FEATURES = 8


@dataclass
class ToyBatch:
    x: torch.Tensor  # [B, 8]
    index: torch.Tensor  # [B]
    y: torch.Tensor | None = None  # [B, 1], set by prepare_batch
    skipped: int = 0

    def to(self, device: torch.device) -> "ToyBatch":
        return ToyBatch(self.x.to(device), self.index.to(device), None if self.y is None else self.y.to(device), self.skipped)


class ToyDataset(torch.utils.data.Dataset):
    def __init__(self, n: int = 24, seed: int = 0, drop: Sequence[int] = ()) -> None:
        base = np.random.default_rng(1234)
        self.x = base.normal(size=(n, FEATURES)).astype(np.float32)
        self.seed, self.epoch, self.drop = seed, 0, set(drop)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int):
        if index in self.drop:
            return None
        rng = np.random.default_rng([self.seed, self.epoch, index])
        x = self.x[index] + 0.1 * rng.normal(size=FEATURES).astype(np.float32)
        return torch.from_numpy(x), index


def collate(items: list) -> ToyBatch:
    kept = [it for it in items if it is not None]
    x = torch.stack([it[0] for it in kept]) if kept else torch.zeros(0, FEATURES)
    index = torch.tensor([it[1] for it in kept], dtype=torch.long)
    return ToyBatch(x, index, skipped=len(items) - len(kept))


_TEACHER = torch.Generator().manual_seed(99)
TEACHER_W = torch.randn(FEATURES, 1, generator=_TEACHER)


def prepare_batch(batch: ToyBatch, device: torch.device) -> ToyBatch:
    batch = batch.to(device)
    with torch.no_grad():
        batch.y = torch.sin(batch.x @ TEACHER_W.to(device))
    return batch


class ToyModel(nn.Module):
    def __init__(self, seed: int = 0, dropout: float = 0.0, nan_at_call: int | None = None) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.body = nn.Sequential(nn.Linear(FEATURES, 16), nn.Tanh(), nn.Dropout(dropout))
        self.head = nn.Linear(16, 1)
        self.nan_at_call = nan_at_call
        self.calls = 0
        self.last_dtype: torch.dtype | None = None

    def forward(self, batch: ToyBatch) -> dict[str, Any]:
        self.calls += 1
        hidden = self.body(batch.x)
        self.last_dtype = hidden.dtype
        pred = self.head(hidden).float()
        loss = ((pred - batch.y) ** 2).mean()
        if self.nan_at_call is not None and self.calls >= self.nan_at_call:
            loss = loss * float("nan")
        return {"loss": loss, "logs": {"mae": (pred - batch.y).abs().mean().detach()}}


def make_config(train: dict[str, Any], seed: int = 0, name: str = "toy"):
    base = {"num_workers": 0, "lr": 0.05, "log": {"tensorboard": False, "interval": 2}}
    merged = {**base, **train}
    merged["log"] = {**base["log"], **train.get("log", {})}
    return config_from_dict({"name": name, "seed": seed, "train": merged})


class SleepHook(Hook):
    """Slows steps after ``after`` down, so a parent process can kill the run mid-way."""

    def __init__(self, seconds: float, after: int = 0) -> None:
        self.seconds, self.after = seconds, after

    def on_step_end(self, trainer, step, outputs) -> None:
        import time

        if step > self.after:
            time.sleep(self.seconds)


@dataclass
class ToyRun:
    summary: dict[str, Any]
    model: ToyModel
    trainer: Trainer
    extra: dict[str, Any] = field(default_factory=dict)


def run_toy(
    run_dir: str | Path,
    train: dict[str, Any],
    *,
    n: int = 24,
    seed: int = 0,
    dropout: float = 0.0,
    drop: Sequence[int] = (),
    nan_at_call: int | None = None,
    resume: bool | str = "auto",
    hooks: Sequence[Hook] = (),
    device: str = "cpu",  # the CPU tests stay on the CPU on GPU machines too
) -> ToyRun:
    cfg = make_config(train, seed=seed)
    model = ToyModel(seed=0, dropout=dropout, nan_at_call=nan_at_call)
    trainer = Trainer(cfg, model, ToyDataset(n, seed=seed, drop=drop), collate, run_dir,
                      prepare_batch=prepare_batch, hooks=hooks, resume=resume, progress=False,
                      device=torch.device(device))
    summary = trainer.fit()
    return ToyRun(summary, model, trainer)
