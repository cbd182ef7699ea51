"""BEV pooling: sum frustum features into the cells of a bird's-eye-view grid (lift-splat).

Every frustum sample (a camera pixel at one depth bin, placed in the ego / LiDAR frame by the
calibration) falls in one BEV cell; the BEV map is the per-cell sum of their features::

    bev[b, :, iy, ix] = sum_{r : cell(r) = (b, iy, ix)} w[r] * feats[row(r)]

    plain form     w = 1,        row(r) = r            feats [M, C] (frustum features, already
                                                       depth-weighted, as in LSS / BEVFusion)
    weighted form  w = depth[r], row(r) = pixel of r   feats [Nf, C] per image pixel, depth [M] per
                                                       (pixel, depth bin): the BEVPoolv2 form, the
                                                       [M, C] frustum tensor is never materialised

Cells: ``ix = floor((x - x_min) / dx)``, ``iy = floor((y - y_min) / dy)``; samples outside
``x_range`` / ``y_range`` (or ``z_range`` when given) are dropped. The map is ``[B, C, H, W]``
with ``H = ny`` (rows along y) and ``W = nx`` (columns along x): the layout of a LiDAR BEV map from
spconv's ``(z, y, x)`` dense output with the height folded into channels, so camera and LiDAR BEV
maps line up for distillation. (BEVFusion's ``bev_pool`` returns the transpose, x along H.) The
returned tensor has channels-last strides (``out.is_contiguous(memory_format=torch.channels_last)``);
call ``.contiguous()`` if a consumer needs NCHW-contiguous memory.

The cell of every sample depends only on the calibration, so the index is built once
(:class:`BevPoolIndex`, as BEVFusion / BEVPoolv2 precompute their ranks and intervals) and reused
forward and backward on every call. It is a :class:`~xmodal.ops.Segments` of the M samples into the
``B * H * W`` cells plus one trailing segment that collects the dropped samples.

Paths:

- :func:`bev_pool_reference`: ``index_add_`` over the kept samples in fp32 (fp64 for fp64
  input), differentiated by autograd. The definition; also the naive peer.
- :func:`bev_pool`: plain form = :func:`~xmodal.ops.segment_sum` over the cached index (CSR
  gather-reduce on CPU, sorted-segment Triton on CUDA). Weighted form = a weighted CSR gather-reduce
  (``embedding_bag`` with ``per_sample_weights`` over the same index) with a hand-written backward:
  ``d feats`` by the transposed CSR index (also built once), ``d depth`` by a chunked gathered dot
  product. Both deterministic (no atomics).

No cumulative-sum trick (LSS QuickCumsum): it takes differences of a running sum over all M
samples, whose fp32 rounding error grows with the running total, not with the cell's own sum
(``tests/ops/test_bev_pool.py::test_cumsum_trick_loses_precision`` measures it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from xmodal.ops.segment_reduce import segment_sum
from xmodal.ops.segments import Segments

__all__ = ["BevGrid", "BevPoolIndex", "bev_pool", "bev_pool_reference"]

_CHUNK = 2048  # rows per chunk of the gathered dot product (d depth): two [chunk, C] gathers stay in cache


@dataclass(frozen=True)
class BevGrid:
    """A BEV grid over the ego / LiDAR frame (x forward, y left, z up; metres).

    ``cell_size`` is ``(dx, dy)`` or one number. Each extent must be a whole number of cells
    (the ``VoxelGridConfig`` rule). Samples with z outside ``z_range`` are dropped (None: keep all).
    BEVDet / BEVFusion: ``BevGrid((-51.2, 51.2), (-51.2, 51.2), 0.8, (-5.0, 3.0))`` -> 128 x 128.
    """

    x_range: tuple[float, float]
    y_range: tuple[float, float]
    cell_size: tuple[float, float] | float
    z_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        cs = self.cell_size
        cs = (float(cs), float(cs)) if isinstance(cs, (int, float)) else tuple(float(c) for c in cs)
        if len(cs) != 2 or not all(math.isfinite(c) and c > 0 for c in cs):
            raise ValueError(f"BevGrid: cell_size must be a number or (dx, dy) > 0, got {self.cell_size!r}")
        object.__setattr__(self, "cell_size", cs)
        for name, size in (("x_range", cs[0]), ("y_range", cs[1]), ("z_range", None)):
            rng = getattr(self, name)
            if rng is None and name == "z_range":
                continue
            lo, hi = (float(v) for v in rng)
            if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
                raise ValueError(f"BevGrid: {name} must be (min, max) with max > min, got {rng!r}")
            object.__setattr__(self, name, (lo, hi))
            if size is not None:
                cells = (hi - lo) / size
                if abs(cells - round(cells)) > 1e-4:
                    raise ValueError(
                        f"BevGrid: {name} extent {hi - lo:g} m is not a whole number of cells "
                        f"of {size:g} m ({cells:.3f})"
                    )

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W) = (ny, nx)``."""
        return (
            int(math.floor((self.y_range[1] - self.y_range[0]) / self.cell_size[1] + 0.5)),
            int(math.floor((self.x_range[1] - self.x_range[0]) / self.cell_size[0] + 0.5)),
        )


