"""Superpixel-to-superpoint InfoNCE (SLidR, Sautier et al., CVPR 2022).

For every superpixel ``s`` of every image in the batch (ids made batch-global by the collate)::

    k_s = mean_{pairs (p, i) with pixel i in s} f(p)        point features of the paired points
    q_s = mean_{pixels i in s} g(i)                           pixel features of the whole segment
    L   = -(1 / S) * sum_s log( exp(k_s . q_s / tau) / sum_{s'} exp(k_s . q_{s'} / tau) )

over the S superpixels that hold at least one paired point (SLidR masks the empty ones), with
tau = 0.07, one direction (points -> pixels) as in SLidR; ``symmetric`` averages both directions.
SLidR L2-normalises ``f`` and ``g`` per point / pixel before pooling and does not re-normalise
the pooled vectors; so does this module (``normalize_pooled`` re-normalises, an option).

Negatives are all superpixels of the process's batch (SLidR: per GPU). With ``gather_negatives``
the pooled vectors of every process are gathered (:func:`xmodal.losses.gather.gather_rows`,
differentiable) and each process scores its own rows against all of them; the loss is scaled so
that the DDP gradient average equals the gradient of one process holding the whole global batch.

Shapes: ``point_feats`` [N, C] (rows of the batch's points), ``pixel_feats`` [I, C, H, W] (the
images' per-pixel features), ``pairs`` (:class:`~xmodal.structures.PixelPairs`),
``superpixels`` [I, H, W] int64 batch-global ids (-1: none).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from xmodal.losses.gather import gather_rows, world_size
from xmodal.losses.info_nce import info_nce
from xmodal.ops import Segments, segment_mean
from xmodal.registry import LOSSES
from xmodal.structures import PixelPairs

__all__ = [
    "SuperpixelInfoNCE",
    "SuperpixelInfoNCEConfig",
    "superpixel_pool",
    "superpixel_pool_reference",
    "superpixel_info_nce",
]


@dataclass(frozen=True)
class SuperpixelInfoNCEConfig:
    """``loss: {type: superpixel_infonce}`` (SLidR)."""

    temperature: float = 0.07
    symmetric: bool = False
    gather_negatives: bool = False  # negatives from every process (DDP); SLidR: per GPU only
    normalize_pooled: bool = False  # SLidR: false

    def validate(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}.")


def _check(point_feats, pixel_feats, pairs, superpixels, fn):
    if point_feats.dim() != 2 or pixel_feats.dim() != 4 or point_feats.shape[1] != pixel_feats.shape[1]:
        raise ValueError(
            f"{fn}: point_feats must be [N, C] and pixel_feats [I, C, H, W] with the same C, got "
            f"{tuple(point_feats.shape)} and {tuple(pixel_feats.shape)}"
        )
    if superpixels.shape != (pixel_feats.shape[0],) + tuple(pixel_feats.shape[2:]):
        raise ValueError(f"{fn}: superpixels must be [I, H, W] = {(pixel_feats.shape[0],) + tuple(pixel_feats.shape[2:])}, got {tuple(superpixels.shape)}")


def superpixel_pool(
    point_feats: torch.Tensor,  # [N, C]
    pixel_feats: torch.Tensor,  # [I, C, H, W]
    pairs: PixelPairs,
    superpixels: torch.Tensor,  # [I, H, W] int64, -1 = none
    num_superpixels: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(k [K, C], q [K, C], point_counts [K])``: per-superpixel means of the paired points'
    features and of all the segment's pixel features (0 rows for superpixels without pairs)."""
    _check(point_feats, pixel_feats, pairs, superpixels, "superpixel_pool")
    K = int(num_superpixels)
    sp = superpixels[pairs.camera, pairs.row, pairs.col]
    has = sp >= 0
    segs = Segments.from_ids(sp[has], K, check=False)
    k = segment_mean(point_feats.index_select(0, pairs.point[has]), segs)
    flat = superpixels.reshape(-1)
    pix = Segments.from_ids(torch.where(flat >= 0, flat, K), K + 1, check=False)  # K: "no superpixel"
    q = segment_mean(pixel_feats, pix, channels_first=True)[:K]
    return k, q, segs.counts


