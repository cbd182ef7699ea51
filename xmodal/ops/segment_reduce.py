"""Segment reductions: ``segment_sum``, ``segment_mean``, ``segment_max`` / ``segment_min``.

Every op pools ``x`` [N, C] (or [N]) into ``K`` segments given by a :class:`~xmodal.ops.Segments`
index and is differentiable with respect to ``x``:

    sum[k]  = sum_{i : ids[i] = k} x[i]
    mean[k] = sum[k] / count[k]                    (0 for an empty segment)
    max[k]  = max_{i : ids[i] = k} x[i],  argmax[k] = the smallest such row i
                                          (per channel; 0 and -1 for an empty segment, and
                                          also 0 and -1 where the segment's channel holds a
                                          NaN: max skips nothing, it reports "no maximum")

Gradients: ``d sum / dx[i] = g[ids[i]]``, ``d mean / dx[i] = g[ids[i]] / count``; the gradient of
max goes to the argmax row only (ties: the smallest row index), as in torch_scatter.

Backends (``backend=``):

- ``"reference"``: plain PyTorch (``index_add_``, ``scatter_reduce_``) differentiated by autograd.
  The definition every other backend is tested against.
- ``"csr"``: the CPU fast path. Forward is a gather-reduce over the cached CSR index
  (``embedding_bag``: FBGEMM's prefetching row-reduction kernel, fp32 accumulation);
  backward is a hand-written gather (``index_select``). Max has no faster CPU kernel than
  ``scatter_reduce_`` here (``embedding_bag``'s max mode measured 1.7x slower), so its forward is
  the reference's, with the owner-scatter backward. Also runs on CUDA.
- ``"triton"``: sorted-segment Triton kernels (one program per segment chunk x channel block,
  several short segments per program, long segments split into chunks and combined in a second
  pass; fp32 accumulation, owner-writes: deterministic). See :mod:`xmodal.ops.triton.segment_kernels`. ``"triton_atomic"``: one program per row block
  with fp32 atomics (no sort needed, not deterministic). CUDA tensors, or CPU tensors under
  ``TRITON_INTERPRET=1`` (tests).
- ``"auto"`` (default): ``triton`` on CUDA when Triton is importable, else ``csr``; the atomic
  variant is never picked automatically while ``torch.are_deterministic_algorithms_enabled()``.

Half-precision inputs (bf16 / fp16) are accumulated in fp32 and returned in their own dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from xmodal.ops.segments import Segments

__all__ = ["segment_sum", "segment_mean", "segment_max", "segment_min", "segment_reduce", "BACKENDS"]

BACKENDS = ("auto", "reference", "csr", "triton", "triton_atomic")
REDUCTIONS = ("sum", "mean", "max")


# ----------------------------------------------------------------------------- checks
def _check(x: torch.Tensor, segs: Segments, fn: str) -> None:
    if not isinstance(segs, Segments):
        raise ValueError(f"{fn}: segs must be an xmodal.ops.Segments, got {type(segs).__name__}")
    if not isinstance(x, torch.Tensor) or x.dim() not in (1, 2):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{fn}: x must be a tensor of shape [N] or [N, C], got {shape}")
    if not x.dtype.is_floating_point:
        raise ValueError(f"{fn}: x must be floating point, got {x.dtype}")
    if x.shape[0] != segs.num_rows:
        raise ValueError(
            f"{fn}: x has {x.shape[0]} rows but the segment index covers {segs.num_rows} rows "
            "(build Segments from the ids of exactly these rows)"
        )
    if x.device != segs.device:
        raise ValueError(f"{fn}: x is on {x.device} but segs on {segs.device}; move one with segs.to(x.device)")


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _resolve_backend(backend: str, x: torch.Tensor, fn: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"{fn}: unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        if x.is_cuda and _triton_available():
            return "triton"
        return "csr"
    if backend == "triton_atomic" and torch.are_deterministic_algorithms_enabled():
        return "triton"
    return backend


def _triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except Exception:  # pragma: no cover - triton ships with torch's CUDA builds
        return False
    return True


# ----------------------------------------------------------------------------- reference
def _argmax_reference(x: torch.Tensor, segs: Segments) -> tuple[torch.Tensor, torch.Tensor]:
    """([K, C] max in the accumulation dtype, [K, C] int64 argmax row, -1 where empty)."""
    n, c = x.shape
    k = segs.num_segments
    idx = segs.ids[:, None].expand(n, c)
    xa = x.detach().to(_acc_dtype(x.dtype))
    best = torch.full((k, c), float("-inf"), dtype=xa.dtype, device=x.device)
    best.scatter_reduce_(0, idx, xa, "amax", include_self=True)
    rows = torch.arange(n, device=x.device)[:, None].expand(n, c)
    cand = torch.where(xa == best.gather(0, idx), rows, torch.full_like(rows, n))
    arg = torch.full((k, c), n, dtype=torch.long, device=x.device)
    arg.scatter_reduce_(0, idx, cand, "amin", include_self=True)
    arg[arg == n] = -1  # empty segment (or all-NaN)
    return best, arg


def _reference(x: torch.Tensor, segs: Segments, reduce: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    acc = _acc_dtype(x.dtype)
    k, c = segs.num_segments, x.shape[1]
    if reduce == "max":
        _, arg = _argmax_reference(x, segs)
        empty = arg < 0
        if x.shape[0]:
            out = x.to(acc).gather(0, arg.clamp(min=0))
        else:  # no rows: zeros, still connected to x for autograd
            out = x.to(acc).sum(0).expand(k, c)
        out = out.masked_fill(empty, 0.0)
        return out.to(x.dtype), arg
    out = torch.zeros((k, c), dtype=acc, device=x.device).index_add(0, segs.ids, x.to(acc))
    if reduce == "mean":
        out = out * segs.inv_counts(acc)[:, None]
    return out.to(x.dtype), None


# ----------------------------------------------------------------------------- csr (CPU fast path)
def _csr_forward(x: torch.Tensor, segs: Segments, reduce: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Sum / mean as a CSR gather-reduce: ``embedding_bag`` over the sorted rows, whose CPU kernel
    (FBGEMM's sparse x dense row reduction, built for recommender tables) prefetches the gathered
    rows and accumulates half precision in fp32. Max uses the reference (scatter_reduce_)."""
    if reduce == "max":
        with torch.no_grad():
            return _reference(x, segs, "max")
    k, c = segs.num_segments, x.shape[1]
    if segs.num_rows == 0 or k == 0:
        return x.new_zeros((k, c)), None
    perm, offsets = segs.csr_index()
    half = x.dtype in (torch.float16, torch.bfloat16)
    mode = "mean" if (reduce == "mean" and half) else "sum"
    out = F.embedding_bag(perm, x.contiguous(), offsets, mode=mode, include_last_offset=True)
    if reduce == "mean" and not half:
        out.mul_(segs.inv_counts(x.dtype)[:, None])
    return out, None


