"""Triton segment kernels (``backend="triton"`` / ``"triton_atomic"``) against the reference.

- ``test_interpreted_kernels``: the kernel checks of ``triton_segment_cases.py`` on CPU tensors in
  Triton's interpreter, in a subprocess with ``TRITON_INTERPRET=1`` (the variable only takes
  effect if set before the kernels are decorated, and must not leak into this process, where it
  would turn every Triton kernel imported later into a slow interpreted one).
- In this process, no kernel runs: the work-item plan, block choices, empty inputs (no launch),
  the dtype fallback and the error for CPU tensors without the interpreter.
- ``gpu`` tests: the same checks on CUDA at larger sizes, determinism, and the benchmark.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import triton

from xmodal.ops import Segments, segment_max, segment_mean, segment_reduce, segment_sum
from xmodal.ops.segment_reduce import _reference
from xmodal.ops.triton import segment_kernels as sk

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _load_cases():
    spec = importlib.util.spec_from_file_location("xmodal_tests_triton_segment_cases", HERE / "triton_segment_cases.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cases = _load_cases()


# ----------------------------------------------------------------------------- interpreter (subprocess)
def test_interpreted_kernels():
    """Every kernel, forward and backward, on CPU under TRITON_INTERPRET=1 (~40 s on 2 cores)."""
    env = dict(os.environ, TRITON_INTERPRET="1")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(HERE / "triton_segment_cases.py")]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=540)
    summary = proc.stdout.strip().splitlines()[-1:] or ["(no output)"]
    assert proc.returncode == 0, (
        f"interpreted kernel checks failed ({summary[0]}); rerun with\n"
        f"  TRITON_INTERPRET=1 {sys.executable} -m pytest -q tests/ops/triton_segment_cases.py\n"
        f"--- stdout (tail) ---\n{proc.stdout[-8000:]}\n--- stderr (tail) ---\n{proc.stderr[-3000:]}"
    )
    passed = re.search(r"(\d+) passed", summary[0])
    assert passed and int(passed.group(1)) >= 90, f"too few interpreted checks ran: {summary[0]}"


# ----------------------------------------------------------------------------- host side, no kernel
def test_plan_partitions_rows_into_chunks(monkeypatch):
    monkeypatch.setattr(sk, "CHUNK_ROWS", 8)
    segs = cases.make_segments(200, 20, "cpu", long_rows=50)
    plan = sk._plan(segs)
    assert sk._plan(segs) is plan, "the plan is cached on the index"
    items = torch.cat([grp.items for grp in plan.groups]).tolist()
    assert len(items) == sum(grp.num_items for grp in plan.groups)
    offsets, counts = segs.offsets.tolist(), segs.counts.tolist()
    covered, slots = [], {}
    for seg, start, end, slot in items:
        assert offsets[seg] <= start <= end <= offsets[seg + 1] and end - start <= 8
        assert (end > start) or counts[seg] == 0, "only empty segments have empty items"
        assert (slot >= 0) == (counts[seg] > 8), "partials exactly for split segments"
        covered.extend(range(start, end))
        if slot >= 0:
            slots.setdefault(seg, []).append((start, slot))
    assert sorted(covered) == list(range(200)), "every sorted position once"
    assert sum(1 for s, *_ in items if counts[s] == 0) == sum(c == 0 for c in counts) > 0
    for grp in plan.groups:
        lens = (grp.items[:, 2] - grp.items[:, 1])
        assert bool((lens <= sk.SHORT_ROWS).all()) if grp.short else bool((lens > sk.SHORT_ROWS).all())
    assert plan.num_splits == len(slots) >= 1 and plan.num_partials == sum(map(len, slots.values()))
    for seg, p0, p1 in plan.splits.tolist():
        # chunk order = row order = partial order: the combine pass is deterministic and keeps
        # the smallest argmax row
        assert [s for _, s in sorted(slots[seg])] == list(range(p0, p1))


def test_default_plan_splits_the_long_segment():
    segs = cases.make_segments(1000, 12, "cpu", long_rows=600)  # the layout of the N = 1000 cases
    plan = sk._plan(segs)
    assert int(segs.counts.max()) > sk.CHUNK_ROWS and plan.num_splits == 1 and plan.num_partials == 2


@pytest.mark.parametrize("c", [1, 2, 3, 4, 5, 17, 64, 100, 128, 129, 130, 256, 768, 1000])
def test_block_choices(c):
    bc = sk._block_c(c)
    assert bc & (bc - 1) == 0 and 4 <= bc <= 128 and triton_cdiv(c, bc) * bc >= c
    for mean_rows, num_items in [(0.0, 1), (1.0, 10), (2.5, 100_000), (16.0, 5000)]:
        grp = sk._Group(torch.zeros(0, 4, dtype=torch.long), num_items, mean_rows, True)
        bn, g = sk._group_launch(grp, bc, triton_cdiv(c, bc))
        assert bn & (bn - 1) == 0 and 2 <= bn <= 16 and bn * bc <= max(sk.TILE_ELEMS, 2 * bc)
        assert g & (g - 1) == 0 and 1 <= g <= 16
    bn, g = sk._group_launch(sk._Group(torch.zeros(0, 4, dtype=torch.long), 10, 300.0, False), bc, 1)
    assert g == 1 and bn * bc <= max(sk.TILE_ELEMS, 2 * bc)


def triton_cdiv(a, b):
    return -(-a // b)


@pytest.mark.parametrize("backend", ["triton", "triton_atomic"])
def test_empty_inputs_launch_nothing(backend):
    """N = 0, K = 0, C = 0 return before any launch (no interpreter in this process: a launch on
    CPU tensors would raise)."""
    for n, k, c in [(0, 4, 3), (0, 0, 3), (5, 3, 0)]:
        segs = Segments.from_ids(torch.arange(n) % max(k, 1), k)
        x = torch.randn(n, c, requires_grad=True)
        for fn in (segment_sum, segment_mean):
            out = fn(x, segs, backend=backend)
            assert out.shape == (k, c) and not out.any()
            out.sum().backward()
            assert x.grad.shape == (n, c)
        out, arg = segment_max(x, segs, backend=backend)
        assert out.shape == arg.shape == (k, c) and not out.any() and bool((arg == -1).all())


@pytest.mark.skipif(sk.INTERPRETED, reason="this process runs Triton's interpreter")
def test_cpu_tensors_without_interpreter_raise():
    segs = Segments.from_ids(torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match="backend='csr'"):
        segment_sum(torch.randn(3, 2), segs, backend="triton")


@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_unsupported_dtype_falls_back_to_torch(reduce):
    """fp8 is not a kernel dtype: the reference computes it (before any device check)."""
    segs = Segments.from_ids(torch.tensor([0, 2, 2, 0, 3]), 5)
    x = torch.randn(5, 3).to(torch.float8_e4m3fn)
    out, arg = sk.segment_reduce_forward(x, segs, reduce, atomic=False)
    rout, rarg = _reference(x, segs, reduce)
    assert out.dtype == x.dtype and torch.equal(out.float(), rout.float())
    assert (arg is None and rarg is None) or torch.equal(arg, rarg)
    g = torch.randn(5, 3).to(torch.float8_e4m3fn)
    grad = sk.segment_reduce_backward(g, segs, reduce, arg, 5, x.dtype)
    assert grad.dtype == x.dtype and grad.shape == (5, 3)
    if reduce == "sum":
        assert torch.equal(grad.float(), g.float()[segs.ids])


def _compile_sm90(kernel, args: dict, consts: dict, num_warps: int):
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    names = kernel.arg_names
    signature = {name: "constexpr" if name in consts else args[name] for name in names}
    src = ASTSource(kernel, signature, constexprs={(names.index(key),): val for key, val in consts.items()})
    options = {"num_warps": num_warps, "enable_fp_fusion": False}
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options=options)


@pytest.mark.skipif(sk.INTERPRETED, reason="this process runs Triton's interpreter")
@pytest.mark.parametrize("xdt", ["fp32", "bf16", "fp64"])
def test_kernels_compile_for_sm90(xdt):
    """Every kernel goes through Triton's full CUDA pipeline (TTIR -> PTX -> cubin with the bundled
    ptxas) for sm_90 without a GPU: catches what the interpreter accepts but the compiler rejects."""
    import triton.language as tl

    acc = tl.float64 if xdt == "fp64" else tl.float32
    adt = "fp64" if xdt == "fp64" else "fp32"
    i32, x, a, i64 = "i32", f"*{xdt}", f"*{adt}", "*i64"
    strides = dict(C=i32, stride_xn=i32, stride_xc=i32)
    jobs = [
        (sk._sorted_sum_kernel, dict(x_ptr=x, perm_ptr=i64, items_ptr=i64, inv_ptr=a, out_ptr=x, part_ptr=a,
                                     num_items=i32, **strides),
         dict(MEAN=True, ACC=acc, BLOCK_N=4, BLOCK_C=64, G=8), 1),
        (sk._sorted_max_kernel, dict(x_ptr=x, perm_ptr=i64, items_ptr=i64, out_ptr=x, arg_ptr=i64, pval_ptr=a,
                                     parg_ptr=i64, n=i32, num_items=i32, **strides),
         dict(ACC=acc, BLOCK_N=16, BLOCK_C=128, G=1), 8),
        (sk._combine_sum_kernel, dict(part_ptr=a, splits_ptr=i64, inv_ptr=a, out_ptr=x, C=i32),
         dict(MEAN=False, ACC=acc, BLOCK_C=128), 1),
        (sk._combine_max_kernel, dict(x_ptr=x, pval_ptr=a, parg_ptr=i64, splits_ptr=i64, out_ptr=x, arg_ptr=i64,
                                      **strides),
         dict(ACC=acc, BLOCK_C=4), 1),
        (sk._atomic_sum_kernel, dict(x_ptr=x, ids_ptr=i64, buf_ptr=a, n=i32, **strides),
         dict(ACC=acc, BLOCK_N=32, BLOCK_C=64, MERGE=True), 8),
        (sk._gather_backward_kernel, dict(g_ptr=x, ids_ptr=i64, inv_ptr=a, grad_ptr=x, n=i32, C=i32, stride_gk=i32,
                                          stride_gc=i32), dict(MEAN=True, ACC=acc, BLOCK_N=16, BLOCK_C=128), 8),
        (sk._max_backward_kernel, dict(g_ptr=x, arg_ptr=i64, grad_ptr=x, K=i32, C=i32, stride_gk=i32, stride_gc=i32),
         dict(BLOCK_K=512, BLOCK_C=4), 8),
    ]
    for kernel, args, consts, warps in jobs:
        compiled = _compile_sm90(kernel, args, consts, warps)
        assert compiled.asm.get("cubin"), kernel.__name__


# ----------------------------------------------------------------------------- on CUDA
GPU_SHAPES = [  # (N, C, K, long segment rows)
    (1, 1, 1, 0),
    (1000, 3, 12, 600),
    (100_000, 64, 5_000, 20_000),  # tiny segments plus one long one (chunks + second pass)
    (50_000, 130, 150, 0),  # SLIC-like: few long segments
    (20_000, 768, 2_000, 3_000),
]


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["triton", "triton_atomic"])
@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("shape", GPU_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_gpu_matches_reference(shape, dtype, reduce, backend):
    n, c, k, long_rows = shape
    segs = cases.make_segments(n, k, "cuda", long_rows=long_rows)
    x = cases.make_x(n, c, dtype, "cuda", ties=reduce == "max")
    cases.check_against_reference(x, segs, reduce, backend, exact_grad=False)


@pytest.mark.gpu
@pytest.mark.parametrize("layout", ["transposed", "strided"])
@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_gpu_non_contiguous(layout, reduce):
    segs = cases.make_segments(30_000, 1_000, "cuda", long_rows=4_000)
    x = cases.make_x(30_000, 96, torch.bfloat16, "cuda", ties=reduce == "max", layout=layout)
    for backend in ("triton", "triton_atomic"):
        cases.check_against_reference(x, segs, reduce, backend, exact_grad=False)


@pytest.mark.gpu
@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gpu_sorted_path_is_bitwise_deterministic(dtype, reduce):
    segs = cases.make_segments(200_000, 20_000, "cuda", long_rows=50_000)
    cases.check_deterministic(cases.make_x(200_000, 64, dtype, "cuda", ties=reduce == "max"), segs, reduce)


@pytest.mark.gpu
def test_gpu_deterministic_mode_avoids_atomics():
    segs = cases.make_segments(100_000, 500, "cuda", long_rows=10_000)
    x = torch.randn(100_000, 64, device="cuda")
    sorted_out = segment_reduce(x, segs, "sum", "triton")[0]
    prev = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        out = sk.segment_reduce_forward(x, segs, "sum", atomic=True)[0]
    finally:
        torch.use_deterministic_algorithms(prev)
    assert torch.equal(out, sorted_out)


@pytest.mark.gpu
def test_gpu_bench_runs():
    from xmodal.ops.triton.bench import bench_cuda

    r = bench_cuda(20_000, 64, 500, torch.bfloat16, long_rows=2_000)
    assert r["ops"]["mean_fwd_sorted"]["ms"] > 0 and r["ops"]["max_bwd"]["GB/s"] > 0
    assert set(r["speedup"]) >= {"mean_fwd_sorted_vs_scatter_add", "mean_bwd_vs_index_select"}
