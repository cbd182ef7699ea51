"""InfoNCE over paired embeddings (SLidR's superpixel-to-superpoint contrastive loss).

With ``k`` [S, C] (e.g. point features mean-pooled per superpixel) and ``q`` [S, C] (the pixel
features pooled over the same superpixels), row ``s`` of each being a positive pair::

    L(k, q) = -(1 / S) * sum_s log( exp(k_s . q_s / tau) / sum_{s'} exp(k_s . q_{s'} / tau) )

one direction (k -> q), as in SLidR (``pretrain/criterion.py``: ``mm`` + ``CrossEntropyLoss``,
tau = 0.07). ``symmetric=True`` gives ``(L(k, q) + L(q, k)) / 2``. Features are used as given (SLidR
does not re-normalise pooled vectors).

:func:`info_nce` never stores the S x S logits: the forward keeps one log-sum-exp per row, the
backward recomputes the logits chunk by chunk (the Inf-CL / flash-attention scheme), so memory is
O(chunk * S) instead of ~3 S^2 floats under autograd. :func:`info_nce_reference` is the plain
version it is tested against.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["info_nce", "info_nce_reference"]


def _check(k: torch.Tensor, q: torch.Tensor, temperature: float, offset: int | None = None) -> None:
    if k.dim() != 2 or q.dim() != 2 or k.shape[1] != q.shape[1] or (offset is None and k.shape != q.shape):
        raise ValueError(f"info_nce: k and q must both be [S, C] with the same shape, got {tuple(k.shape)} and {tuple(q.shape)}")
    if offset is not None and (offset < 0 or q.shape[0] < offset + k.shape[0]):
        raise ValueError(f"info_nce: the positives q[offset : offset + {k.shape[0]}] must exist; q has {q.shape[0]} rows, offset={offset}")
    if k.dtype != q.dtype or k.device != q.device or not k.dtype.is_floating_point:
        raise ValueError(f"info_nce: k and q must be float tensors of one dtype on one device, got {k.dtype} on {k.device} and {q.dtype} on {q.device}")
    if not temperature > 0:
        raise ValueError(f"info_nce: temperature must be > 0, got {temperature}")


def info_nce_reference(
    k: torch.Tensor, q: torch.Tensor, temperature: float = 0.07, symmetric: bool = False, offset: int | None = None
) -> torch.Tensor:
    """Scalar loss as SLidR computes it: ``cross_entropy(k @ q.T / tau, arange(S) + offset)``."""
    _check(k, q, temperature, offset)
    if symmetric and k.shape != q.shape:
        raise ValueError("info_nce_reference: symmetric needs k and q of one shape")
    logits = k @ q.t() / temperature
    target = torch.arange(k.shape[0], device=k.device) + (offset or 0)
    loss = F.cross_entropy(logits, target)
    if symmetric:
        loss = 0.5 * (loss + F.cross_entropy(logits.t(), target))
    return loss


class _ChunkedInfoNCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, k, q, temperature, chunk, offset):
        s = k.shape[0]
        acc = torch.float64 if k.dtype == torch.float64 else torch.float32
        lse = torch.empty(s, dtype=acc, device=k.device)
        ks, qa = k.to(acc) / temperature, q.to(acc)  # [S, C]: 1/tau folded into the small operand
        for i in range(0, s, chunk):
            lse[i : i + chunk] = torch.logsumexp(ks[i : i + chunk] @ qa.t(), 1)
        pos = (ks * qa[offset : offset + s]).sum(1)
        ctx.save_for_backward(k, q, lse)
        ctx.temperature, ctx.chunk, ctx.offset = temperature, chunk, offset
        return (lse - pos).mean().to(k.dtype)

    @staticmethod
    def backward(ctx, g):
        k, q, lse = ctx.saved_tensors
        tau, chunk, s = ctx.temperature, ctx.chunk, k.shape[0]
        acc = lse.dtype
        dk = torch.empty_like(k) if ctx.needs_input_grad[0] else None
        dq = torch.zeros(q.shape, dtype=acc, device=q.device) if ctx.needs_input_grad[1] else None
        scale = g.to(acc) / (s * tau)
        ka, qa = k.to(acc), q.to(acc)
        ks = ka / tau
        for i in range(0, s, chunk):
            # p = softmax(logits) - onehot, times dL/dlogits' scale; logits = k q^T / tau
            p = ks[i : i + chunk] @ qa.t()
            p.sub_(lse[i : i + chunk, None]).exp_()
            rows = torch.arange(p.shape[0], device=p.device)
            p[rows, rows + i + ctx.offset] -= 1.0
            p.mul_(scale)
            if dk is not None:
                dk[i : i + chunk] = p @ qa
            if dq is not None:
                dq.addmm_(p.t(), ka[i : i + chunk])
        return dk, (dq.to(q.dtype) if dq is not None else None), None, None, None


def _default_chunk(s: int, device: torch.device) -> int:
    """Rows per chunk: ~1 MiB of fp32 logits on CPU (stays in L2 across the elementwise passes),
    ~64 MiB on GPUs."""
    budget = 2**18 if device.type == "cpu" else 2**24
    return max(16, budget // max(s, 1))


def info_nce(
    k: torch.Tensor,
    q: torch.Tensor,
    temperature: float = 0.07,
    symmetric: bool = False,
    chunk_size: int | None = None,
    offset: int | None = None,
) -> torch.Tensor:
    """Scalar InfoNCE of rows ``k`` [S, C] against ``q`` [S, C] (positives on the diagonal);
    see the module docstring. Memory O(chunk_size * S) (default: see ``_default_chunk``); half
    inputs are computed in fp32 (logits, log-sum-exp, gradients) and the results rounded once.

    With ``offset`` given, ``q`` may have more rows than ``k`` ([S_q, C], e.g. negatives gathered
    from other processes): the positive of ``k[i]`` is then ``q[offset + i]`` (mean over the S
    rows of ``k``; not with ``symmetric``)."""
    _check(k, q, temperature, offset)
    if symmetric and k.shape != q.shape:
        raise ValueError("info_nce: symmetric needs k and q of one shape; call it once per direction instead")
    if chunk_size is None:
        chunk_size = _default_chunk(k.shape[0], k.device)
    if chunk_size < 1:
        raise ValueError(f"info_nce: chunk_size must be >= 1, got {chunk_size}")
    loss = _ChunkedInfoNCE.apply(k, q, float(temperature), int(chunk_size), int(offset or 0))
    if symmetric:
        loss = 0.5 * (loss + _ChunkedInfoNCE.apply(q, k, float(temperature), int(chunk_size), 0))
    return loss