def _gather_backward(g: torch.Tensor, segs: Segments, reduce: str, x_dtype: torch.dtype) -> torch.Tensor:
    """grad_x [N, C] = g[ids] (sum) or (g / count)[ids] (mean)."""
    acc = _acc_dtype(x_dtype)
    if reduce == "mean":
        g = g.to(acc) * segs.inv_counts(acc)[:, None]
    return torch.index_select(g.to(x_dtype), 0, segs.ids)


def _max_backward(g: torch.Tensor, arg: torch.Tensor, n: int, x_dtype: torch.dtype) -> torch.Tensor:
    """grad_x [N, C]: g[k, c] at row arg[k, c]; each (row, channel) has at most one owner, so the
    add is exact and deterministic (empty segments add 0 at row 0)."""
    grad = torch.zeros((n, g.shape[1]), dtype=x_dtype, device=g.device)
    if n:
        grad.scatter_add_(0, arg.clamp(min=0), g.to(x_dtype).masked_fill(arg < 0, 0))
    return grad


# ----------------------------------------------------------------------------- dispatch
def _backend_forward(x, segs, reduce, backend):
    if backend == "csr":
        return _csr_forward(x, segs, reduce)
    from xmodal.ops.triton import segment_kernels

    return segment_kernels.segment_reduce_forward(x, segs, reduce, atomic=backend == "triton_atomic")


