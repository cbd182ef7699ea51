"""torch.distributed from torchrun's environment: process group, device, rank helpers.

torchrun (``python -m torch.distributed.run``) sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT`` in every process it starts; :func:`init_distributed` reads
them. Without them (a plain ``python`` run) everything here works as one process of rank 0 and
no process group is created. Backend: ``nccl`` when CUDA is available, ``gloo`` otherwise.
Device: ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU.

The helpers (:func:`get_rank`, :func:`barrier`, :func:`all_reduce_mean`, ...) are safe to call in
either case.

How the data is split (:class:`GlobalBatchSampler`): one permutation of the dataset per epoch,
drawn from ``(seed, epoch)`` alone. Optimizer step ``s`` of the epoch takes the ``G = B * W * A``
consecutive indices ``perm[s*G : (s+1)*G]`` (``B`` batch per process, ``W`` processes, ``A``
micro-batches per step); micro-batch ``m`` of rank ``r`` is
``perm[s*G + (m*W + r)*B : s*G + (m*W + r + 1)*B]``. A step therefore sees the same samples for
any ``W`` and ``A`` with the same ``G`` (2 processes x batch 2 = 1 process x batch 4 = 1 process
x batch 2 x 2 micro-batches). The last incomplete global batch is dropped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from xmodal.errors import ConfigError, XmodalError

__all__ = [
    "DistInfo",
    "init_distributed",
    "destroy_distributed",
    "distributed_session",
    "env_world_size",
    "default_device",
    "move_to_device",
    "is_distributed",
    "get_rank",
    "get_local_rank",
    "get_world_size",
    "is_main",
    "barrier",
    "all_reduce_mean",
    "all_reduce_sum",
    "all_gather_object",
    "GlobalBatchSampler",
    "steps_per_epoch",
    "derive_seed",
    "WorkerInit",
]


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: its global ``rank`` of ``world_size``, its ``local_rank`` on the
    node, its ``device``, and whether this call created the process group (``owner``)."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owner: bool = False


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when unset)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def default_device() -> torch.device:
    """``cuda:LOCAL_RANK`` when CUDA is available, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def move_to_device(batch: Any, device: torch.device) -> Any:
    """The default ``prepare_batch``: tensors (in dicts, lists, tuples, dataclasses) to
    ``device``; objects with a ``.to(device)`` method use it."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if callable(getattr(batch, "to", None)):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return {k: move_to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        moved = [move_to_device(v, device) for v in batch]
        return type(batch)(*moved) if hasattr(batch, "_fields") else type(batch)(moved)
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        return dataclasses.replace(
            batch, **{f.name: move_to_device(getattr(batch, f.name), device)
                      for f in dataclasses.fields(batch) if f.init}
        )
    return batch


def init_distributed(
    backend: str | None = None, device: torch.device | str | None = None, timeout_s: float = 1800.0
) -> DistInfo:
    """Create the process group from torchrun's env vars when ``WORLD_SIZE > 1``.

    Idempotent: with a group already initialized (by us or by the caller) it only reports it,
    with ``owner=False``. ``device`` defaults to :func:`default_device`; ``backend`` to ``nccl``
    on a CUDA device and ``gloo`` otherwise (``device="cpu"`` gives gloo on a GPU machine).
    """
    device = torch.device(device) if device is not None else default_device()
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(device)
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), get_local_rank(), device, owner=False)
    world_size = env_world_size()
    if world_size <= 1:
        return DistInfo(0, 1, 0, device, owner=False)
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise XmodalError(
            f"WORLD_SIZE={world_size} is set but {', '.join(missing)} is not: start multi-process "
            "runs with torchrun (tools/dist_train.sh NGPUS CONFIG), which sets all of them."
        )
    if not dist.is_available():
        raise XmodalError("this PyTorch build has no torch.distributed; run with one process.")
    backend = backend or ("nccl" if device.type == "cuda" else "gloo")
    dist.init_process_group(
        backend=backend,
        init_method="env://",
        timeout=timedelta(seconds=timeout_s),
        device_id=device if backend == "nccl" else None,
    )
    return DistInfo(dist.get_rank(), dist.get_world_size(), get_local_rank(), device, owner=True)


def destroy_distributed(wait: bool = True) -> None:
    """Tear the process group down, after a last barrier when ``wait`` (pass False on an error
    path: a peer may never reach the barrier); a no-op without a group."""
    if is_distributed():
        if wait:
            with contextlib.suppress(Exception):  # a peer that already died must not hide our error
                dist.barrier()
        dist.destroy_process_group()


@contextlib.contextmanager
def distributed_session(backend: str | None = None, device: torch.device | str | None = None) -> Iterator[DistInfo]:
    """``with distributed_session() as info:`` init from the env, tear down on exit if we made it."""
    info = init_distributed(backend, device)
    try:
        yield info
    finally:
        if info.owner:
            destroy_distributed(wait=sys.exc_info()[0] is None)


def is_distributed() -> bool:
    """True inside an initialized process group."""
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0")) if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """True on global rank 0 (and in a one-process run)."""
    return get_rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of ``tensor`` over all ranks (a new tensor; the input is left as it is)."""
    out = tensor.detach().clone()
    if is_distributed():
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of ``tensor`` over all ranks (a new tensor; the input is left as it is)."""
    out = all_reduce_sum(tensor)
    return out / get_world_size() if is_distributed() else out


def all_gather_object(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` (picklable objects); ``[obj]`` in one process."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * get_world_size()
    dist.all_gather_object(out, obj)
    return out


# ---------------------------------------------------------------------------------------------
# data split and seeds


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers (``derive_seed(seed, rank, epoch)``), via numpy's SeedSequence:
    nearby inputs give unrelated seeds."""
    hi, lo = np.random.SeedSequence([int(p) for p in parts]).generate_state(2)
    return int((int(hi) << 32 | int(lo)) & 0x7FFF_FFFF_FFFF_FFFF)


