"""Triton kernels for segment sum / mean / max over a :class:`~xmodal.ops.Segments` index.

Called by :mod:`xmodal.ops.segment_reduce` for ``backend="triton"`` / ``"triton_atomic"``::

    segment_reduce_forward(x,       # [N, C] fp16 / bf16 / fp32 / fp64, any strides
                           segs, reduce, atomic) -> (out [K, C] x.dtype, arg [K, C] int64 | None)
    segment_reduce_backward(g,      # [K, C] gradient of out
                            segs, reduce, arg, n, x_dtype) -> grad_x [N, C] x_dtype

Semantics are those of ``segment_reduce._reference``: empty segments give 0 (argmax -1); mean is
sum times the cached ``1 / count``; argmax is the smallest row reaching the max per channel, and
a channel of a segment that holds a NaN gives 0 and argmax -1 (as the reference on CPU). Half
precision is read, accumulated in fp32 and written back in its own dtype; fp64 accumulates in
fp64. Other float dtypes (fp8, ...) fall back to the PyTorch reference (``_torch_forward`` /
``_torch_backward``).

Sorted forward (``atomic=False``; deterministic, no atomics)
    Work items are runs of at most ``CHUNK_ROWS`` consecutive positions of ``segs.perm`` that
    belong to one segment (an empty segment is one empty item, so every output row is written
    and the output needs no zero fill). They are built once per index and cached on it
    (``segs.cached``), in two groups launched separately: *short* items (<= ``SHORT_ROWS`` rows),
    several per program (``G``) with a small ``BLOCK_N`` from their mean length, so that many tiny
    segments (voxels, BEV cells) do not each pay for a program; and *long* items with a full
    ``BLOCK_N x BLOCK_C`` tile. Grid: ``(cdiv(items, G), cdiv(C, BLOCK_C))``. A program loops
    over its item's rows in ``BLOCK_N`` tiles, gathering rows through ``perm`` and keeping a
    ``[BLOCK_N, BLOCK_C]`` fp32 (fp64) accumulator (sum) or running max plus row per lane (max; rows
    within a segment come in increasing order, so a lane keeps its first maximum and the final
    cross-lane step takes the smallest row among the lanes at the max). An item that is a whole
    segment writes the output row itself (mean scale fused; max re-reads ``x[argmax]`` so the
    value is exactly the reference's). Segments longer than ``CHUNK_ROWS`` (skew: one superpixel
    holding most of an image) are split; their chunks write fp32 partials and a second small
    pass sums / max-combines the partials of each split segment in chunk order. Every output
    element has one owner and a fixed reduction order: results are bitwise reproducible.
    ``K`` and ``N`` are runtime arguments, never ``tl.constexpr``.

Atomic forward (``atomic=True``, sum and mean; max uses the sorted path)
    One program per ``BLOCK_N`` rows x ``BLOCK_C`` channels of ``x`` in original row order,
    reading ``segs.ids`` (no sort needed by the kernel), fp32 (fp64) ``tl.atomic_add`` into a
    zeroed [K, C] buffer, then the mean scale and cast in PyTorch. When ids come in runs (mean run
    length >= 2, measured once per index), equal consecutive ids are merged in registers first
    (a segmented scan; one atomic per run and tile). Float atomics make the summation order, and
    so the last bits, vary from run to run: not deterministic. It is never used while
    ``torch.are_deterministic_algorithms_enabled()``.

Backward
    sum / mean: ``grad_x[i] = g[ids[i]] (* 1 / count)``, a gather, one program per row block x
    channel block, scale fused (fp32 for half precision, as the reference). max: ``grad_x`` is
    zeroed and ``g[k, c]`` is stored at row ``argmax[k, c]``; each (row, channel) has at most one
    owner, so plain stores suffice. Deterministic.

fp32 -> bf16 stores round to nearest even with integer ops (``_cast_for``): Triton's interpreter
truncates, the GPU rounds; both then give PyTorch's bits. FMA contraction is off at launch.

The kernels run on CUDA tensors, or on CPU tensors when ``TRITON_INTERPRET=1`` was set before this
module was imported (tests); any other device raises ``ValueError``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

__all__ = ["segment_reduce_forward", "segment_reduce_backward"]

# Tuning knobs (module level so that tests can shrink them; the plan cache key includes them).
CHUNK_ROWS = 512  # max rows per work item; longer segments are split and combined in a 2nd pass
SHORT_ROWS = 16  # items up to this many rows go to the "short" group (several per program)
ROWS_PER_PROGRAM = 64  # target rows per program in the short group
MIN_PROGRAMS = 1024  # do not batch short items below this many programs (keep the GPU busy)
TILE_ELEMS = 2048  # BLOCK_N * BLOCK_C budget per tile
MERGE_MIN_RUN = 2.0  # atomic path: merge runs of equal ids in registers when their mean length >= this

_ACC = {torch.float16: tl.float32, torch.bfloat16: tl.float32, torch.float32: tl.float32, torch.float64: tl.float64}
_REDUCTIONS = ("sum", "mean", "max")
# No FMA contraction: the few products (mean scale, bf16 rounding) round exactly as in PyTorch.
_LAUNCH = dict(enable_fp_fusion=False)


# ============================================================================ kernels
@triton.jit
def _load_item(items_ptr, w):
    """Work item ``w``: (segment, first and end position in perm, partial slot or -1)."""
    base = items_ptr + w * 4
    return tl.load(base), tl.load(base + 1), tl.load(base + 2), tl.load(base + 3)


@triton.jit
def _gather_tile(x_ptr, perm_ptr, r0, end, lanes, cols, cmask, stride_xn, stride_xc, other):
    """Rows ``perm[r0 : r0 + BLOCK_N]`` (below ``end``) x ``cols`` of ``x``: (rows, mask, tile)."""
    pos = r0 + lanes
    pmask = pos < end
    rows = tl.load(perm_ptr + pos, mask=pmask, other=0)
    m = pmask[:, None] & cmask[None, :]
    xv = tl.load(x_ptr + rows[:, None] * stride_xn + cols[None, :] * stride_xc, mask=m, other=other)
    return rows, m, xv


@triton.jit
def _cast_for(v, ptr):
    """``v`` (fp32 / fp64) converted to the element type of ``ptr``, rounding to nearest even.
    bf16 is rounded with integer ops first: Triton's interpreter truncates fp32 -> bf16, the GPU
    rounds; this way both give the bits PyTorch gives."""
    if ptr.dtype.element_ty == tl.bfloat16:
        b = v.to(tl.uint32, bitcast=True)
        b = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) << 16
        v = tl.where(v != v, v, b.to(tl.float32, bitcast=True))
    return v.to(ptr.dtype.element_ty)


@triton.jit
def _sorted_sum_kernel(
    x_ptr, perm_ptr, items_ptr, inv_ptr, out_ptr, part_ptr,
    num_items, C, stride_xn, stride_xc,
    MEAN: tl.constexpr, ACC: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_C: tl.constexpr, G: tl.constexpr,
):
    pid = tl.program_id(0)
    cols = tl.program_id(1).to(tl.int64) * BLOCK_C + tl.arange(0, BLOCK_C)  # int64: cols * stride
    cmask = cols < C
    lanes = tl.arange(0, BLOCK_N)
    for j in range(G):
        w = pid * G + j
        if w < num_items:
            seg, start, end, slot = _load_item(items_ptr, w)
            acc = tl.zeros([BLOCK_N, BLOCK_C], ACC)
            for r0 in range(start, end, BLOCK_N):
                _, _, xv = _gather_tile(x_ptr, perm_ptr, r0, end, lanes, cols, cmask, stride_xn, stride_xc, 0.0)
                acc += xv.to(ACC)
            s = tl.sum(acc, axis=0)
            if slot < 0:
                if MEAN:
                    s = s * tl.load(inv_ptr + seg)
                tl.store(out_ptr + seg * C + cols, _cast_for(s, out_ptr), mask=cmask)
            else:
                tl.store(part_ptr + slot * C + cols, s, mask=cmask)


@triton.jit
def _sorted_max_kernel(
    x_ptr, perm_ptr, items_ptr, out_ptr, arg_ptr, pval_ptr, parg_ptr,
    n, num_items, C, stride_xn, stride_xc,
    ACC: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_C: tl.constexpr, G: tl.constexpr,
):
    pid = tl.program_id(0)
    cols = tl.program_id(1).to(tl.int64) * BLOCK_C + tl.arange(0, BLOCK_C)  # int64: cols * stride
    cmask = cols < C
    lanes = tl.arange(0, BLOCK_N)
    for j in range(G):
        w = pid * G + j
        if w < num_items:
            seg, start, end, slot = _load_item(items_ptr, w)
            best = tl.full([BLOCK_N, BLOCK_C], float("-inf"), ACC)
            barg = tl.zeros([BLOCK_N, BLOCK_C], tl.int64) + n  # n = "no row yet"
            for r0 in range(start, end, BLOCK_N):
                rows, m, xv = _gather_tile(x_ptr, perm_ptr, r0, end, lanes, cols, cmask, stride_xn, stride_xc,
                                           float("-inf"))
                xv = xv.to(ACC)
                # rows grow along the loop: strict '>' keeps a lane's first maximum; a NaN is
                # taken once and then sticks (nothing compares greater than it)
                take = m & ((xv > best) | (barg == n) | (xv != xv))
                best = tl.where(take, xv, best)
                barg = tl.where(take, rows[:, None], barg)
            isnan = best != best
            has_nan = tl.max(isnan.to(tl.int32), axis=0) > 0
            best = tl.where(isnan, float("-inf"), best)
            mx = tl.max(best, axis=0)
            am = tl.min(tl.where((best == mx[None, :]) & (barg != n), barg, n), axis=0)
            if slot < 0:
                a = tl.where(has_nan | (am == n), -1, am)
                ok = cmask & (a >= 0)
                v = tl.load(x_ptr + a * stride_xn + cols * stride_xc, mask=ok, other=0.0)
                tl.store(out_ptr + seg * C + cols, v.to(out_ptr.dtype.element_ty), mask=cmask)
                tl.store(arg_ptr + seg * C + cols, a, mask=cmask)
            else:
                tl.store(pval_ptr + slot * C + cols, tl.where(has_nan, float("nan"), mx), mask=cmask)
                tl.store(parg_ptr + slot * C + cols, am, mask=cmask)


@triton.jit
def _combine_sum_kernel(
    part_ptr, splits_ptr, inv_ptr, out_ptr, C,
    MEAN: tl.constexpr, ACC: tl.constexpr, BLOCK_C: tl.constexpr,
):
    s = tl.program_id(0)
    cols = tl.program_id(1).to(tl.int64) * BLOCK_C + tl.arange(0, BLOCK_C)  # int64: cols * stride
    cmask = cols < C
    seg = tl.load(splits_ptr + s * 3)
    p0 = tl.load(splits_ptr + s * 3 + 1)
    p1 = tl.load(splits_ptr + s * 3 + 2)
    acc = tl.zeros([BLOCK_C], ACC)
    for p in range(p0, p1):  # chunk order: deterministic
        acc += tl.load(part_ptr + p * C + cols, mask=cmask, other=0.0)
    if MEAN:
        acc = acc * tl.load(inv_ptr + seg)
    tl.store(out_ptr + seg * C + cols, _cast_for(acc, out_ptr), mask=cmask)


@triton.jit
def _combine_max_kernel(
    x_ptr, pval_ptr, parg_ptr, splits_ptr, out_ptr, arg_ptr, C, stride_xn, stride_xc,
    ACC: tl.constexpr, BLOCK_C: tl.constexpr,
):
    s = tl.program_id(0)
    cols = tl.program_id(1).to(tl.int64) * BLOCK_C + tl.arange(0, BLOCK_C)  # int64: cols * stride
    cmask = cols < C
    seg = tl.load(splits_ptr + s * 3)
    p0 = tl.load(splits_ptr + s * 3 + 1)
    p1 = tl.load(splits_ptr + s * 3 + 2)
    best = tl.full([BLOCK_C], float("-inf"), ACC)
    barg = tl.full([BLOCK_C], -1, tl.int64)
    nan = tl.zeros([BLOCK_C], tl.int32)
    for p in range(p0, p1):  # chunks in row order: the first one at the max has the smallest row
        v = tl.load(pval_ptr + p * C + cols, mask=cmask, other=float("-inf"))
        a = tl.load(parg_ptr + p * C + cols, mask=cmask, other=-1)
        take = (v > best) | (barg < 0)
        best = tl.where(take, v, best)
        barg = tl.where(take, a, barg)
        nan = nan | (v != v).to(tl.int32)
    a = tl.where(nan > 0, -1, barg)
    ok = cmask & (a >= 0)
    v = tl.load(x_ptr + a * stride_xn + cols * stride_xc, mask=ok, other=0.0)
    tl.store(out_ptr + seg * C + cols, v.to(out_ptr.dtype.element_ty), mask=cmask)
    tl.store(arg_ptr + seg * C + cols, a, mask=cmask)


@triton.jit
def _run_sum(v1, h1, v2, h2):
    # segmented-scan operator on (value, run-head flag): associative
    return tl.where(h2 != 0, v2, v1 + v2), h1 | h2


@triton.jit
def _atomic_sum_kernel(
    x_ptr, ids_ptr, buf_ptr, n, C, stride_xn, stride_xc,
    ACC: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_C: tl.constexpr, MERGE: tl.constexpr,
):
    lanes = tl.arange(0, BLOCK_N)
    rows = tl.program_id(0).to(tl.int64) * BLOCK_N + lanes
    cols = tl.program_id(1).to(tl.int64) * BLOCK_C + tl.arange(0, BLOCK_C)  # int64: cols * stride
    rmask = rows < n
    cmask = cols < C
    ids = tl.load(ids_ptr + rows, mask=rmask, other=-1)
    m = rmask[:, None] & cmask[None, :]
    xv = tl.load(x_ptr + rows[:, None] * stride_xn + cols[None, :] * stride_xc, mask=m, other=0.0).to(ACC)
    if MERGE:
        # sum each run of equal consecutive ids in registers; only the run's last row adds
        prev = tl.load(ids_ptr + rows - 1, mask=rmask & (lanes > 0), other=-1)
        head = tl.broadcast_to(((prev != ids) | (lanes == 0)).to(tl.int32)[:, None], (BLOCK_N, BLOCK_C))
        xv, _ = tl.associative_scan((xv, head), 0, _run_sum)
        nxt = tl.load(ids_ptr + rows + 1, mask=(rows + 1 < n) & (lanes < BLOCK_N - 1), other=-1)
        m = m & (nxt != ids)[:, None]
    tl.atomic_add(buf_ptr + ids[:, None] * C + cols[None, :], xv, mask=m, sem="relaxed")


@triton.jit
def _gather_backward_kernel(
    g_ptr, ids_ptr, inv_ptr, grad_ptr, n, C, stride_gk, stride_gc,
    MEAN: tl.constexpr, ACC: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_C: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    cols = tl.program_id(1).to(tl.int64) * BLOCK_C + tl.arange(0, BLOCK_C)  # int64: cols * stride
    rmask = rows < n
    m = rmask[:, None] & (cols < C)[None, :]
    ids = tl.load(ids_ptr + rows, mask=rmask, other=0)
    gv = tl.load(g_ptr + ids[:, None] * stride_gk + cols[None, :] * stride_gc, mask=m, other=0.0).to(ACC)
    if MEAN:
        gv = gv * tl.load(inv_ptr + ids, mask=rmask, other=0.0)[:, None]
    tl.store(grad_ptr + rows[:, None] * C + cols[None, :], _cast_for(gv, grad_ptr), mask=m)


@triton.jit
def _max_backward_kernel(
    g_ptr, arg_ptr, grad_ptr, K, C, stride_gk, stride_gc,
    BLOCK_K: tl.constexpr, BLOCK_C: tl.constexpr,
):
    ks = tl.program_id(0).to(tl.int64) * BLOCK_K + tl.arange(0, BLOCK_K)
    cols = tl.program_id(1).to(tl.int64) * BLOCK_C + tl.arange(0, BLOCK_C)  # int64: cols * stride
    m = (ks < K)[:, None] & (cols < C)[None, :]
    a = tl.load(arg_ptr + ks[:, None] * C + cols[None, :], mask=m, other=-1)
    m = m & (a >= 0)
    gv = tl.load(g_ptr + ks[:, None] * stride_gk + cols[None, :] * stride_gc, mask=m, other=0.0)
    tl.store(grad_ptr + a * C + cols[None, :], gv.to(grad_ptr.dtype.element_ty), mask=m)


INTERPRETED = type(_sorted_sum_kernel).__name__ == "InterpretedFunction"
"""True when ``TRITON_INTERPRET=1`` was set at import: kernels then run on CPU tensors."""


# ============================================================================ work items
@dataclass(frozen=True)
class _Group:
    items: torch.Tensor  # [W, 4] int64 (segment, start, end, partial slot or -1), positions in perm
    num_items: int
    mean_rows: float
    short: bool


@dataclass(frozen=True)
class _Plan:
    groups: tuple[_Group, ...]
    splits: torch.Tensor  # [S, 3] int64 (segment, first partial, end partial) of split segments
    num_splits: int
    num_partials: int


def _build_plan(segs, chunk: int, short: int) -> _Plan:
    """Work items of the sorted forward (once per index; a few host syncs)."""
    dev, k = segs.device, segs.num_segments
    counts, offsets = segs.counts, segs.offsets
    nch = torch.div(counts + chunk - 1, chunk, rounding_mode="floor").clamp(min=1)  # empty -> 1 item
    split = nch > 1
    w = int(nch.sum())
    seg_of = torch.repeat_interleave(torch.arange(k, device=dev), nch, output_size=w)
    first = torch.cumsum(nch, 0) - nch
    start = offsets[seg_of] + (torch.arange(w, device=dev) - first[seg_of]) * chunk
    end = torch.minimum(start + chunk, offsets[seg_of + 1])
    in_split = split[seg_of]
    slot = torch.where(in_split, torch.cumsum(in_split.long(), 0) - 1, -1)
    items = torch.stack([seg_of, start, end, slot], 1)
    lens = end - start
    is_short = lens <= short
    n_short, rows_short, n_split, n_part = torch.stack(
        [is_short.sum(), (lens * is_short).sum(), split.sum(), in_split.sum()]
    ).tolist()
    groups = []
    if n_short:
        groups.append(_Group(items[is_short].contiguous(), n_short, rows_short / n_short, True))
    if w - n_short:
        n_long = w - n_short
        groups.append(_Group(items[~is_short].contiguous(), n_long, (segs.num_rows - rows_short) / n_long, False))
    pcount = nch[split]
    pend = torch.cumsum(pcount, 0)
    splits = torch.stack([torch.nonzero(split)[:, 0], pend - pcount, pend], 1).contiguous()
    return _Plan(tuple(groups), splits, n_split, n_part)


def _plan(segs) -> _Plan:
    return segs.cached(("triton_plan", CHUNK_ROWS, SHORT_ROWS), lambda: _build_plan(segs, CHUNK_ROWS, SHORT_ROWS))


def _mean_run_length(segs) -> float:
    """Mean length of runs of equal consecutive ids (about 1 in random order, N / K when grouped)."""
    def build():
        ids = segs.ids
        return segs.num_rows / (int((ids[1:] != ids[:-1]).sum()) + 1)

    return segs.cached("triton_mean_run", build)


# ============================================================================ launch helpers
def _pow2_floor(v: float) -> int:
    return 1 << max(int(v), 1).bit_length() - 1


def _block_c(c: int) -> int:
    return min(max(triton.next_power_of_2(c), 4), 128)


def _num_warps(tile: int, per_thread: int = 8) -> int:
    """Warps for a tile of ``tile`` elements, ~``per_thread`` elements per thread (8 keeps the
    max / gather kernels under ~100 registers on sm_90, 16 suits the plain sum)."""
    return min(max(tile // (32 * per_thread), 1), 8)


def _block_n_rows(block_c: int, cap: int) -> int:
    return max(2, min(cap, TILE_ELEMS // block_c))


def _group_launch(group: _Group, block_c: int, n_cb: int) -> tuple[int, int]:
    """(BLOCK_N, items per program G) for one item group."""
    if not group.short:
        return _block_n_rows(block_c, 128), 1
    mean = max(group.mean_rows, 1.0)
    block_n = max(triton.next_power_of_2(round(mean)), 2)
    block_n = min(block_n, triton.next_power_of_2(SHORT_ROWS), _block_n_rows(block_c, 128))
    g = min(_pow2_floor(ROWS_PER_PROGRAM / mean), 16)
    while g > 1 and triton.cdiv(group.num_items, g) * n_cb < MIN_PROGRAMS:
        g //= 2
    return block_n, g


def _device_guard(t: torch.Tensor):
    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()


def _check_device(t: torch.Tensor) -> None:
    if t.is_cuda or (INTERPRETED and t.device.type == "cpu"):
        return
    raise ValueError(
        f"segment_reduce(backend='triton'): Triton kernels need CUDA tensors, got a tensor on {t.device}; "
        "use backend='csr' (or 'auto') on CPU, or set TRITON_INTERPRET=1 before importing xmodal to run "
        "the kernels in Triton's (slow) interpreter"
    )


def _torch_forward(x, segs, reduce):
    """Fallback for dtypes the kernels do not take (fp8, ...): the PyTorch reference."""
    from xmodal.ops.segment_reduce import _reference

    with torch.no_grad():
        return _reference(x, segs, reduce)


def _torch_backward(g, segs, reduce, arg, n, x_dtype):
    """Fallback backward: the CSR backend's gather / owner scatter (max in fp32, exact, since
    ``masked_fill`` has no fp8 kernels)."""
    from xmodal.ops.segment_reduce import _gather_backward, _max_backward

    if reduce == "max":
        return _max_backward(g.float(), arg, n, torch.float32).to(x_dtype)
    return _gather_backward(g, segs, reduce, x_dtype)


# ============================================================================ forward
def segment_reduce_forward(
    x: torch.Tensor,  # [N, C] float, any strides
    segs,  # Segments over the N rows, same device
    reduce: str,  # "sum" | "mean" | "max"
    atomic: bool = False,  # sum / mean only; max always takes the sorted path
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(out [K, C] in x.dtype, arg [K, C] int64 for max else None)``; see the module docstring."""
    if reduce not in _REDUCTIONS:
        raise ValueError(f"segment_reduce_forward: unknown reduce {reduce!r}; choose one of {', '.join(_REDUCTIONS)}")
    if x.dtype not in _ACC:
        return _torch_forward(x, segs, reduce)
    n, c = x.shape
    k = segs.num_segments
    if n == 0 or k == 0 or c == 0:
        arg = torch.full((k, c), -1, dtype=torch.long, device=x.device) if reduce == "max" else None
        return x.new_zeros((k, c)), arg
    _check_device(x)
    with _device_guard(x):
        if atomic and reduce != "max" and not torch.are_deterministic_algorithms_enabled():
            return _atomic_forward(x, segs, reduce), None
        return _sorted_forward(x, segs, reduce)


