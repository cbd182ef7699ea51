"""The training engine: :class:`Trainer` (loop, AMP, grad accumulation, clipping, hooks),
checkpoints and resume, init-from-weights, torchrun DDP, optimizer and schedule, logging.

::

    from xmodal.engine import Trainer
    summary = Trainer(cfg, model, train_set, collate_fn, run_dir).fit()

Multi-process: ``tools/dist_train.sh NGPUS CONFIG [key=value ...]`` (torchrun).
"""

from xmodal.engine.checkpoint import load_weights
from xmodal.engine.distributed import (
    GlobalBatchSampler,
    all_reduce_mean,
    barrier,
    destroy_distributed,
    distributed_session,
    get_rank,
    get_world_size,
    init_distributed,
    is_main,
)
from xmodal.engine.optim import build_optimizer, build_scheduler, lr_factor
from xmodal.engine.trainer import Hook, NonFiniteLossError, Trainer, move_to_device

__all__ = [
    "Trainer",
    "Hook",
    "NonFiniteLossError",
    "move_to_device",
    "load_weights",
    "build_optimizer",
    "build_scheduler",
    "lr_factor",
    "GlobalBatchSampler",
    "init_distributed",
    "destroy_distributed",
    "distributed_session",
    "get_rank",
    "get_world_size",
    "is_main",
    "barrier",
    "all_reduce_mean",
]
