"""Checks of the Triton segment kernels against the reference, shared by two runs:

- on CPU under Triton's interpreter: ``tests/ops/test_segment_triton.py::test_interpreted_kernels``
  runs this file with ``python -m pytest`` in a subprocess whose environment has
  ``TRITON_INTERPRET=1`` (the variable must be set before the kernels are decorated, and setting
  it in the main test process would turn every later Triton kernel into an interpreted one);
- on CUDA: the ``gpu`` tests of ``test_segment_triton.py`` import the ``check_*`` helpers below and
  call them at larger sizes.

Its name does not match ``test_*.py``, so the main run does not collect it. Run it by hand with
``TRITON_INTERPRET=1 python -m pytest -q tests/ops/triton_segment_cases.py``.
"""

from __future__ import annotations

import os

import pytest
import torch

from xmodal.ops import Segments, segment_reduce

F32, F16, BF16, F64 = torch.float32, torch.float16, torch.bfloat16, torch.float64
TOL = {F32: dict(rtol=1e-5, atol=1e-4), F16: dict(rtol=2e-3, atol=1e-3), BF16: dict(rtol=1.6e-2, atol=1e-2),
       F64: dict(rtol=1e-12, atol=1e-12)}


# ----------------------------------------------------------------------------- helpers
def make_segments(n: int, k: int, device, *, long_rows: int = 0, runs: bool = False, seed: int = 0) -> Segments:
    """``k + 2`` segments over ``n`` rows: random ids in ``0..k-1`` with every third id unused
    (empty segments in the middle, two more at the end) and, with ``long_rows``, one segment
    holding that many rows (skew). ``runs`` orders the ids in runs of equal values (the atomic
    kernel then merges them in registers)."""
    gen = torch.Generator().manual_seed(seed)
    used = torch.tensor([i for i in range(k) if i % 3 != 1] or [0])
    ids = used[torch.randint(0, used.numel(), (n,), generator=gen)]
    if long_rows and n:
        ids[torch.randperm(n, generator=gen)[: min(long_rows, n)]] = used[0]
    if runs:
        ids = ids.sort().values
    return Segments.from_ids(ids.to(device), k + 2)


def make_x(n: int, c: int, dtype, device, *, ties: bool, layout: str = "contiguous", seed: int = 1) -> torch.Tensor:
    """[N, C] leaf tensor; ``ties`` makes small integers (many equal values per segment);
    ``layout`` "transposed" ([C, N] storage) or "strided" (every other column of a wider tensor)."""
    gen = torch.Generator().manual_seed(seed)
    shape = {"contiguous": (n, c), "transposed": (c, n), "strided": (n, 2 * c)}[layout]
    base = torch.randint(-3, 4, shape, generator=gen).float() if ties else torch.randn(shape, generator=gen)
    base = base.to(device=device, dtype=dtype)
    x = {"contiguous": base, "transposed": base.t(), "strided": base[:, ::2]}[layout]
    assert x.shape == (n, c)
    return x.detach().requires_grad_(True)


def _run(x, segs, reduce, backend, g):
    xx = x.detach().requires_grad_(True)  # same storage and strides (non-contiguous stays so)
    out, arg = segment_reduce(xx, segs, reduce, backend)
    out.backward(g)
    return out.detach(), arg, xx.grad


def check_against_reference(x, segs, reduce: str, backend: str, *, exact_grad: bool = True) -> None:
    """Forward (out, argmax) and backward (autograd through the public op) of ``backend`` equal the
    reference: max and its argmax exactly, sums within the dtype's tolerance, gradients exactly
    (``exact_grad``) or within tolerance."""
    k, c = segs.num_segments, x.shape[1]
    g = torch.randn((k, c), generator=torch.Generator().manual_seed(2)).to(device=x.device, dtype=x.dtype)
    out, arg, grad = _run(x, segs, reduce, backend, g)
    rout, rarg, rgrad = _run(x, segs, reduce, "reference", g)
    assert out.dtype == x.dtype and out.shape == (k, c) and out.device == x.device
    if reduce == "max":
        assert arg.dtype == torch.long and torch.equal(arg, rarg), "argmax differs from the reference"
        torch.testing.assert_close(out, rout, rtol=0, atol=0)
    else:
        assert arg is None
        torch.testing.assert_close(out, rout, **TOL[x.dtype])
    assert grad.dtype == x.dtype and grad.shape == x.shape
    if exact_grad:
        torch.testing.assert_close(grad, rgrad, rtol=0, atol=0)
    else:
        torch.testing.assert_close(grad, rgrad, **TOL[x.dtype])


