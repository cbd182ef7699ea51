"""Segments index and segment reductions: reference vs a hand-written loop, CPU fast path vs the
reference (forward and backward), gradcheck, dtypes, layouts and bad input."""

from __future__ import annotations

import pytest
import torch

from xmodal.ops import Segments, segment_max, segment_mean, segment_min, segment_reduce, segment_sum


def _ids(n: int, k: int, seed: int = 0, empty: int = 0) -> torch.Tensor:
    """[n] ids in 0..k-1 leaving the last ``empty`` segments (and every third one) empty."""
    g = torch.Generator().manual_seed(seed)
    used = [s for s in range(k - empty) if s % 3 != 1] or [0]
    return torch.tensor(used)[torch.randint(0, len(used), (n,), generator=g)]


def _loop(x: torch.Tensor, ids: torch.Tensor, k: int, reduce: str):
    """The definition, row by row in float64."""
    c = x.shape[1]
    out = torch.zeros(k, c, dtype=torch.float64)
    arg = torch.full((k, c), -1, dtype=torch.long)
    for s in range(k):
        rows = (ids == s).nonzero().flatten().tolist()
        if not rows:
            continue
        v = x[rows].double()
        if reduce == "sum":
            out[s] = v.sum(0)
        elif reduce == "mean":
            out[s] = v.mean(0)
        else:
            out[s], j = v.max(0)
            # smallest row reaching the max
            for ch in range(c):
                arg[s, ch] = min(r for r, val in zip(rows, v[:, ch].tolist()) if val == out[s, ch].item())
    return out, arg


# ----------------------------------------------------------------------------- the index
def test_segments_layout():
    ids = torch.tensor([2, 0, 2, 4, 0, 2])
    s = Segments.from_ids(ids, num_segments=6)
    assert s.num_segments == 6 and s.num_rows == 6 and len(s) == 6
    assert s.perm.tolist() == [1, 4, 0, 2, 5, 3]  # stable: rows ascending within a segment
    assert s.offsets.tolist() == [0, 2, 2, 5, 5, 6, 6]
    assert s.counts.tolist() == [2, 0, 3, 0, 1, 0]
    assert s.sorted_ids.tolist() == [0, 0, 2, 2, 2, 4]
    assert s.inv_counts().tolist() == [0.5, 0.0, pytest.approx(1 / 3), 0.0, 1.0, 0.0]
    perm32, off32 = s.csr_index()
    assert perm32.dtype == torch.int32 and off32.tolist() == s.offsets.tolist()
    assert Segments.from_ids(ids).num_segments == 5  # default K = max + 1


def test_segments_from_offsets_and_empty():
    s = Segments.from_offsets(torch.tensor([0, 3, 3, 7]))
    assert s.ids.tolist() == [0, 0, 0, 2, 2, 2, 2] and s.counts.tolist() == [3, 0, 4]
    e = Segments.from_ids(torch.zeros(0, dtype=torch.long), 4)
    assert e.num_rows == 0 and e.counts.tolist() == [0, 0, 0, 0] and e.offsets.tolist() == [0] * 5
    assert Segments.from_ids(torch.zeros(0, dtype=torch.long)).num_segments == 0


@pytest.mark.parametrize(
    "ids, k, match",
    [
        (torch.tensor([0, -1, 2]), 3, "negative"),
        (torch.tensor([0, 1, 3]), 3, "num_segments=3"),
        (torch.tensor([0.0, 1.0]), 2, "integer"),
        (torch.zeros(2, 2, dtype=torch.long), 2, "1-D"),
    ],
)
def test_segments_bad_ids(ids, k, match):
    with pytest.raises(ValueError, match=match):
        Segments.from_ids(ids, k)


def test_segments_bad_offsets():
    with pytest.raises(ValueError, match="non-decreasing"):
        Segments.from_offsets(torch.tensor([0, 3, 2]))


# ----------------------------------------------------------------------------- reference = definition
@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_reference_matches_definition(reduce):
    n, c, k = 200, 5, 23
    ids = _ids(n, k, empty=3)
    x = torch.randn(n, c, dtype=torch.float64)
    x[7] = x[9]  # a tie when rows 7 and 9 share a segment
    ids[9] = ids[7]
    want, want_arg = _loop(x, ids, k, reduce)
    out, arg = segment_reduce(x, Segments.from_ids(ids, k), reduce, backend="reference")
    torch.testing.assert_close(out, want)
    if reduce == "max":
        assert torch.equal(arg, want_arg)


