"""Checkpoints (resume) and init-from-weights, two separate things.

**Resume** restores a whole run. A checkpoint ``<run>/checkpoints/step_XXXXXXX.pt`` (the number
is the optimizer steps done) is a dict::

    format: "xmodal-checkpoint", version: 1
    model: state dict of the unwrapped model (no DDP "module." prefix)
    optimizer, scheduler, scaler (None without fp16): their state dicts
    step: optimizer steps done; epoch: epochs completed (= the epoch of the next step);
    step_in_epoch: steps of that epoch done; steps_per_epoch, global_batch, world_size
    rng: one dict per rank {python, numpy, torch, cuda (when on CUDA)}
    losses: float64 tensor, the global loss of every step so far; skipped: samples dropped so far
    config: the resolved config as a plain dict

Every file is written with :func:`xmodal.utils.atomic.atomic_write` (a reader never sees half a
file); ``last.pt`` is a hard link to the newest one (a copy where the file system has no hard
links), replaced atomically, so ``torch.load("last.pt")`` always gives a whole checkpoint.
Everything in it loads with ``torch.load(..., weights_only=True)``.

**Init-from-weights** (:func:`load_weights`) only loads model weights (from a checkpoint, a
``model_final.pt`` or a bare state dict), renames key prefixes and reports missing / unexpected /
shape-mismatched keys; evaluation code uses it too.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from xmodal.errors import ConfigError, DataError, where
from xmodal.utils.atomic import atomic_write

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "checkpoint_dir",
    "checkpoint_path",
    "list_checkpoints",
    "save_checkpoint",
    "update_last",
    "rotate_checkpoints",
    "remove_stale_temp_files",
    "load_checkpoint",
    "find_resume_checkpoint",
    "save_model_final",
    "rng_state",
    "set_rng_state",
    "extract_state_dict",
    "remap_keys",
    "load_weights",
    "format_weights_report",
    "config_changes",
]

CHECKPOINT_FORMAT = "xmodal-checkpoint"
CHECKPOINT_VERSION = 1
_STEP_FILE = re.compile(r"step_(\d{7,})\.pt")


def checkpoint_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "checkpoints"


def checkpoint_path(run_dir: str | os.PathLike, step: int) -> Path:
    """``<run_dir>/checkpoints/step_XXXXXXX.pt`` (steps done, 7 digits or more)."""
    return checkpoint_dir(run_dir) / f"step_{step:07d}.pt"


def list_checkpoints(ckpt_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(step, path)`` of the step checkpoints in ``ckpt_dir``, oldest first."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt_dir.iterdir() if (m := _STEP_FILE.fullmatch(p.name))]
    return sorted(found)


def save_checkpoint(state: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """``torch.save`` ``state`` to ``path`` atomically (no partial file, even on a crash)."""
    path = Path(path)
    with atomic_write(path, "wb") as f:
        torch.save(dict(state), f)
    os.chmod(path, 0o666 & ~_umask())  # mkstemp made it 0600; checkpoints are shared like other files
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def update_last(path: str | os.PathLike) -> Path:
    """Point ``last.pt`` (next to ``path``) at ``path``: a hard link, or a copy, put in place by
    an atomic rename."""
    path = Path(path)
    last = path.parent / "last.pt"
    tmp = path.parent / f".last.pt.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    try:
        os.link(path, tmp)
        os.replace(tmp, last)
    except OSError:
        tmp.unlink(missing_ok=True)
        with open(path, "rb") as src, atomic_write(last, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return last


def remove_stale_temp_files(ckpt_dir: str | os.PathLike) -> list[Path]:
    """Delete the temporary files a killed writer left in ``ckpt_dir`` (``.step_*.tmp``,
    ``.last.pt.*.tmp``); call it before a run writes there."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    stale = [p for p in ckpt_dir.glob(".*.tmp") if p.name.startswith((".step_", ".last.pt."))]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def rotate_checkpoints(ckpt_dir: str | os.PathLike, keep: int, current_step: int) -> list[Path]:
    """Delete step checkpoints at or below ``current_step`` except the ``keep`` newest; return
    the deleted paths. Files of later steps (a run resumed from an older checkpoint) stay."""
    older = [p for s, p in list_checkpoints(ckpt_dir) if s <= current_step]
    doomed = older[:-keep] if keep > 0 else older
    for p in doomed:
        p.unlink(missing_ok=True)
    return doomed


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; DataError names the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"checkpoint {where(path)} does not exist; check the path (or resume=False).")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise DataError(
            f"checkpoint {where(path)} cannot be read ({type(exc).__name__}: {exc}); it is not an "
            "xmodal checkpoint or it is damaged. Resume from another file in the same folder."
        ) from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise DataError(
            f"{where(path)} is not an xmodal training checkpoint (no format={CHECKPOINT_FORMAT!r}); "
            "to start from its weights use train.init.path instead of resume."
        )
    if state.get("version") != CHECKPOINT_VERSION:
        raise DataError(
            f"checkpoint {where(path)} has version {state.get('version')}, this xmodal reads "
            f"version {CHECKPOINT_VERSION}; use the xmodal version that wrote it, or start from "
            "its weights with train.init.path."
        )
    return state