def _backend_backward(g, segs, reduce, arg, n, x_dtype, backend):
    if backend in ("triton", "triton_atomic"):
        from xmodal.ops.triton import segment_kernels

        return segment_kernels.segment_reduce_backward(g, segs, reduce, arg, n, x_dtype)
    if reduce == "max":
        return _max_backward(g, arg, n, x_dtype)
    return _gather_backward(g, segs, reduce, x_dtype)


class _SegmentReduce(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, segs, reduce, backend):
        out, arg = _backend_forward(x, segs, reduce, backend)
        ctx.segs, ctx.reduce, ctx.backend, ctx.n, ctx.x_dtype = segs, reduce, backend, x.shape[0], x.dtype
        if arg is not None:
            ctx.save_for_backward(arg)
            ctx.mark_non_differentiable(arg)
        return out, arg

    @staticmethod
    def backward(ctx, grad_out, _grad_arg):
        if not ctx.needs_input_grad[0]:
            return None, None, None, None
        arg = ctx.saved_tensors[0] if ctx.reduce == "max" else None
        grad = _backend_backward(grad_out.contiguous(), ctx.segs, ctx.reduce, arg, ctx.n, ctx.x_dtype, ctx.backend)
        return grad, None, None, None


class _SegmentReduceChannelsFirst(torch.autograd.Function):
    """Sum / mean of a channels-first map ``x`` [B, C, P] whose rows are the B*P pixels in
    (image, pixel) order, without the [B*P, C] transposed copy: per image, an ``index_add_``
    along the pixel axis into a [C, K] accumulator; backward is a per-image ``index_select``
    written straight into the gradient's [B, C, P] layout."""

    @staticmethod
    def forward(ctx, x, segs, reduce):
        b, c, p = x.shape
        acc = _acc_dtype(x.dtype)
        out_t = torch.zeros((c, segs.num_segments), dtype=acc, device=x.device)
        ids = segs.ids.view(b, p) if b * p else segs.ids.view(b, 0)
        for i in range(b):
            out_t.index_add_(1, ids[i], x[i].to(acc))
        if reduce == "mean":
            out_t.mul_(segs.inv_counts(acc))
        ctx.segs, ctx.reduce, ctx.shape, ctx.x_dtype = segs, reduce, (b, c, p), x.dtype
        return out_t.t().contiguous().to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        b, c, p = ctx.shape
        segs, acc = ctx.segs, _acc_dtype(ctx.x_dtype)
        gs = g.to(acc) * segs.inv_counts(acc)[:, None] if ctx.reduce == "mean" else g
        gs_t = gs.t().to(ctx.x_dtype).contiguous()  # [C, K]
        grad = torch.empty((b, c, p), dtype=ctx.x_dtype, device=g.device)
        ids = segs.ids.view(b, p) if b * p else segs.ids.view(b, 0)
        for i in range(b):
            torch.index_select(gs_t, 1, ids[i], out=grad[i])
        return grad, None, None


