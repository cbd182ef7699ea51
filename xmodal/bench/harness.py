"""Timing and memory measurement shared by the benchmarks.

Rules (DESIGN.md, shared/reference/performance.md): the thread count is fixed per measurement;
every op is timed against a peer on the same inputs in the same run, runs interleaved (ours, peer,
ours, peer, ...) so drift on a shared machine hits both; the median is reported and ratios are the
result, absolute times only context.

Peak memory on CPU is the high-water mark of the resident set while one call runs, measured in a
fresh interpreter with glibc's mmap threshold pinned (every large tensor is its own mapping,
returned on free) so the resident set follows the live tensors; on CUDA it is
``torch.cuda.max_memory_allocated`` above what was allocated before the call.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Callable

import torch

__all__ = ["time_interleaved", "peak_memory", "machine_info", "sync"]


def sync(device: torch.device | str | None = None) -> None:
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(fns: dict[str, Callable[[], object]], repeat: int = 7, warmup: int = 1, device=None) -> dict[str, float]:
    """Median wall time in ms of each callable, calls interleaved round-robin."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: statistics.median(v) for name, v in times.items()}


# ----------------------------------------------------------------------------- memory
_M_MMAP_THRESHOLD = -3

_CHILD = """
import ctypes, json, sys
ctypes.CDLL("libc.so.6").mallopt({threshold}, 64 * 1024)  # before any allocation
import importlib, torch
torch.set_num_threads(1)
module, name = {factory!r}.split(":")
fn, before = getattr(importlib.import_module(module), name)(**json.loads({kwargs!r}))
fn()  # warm: lazy imports, caches
if before is not None:
    before()
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset VmHWM to the current resident set
base = status("VmRSS")
fn()
print("XMODAL_PEAK", status("VmHWM") - base)
"""


def peak_memory(factory: str, kwargs: dict | None = None, device=None) -> int | None:
    """Bytes of memory one call needs above what is live before it (see module docstring).

    ``factory`` names a function ``"module:function"`` that, called with ``kwargs``, builds its
    inputs and returns ``(fn, before)``: ``fn`` is measured, ``before`` (or None) runs first,
    outside the measurement (e.g. drop the gradients an earlier call left, so that freeing them
    does not hide the call's own peak). On CPU this runs in a fresh interpreter (one thread, the
    allocator pinned before anything is allocated), so nothing of this process (its caches, its
    OpenMP pool) interferes. None where it cannot be measured (not Linux).
    """
    kwargs = dict(kwargs or {})
    if device is not None and torch.device(device).type == "cuda":
        import importlib

        module, name = factory.split(":")
        fn, before = getattr(importlib.import_module(module), name)(device=device, **kwargs)
        fn()
        if before is not None:
            before()
        torch.cuda.synchronize(device)
        live = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - live
    if platform.system() != "Linux":
        return None
    code = _CHILD.format(threshold=_M_MMAP_THRESHOLD, factory=factory, kwargs=json.dumps(kwargs))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=1800)
    for line in res.stdout.splitlines():
        if line.startswith("XMODAL_PEAK "):
            return int(line.split()[1])
    raise RuntimeError(f"peak_memory: measuring {factory} failed (exit {res.returncode}): {res.stderr[-2000:]}")


def temporary_tensor(mib: int = 64):
    """A factory for the harness's own test: one call allocates ``mib`` MiB and frees it."""

    def fn():
        t = torch.ones(mib * 2**18)
        return float(t[0])

    return fn, None


# ----------------------------------------------------------------------------- context
def machine_info() -> dict:
    """What the numbers were measured on."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        import triton

        info["triton"] = triton.__version__
    except Exception:  # pragma: no cover
        info["triton"] = None
    return info