def find_resume_checkpoint(run_dir: str | os.PathLike, resume: bool | str | os.PathLike) -> Path | None:
    """The checkpoint to resume from: ``"auto"`` -> ``<run_dir>/checkpoints/last.pt`` if it
    exists, else None; ``True`` -> the same but it must exist; a path -> that file; ``False`` ->
    None."""
    if resume is False or resume is None:
        return None
    last = checkpoint_dir(run_dir) / "last.pt"
    if resume == "auto":
        return last if last.is_file() else None
    if resume is True:
        if not last.is_file():
            raise ConfigError(f"resume=True but {where(last)} does not exist; use resume='auto' or a path.")
        return last
    path = Path(resume)
    if not path.is_file():
        raise ConfigError(f"resume checkpoint {where(path)} does not exist; check the path.")
    return path


def save_model_final(model: nn.Module, config: Mapping[str, Any], path: str | os.PathLike, step: int) -> Path:
    """``{"model": state dict, "config": config, "step": step}``, atomically: what evaluation
    and :func:`load_weights` read."""
    return save_checkpoint({"model": _unwrap(model).state_dict(), "config": dict(config), "step": step}, path)


# ---------------------------------------------------------------------------------------------
# RNG states


def rng_state(device: torch.device | None = None) -> dict[str, Any]:
    """The python, numpy, torch (and CUDA, on a CUDA device) RNG states, in a form that loads
    with ``weights_only=True``."""
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if device is not None and device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: Mapping[str, Any], device: torch.device | None = None) -> None:
    """Restore what :func:`rng_state` returned."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npst = state["numpy"]
    np.random.set_state({
        "bit_generator": npst["bit_generator"],
        "state": {"key": npst["key"].numpy().astype(np.uint32), "pos": npst["pos"]},
        "has_gauss": npst["has_gauss"],
        "gauss": npst["gauss"],
    })
    torch.set_rng_state(state["torch"])
    if "cuda" in state and device is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


# ---------------------------------------------------------------------------------------------
# init-from-weights


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def extract_state_dict(obj: Any, source: str = "<object>") -> dict[str, torch.Tensor]:
    """The model state dict inside a loaded file: an xmodal checkpoint / ``model_final.pt``
    (``obj["model"]``), a ``{"state_dict": ...}`` file, or a bare state dict."""
    if isinstance(obj, Mapping):
        for key in ("model", "state_dict"):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return dict(inner)
        if obj and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
            return dict(obj)
    raise DataError(
        f"{source} holds no model weights: expected a state dict (name -> tensor) or a dict with "
        "one under 'model' or 'state_dict'."
    )


def remap_keys(state: Mapping[str, torch.Tensor], remap: Iterable[Sequence[str]]) -> dict[str, torch.Tensor]:
    """Rename key prefixes: each ``(from, to)`` rule in order, on the result of the previous one
    (``to = ""`` strips ``from``). Two keys renamed to one name raise ConfigError."""
    rules = [(str(a), str(b)) for a, b in remap]
    out: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    for key, value in state.items():
        new = key
        for src, dst in rules:
            if new.startswith(src):
                new = dst + new[len(src):]
        if new in out:
            raise ConfigError(
                f"train.init.remap {rules} renames both {origin[new]!r} and {key!r} to {new!r}; "
                "make the rules more specific."
            )
        out[new] = value
        origin[new] = key
    return out


def load_weights(
    model: nn.Module,
    path: str | os.PathLike,
    remap: Iterable[Sequence[str]] = (),
    strict: bool = False,
) -> dict[str, Any]:
    """Load model weights from ``path`` into ``model`` (its unwrapped module under DDP).

    Keys are renamed by ``remap`` (:func:`remap_keys`); tensors whose shape differs from the
    model's are not loaded. Returns a report: ``path``, ``remap``, ``loaded`` (count),
    ``model_keys`` (count), ``missing`` (model keys not in the file), ``unexpected`` (file keys
    not in the model), ``mismatched`` (``[{key, checkpoint, model}]`` shapes). With ``strict``,
    any missing, unexpected or mismatched key raises ConfigError listing them, and nothing is
    loaded.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"init weights {where(path)} do not exist; check train.init.path.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DataError(
            f"cannot read weights from {where(path)} ({type(exc).__name__}: {exc}). It must be a "
            "torch.save'd state dict or checkpoint of tensors; re-save it with "
            "torch.save(model.state_dict(), path)."
        ) from exc
    rules = [(str(a), str(b)) for a, b in remap]
    state = remap_keys(extract_state_dict(obj, where(path)), rules)
    target = _unwrap(model).state_dict()
    mismatched = [
        {"key": k, "checkpoint": list(v.shape), "model": list(target[k].shape)}
        for k, v in state.items() if k in target and tuple(v.shape) != tuple(target[k].shape)
    ]
    bad = {m["key"] for m in mismatched}
    loadable = {k: v for k, v in state.items() if k in target and k not in bad}
    report: dict[str, Any] = {
        "path": str(path),
        "remap": [list(r) for r in rules],
        "strict": strict,
        "loaded": len(loadable),
        "model_keys": len(target),
        "missing": sorted(k for k in target if k not in state),
        "unexpected": sorted(k for k in state if k not in target),
        "mismatched": mismatched,
    }
    if strict and (report["missing"] or report["unexpected"] or mismatched):
        raise ConfigError(
            format_weights_report(report)
            + "\ntrain.init.strict=true: fix train.init.remap (e.g. [[\"module.\", \"\"]] for DDP "
            "checkpoints), or set train.init.strict=false to load what matches."
        )
    _unwrap(model).load_state_dict(loadable, strict=False)
    return report