def check_deterministic(x, segs, reduce: str) -> None:
    """Two runs of the sorted path give bitwise-equal outputs, argmax and gradients."""
    g = torch.randn((segs.num_segments, x.shape[1]), generator=torch.Generator().manual_seed(3)).to(x)
    a = _run(x, segs, reduce, "triton", g)
    b = _run(x, segs, reduce, "triton", g)
    assert torch.equal(a[0].contiguous().view(torch.int8), b[0].contiguous().view(torch.int8))  # bitwise, NaN-safe
    assert (a[1] is None and b[1] is None) or torch.equal(a[1], b[1])
    assert torch.equal(a[2].contiguous().view(torch.int8), b[2].contiguous().view(torch.int8))


# ----------------------------------------------------------------------------- interpreted run
INTERPRETED = os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")
pytestmark = pytest.mark.skipif(
    not INTERPRETED, reason="run with TRITON_INTERPRET=1 (test_segment_triton.py::test_interpreted_kernels does)"
)
CPU = torch.device("cpu")


@pytest.fixture
def small_tiles(monkeypatch):
    """Tiny work items (chunk 8 rows, short items <= 2 rows, no minimum program count) so that
    N = 37 splits segments into several chunks and batches several short items per program."""
    from xmodal.ops.triton import segment_kernels as sk

    monkeypatch.setattr(sk, "CHUNK_ROWS", 8)
    monkeypatch.setattr(sk, "SHORT_ROWS", 2)
    monkeypatch.setattr(sk, "MIN_PROGRAMS", 1)
    monkeypatch.setattr(sk, "ROWS_PER_PROGRAM", 8)


def test_runs_interpreted():
    from xmodal.ops.triton import segment_kernels as sk

    assert sk.INTERPRETED, "TRITON_INTERPRET=1 was set after the kernels were decorated"