def steps_per_epoch(num_samples: int, batch_size: int, world_size: int, grad_accum: int) -> int:
    """Optimizer steps in one epoch (incomplete global batches dropped); ConfigError if none."""
    global_batch = batch_size * world_size * grad_accum
    steps = num_samples // global_batch
    if steps == 0:
        raise ConfigError(
            f"the training set has {num_samples} samples, fewer than one global batch of "
            f"{global_batch} (train.batch_size {batch_size} x {world_size} processes x "
            f"train.grad_accum {grad_accum}): lower train.batch_size or train.grad_accum, use fewer "
            "processes, or use more data."
        )
    return steps


class GlobalBatchSampler(Sampler[list[int]]):
    """This rank's micro-batches (lists of ``batch_size`` indices) for optimizer steps
    ``[start_step, stop_step)`` of ``epoch``; see the module docstring for the split."""

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        *,
        world_size: int = 1,
        rank: int = 0,
        grad_accum: int = 1,
        seed: int = 0,
        epoch: int = 0,
        start_step: int = 0,
        stop_step: int | None = None,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size}).")
        self.num_samples, self.batch_size = num_samples, batch_size
        self.world_size, self.rank, self.grad_accum = world_size, rank, grad_accum
        self.seed, self.epoch = seed, epoch
        full = steps_per_epoch(num_samples, batch_size, world_size, grad_accum)
        self.start_step = start_step
        self.stop_step = full if stop_step is None else min(stop_step, full)

    def permutation(self) -> np.ndarray:
        """The epoch's order of all samples (the same on every rank)."""
        return np.random.default_rng([self.seed, self.epoch]).permutation(self.num_samples)

    def __iter__(self) -> Iterator[list[int]]:
        perm = self.permutation()
        b, w = self.batch_size, self.world_size
        g = b * w * self.grad_accum
        for step in range(self.start_step, self.stop_step):
            for micro in range(self.grad_accum):
                begin = step * g + (micro * w + self.rank) * b
                yield perm[begin:begin + b].tolist()

    def __len__(self) -> int:
        return max(0, self.stop_step - self.start_step) * self.grad_accum


class WorkerInit:
    """``worker_init_fn`` seeding python, numpy and torch in each DataLoader worker from
    ``(seed, rank, epoch, worker_id)``. Datasets that derive augmentations from
    ``(seed, epoch, index)`` do not depend on it; it keeps any other randomness reproducible."""

    def __init__(self, seed: int, rank: int, epoch: int) -> None:
        self.seed, self.rank, self.epoch = seed, rank, epoch

    def __call__(self, worker_id: int) -> None:
        import random

        s = derive_seed(self.seed, self.rank, self.epoch, worker_id)
        random.seed(s)
        np.random.seed(s % 2**32)
        torch.manual_seed(s)