def superpixel_pool_reference(point_feats, pixel_feats, pairs, superpixels, num_superpixels):
    """SLidR's formulation: dense one-hot matrices (superpixel x pair, superpixel x pixel)
    multiplied with the features and divided by the counts. For tests only (memory K * I*H*W)."""
    K = int(num_superpixels)
    sp = superpixels[pairs.camera, pairs.row, pairs.col]
    one_k = (sp[None, :] == torch.arange(K)[:, None]).to(point_feats.dtype)  # [K, M]
    n_k = one_k.sum(1, keepdim=True)
    k = (one_k @ point_feats[pairs.point]) / n_k.clamp(min=1)
    flat = superpixels.reshape(-1)
    one_q = (flat[None, :] == torch.arange(K)[:, None]).to(pixel_feats.dtype)  # [K, I*H*W]
    g = pixel_feats.permute(0, 2, 3, 1).reshape(-1, pixel_feats.shape[1])
    q = (one_q @ g) / one_q.sum(1, keepdim=True).clamp(min=1)
    return k, q, n_k[:, 0].long()


def superpixel_info_nce(
    point_feats: torch.Tensor,
    pixel_feats: torch.Tensor,
    pairs: PixelPairs,
    superpixels: torch.Tensor,
    num_superpixels: int,
    temperature: float = 0.07,
    symmetric: bool = False,
    gather_negatives: bool = False,
    normalize_pooled: bool = False,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(loss, logs)``: the module docstring's loss over the superpixels with paired points.

    ``logs`` holds ``num_superpixels`` (used, this process) and ``sp_points`` (mean paired points
    per used superpixel). With no usable superpixel the loss is 0 (and still differentiable)."""
    k, q, counts = superpixel_pool(point_feats, pixel_feats, pairs, superpixels, num_superpixels)
    keep = counts > 0
    k, q = k[keep], q[keep]
    if normalize_pooled:
        k, q = F.normalize(k, dim=1), F.normalize(q, dim=1)
    s = k.shape[0]
    logs = {
        "num_superpixels": torch.tensor(float(s)),
        "sp_points": counts[keep].float().mean() if s else torch.tensor(0.0),
    }
    if gather_negatives and world_size() > 1:
        q_all, start, total = gather_rows(q)
        if total == 0:
            return (point_feats.sum() + pixel_feats.sum()) * 0.0, logs
        loss = info_nce(k, q_all, temperature, offset=start) if s else q_all.sum() * 0.0
        if symmetric:
            k_all, _, _ = gather_rows(k)
            back = info_nce(q, k_all, temperature, offset=start) if s else k_all.sum() * 0.0
            loss = 0.5 * (loss + back)
        # mean over the global rows, in the DDP gradient average
        return loss * (s * world_size() / total), logs
    if s == 0:
        return (point_feats.sum() + pixel_feats.sum()) * 0.0, logs
    return info_nce(k, q, temperature, symmetric=symmetric), logs


@LOSSES.register("superpixel_infonce", config=SuperpixelInfoNCEConfig)
class SuperpixelInfoNCE(torch.nn.Module):
    """:func:`superpixel_info_nce` with its options from the config; needs superpixels."""

    needs_superpixels = True

    def __init__(self, cfg: SuperpixelInfoNCEConfig):
        super().__init__()
        self.cfg = cfg

    def forward(self, point_feats, pixel_feats, pairs, superpixels, num_superpixels):
        c = self.cfg
        return superpixel_info_nce(
            point_feats, pixel_feats, pairs, superpixels, num_superpixels,
            c.temperature, c.symmetric, c.gather_negatives, c.normalize_pooled,
        )