# shapes x reductions, fp32, sorted path; N = 1000 has a 600-row segment (> CHUNK_ROWS = 512)
@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
@pytest.mark.parametrize("n,c", [(0, 3), (1, 1), (1, 64), (37, 1), (37, 3), (37, 64), (37, 130), (1000, 3), (1000, 64)])
def test_sorted_shapes(n, c, reduce):
    segs = make_segments(n, 12, CPU, long_rows=600 if n >= 1000 else n // 2)
    check_against_reference(make_x(n, c, F32, CPU, ties=reduce == "max"), segs, reduce, "triton")


@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
@pytest.mark.parametrize("n,c,dtype", [(37, 64, F16), (37, 64, BF16), (37, 64, F64), (1000, 3, F16), (1000, 3, BF16)])
def test_sorted_dtypes(n, c, dtype, reduce):
    segs = make_segments(n, 12, CPU, long_rows=600 if n >= 1000 else 0)
    check_against_reference(make_x(n, c, dtype, CPU, ties=reduce == "max"), segs, reduce, "triton")


@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
@pytest.mark.parametrize("c", [3, 130])
def test_sorted_split_and_batched_items(small_tiles, c, reduce):
    """Chunks of 8 rows: a 20-row segment gives 3 partials combined in the second pass; short
    items are batched G > 1 per program."""
    segs = make_segments(37, 12, CPU, long_rows=20)
    check_against_reference(make_x(37, c, F32, CPU, ties=reduce == "max"), segs, reduce, "triton")
    check_against_reference(make_x(37, c, BF16, CPU, ties=reduce == "max"), segs, reduce, "triton")


@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
@pytest.mark.parametrize("layout", ["transposed", "strided"])
@pytest.mark.parametrize("backend", ["triton", "triton_atomic"])
def test_non_contiguous(backend, layout, reduce):
    segs = make_segments(37, 8, CPU, long_rows=15)
    check_against_reference(make_x(37, 5, F32, CPU, ties=reduce == "max", layout=layout), segs, reduce, backend)


@pytest.mark.parametrize("reduce", ["sum", "mean"])
@pytest.mark.parametrize("dtype", [F32, F16, BF16])
@pytest.mark.parametrize("n,c", [(1, 3), (37, 130), (1000, 1), (1000, 64)])
def test_atomic(n, c, dtype, reduce):
    """Unsorted ids: one atomic per element."""
    segs = make_segments(n, 12, CPU, long_rows=600 if n >= 1000 else 0)
    check_against_reference(make_x(n, c, dtype, CPU, ties=False), segs, reduce, "triton_atomic")


@pytest.mark.parametrize("reduce", ["sum", "mean"])
@pytest.mark.parametrize("dtype", [F32, BF16, F64])
def test_atomic_merged_runs(dtype, reduce):
    """Ids in runs: equal consecutive ids are summed in registers (segmented scan) before one
    atomic per run and tile. Small: the interpreter runs the scan element by element."""
    from xmodal.ops.triton import segment_kernels as sk

    segs = make_segments(37, 6, CPU, runs=True)
    assert sk._mean_run_length(segs) >= sk.MERGE_MIN_RUN
    check_against_reference(make_x(37, 3, dtype, CPU, ties=False), segs, reduce, "triton_atomic")


def test_atomic_max_uses_sorted_path():
    segs = make_segments(37, 8, CPU, long_rows=10)
    check_against_reference(make_x(37, 3, BF16, CPU, ties=True), segs, "max", "triton_atomic")


@pytest.mark.parametrize("chunk", [512, 1])
def test_max_special_values(monkeypatch, chunk):
    """-inf everywhere gives -inf at the first row; a NaN gives 0 and argmax -1 (as the reference);
    ties go to the smallest row, also across chunks (chunk = 1: every row is a partial)."""
    from xmodal.ops.triton import segment_kernels as sk

    monkeypatch.setattr(sk, "CHUNK_ROWS", chunk)
    inf, nan = float("inf"), float("nan")
    x = torch.tensor([[-inf, 1.0], [2.0, nan], [-inf, 1.0], [2.0, 0.0], [nan, nan], [1.0, 5.0],
                      [-inf, 0.5], [-0.0, 7.0], [0.0, 7.0]])
    segs = Segments.from_ids(torch.tensor([0, 1, 0, 1, 2, 2, 0, 3, 3]), 5)
    check_against_reference(x.clone().requires_grad_(True), segs, "max", "triton")
    out, arg = segment_reduce(x, segs, "max", "triton")
    assert arg.tolist() == [[0, 0], [1, -1], [-1, -1], [7, 7], [-1, -1]]
    assert out[0, 0].item() == -inf and out[1, 1].item() == 0.0
    assert torch.equal(torch.signbit(out[3]), torch.tensor([True, False])), "value is x[argmax], -0.0 kept"


def test_deterministic_mode_uses_sorted_path():
    from xmodal.ops.triton import segment_kernels as sk

    segs = make_segments(37, 6, CPU, runs=True)
    x = make_x(37, 3, F32, CPU, ties=False).detach()
    sorted_out, _ = sk.segment_reduce_forward(x, segs, "mean", atomic=False)
    prev = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        out, _ = sk.segment_reduce_forward(x, segs, "mean", atomic=True)
    finally:
        torch.use_deterministic_algorithms(prev)
    assert torch.equal(out.view(torch.int32), sorted_out.view(torch.int32))


@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_deterministic(reduce):
    segs = make_segments(1000, 12, CPU, long_rows=600)
    check_deterministic(make_x(1000, 16, F32, CPU, ties=reduce == "max"), segs, reduce)


def test_empty_inputs():
    """N = 0, K = 0 and C = 0 return without launching a kernel."""
    for n, k, c in [(0, 4, 3), (0, 0, 3), (5, 3, 0)]:
        segs = Segments.from_ids(torch.arange(n) % max(k, 1), k)
        for reduce in ("sum", "mean", "max"):
            check_against_reference(make_x(n, c, F32, CPU, ties=True), segs, reduce, "triton")