def format_weights_report(report: Mapping[str, Any], limit: int = 20) -> str:
    """A few lines for the console: counts, then up to ``limit`` keys of each kind."""

    def listing(items: list[str]) -> str:
        more = f", ... and {len(items) - limit} more" if len(items) > limit else ""
        return ", ".join(items[:limit]) + more

    lines = [f"init from '{report['path']}': loaded {report['loaded']} of {report['model_keys']} model tensors"]
    if report["remap"]:
        lines[0] += f" (remap {report['remap']})"
    if report["missing"]:
        lines.append(f"  missing in the file ({len(report['missing'])}): {listing(report['missing'])}")
    if report["unexpected"]:
        lines.append(f"  unexpected, not in the model ({len(report['unexpected'])}): {listing(report['unexpected'])}")
    if report["mismatched"]:
        items = [f"{m['key']} file {m['checkpoint']} vs model {m['model']}" for m in report["mismatched"]]
        lines.append(f"  shape mismatch, not loaded ({len(items)}): {listing(items)}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# resume checks

_RESUME_FREE = {"epochs", "max_steps", "checkpoint", "log", "num_workers", "init"}


def config_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What differs between a checkpoint's config and this run's: ``train`` keys that a resume
    keeps from the checkpoint (not the length, logging, checkpointing or init keys) and the seed."""

    def flat(d: Any, prefix: str) -> dict[str, Any]:
        if not isinstance(d, Mapping):
            return {prefix: d}
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}.{k}"))
        return out

    a = flat({k: v for k, v in (old.get("train") or {}).items() if k not in _RESUME_FREE}, "train")
    b = flat({k: v for k, v in (new.get("train") or {}).items() if k not in _RESUME_FREE}, "train")
    a["seed"], b["seed"] = old.get("seed"), new.get("seed")
    return [f"{k} was {a.get(k)!r} in the checkpoint's run and is {b.get(k)!r} now"
            for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