@pytest.mark.parametrize("backend", ["reference", "csr"])
@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_gradcheck_float64(backend, reduce):
    n, c, k = 40, 3, 9
    segs = Segments.from_ids(_ids(n, k, empty=2), k)
    x = torch.randn(n, c, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: segment_reduce(t, segs, reduce, backend)[0], (x,))


# ----------------------------------------------------------------------------- fast path = reference
SHAPES = [(0, 4, 3), (1, 1, 1), (1000, 1, 50), (1000, 3, 400), (5000, 64, 700), (2000, 768, 30), (100_000, 8, 10_000)]


@pytest.mark.parametrize("n, c, k", SHAPES)
@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_csr_matches_reference(n, c, k, reduce):
    segs = Segments.from_ids(_ids(n, k, seed=n + c, empty=min(k - 1, 2)), k)
    x = torch.randn(n, c)
    g = torch.randn(k, c)
    outs, grads = [], []
    for backend in ("reference", "csr"):
        xb = x.clone().requires_grad_(True)
        out, arg = segment_reduce(xb, segs, reduce, backend)
        out.backward(g)
        outs.append((out.detach(), arg))
        grads.append(xb.grad)
    torch.testing.assert_close(outs[1][0], outs[0][0], rtol=1e-5, atol=1e-5)
    if reduce == "max":
        assert torch.equal(outs[1][1], outs[0][1])
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_dtypes(dtype, reduce):
    n, c, k = 3000, 16, 40
    segs = Segments.from_ids(_ids(n, k, empty=1), k)
    x = torch.randn(n, c).to(dtype).requires_grad_(True)
    out, _ = segment_reduce(x, segs, reduce, backend="csr")
    assert out.dtype == dtype
    want, _ = segment_reduce(x.detach().double(), segs, reduce, backend="reference")
    # fp32 accumulation: the only error is the final rounding to the output dtype
    tol = {torch.float16: 2e-3, torch.bfloat16: 1e-2, torch.float64: 1e-12}[dtype]
    torch.testing.assert_close(out.double(), want, rtol=tol, atol=tol)
    out.float().sum().backward()
    assert x.grad.dtype == dtype and x.grad.shape == x.shape


def test_half_precision_accumulates_in_fp32():
    # 4096 rows of bf16(1/3): a bf16 running sum would stall far below the true sum
    n = 4096
    x = torch.full((n, 1), 1 / 3).bfloat16()
    segs = Segments.from_ids(torch.zeros(n, dtype=torch.long), 1)
    want = x.float().sum()
    for backend in ("reference", "csr"):
        out = segment_sum(x, segs, backend)
        assert abs(out.float().item() - want.item()) <= want.item() * 2**-8, backend


@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_non_contiguous_and_1d(reduce):
    n, c, k = 500, 7, 20
    segs = Segments.from_ids(_ids(n, k), k)
    base = torch.randn(c, n)
    x = base.t()  # [N, C] view with strides (1, N)
    assert not x.is_contiguous()
    want = segment_reduce(x.contiguous(), segs, reduce, "reference")[0]
    torch.testing.assert_close(segment_reduce(x, segs, reduce, "csr")[0], want)
    v = torch.randn(n)
    out1, arg1 = segment_reduce(v, segs, reduce, "csr")
    out2, arg2 = segment_reduce(v[:, None], segs, reduce, "reference")
    assert out1.shape == (k,)
    torch.testing.assert_close(out1, out2[:, 0])


def test_public_wrappers_and_min():
    n, c, k = 300, 4, 12
    segs = Segments.from_ids(_ids(n, k, empty=1), k)
    x = torch.randn(n, c)
    torch.testing.assert_close(segment_sum(x, segs), segment_reduce(x, segs, "sum", "reference")[0])
    torch.testing.assert_close(segment_mean(x, segs), segment_reduce(x, segs, "mean", "reference")[0])
    vmax, amax = segment_max(x, segs)
    vmin, amin = segment_min(x, segs)
    want, want_arg = _loop(-x, segs.ids, k, "max")
    torch.testing.assert_close(vmin.double(), -want)
    assert torch.equal(amin, want_arg)
    empty = segs.counts == 0
    assert (vmax[empty] == 0).all() and (amax[empty] == -1).all()


