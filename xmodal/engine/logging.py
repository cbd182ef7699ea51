"""Training logs of rank 0: ``metrics.jsonl``, TensorBoard, wandb (opt-in) and a progress bar.

``<run>/metrics.jsonl`` holds one JSON object per logged step::

    {"step": 10, "epoch": 0, "loss": 0.52, "lr": 0.001, "grad_norm": 1.3,
     "samples_per_s": 812.0, "skipped": 0, "logs": {"mae": 0.41}, "time": 3.2}

``step`` counts optimizer steps from 1; ``epoch`` is the (0-based) epoch that step belongs to;
``loss`` and ``logs`` are means over all ranks and micro-batches of that step; ``samples_per_s``
is the global rate since the previous line; ``time`` is seconds since this process started the
run. Lines are written every ``log.interval`` steps and always at step 1 and the last step. On
resume, lines after the resumed step (from the killed run) are dropped first, and TensorBoard
purges its events after that step, so both curves stay single-valued.

Other ranks get a :class:`RunLogger` that does nothing.
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tqdm import tqdm

from xmodal.config.schema import LogConfig
from xmodal.errors import ConfigError
from xmodal.utils.atomic import atomic_write

__all__ = ["RunLogger", "truncate_metrics"]


def truncate_metrics(path: str | Path, last_step: int) -> None:
    """Drop the lines of ``metrics.jsonl`` whose step is after ``last_step`` (atomically)."""
    path = Path(path)
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if int(json.loads(line)["step"]) <= last_step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            continue  # a torn last line of a killed run
    with atomic_write(path, "w") as f:
        f.write("".join(f"{line}\n" for line in kept))


class RunLogger:
    """Rank 0's sinks; a no-op on other ranks (``enabled=False``)."""

    def __init__(
        self,
        run_dir: str | Path,
        cfg: LogConfig,
        *,
        enabled: bool,
        total_steps: int,
        start_step: int = 0,
        progress: bool = True,
        run_name: str = "",
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.enabled = enabled
        self.cfg = cfg
        self.total_steps = total_steps
        self.run_dir = Path(run_dir)
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self._t0 = time.perf_counter()
        self._last_time = self._t0
        self._last_samples = 0
        self._samples = 0
        self._file = None
        self._tb = None
        self._wandb = None
        self._bar = None
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if start_step > 0:
            truncate_metrics(self.metrics_path, start_step)
        else:  # a fresh run in this folder starts a fresh curve
            self.metrics_path.unlink(missing_ok=True)
        self._file = open(self.metrics_path, "a", encoding="utf-8")
        if cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # late: the import takes a second

            self._tb = SummaryWriter(str(self.run_dir / "tb"), purge_step=start_step + 1 if start_step else None)
            if config:
                text = json.dumps(dict(config), indent=2, default=str)
                self._tb.add_text("config", f"```\n{text}\n```", start_step)
        if cfg.wandb:
            try:
                import wandb
            except ImportError:
                raise ConfigError(
                    "train.log.wandb=true but wandb is not installed; pip install wandb "
                    "(set WANDB_MODE=offline without network) or set train.log.wandb=false."
                ) from None
            self._wandb = wandb.init(
                project="xmodal", name=run_name or None, dir=str(self.run_dir),
                config=dict(config or {}), resume="allow",
            )
        self._bar = tqdm(
            total=total_steps, initial=start_step, desc=run_name or "train", unit="step",
            dynamic_ncols=True, disable=not progress, file=sys.stderr,
        )

    def should_log(self, step: int) -> bool:
        """Log steps: every ``interval``, the first and the last."""
        return step == 1 or step == self.total_steps or step % self.cfg.interval == 0

    def step_done(self, samples: int, loss: float, lr: float) -> None:
        """Advance the progress bar by one optimizer step of ``samples`` global samples."""
        self._samples += samples
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{loss:.4g}", lr=f"{lr:.3g}", refresh=False)
            self._bar.update(1)

    def log(self, record: dict[str, Any]) -> None:
        """Write one step's record (``step``, ``epoch``, ``loss``, ``lr``, ``logs``, ...)."""
        if not self.enabled:
            return
        now = time.perf_counter()
        rate = (self._samples - self._last_samples) / max(now - self._last_time, 1e-9)
        self._last_time, self._last_samples = now, self._samples
        record = {**record, "samples_per_s": round(rate, 3), "time": round(now - self._t0, 3)}
        self._file.write(json.dumps(record, default=_jsonable) + "\n")
        self._file.flush()
        scalars = {k: v for k, v in record.items() if k not in ("step", "epoch", "logs", "time")}
        scalars.update(record.get("logs") or {})
        scalars = {k: float(v) for k, v in scalars.items() if isinstance(v, (int, float)) and v is not None}
        step = int(record["step"])
        if self._tb is not None:
            for key, value in scalars.items():
                self._tb.add_scalar(f"train/{key}", value, step)
        if self._wandb is not None:
            self._wandb.log({f"train/{k}": v for k, v in scalars.items()}, step=step)
        if self._bar is not None and self._bar.disable:
            print(_line(record), file=sys.stderr, flush=True)  # no bar: one line per log step

    def info(self, message: str) -> None:
        """A message on rank 0's console that does not break the progress bar."""
        if self.enabled:
            tqdm.write(message, file=sys.stderr)

    def warn(self, message: str) -> None:
        """A warning (rank 0 only)."""
        if self.enabled:
            warnings.warn(message, stacklevel=2)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        if self._file is not None:
            self._file.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
        self._bar = self._file = self._tb = self._wandb = None


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _line(record: Mapping[str, Any]) -> str:
    parts = [f"step {record['step']}", f"epoch {record['epoch']}"]
    for key in ("loss", "lr", "grad_norm", "samples_per_s"):
        value = record.get(key)
        if isinstance(value, float) and math.isfinite(value):
            parts.append(f"{key} {value:.4g}")
    parts += [f"{k} {v:.4g}" for k, v in (record.get("logs") or {}).items()]
    return " | ".join(parts)
