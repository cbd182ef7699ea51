"""Differentiable all-gather of rows of different counts across processes (for cross-GPU negatives).

``gather_rows(x)`` returns the concatenation of every rank's ``x`` [S_r, C] in rank order and
where this rank's rows start. Gradients flow back to the rank that owns each row: the backward
sums the gradient of the whole gathered tensor over ranks (``all_reduce``) and keeps this rank's
slice, so it works on every backend (gloo has no reduce-scatter). Without an initialized process
group (or with one process) it returns ``x`` itself.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["gather_rows", "world_size"]


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class _GatherRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, counts: list[int], rank: int):
        cmax = max(counts)
        padded = x.new_zeros((cmax,) + tuple(x.shape[1:]))
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in counts]
        dist.all_gather(parts, padded.contiguous())
        ctx.counts, ctx.rank = counts, rank
        return torch.cat([p[:c] for p, c in zip(parts, counts)])

    @staticmethod
    def backward(ctx, g):
        g = g.contiguous().clone()
        dist.all_reduce(g)  # every rank's gradient w.r.t. every row, summed
        start = sum(ctx.counts[: ctx.rank])
        return g[start : start + ctx.counts[ctx.rank]], None, None


def gather_rows(x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """``(all_rows [sum_r S_r, ...], start, total)``: every rank's ``x`` [S_r, ...] concatenated in
    rank order (differentiable), the first row of this rank's block, and the total row count."""
    if world_size() == 1:
        return x, 0, x.shape[0]
    n = torch.tensor([x.shape[0]], dtype=torch.int64, device=x.device)
    sizes = [torch.zeros_like(n) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, n)
    counts = [int(s) for s in sizes]
    rank = dist.get_rank()
    return _GatherRows.apply(x, counts, rank), sum(counts[:rank]), sum(counts)
