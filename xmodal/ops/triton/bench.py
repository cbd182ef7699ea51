"""GPU micro-benchmark of the segment kernels against native PyTorch scatter (CUDA only).

``python -m xmodal.ops.triton.bench`` prints a table for a few sizes; ``bench_cuda`` returns one
size as a dict. Bandwidth is the *minimum* bytes an op must move divided by its median time
(``triton.testing.do_bench``), to be read against the GPU's copy bandwidth (4.3 TB/s measured on
an H200, see reference/performance.md §0). Peers in the same run: ``scatter_add_`` with an
expanded index (what PyG / torch_scatter do for sum and mean), ``scatter_reduce_(amax)`` and
``index_select`` (the mean backward as a plain gather).
"""

from __future__ import annotations

import torch

__all__ = ["bench_cuda"]


def bench_cuda(n: int = 1_000_000, c: int = 256, k: int = 20_000, dtype: torch.dtype = torch.float32,
               *, long_rows: int = 0, seed: int = 0) -> dict:
    """Time forward / backward of segment mean and max on ``n`` rows x ``c`` channels into ``k``
    uniform random segments (plus one segment of ``long_rows`` rows for skew).

    Returns ``{"n", "c", "k", "dtype", "gpu", "ops": {name: {"ms", "GB/s"}}, "speedup": {...}}``
    where speedup is the peer's time over ours for the same op.
    """
    import triton.testing

    from xmodal.ops.segments import Segments
    from xmodal.ops.triton import segment_kernels as sk

    if not torch.cuda.is_available():
        raise RuntimeError("bench_cuda needs a CUDA device; the Triton kernels are timed on the GPU only")
    dev = torch.device("cuda", torch.cuda.current_device())
    gen = torch.Generator(device=dev).manual_seed(seed)
    ids = torch.randint(0, k, (n,), device=dev, generator=gen)
    if long_rows:
        ids[:long_rows] = 0
    segs = Segments.from_ids(ids, k)
    x = torch.randn((n, c), device=dev, dtype=dtype, generator=gen)
    g = torch.randn((k, c), device=dev, dtype=dtype, generator=gen)
    idx = ids[:, None].expand(n, c)
    _, arg = sk.segment_reduce_forward(x, segs, "max", False)  # also builds the cached work items
    e = x.element_size()
    rows, outs = n * c * e, k * c * e
    inv = segs.inv_counts(dtype)[:, None]
    ops = {  # name: (fn, minimum bytes moved)
        "mean_fwd_sorted": (lambda: sk.segment_reduce_forward(x, segs, "mean", False), rows + n * 8 + outs),
        "mean_fwd_atomic": (lambda: sk.segment_reduce_forward(x, segs, "mean", True), rows + n * 8 + outs),
        "mean_fwd_scatter_add": (
            lambda: torch.zeros((k, c), device=dev, dtype=dtype).scatter_add_(0, idx, x) * inv,
            rows + n * 8 + outs,
        ),
        "max_fwd_sorted": (lambda: sk.segment_reduce_forward(x, segs, "max", False), rows + n * 8 + outs + k * c * 8),
        "max_fwd_scatter_reduce": (
            lambda: torch.full((k, c), float("-inf"), device=dev, dtype=dtype).scatter_reduce_(0, idx, x, "amax"),
            rows + n * 8 + outs,
        ),
        "mean_bwd": (lambda: sk.segment_reduce_backward(g, segs, "mean", None, n, dtype), rows + n * 8 + outs),
        "mean_bwd_index_select": (lambda: (g * inv).index_select(0, ids), rows + n * 8 + outs),
        "max_bwd": (lambda: sk.segment_reduce_backward(g, segs, "max", arg, n, dtype), rows + outs + k * c * 8),
    }
    result = {"n": n, "c": c, "k": k, "dtype": str(dtype).replace("torch.", ""), "long_rows": long_rows,
              "gpu": torch.cuda.get_device_name(dev), "ops": {}}
    for name, (fn, nbytes) in ops.items():
        fn()
        ms = triton.testing.do_bench(fn, return_mode="median")
        result["ops"][name] = {"ms": ms, "GB/s": nbytes / ms / 1e6}
    t = {name: r["ms"] for name, r in result["ops"].items()}
    result["speedup"] = {
        "mean_fwd_sorted_vs_scatter_add": t["mean_fwd_scatter_add"] / t["mean_fwd_sorted"],
        "mean_fwd_atomic_vs_scatter_add": t["mean_fwd_scatter_add"] / t["mean_fwd_atomic"],
        "max_fwd_sorted_vs_scatter_reduce": t["max_fwd_scatter_reduce"] / t["max_fwd_sorted"],
        "mean_bwd_vs_index_select": t["mean_bwd_index_select"] / t["mean_bwd"],
    }
    return result


if __name__ == "__main__":  # pragma: no cover - needs a GPU
    for n_, c_, k_, dt_, long_ in [
        (1_000_000, 256, 20_000, torch.float32, 0),
        (1_000_000, 256, 20_000, torch.bfloat16, 0),
        (1_000_000, 64, 150, torch.float32, 0),  # SLIC-like: few, long segments
        (1_000_000, 64, 200_000, torch.float32, 300_000),  # voxels: tiny segments plus one huge
    ]:
        r = bench_cuda(n_, c_, k_, dt_, long_rows=long_)
        print(f"n={n_} c={c_} k={k_} {r['dtype']} long={long_} on {r['gpu']}")
        for name, v in r["ops"].items():
            print(f"  {name:26s} {v['ms']:8.3f} ms {v['GB/s']:8.0f} GB/s")
        print("  " + ", ".join(f"{key} {val:.2f}x" for key, val in r["speedup"].items()))
