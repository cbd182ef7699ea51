"""The training loop: epochs of optimizer steps of micro-batches, with hooks.

::

    trainer = Trainer(cfg, model, train_set, collate_fn, run_dir, prepare_batch=teacher_step)
    summary = trainer.fit()

One optimizer step (:meth:`Trainer.train_step`)::

    for each of grad_accum micro-batches (DDP gradient sync only on the last):
        batch = prepare_batch(batch, device)          # to the device, frozen teacher, ...
        with autocast:  out = model(batch)            # {"loss": scalar, "logs": {name: scalar}}
        (out["loss"] / grad_accum).backward()
    loss = mean over ranks and micro-batches          # the same number on every rank
    non-finite loss or gradient norm -> NonFiniteLossError, before the optimizer step
    clip gradients (train.grad_clip), optimizer step, lr schedule step

around it (:meth:`Trainer.fit`): log (rank 0), ``on_step_end`` hooks, a checkpoint every
``checkpoint.interval`` steps (0: at each epoch end), and at the end the last checkpoint and
``model_final.pt``. The run folder::

    <run_dir>/config.yaml, run_info.json   resolved config; git SHA, versions, command
              metrics.jsonl, tb/            training curves (xmodal.engine.logging)
              init_report.json              with train.init.path: what was loaded
              checkpoints/step_XXXXXXX.pt   the last checkpoint.keep of them (xmodal.engine.checkpoint)
              checkpoints/last.pt           hard link to the newest
              model_final.pt                {"model", "config", "step"}

Resume (``resume="auto"``: from ``checkpoints/last.pt`` when it exists) continues exactly where
the checkpoint was written, mid-epoch included: the data order is a function of
``(seed, epoch)`` and the step, and model, optimizer, schedule, scaler, RNG states and hook
states come from the checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from xmodal.config import config_to_dict
from xmodal.config.schema import ExperimentConfig
from xmodal.engine import checkpoint as ckpt
from xmodal.engine.distributed import (
    GlobalBatchSampler,
    WorkerInit,
    all_gather_object,
    all_reduce_mean,
    barrier,
    derive_seed,
    destroy_distributed,
    init_distributed,
    move_to_device,
    steps_per_epoch,
)
from xmodal.engine.logging import RunLogger
from xmodal.engine.optim import build_optimizer, build_scheduler
from xmodal.errors import ConfigError, XmodalError
from xmodal.utils.atomic import atomic_write
from xmodal.utils.run_info import write_run_info

__all__ = ["Hook", "NonFiniteLossError", "Trainer", "move_to_device"]


class NonFiniteLossError(XmodalError):
    """The loss (or gradient norm) became NaN or infinite; training stopped before the step."""


class Hook:
    """Override what you need. Hooks run on every rank (check ``trainer.is_main`` for rank-0
    work), in the order given, after the step's logging and before its checkpoint; a hook that
    switches the model to eval mode switches it back. ``state_dict`` / ``load_state_dict`` put a
    hook's state (an EMA, a counter) into checkpoints."""

    def on_train_start(self, trainer: Trainer) -> None: ...

    def on_step_end(self, trainer: Trainer, step: int, outputs: dict[str, Any]) -> None: ...

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None: ...

    def on_train_end(self, trainer: Trainer) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class Trainer:
    """Trains ``model`` on ``train_set`` as ``cfg.train`` says; see the module docstring.

    ``model(batch)`` returns ``{"loss": scalar tensor, "logs": {name: scalar tensor}}``; only
    ``model`` is wrapped in DDP (when ``WORLD_SIZE > 1``). ``prepare_batch(batch, device)``
    runs before it on every micro-batch (default :func:`move_to_device`); put frozen teachers
    there. ``batch.skipped`` (optional int) counts samples the collate dropped. ``resume``:
    ``"auto"`` (``checkpoints/last.pt`` if present), ``True`` (it must be), a checkpoint path,
    or ``False``. Without a process group and with ``WORLD_SIZE > 1`` the trainer creates one
    (torchrun env vars) and tears it down at the end of :meth:`fit`.
    """

    def __init__(
        self,
        cfg: ExperimentConfig,
        model: nn.Module,
        train_set: Any,
        collate_fn: Callable | None,
        run_dir: str | Path,
        *,
        prepare_batch: Callable[[Any, torch.device], Any] | None = None,
        hooks: Sequence[Hook] = (),
        device: torch.device | None = None,
        resume: bool | str | Path = "auto",
        progress: bool = True,
        find_unused_parameters: bool = False,
    ) -> None:
        self.cfg, self.train = cfg, cfg.train
        self.dist = init_distributed(device=device)
        self.rank, self.world_size = self.dist.rank, self.dist.world_size
        self.is_main = self.rank == 0
        self.device = self.dist.device  # ``device``, with an index for CUDA; else cuda:LOCAL_RANK or cpu
        self.run_dir = Path(run_dir)
        self.train_set, self.collate_fn = train_set, collate_fn
        self.prepare_batch = prepare_batch or move_to_device
        self.hooks = list(hooks)
        self.progress = progress

        t = self.train
        self.global_batch = t.batch_size * self.world_size * t.grad_accum
        self.steps_per_epoch = steps_per_epoch(len(train_set), t.batch_size, self.world_size, t.grad_accum)
        self.total_steps = t.max_steps if t.max_steps is not None else t.epochs * self.steps_per_epoch
        self.scaler = self._build_scaler()

        self.model = model.to(self.device)
        self.optimizer = build_optimizer(self.model, t)
        self.scheduler = build_scheduler(self.optimizer, t.schedule, self.total_steps)
        self.params = [p for p in self.model.parameters() if p.requires_grad]

        self.step = 0  # optimizer steps done
        self.losses: list[float] = []  # global loss of every step, from step 1
        self.skipped = 0  # samples the collate dropped, all ranks
        self.resumed_from: Path | None = None
        self.last_checkpoint: Path | None = None
        self.init_report: dict[str, Any] | None = None
        self.logger: RunLogger | None = None
        self._rng: dict[str, Any] | None = None  # RNG state to restore when fit() starts
        self._saved_step = -1
        self._warned_skip = False
        self._resume_notes: list[str] = []

        resume_path = ckpt.find_resume_checkpoint(self.run_dir, resume)
        if resume_path is not None:
            self._resume(resume_path)
        elif t.init.path:
            self._init_weights()

        self.wrapped: nn.Module = self.model
        if self.world_size > 1:
            self.wrapped = nn.parallel.DistributedDataParallel(
                self.model,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=find_unused_parameters,
            )

    @property
    def epoch(self) -> int:
        """Epochs completed (= the 0-based epoch of the next step)."""
        return self.step // self.steps_per_epoch

    # -- the loop --------------------------------------------------------------------------

    def fit(self) -> dict[str, Any]:
        """Train to ``total_steps``; return a summary (see :meth:`summary`)."""
        t0 = time.perf_counter()
        start_step = self.step
        ok = False
        try:
            self._start_run()
            self._call("on_train_start")
            while self.step < self.total_steps:
                self.train_epoch(self.epoch)
            self._finish_run()
            ok = True
        finally:
            if self.logger is not None:
                self.logger.close()
            if self.dist.owner:
                destroy_distributed(wait=ok)
        return self.summary(start_step, time.perf_counter() - t0)

    def train_epoch(self, epoch: int) -> None:
        """The steps of ``epoch`` not done yet, up to ``total_steps``."""
        spe = self.steps_per_epoch
        first, stop = self.step - epoch * spe, min(spe, self.total_steps - epoch * spe)
        if hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(epoch)  # before the loader's workers copy the dataset
        self.model.train()
        skipped_before = self.skipped
        micro: list[Any] = []
        for batch in self._loader(epoch, first, stop):
            micro.append(batch)
            if len(micro) == self.train.grad_accum:
                self._after_step(self.train_step(micro))
                micro = []
        if self.step == (epoch + 1) * spe:
            if self.skipped > skipped_before:
                self._log().warn(f"epoch {epoch}: the collate dropped {_samples(self.skipped - skipped_before)} "
                                 f"({self.skipped} in the run so far).")
            self._call("on_epoch_end", epoch)
            if self.train.checkpoint.interval == 0:
                self.save_checkpoint()

    def train_step(self, micro_batches: Sequence[Any]) -> dict[str, Any]:
        """One optimizer step over ``micro_batches``; returns the step's global numbers."""
        n = len(micro_batches)
        loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        logs_sum: dict[str, torch.Tensor] = {}
        skipped = 0
        out: Mapping[str, Any] = {}
        for i, batch in enumerate(micro_batches):
            skipped += int((batch.get("skipped") if isinstance(batch, Mapping) else getattr(batch, "skipped", 0)) or 0)
            sync = i == n - 1 or self.wrapped is self.model
            with contextlib.nullcontext() if sync else self.wrapped.no_sync():
                with self._autocast():  # the teacher in prepare_batch runs under it too
                    batch = self.prepare_batch(batch, self.device)
                    out = self.wrapped(batch)
                loss = _loss_of(out)
                self._backward(loss / n)
            loss_sum += loss.detach().double()
            for key, value in (out.get("logs") or {}).items():
                logs_sum[key] = logs_sum.get(key, 0.0) + torch.as_tensor(value).detach().double().to(self.device)

        keys = sorted(logs_sum)
        local = torch.stack([loss_sum / n, *(logs_sum[k] / n for k in keys),
                             torch.tensor(float(skipped), device=self.device, dtype=torch.float64)])
        reduced = all_reduce_mean(local).tolist()
        loss_value, log_values, skipped = reduced[0], reduced[1:-1], round(reduced[-1] * self.world_size)
        if not math.isfinite(loss_value):
            self._stop_non_finite("loss", loss_value)

        lrs = {g.get("name", str(i)): g["lr"] for i, g in enumerate(self.optimizer.param_groups)}
        grad_norm = self._optimizer_step()
        self.step += 1
        self.losses.append(loss_value)
        self.skipped += skipped
        return {
            "loss": loss_value,
            "logs": dict(zip(keys, log_values)),
            "lr": next(iter(lrs.values())),  # of the first group (the body's with head_lr)
            "lr_groups": lrs,
            "grad_norm": grad_norm,
            "skipped": skipped,
            "model_outputs": out,  # the last micro-batch's own outputs (this rank)
        }

    # -- one step, in parts ---------------------------------------------------------------

    def _autocast(self):
        if self.train.amp == "off":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.train.amp == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def _backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def _optimizer_step(self) -> float:
        """Unscale, clip, step, schedule, zero; return the gradient norm before clipping."""
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.train.grad_clip is not None:
            norm = torch.nn.utils.clip_grad_norm_(self.params, self.train.grad_clip)
        else:
            norm = torch.nn.utils.get_total_norm([p.grad for p in self.params if p.grad is not None])
        grad_norm = float(norm)
        if self.scaler is not None:  # an inf gradient under fp16: the scaler skips the step
            self.scaler.step(self.optimizer)
            self.scaler.update()
        elif not math.isfinite(grad_norm):
            self._stop_non_finite("gradient norm", grad_norm)
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return grad_norm

    def _after_step(self, outputs: dict[str, Any]) -> None:
        step, log = self.step, self._log()
        log.step_done(self.global_batch, outputs["loss"], outputs["lr"])
        if outputs["skipped"] and not self._warned_skip:
            self._warned_skip = True
            log.warn(f"step {step}: the collate dropped {_samples(outputs['skipped'])} of the global batch "
                     f"of {self.global_batch}; counts are in metrics.jsonl ('skipped') and fit()['skipped_samples'].")
        if log.should_log(step):
            record = {"step": step, "epoch": (step - 1) // self.steps_per_epoch,
                      **{k: outputs[k] for k in ("loss", "lr", "grad_norm", "skipped")},
                      "skipped_total": self.skipped, "logs": outputs["logs"]}
            if len(outputs["lr_groups"]) > 1:
                record["lr_groups"] = outputs["lr_groups"]
            log.log(record)
        self._call("on_step_end", step, outputs)
        interval = self.train.checkpoint.interval
        if interval and step % interval == 0:
            self.save_checkpoint()

    def _stop_non_finite(self, what: str, value: float) -> None:
        step = self.step + 1
        epoch, k = divmod(self.step, self.steps_per_epoch)
        if self.last_checkpoint is not None:
            good = (f"The last good state is '{self.last_checkpoint}' (step {self._saved_step}); resume from it "
                    f"with resume='{self.last_checkpoint}'.")
        else:
            good = "No checkpoint was written before it; the run has to start again."
        t = self.train
        raise NonFiniteLossError(
            f"non-finite {what} ({value}) at step {step} (epoch {epoch}, step {k + 1} of "
            f"{self.steps_per_epoch} in it) of run '{self.run_dir}'; training stopped before the "
            f"optimizer step. {good} Try a lower train.lr (now {t.lr}), train.grad_clip (now "
            f"{t.grad_clip}), train.amp=off (now {t.amp}) or a longer warmup "
            f"(train.schedule.warmup_steps, now {t.schedule.warmup_steps})."
        )

    # -- checkpoints ----------------------------------------------------------------------

    def save_checkpoint(self) -> Path:
        """Write ``checkpoints/step_XXXXXXX.pt`` for the current step (all ranks must call it:
        it gathers their RNG states), update ``last.pt``, drop old ones."""
        rng = all_gather_object(ckpt.rng_state(self.device))
        path = ckpt.checkpoint_path(self.run_dir, self.step)
        if self.is_main:
            ckpt.save_checkpoint(self._state(rng), path)
            ckpt.update_last(path)
            ckpt.rotate_checkpoints(path.parent, self.train.checkpoint.keep, self.step)
        barrier()
        self._saved_step, self.last_checkpoint = self.step, path
        return path

    def _state(self, rng: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "format": ckpt.CHECKPOINT_FORMAT,
            "version": ckpt.CHECKPOINT_VERSION,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "step": self.step,
            "epoch": self.epoch,
            "step_in_epoch": self.step % self.steps_per_epoch,
            "steps_per_epoch": self.steps_per_epoch,
            "global_batch": self.global_batch,
            "world_size": self.world_size,
            "rng": rng,
            "losses": torch.tensor(self.losses, dtype=torch.float64),
            "skipped": self.skipped,
            "hooks": [h.state_dict() for h in self.hooks],
            "config": config_to_dict(self.cfg),
        }

    def _resume(self, path: Path) -> None:
        state = ckpt.load_checkpoint(path)
        for key, mine in (("global_batch", self.global_batch), ("steps_per_epoch", self.steps_per_epoch)):
            if state[key] != mine:
                raise ConfigError(
                    f"cannot resume from '{path}': it was written with {key} {state[key]}, this run has "
                    f"{mine} (global batch = train.batch_size x processes x train.grad_accum; steps per "
                    "epoch also depend on the dataset size). Resume needs the same; to start a new run "
                    "from its weights set train.init.path and resume=False."
                )
        self.model.load_state_dict(state["model"])
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except ValueError as exc:
            raise ConfigError(f"cannot resume from '{path}': its optimizer state does not fit this "
                              f"model/optimizer ({exc}); was train.optimizer changed?") from exc
        self.scheduler.load_state_dict(state["scheduler"])
        factor = self.scheduler.lr_lambdas[0](self.scheduler.last_epoch)  # this config's schedule
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            group["lr"] = base * factor
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        for hook, hook_state in zip(self.hooks, state.get("hooks") or []):
            hook.load_state_dict(hook_state)
        self.step = int(state["step"])
        self.losses = state["losses"].tolist()
        self.skipped = int(state["skipped"])
        rng = state["rng"]
        self._rng = rng[self.rank] if len(rng) == self.world_size else None
        self.resumed_from, self.last_checkpoint, self._saved_step = path, path, self.step
        self._resume_notes = ckpt.config_changes(state["config"], config_to_dict(self.cfg))
        if len(rng) != self.world_size:
            self._resume_notes.append(f"it was written by {len(rng)} processes, this run has {self.world_size}: "
                                      "model-side random streams are reseeded (the data order is unchanged)")

    def _init_weights(self) -> None:
        init = self.train.init
        report = ckpt.load_weights(self.model, init.path, init.remap, init.strict)
        self.init_report = report
        if self.is_main:
            print(ckpt.format_weights_report(report), flush=True)
            with atomic_write(self.run_dir / "init_report.json", "w") as f:
                json.dump(report, f, indent=2)
                f.write("\n")

    # -- run start and end ----------------------------------------------------------------

    def _start_run(self) -> None:
        if self.is_main:
            ckpt.remove_stale_temp_files(ckpt.checkpoint_dir(self.run_dir))
            extra = {"world_size": self.world_size, "global_batch": self.global_batch,
                     "resumed_from": str(self.resumed_from) if self.resumed_from else None,
                     "start_step": self.step}
            write_run_info(self.run_dir, self.cfg, extra)
        self.logger = RunLogger(
            self.run_dir, self.train.log, enabled=self.is_main, total_steps=self.total_steps,
            start_step=self.step, progress=self.progress, run_name=self.cfg.name,
            config=config_to_dict(self.cfg),
        )
        if self.resumed_from is not None:
            self.logger.info(f"resumed from '{self.resumed_from}' at step {self.step} (epoch {self.epoch}, "
                             f"step {self.step % self.steps_per_epoch} of {self.steps_per_epoch} in it)")
            for note in self._resume_notes:
                self.logger.warn(f"resume from '{self.resumed_from}': {note}")
        if self._rng is not None:
            ckpt.set_rng_state(self._rng, self.device)
        else:
            seed = derive_seed(self.cfg.seed, self.rank, self.step)
            random.seed(seed)
            np.random.seed(seed % 2**32)
            torch.manual_seed(seed)

    def _finish_run(self) -> None:
        if self._saved_step != self.step:
            self.save_checkpoint()
        if self.is_main:
            ckpt.save_model_final(self.model, config_to_dict(self.cfg), self.run_dir / "model_final.pt", self.step)
        barrier()
        self._call("on_train_end")

    def summary(self, start_step: int = 0, wall_time_s: float = 0.0) -> dict[str, Any]:
        """``steps`` done, ``start_step`` of this fit() call, ``epochs`` (a fraction when
        max_steps ends mid-epoch), ``last_loss``, ``losses`` (every step of the run),
        ``wall_time_s`` of this call, ``skipped_samples``, and where things are."""
        return {
            "steps": self.step,
            "start_step": start_step,
            "total_steps": self.total_steps,
            "epochs": self.step / self.steps_per_epoch,
            "steps_per_epoch": self.steps_per_epoch,
            "global_batch": self.global_batch,
            "last_loss": self.losses[-1] if self.losses else None,
            "losses": list(self.losses),
            "wall_time_s": wall_time_s,
            "skipped_samples": self.skipped,
            "resumed_from": str(self.resumed_from) if self.resumed_from else None,
            "last_checkpoint": str(self.last_checkpoint) if self.last_checkpoint else None,
            "model_final": str(self.run_dir / "model_final.pt"),
            "run_dir": str(self.run_dir),
        }

    # -- helpers --------------------------------------------------------------------------

    def _build_scaler(self) -> torch.amp.GradScaler | None:
        amp = self.train.amp
        if amp == "fp16":
            if self.device.type != "cuda":
                raise ConfigError(f"train.amp=fp16 needs a CUDA device (fp16 GradScaler); this run is on "
                                  f"{self.device}. Use train.amp=bf16 on the CPU, or train.amp=off.")
            return torch.amp.GradScaler("cuda")
        if amp == "bf16" and self.device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError(f"train.amp=bf16: {torch.cuda.get_device_name(self.device)} has no bf16; "
                              "use train.amp=fp16 or off.")
        return None

    def _loader(self, epoch: int, first: int, stop: int) -> DataLoader:
        t = self.train
        sampler = GlobalBatchSampler(
            len(self.train_set), t.batch_size, world_size=self.world_size, rank=self.rank,
            grad_accum=t.grad_accum, seed=self.cfg.seed, epoch=epoch, start_step=first, stop_step=stop,
        )
        generator = torch.Generator().manual_seed(derive_seed(self.cfg.seed, self.rank, epoch))
        return DataLoader(
            self.train_set, batch_sampler=sampler, collate_fn=self.collate_fn, num_workers=t.num_workers,
            pin_memory=self.device.type == "cuda", worker_init_fn=WorkerInit(self.cfg.seed, self.rank, epoch),
            generator=generator, persistent_workers=False,  # workers see set_epoch: new ones each epoch
        )

    def _call(self, name: str, *args: Any) -> None:
        for hook in self.hooks:
            getattr(hook, name)(self, *args)

    def _log(self) -> RunLogger:
        assert self.logger is not None, "fit() creates the logger"
        return self.logger


def _samples(n: int) -> str:
    return f"{n} sample" + ("" if n == 1 else "s")


def _loss_of(out: Any) -> torch.Tensor:
    loss = out.get("loss") if isinstance(out, Mapping) else None
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        got = type(out).__name__
        if isinstance(out, Mapping):
            shape = str(tuple(loss.shape)) if isinstance(loss, torch.Tensor) else ""
            got += f" with loss {type(loss).__name__}{shape}"
        raise TypeError("model(batch) must return a dict with 'loss' (a scalar tensor) and optionally 'logs' "
                        f"(name -> scalar tensor); got {got}")
    return loss.reshape(())