@dataclass(frozen=True, eq=False)
class BevPoolIndex:
    """Which BEV cell each of the M frustum samples falls in, sorted once (see module docstring).

    Attributes:
        cell_ids: [M] int64 ``(b * H + iy) * W + ix``, -1 for dropped samples (sample order).
        segments: :class:`Segments` of the M samples into ``B * H * W + 1`` segments; the last one
            holds the dropped samples (sorted last, never part of the map).
        batch_size, height, width: the map is ``[B, C, H, W]``.
        feat_rows: [M] int64 feature row read by each sample in the weighted form (the pixel of a
            (pixel, depth bin) sample), or None: sample r reads ``feats[r]``.
        num_feat_rows: rows ``feats`` must have in the weighted form.
        num_kept: samples inside the grid.
    """

    cell_ids: torch.Tensor
    segments: Segments
    batch_size: int
    height: int
    width: int
    feat_rows: torch.Tensor | None
    num_feat_rows: int
    num_kept: int

    @property
    def num_rows(self) -> int:
        """M, the number of frustum samples."""
        return self.cell_ids.numel()

    @property
    def num_cells(self) -> int:
        return self.batch_size * self.height * self.width

    @property
    def device(self) -> torch.device:
        return self.cell_ids.device

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_cell_ids(
        cls,
        cell_ids: torch.Tensor,  # [M] int, (b * H + iy) * W + ix or -1 (dropped)
        batch_size: int,
        height: int,
        width: int,
        *,
        feat_rows: torch.Tensor | None = None,  # [M] int, feature row per sample (weighted form)
        num_feat_rows: int | None = None,  # default: feat_rows.max() + 1
    ) -> BevPoolIndex:
        """An index from precomputed cell ids (e.g. BEVFusion / BEVPoolv2 ranks).

        Raises:
            ValueError: ``cell_ids`` not 1-D integer or outside ``-1 .. B*H*W - 1``; ``feat_rows``
                of another length or outside ``0 .. num_feat_rows - 1``.
        """
        fn = "BevPoolIndex.from_cell_ids"
        if min(batch_size, height, width) < 1:
            raise ValueError(f"{fn}: batch_size, height and width must be >= 1, got {(batch_size, height, width)}")
        if (
            not isinstance(cell_ids, torch.Tensor)
            or cell_ids.dim() != 1
            or cell_ids.dtype.is_floating_point
            or cell_ids.dtype == torch.bool
        ):
            raise ValueError(f"{fn}: cell_ids must be a 1-D integer tensor [M]")
        k = batch_size * height * width
        cell_ids = cell_ids.long()
        m = cell_ids.numel()
        checks = [cell_ids.aminmax()] if m else []
        if feat_rows is not None:
            if (
                not isinstance(feat_rows, torch.Tensor)
                or feat_rows.shape != cell_ids.shape
                or feat_rows.dtype.is_floating_point
            ):
                raise ValueError(f"{fn}: feat_rows must be an integer tensor of shape [M={m}] like cell_ids")
            feat_rows = feat_rows.to(device=cell_ids.device, dtype=torch.long)
            if m:
                checks.append(feat_rows.aminmax())
        vals = torch.stack([v for mm in checks for v in mm]).tolist() if checks else []
        if vals and (vals[0] < -1 or vals[1] >= k):
            raise ValueError(f"{fn}: cell_ids must be in -1 .. {k - 1} (B*H*W - 1), got {vals[0]} .. {vals[1]}")
        if feat_rows is not None:
            if num_feat_rows is None:
                num_feat_rows = vals[3] + 1 if vals else 0
            if vals and (vals[2] < 0 or vals[3] >= num_feat_rows):
                raise ValueError(f"{fn}: feat_rows must be in 0 .. {num_feat_rows - 1}, got {vals[2]} .. {vals[3]}")
        return cls._build(cell_ids, batch_size, height, width, feat_rows, num_feat_rows)

    @classmethod
    def from_geometry(
        cls,
        geometry: torch.Tensor,  # [M, 3] or [B, N, D, fH, fW, 3] x, y, z in the ego / LiDAR frame, m
        grid: BevGrid,
        *,
        batch_offsets: torch.Tensor | None = None,  # [B+1] for the [M, 3] form (default: B = 1)
    ) -> BevPoolIndex:
        """Index the samples of a frustum geometry into ``grid``.

        ``[B, N, D, fH, fW, 3]`` (LSS / BEVDet ``get_geometry``: batch, camera, depth bin, feature
        row, column) also sets up the weighted form: sample ``(b, n, d, h, w)`` reads the pixel
        feature row ``((b * N + n) * fH + h) * fW + w`` (``feats`` = image features
        ``[B * N, C, fH, fW]`` as ``.permute(0, 2, 3, 1).reshape(-1, C)``) and the depth
        ``depth[b, n, d, h, w]`` (``depth`` = the ``[B * N, D, fH, fW]`` softmax, flattened).

        Raises:
            ValueError: ``geometry`` has another shape, NaN or infinite values; ``batch_offsets``
                is not [B+1] from 0 to M; ``grid`` is not a :class:`BevGrid`.
        """
        fn = "BevPoolIndex.from_geometry"
        if not isinstance(grid, BevGrid):
            raise ValueError(f"{fn}: grid must be a BevGrid, got {type(grid).__name__}")
        if (
            not isinstance(geometry, torch.Tensor)
            or not geometry.dtype.is_floating_point
            or geometry.dim() not in (2, 6)
            or geometry.shape[-1] != 3
        ):
            shape = tuple(geometry.shape) if isinstance(geometry, torch.Tensor) else type(geometry).__name__
            raise ValueError(f"{fn}: geometry must be a float tensor [M, 3] or [B, N, D, fH, fW, 3], got {shape}")
        dev = geometry.device
        frustum = geometry.dim() == 6
        geo = geometry.detach().reshape(-1, 3)
        m = geo.shape[0]
        if m and not bool(torch.isfinite(geo.sum())) and not bool(torch.isfinite(geo).all()):
            raise ValueError(f"{fn}: geometry has NaN or infinite values")
        feat_rows, num_feat_rows = None, 0
        if frustum:
            if batch_offsets is not None:
                raise ValueError(
                    f"{fn}: batch_offsets is only for [M, 3] geometry; [B, N, D, fH, fW, 3] carries the batch"
                )
            b, n, d, fh, fw, _ = geometry.shape
            r = torch.arange(m, device=dev)
            batch = r // (n * d * fh * fw)
            feat_rows = (r // (d * fh * fw)) * (fh * fw) + r % (fh * fw)
            num_feat_rows = b * n * fh * fw
        elif batch_offsets is not None:
            off = torch.as_tensor(batch_offsets)
            if off.dim() != 1 or off.numel() < 2 or off.dtype.is_floating_point:
                raise ValueError(f"{fn}: batch_offsets must be a 1-D integer tensor [B+1]")
            ol = off.tolist()
            if ol[0] != 0 or ol[-1] != m or any(y < x for x, y in zip(ol, ol[1:])):
                raise ValueError(
                    f"{fn}: batch_offsets must start at 0, be non-decreasing and end at M={m}; got {ol[:8]}"
                )
            b = len(ol) - 1
            batch = torch.repeat_interleave(torch.arange(b, device=dev), off.to(dev).diff(), output_size=m)
        else:
            b, batch = 1, None
        h, w = grid.shape
        cdt = torch.float64 if geo.dtype == torch.float64 else torch.float32
        geo = geo.to(cdt)
        ix = torch.floor((geo[:, 0] - grid.x_range[0]) / grid.cell_size[0])
        iy = torch.floor((geo[:, 1] - grid.y_range[0]) / grid.cell_size[1])
        keep = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
        if grid.z_range is not None:
            keep &= (geo[:, 2] >= grid.z_range[0]) & (geo[:, 2] < grid.z_range[1])
        cell = iy.clamp_(0, h - 1).long() * w + ix.clamp_(0, w - 1).long()
        if batch is not None:
            cell += batch * (h * w)
        cell = cell.masked_fill_(~keep, -1)
        return cls._build(cell, b, h, w, feat_rows, num_feat_rows)

    @classmethod
    def _build(cls, cell_ids, batch_size, height, width, feat_rows, num_feat_rows) -> BevPoolIndex:
        k = batch_size * height * width
        seg_ids = torch.where(cell_ids < 0, torch.full_like(cell_ids, k), cell_ids)
        segs = Segments.from_ids(seg_ids, k + 1, check=False)
        num_kept = segs.num_rows - int(segs.counts[k])
        segs.perm  # noqa: B018 - sort now, once, while the calibration is fixed
        return cls(cell_ids, segs, batch_size, height, width, feat_rows, int(num_feat_rows or 0), num_kept)

    # ------------------------------------------------------------------ cached views
    def _kept_sorted(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(sample rows, feature rows, cells, CSR offsets [K+1]) of the kept samples in cell order."""

        def build():
            nk = self.num_kept
            rows = self.segments.perm[:nk]
            frows = rows if self.feat_rows is None else self.feat_rows.index_select(0, rows)
            return rows, frows, self.segments.sorted_ids[:nk], self.segments.offsets[: self.num_cells + 1]

        return self.segments.cached("bev_kept_sorted", build)

    def _transposed(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(sample rows, cells, offsets [Nf+1]) of the kept samples grouped by feature row: the
        CSR index of ``d feats`` in the weighted form."""

        def build():
            rows, frows, cells, _ = self._kept_sorted()
            t = Segments.from_ids(frows, self.num_feat_rows, check=False)
            return rows.index_select(0, t.perm), cells.index_select(0, t.perm), t.offsets

        return self.segments.cached("bev_transposed", build)

    def to(self, device: torch.device | str) -> BevPoolIndex:
        """The same index on ``device`` (self if already there)."""
        device = torch.device(device)
        if self.device == device:
            return self
        return BevPoolIndex(
            self.cell_ids.to(device),
            self.segments.to(device),
            self.batch_size,
            self.height,
            self.width,
            None if self.feat_rows is None else self.feat_rows.to(device),
            self.num_feat_rows,
            self.num_kept,
        )


# ----------------------------------------------------------------------------- checks
def _prepare(feats, index, depth, grid, batch_offsets, fn):
    if isinstance(index, torch.Tensor):
        if grid is None:
            raise ValueError(f"{fn}: pass grid= (a BevGrid) with a geometry tensor, or a BevPoolIndex")
        index = BevPoolIndex.from_geometry(index, grid, batch_offsets=batch_offsets)
    elif not isinstance(index, BevPoolIndex):
        raise ValueError(f"{fn}: index must be a BevPoolIndex or a geometry tensor, got {type(index).__name__}")
    if not isinstance(feats, torch.Tensor) or feats.dim() < 2 or not feats.dtype.is_floating_point:
        shape = tuple(feats.shape) if isinstance(feats, torch.Tensor) else type(feats).__name__
        raise ValueError(f"{fn}: feats must be a floating-point tensor [rows, C], got {shape}")
    feats = feats.reshape(-1, feats.shape[-1])
    if feats.device != index.device:
        raise ValueError(
            f"{fn}: feats is on {feats.device} but the index on {index.device}; use index.to(feats.device)"
        )
    m = index.num_rows
    if depth is None:
        if feats.shape[0] != m:
            raise ValueError(
                f"{fn}: feats has {feats.shape[0]} rows but the index has {m} samples (plain form: one row per sample)"
            )
        return feats, index, None
    if not isinstance(depth, torch.Tensor) or not depth.dtype.is_floating_point or depth.numel() != m:
        shape = tuple(depth.shape) if isinstance(depth, torch.Tensor) else type(depth).__name__
        raise ValueError(f"{fn}: depth must be a floating-point tensor with {m} values (one per sample), got {shape}")
    if depth.device != index.device:
        raise ValueError(f"{fn}: depth is on {depth.device} but the index on {index.device}")
    want = m if index.feat_rows is None else index.num_feat_rows
    if feats.shape[0] != want:
        raise ValueError(
            f"{fn}: feats has {feats.shape[0]} rows but the weighted form reads {want} "
            + ("(one per sample)" if index.feat_rows is None else "(one per image pixel)")
        )
    return feats, index, depth.reshape(-1)


def _to_map(out: torch.Tensor, index: BevPoolIndex) -> torch.Tensor:
    """[B*H*W, C] -> [B, C, H, W] view (channels-last strides)."""
    return out.view(index.batch_size, index.height, index.width, out.shape[1]).permute(0, 3, 1, 2)


# ----------------------------------------------------------------------------- weighted form
def _compute_dtype(feats: torch.Tensor, depth: torch.Tensor) -> tuple[torch.dtype, torch.dtype]:
    out = torch.promote_types(feats.dtype, depth.dtype)
    return out, (torch.float64 if out == torch.float64 else torch.float32)


class _WeightedBevPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, feats, depth, index):
        out_dtype, acc = _compute_dtype(feats, depth)
        rows, frows, _, offsets = index._kept_sorted()
        c = feats.shape[1]
        ctx.index, ctx.out_dtype, ctx.acc = index, out_dtype, acc
        ctx.save_for_backward(feats, depth)
        if index.num_kept == 0 or c == 0:
            return feats.new_zeros((index.num_cells, c), dtype=out_dtype)
        w = depth.index_select(0, rows).to(acc)
        fa = feats.to(acc).contiguous()
        out = F.embedding_bag(frows, fa, offsets, mode="sum", per_sample_weights=w, include_last_offset=True)
        return out.to(out_dtype)

    @staticmethod
    def backward(ctx, g):
        feats, depth = ctx.saved_tensors
        index, acc = ctx.index, ctx.acc
        g = g.to(acc).contiguous()
        rows, frows, cells, _ = index._kept_sorted()
        grad_feats = grad_depth = None
        if ctx.needs_input_grad[0]:
            if index.num_kept == 0:
                grad_feats = torch.zeros(feats.shape, dtype=acc, device=g.device)
            elif index.feat_rows is None:  # sample r reads feats[r]: d feats[r] = depth[r] * g[cell(r)]
                g_pad = torch.cat([g, g.new_zeros((1, g.shape[1]))])  # dropped samples read the zero row
                grad_feats = g_pad.index_select(0, index.segments.ids).mul_(depth.to(acc)[:, None])
            else:  # d feats[p] = sum over the samples of pixel p of depth * g[cell]
                t_rows, t_cells, t_offsets = index._transposed()
                grad_feats = F.embedding_bag(
                    t_cells,
                    g,
                    t_offsets,
                    mode="sum",
                    per_sample_weights=depth.index_select(0, t_rows).to(acc),
                    include_last_offset=True,
                )
            grad_feats = grad_feats.to(feats.dtype)
        if ctx.needs_input_grad[1]:  # d depth[r] = <feats[row(r)], g[cell(r)]>, each r written once
            gd = torch.empty(index.num_kept, dtype=acc, device=g.device)
            fa = feats.to(acc)
            for s in range(0, index.num_kept, _CHUNK):
                e = min(s + _CHUNK, index.num_kept)
                a = fa.index_select(0, frows[s:e])
                torch.sum(a.mul_(g.index_select(0, cells[s:e])), 1, out=gd[s:e])
            grad_depth = torch.zeros(depth.shape, dtype=acc, device=g.device).index_copy_(0, rows, gd).to(depth.dtype)
        return grad_feats, grad_depth, None


# ----------------------------------------------------------------------------- public API
def bev_pool(
    feats: torch.Tensor,  # [M, C] (plain) or [Nf, C] (weighted); leading dims are flattened
    index: BevPoolIndex | torch.Tensor,  # or geometry [M, 3] / [B, N, D, fH, fW, 3] (ego frame, m) with grid=
    depth: torch.Tensor | None = None,  # [M] weight per sample: the weighted (BEVPoolv2) form
    *,
    grid: BevGrid | None = None,
    batch_offsets: torch.Tensor | None = None,  # [B+1] with [M, 3] geometry
    backend: str = "auto",  # segment_sum backend (plain form; the weighted form always uses its
    # embedding_bag path, any device); "reference" runs bev_pool_reference
) -> torch.Tensor:
    """BEV map ``[B, C, H, W]`` (channels-last strides): per-cell sum of the frustum features.

    Build the :class:`BevPoolIndex` once per calibration and pass it on every call; a geometry
    tensor (with ``grid``) is indexed on the spot. Differentiable w.r.t. ``feats`` and ``depth``.
    Output dtype: ``feats.dtype`` (plain), ``promote_types(feats, depth)`` (weighted); half inputs
    are accumulated in fp32. Feature values are not scanned: a NaN feature gives a NaN cell.

    Raises:
        ValueError: ``feats`` / ``depth`` rows do not match the index; bad geometry or grid
            (see :meth:`BevPoolIndex.from_geometry`).
    """
    feats, index, depth = _prepare(feats, index, depth, grid, batch_offsets, "bev_pool")
    if backend == "reference":
        return _reference(feats, index, depth)
    if depth is None:
        out = segment_sum(feats, index.segments, backend)[: index.num_cells]
    else:
        out = _WeightedBevPool.apply(feats, depth, index)
    return _to_map(out, index)


def bev_pool_reference(
    feats: torch.Tensor,
    index: BevPoolIndex | torch.Tensor,
    depth: torch.Tensor | None = None,
    *,
    grid: BevGrid | None = None,
    batch_offsets: torch.Tensor | None = None,
) -> torch.Tensor:
    """The definition :func:`bev_pool` is tested against: ``index_add_`` of the kept samples'
    (weighted) features into ``B * H * W`` cells, read from ``index.cell_ids`` / ``feat_rows`` only
    (not the sorted index). Accumulates in fp64 for fp64 input, else fp32. Same arguments."""
    feats, index, depth = _prepare(feats, index, depth, grid, batch_offsets, "bev_pool_reference")
    return _reference(feats, index, depth)


def _reference(feats, index, depth):
    kept = (index.cell_ids >= 0).nonzero().squeeze(1)
    if depth is None:
        x, out_dtype = feats[kept], feats.dtype
    else:
        out_dtype = torch.promote_types(feats.dtype, depth.dtype)
        frows = kept if index.feat_rows is None else index.feat_rows[kept]
        x = feats[frows].to(out_dtype) * depth[kept].to(out_dtype)[:, None]
    acc = torch.float64 if out_dtype == torch.float64 else torch.float32
    out = torch.zeros((index.num_cells, feats.shape[1]), dtype=acc, device=feats.device)
    out = out.index_add(0, index.cell_ids[kept], x.to(acc))
    return _to_map(out.to(out_dtype), index)