def test_segments_reused_across_calls_and_feature_maps():
    n, k = 2000, 50
    segs = Segments.from_ids(_ids(n, k), k)
    a, b = torch.randn(n, 8), torch.randn(n, 32)
    for x in (a, b, a):
        torch.testing.assert_close(segment_mean(x, segs, "csr"), segment_mean(x, segs, "reference"))
    assert ("inv_counts", torch.float32) in segs._cache and "csr_int32" in segs._cache


# ----------------------------------------------------------------------------- bad input
def test_bad_input_messages():
    segs = Segments.from_ids(torch.tensor([0, 1, 1]), 2)
    with pytest.raises(ValueError, match="x has 4 rows but the segment index covers 3"):
        segment_mean(torch.randn(4, 2), segs)
    with pytest.raises(ValueError, match="floating point"):
        segment_sum(torch.ones(3, 2, dtype=torch.long), segs)
    with pytest.raises(ValueError, match=r"shape \[N\] or \[N, C\]"):
        segment_sum(torch.ones(3, 2, 2), segs)
    with pytest.raises(ValueError, match="unknown backend"):
        segment_sum(torch.ones(3, 2), segs, backend="cuda")
    with pytest.raises(ValueError, match="unknown reduce"):
        segment_reduce(torch.ones(3, 2), segs, "median")
    with pytest.raises(ValueError, match="xmodal.ops.Segments"):
        segment_sum(torch.ones(3, 2), torch.tensor([0, 1, 1]))


@pytest.mark.gpu
@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_csr_backend_on_cuda(reduce):
    n, c, k = 100_000, 64, 3000
    segs = Segments.from_ids(_ids(n, k, empty=2), k).to("cuda")
    x = torch.randn(n, c, device="cuda", requires_grad=True)
    out, _ = segment_reduce(x, segs, reduce, backend="csr")
    want, _ = segment_reduce(x.detach().cpu(), segs.to("cpu"), reduce, backend="reference")
    torch.testing.assert_close(out.cpu(), want, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- channels-first maps
@pytest.mark.parametrize("reduce", ["sum", "mean"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_channels_first_matches_rows(reduce, dtype):
    b, c, h, w, k = 3, 5, 7, 9, 40  # segments span images (ids are not per-image disjoint)
    segs = Segments.from_ids(_ids(b * h * w, k, empty=2), k)
    x = torch.randn(b, c, h, w).to(dtype).requires_grad_(True)
    g = torch.randn(k, c).to(dtype)
    out = segment_reduce(x, segs, reduce, "csr", channels_first=True)[0]
    out.backward(g)
    rows = x.detach().permute(0, 2, 3, 1).reshape(-1, c).requires_grad_(True)
    want = segment_reduce(rows, segs, reduce, "reference")[0]
    want.backward(g)
    tol = 1e-2 if dtype == torch.bfloat16 else 1e-6
    torch.testing.assert_close(out, want, rtol=tol, atol=tol)
    torch.testing.assert_close(x.grad, rows.grad.view(b, h, w, c).permute(0, 3, 1, 2), rtol=tol, atol=tol)
    torch.testing.assert_close(segment_reduce(x, segs, reduce, "reference", channels_first=True)[0], want)


def test_channels_first_gradcheck_and_errors():
    segs = Segments.from_ids(_ids(2 * 12, 6, empty=1), 6)
    x = torch.randn(2, 3, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: segment_mean(t, segs, channels_first=True), (x,))
    with pytest.raises(ValueError, match="2 x 12 = 24 pixels"):
        segment_mean(torch.randn(2, 3, 3, 4), Segments.from_ids(torch.zeros(20, dtype=torch.long)), channels_first=True)
    with pytest.raises(ValueError, match="sum and mean"):
        segment_reduce(torch.randn(2, 3, 3, 4), segs, "max", channels_first=True)


def test_min_and_offsets_validate_first():
    segs = Segments.from_ids(torch.tensor([0, 1, 1]), 2)
    with pytest.raises(ValueError, match="segment_min: x must be floating point"):
        segment_min(torch.ones(3, 2, dtype=torch.bool), segs)
    with pytest.raises(ValueError, match="integer"):
        Segments.from_offsets(torch.tensor([0.0, 2.5]))