def _sorted_forward(x, segs, reduce):
    n, c = x.shape
    k = segs.num_segments
    acc_t = torch.float64 if x.dtype == torch.float64 else torch.float32
    acc = _ACC[x.dtype]
    plan = _plan(segs)
    block_c = _block_c(c)
    n_cb = triton.cdiv(c, block_c)
    p = max(plan.num_partials, 1)
    out = torch.empty((k, c), dtype=x.dtype, device=x.device)
    sx = x.stride()
    if reduce == "max":
        arg = torch.empty((k, c), dtype=torch.long, device=x.device)
        pval = torch.empty((p, c), dtype=acc_t, device=x.device)
        parg = torch.empty((p, c), dtype=torch.long, device=x.device)
        for grp in plan.groups:
            block_n, g = _group_launch(grp, block_c, n_cb)
            _sorted_max_kernel[(triton.cdiv(grp.num_items, g), n_cb)](
                x, segs.perm, grp.items, out, arg, pval, parg, n, grp.num_items, c, sx[0], sx[1],
                ACC=acc, BLOCK_N=block_n, BLOCK_C=block_c, G=g, num_warps=_num_warps(block_n * block_c), **_LAUNCH,
            )
        if plan.num_splits:
            _combine_max_kernel[(plan.num_splits, n_cb)](
                x, pval, parg, plan.splits, out, arg, c, sx[0], sx[1],
                ACC=acc, BLOCK_C=block_c, num_warps=1, **_LAUNCH,
            )
        return out, arg
    mean = reduce == "mean"
    inv = segs.inv_counts(acc_t)
    part = torch.empty((p, c), dtype=acc_t, device=x.device)
    for grp in plan.groups:
        block_n, g = _group_launch(grp, block_c, n_cb)
        _sorted_sum_kernel[(triton.cdiv(grp.num_items, g), n_cb)](
            x, segs.perm, grp.items, inv, out, part, grp.num_items, c, sx[0], sx[1],
            MEAN=mean, ACC=acc, BLOCK_N=block_n, BLOCK_C=block_c, G=g,
            num_warps=_num_warps(block_n * block_c, 16), **_LAUNCH,
        )
    if plan.num_splits:
        _combine_sum_kernel[(plan.num_splits, n_cb)](
            part, plan.splits, inv, out, c, MEAN=mean, ACC=acc, BLOCK_C=block_c, num_warps=1, **_LAUNCH,
        )
    return out, None


