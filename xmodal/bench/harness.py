"""Timing and memory measurement shared by the benchmarks.

Rules (DESIGN.md, shared/reference/performance.md): the thread count is fixed per measurement;
every op is timed against a peer on the same inputs in the same run, runs interleaved (ours, peer,
ours, peer, ...) so drift on a shared machine hits both; the median is reported and ratios are the
result, absolute times only context.

Peak memory on CPU is the high-water mark of the resident set while one call runs, measured in a
forked child with glibc's mmap threshold pinned (every large tensor is its own mapping, returned
on free) so the resident set follows the live tensors; on CUDA it is
``torch.cuda.max_memory_allocated`` above what was allocated before the call.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import platform
import statistics
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


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _child(fn, before, conn, threads):
    try:
        torch.set_num_threads(threads)
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 64 * 1024)
        fn()  # warm: lazy imports, caches
        if before is not None:
            before()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
        base = _status_kib("VmRSS")
        fn()
        conn.send((_status_kib("VmHWM") - base) * 1024)
    except Exception as e:  # pragma: no cover - reported to the parent
        conn.send(repr(e))
    finally:
        conn.close()


def peak_memory(fn: Callable[[], object], device=None, threads: int = 1, before: Callable[[], object] | None = None) -> int | None:
    """Bytes of memory one call of ``fn`` needs above what is live before it (see module
    docstring); ``before`` runs first, outside the measurement (e.g. drop the gradients a
    previous call left, so that freeing them does not hide the call's own peak). None where it
    cannot be measured (no /proc, no fork)."""
    if device is not None and torch.device(device).type == "cuda":
        fn()
        if before is not None:
            before()
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    if platform.system() != "Linux" or "fork" not in mp.get_all_start_methods():
        return None
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(fn, before, send, threads))
    proc.start()
    send.close()
    result = recv.recv() if recv.poll(600) else "timeout"
    proc.join()
    if isinstance(result, str):
        raise RuntimeError(f"peak_memory: the measuring child failed: {result}")
    return result


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