def _channels_first(x: torch.Tensor, segs: Segments, reduce: str, backend: str, fn: str) -> torch.Tensor:
    if not isinstance(segs, Segments):
        raise ValueError(f"{fn}: segs must be an xmodal.ops.Segments, got {type(segs).__name__}")
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or not x.dtype.is_floating_point:
        raise ValueError(f"{fn}: with channels_first=True, x must be a float tensor [B, C, *spatial]")
    if reduce == "max":
        raise ValueError(f"{fn}: channels_first=True supports sum and mean; permute to [N, C] for max")
    b, c = x.shape[:2]
    x3 = x.reshape(b, c, -1)
    if b * x3.shape[2] != segs.num_rows:
        raise ValueError(
            f"{fn}: x has {b} x {x3.shape[2]} = {b * x3.shape[2]} pixels but the segment index covers "
            f"{segs.num_rows} rows (ids must be the flattened [B, *spatial] map)"
        )
    if x.device != segs.device:
        raise ValueError(f"{fn}: x is on {x.device} but segs on {segs.device}; move one with segs.to(x.device)")
    backend = _resolve_backend(backend, x3, fn)
    if backend == "reference":
        return _reference(x3.permute(0, 2, 1).reshape(-1, c), segs, reduce)[0]
    return _SegmentReduceChannelsFirst.apply(x3, segs, reduce)


def segment_reduce(
    x: torch.Tensor, segs: Segments, reduce: str, backend: str = "auto", *, channels_first: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Pool ``x`` [N, C] or [N] into ``segs.num_segments`` segments.

    Returns ``(out, arg)``: ``out`` [K, C] (or [K]) in ``x.dtype``; ``arg`` the int64 argmax rows
    for ``reduce="max"`` (-1 for empty segments), else None.

    ``channels_first=True`` takes an image-like ``x`` [B, C, *spatial] (e.g. [B, C, H, W] pixel
    features) whose rows are its B * H * W pixels in (b, h, w) order, as ``ids.view(B, H, W)``
    would lay them out; sum and mean only. It avoids the [B*H*W, C] transposed copy.
    """
    fn = f"segment_{reduce}" if reduce in REDUCTIONS else "segment_reduce"
    if reduce not in REDUCTIONS:
        raise ValueError(f"segment_reduce: unknown reduce {reduce!r}; choose one of {', '.join(REDUCTIONS)}")
    if channels_first:
        return _channels_first(x, segs, reduce, backend, fn), None
    _check(x, segs, fn)
    squeeze = x.dim() == 1
    x2 = x[:, None] if squeeze else x
    backend = _resolve_backend(backend, x2, fn)
    if backend == "reference":
        out, arg = _reference(x2, segs, reduce)
    else:
        out, arg = _SegmentReduce.apply(x2, segs, reduce, backend)
    if squeeze:
        out = out[:, 0]
        arg = arg[:, 0] if arg is not None else None
    return out, arg


def segment_sum(x: torch.Tensor, segs: Segments, backend: str = "auto", *, channels_first: bool = False) -> torch.Tensor:
    """[K, C] per-segment sum of ``x`` [N, C] (or [B, C, *spatial] with ``channels_first``; 0 for
    empty segments). See :func:`segment_reduce`."""
    return segment_reduce(x, segs, "sum", backend, channels_first=channels_first)[0]


def segment_mean(x: torch.Tensor, segs: Segments, backend: str = "auto", *, channels_first: bool = False) -> torch.Tensor:
    """[K, C] per-segment mean of ``x`` [N, C] (or [B, C, *spatial] with ``channels_first``; 0 for
    empty segments). See :func:`segment_reduce`."""
    return segment_reduce(x, segs, "mean", backend, channels_first=channels_first)[0]


def segment_max(x: torch.Tensor, segs: Segments, backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """``(values [K, C], argmax [K, C] int64)``: per-segment, per-channel maximum of ``x`` and the
    smallest row index reaching it (0 and -1 for empty segments). Gradient flows to argmax rows."""
    return segment_reduce(x, segs, "max", backend)


def segment_min(x: torch.Tensor, segs: Segments, backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """``(values [K, C], argmin [K, C] int64)``: ``-segment_max(-x)``; e.g. the nearest depth per
    pixel of a z-buffer."""
    _check(x, segs, "segment_min")
    values, arg = segment_reduce(-x, segs, "max", backend)
    return -values, arg