def _atomic_forward(x, segs, reduce):
    n, c = x.shape
    k = segs.num_segments
    acc_t = torch.float64 if x.dtype == torch.float64 else torch.float32
    buf = torch.zeros((k, c), dtype=acc_t, device=x.device)
    block_c = _block_c(c)
    block_n = _block_n_rows(block_c, 256)
    _atomic_sum_kernel[(triton.cdiv(n, block_n), triton.cdiv(c, block_c))](
        x, segs.ids, buf, n, c, x.stride(0), x.stride(1),
        ACC=_ACC[x.dtype], BLOCK_N=block_n, BLOCK_C=block_c, MERGE=_mean_run_length(segs) >= MERGE_MIN_RUN,
        num_warps=_num_warps(block_n * block_c), **_LAUNCH,
    )
    if reduce == "mean":
        buf.mul_(segs.inv_counts(acc_t)[:, None])
    return buf if buf.dtype == x.dtype else buf.to(x.dtype)


# ============================================================================ backward
def segment_reduce_backward(
    g: torch.Tensor,  # [K, C] gradient of out
    segs,  # Segments of the forward
    reduce: str,  # "sum" | "mean" | "max"
    arg: torch.Tensor | None,  # [K, C] int64 argmax of the forward (max), -1 where empty
    n: int,  # N, rows of x
    x_dtype: torch.dtype,  # dtype of x (and of the returned gradient)
) -> torch.Tensor:
    """``grad_x`` [N, C] in ``x_dtype``; see the module docstring."""
    if reduce not in _REDUCTIONS:
        raise ValueError(f"segment_reduce_backward: unknown reduce {reduce!r}; choose one of {', '.join(_REDUCTIONS)}")
    if x_dtype not in _ACC:
        return _torch_backward(g, segs, reduce, arg, n, x_dtype)
    k, c = g.shape
    if reduce == "max":
        grad = torch.zeros((n, c), dtype=x_dtype, device=g.device)
        if n == 0 or k == 0 or c == 0:
            return grad
        _check_device(g)
        arg = arg.contiguous()
        block_c = _block_c(c)
        block_k = _block_n_rows(block_c, 256)
        with _device_guard(g):
            _max_backward_kernel[(triton.cdiv(k, block_k), triton.cdiv(c, block_c))](
                g, arg, grad, k, c, g.stride(0), g.stride(1),
                BLOCK_K=block_k, BLOCK_C=block_c, num_warps=_num_warps(block_k * block_c), **_LAUNCH,
            )
        return grad
    if n == 0 or k == 0 or c == 0:
        return torch.zeros((n, c), dtype=x_dtype, device=g.device)
    _check_device(g)
    acc_t = torch.float64 if x_dtype == torch.float64 else torch.float32
    grad = torch.empty((n, c), dtype=x_dtype, device=g.device)
    block_c = _block_c(c)
    block_n = _block_n_rows(block_c, 256)
    with _device_guard(g):
        _gather_backward_kernel[(triton.cdiv(n, block_n), triton.cdiv(c, block_c))](
            g, segs.ids, segs.inv_counts(acc_t), grad, n, c, g.stride(0), g.stride(1),
            MEAN=reduce == "mean", ACC=_ACC[x_dtype], BLOCK_N=block_n, BLOCK_C=block_c,
            num_warps=_num_warps(block_n * block_c), **_LAUNCH,
        )
    return grad
