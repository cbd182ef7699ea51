"""Voxelization: cubic (x, y, z) or cylindrical (ρ, φ, z) voxels of a concatenated point batch.

``voxelize(points, voxel_size)`` groups the points of each sample by voxel and returns a
:class:`Voxels`: the integer coordinates of the occupied voxels, the point -> voxel map, a
:class:`~xmodal.ops.Segments` index for pooling any per-point tensor into the voxels (built once,
reused forward and backward), and the mean of the point features per voxel.

Grid (per axis ``a``, value ``u_a`` of the point in the grid's coordinates)::

    cubic        u = (x, y, z)                       metres, LiDAR frame
    cylindrical  u = (ρ, φ, z) = (sqrt(x² + y²),     metres
                                  atan2(y, x)·180/π, degrees in [-180, 180]
                                  z)                 metres
    index_a = floor((u_a - lower_a) / voxel_size_a)

``lower`` comes from ``point_range`` (``[lo_0, lo_1, lo_2, hi_0, hi_1, hi_2]``, the same layout as
:class:`~xmodal.config.schema.VoxelGridConfig.point_cloud_range`; for cylindrical grids
``[ρ_min, φ_min°, z_min, ρ_max, φ_max°, z_max]``); points whose index falls outside
``0 .. spatial_shape_a - 1`` on any axis are dropped (``point2voxel = -1``), as in spconv's
``PointToVoxel``. Without ``point_range`` an axis is unbounded: the voxel boundaries are the
multiples of ``voxel_size_a`` (as in SLidR / MinkowskiEngine ``floor(u / size)``) and the indices
are shifted by the smallest one in the call so that they start at 0 (``Voxels.origin``).
The φ axis of a cylindrical grid is always bounded: [-180°, 180°) unless ``point_range`` says
otherwise; a φ range that spans 360° wraps (φ = +180° falls in the same voxel as -180°; the
range may start anywhere, e.g. [0°, 360°)), a narrower one must lie within [-180°, 180°]. Voxels
on either side of the seam are not neighbours for a sparse convolution (no circular padding).

SLidR (``config/slidr_minkunet.yaml``: ``cylindrical_coordinates: True``, ``voxel_size: 0.1``)
quantizes ``(ρ / 0.1, φ in degrees / 1, z / 0.1)`` with ``floor``: ``voxelize(points, 0.1,
coords="cylindrical")`` gives the same voxels (a float ``voxel_size`` means ``(s, 1°, s)``
for cylindrical grids); only its φ index is offset by +180 (and φ = +180° is merged with -180°).
"Same" up to rounding at voxel borders: here ``floor((φ + 180) / 1)`` is computed, SLidR computes
``floor(φ / 1)``; in fp32 the two can differ for a point within ~1e-5° of a whole degree (fp64
inputs make that ~1e-13°).

Coordinate order: ``Voxels.coords`` is ``(batch, i, j, k)`` with ``i, j, k`` indexing the grid axes
in the order above (x, y, z or ρ, φ, z), and voxels are sorted by that row (what ``torch.unique(
coords, dim=0)`` gives). spconv and SECOND-style backbones expect ``(batch, z, y, x)`` with
``spatial_shape = [n_z, n_y, n_x]``; :meth:`Voxels.spconv_indices` and :meth:`Voxels.to_spconv`
produce that order (``layout="zyx"``, the default).

Two implementations give identical results (set, order, map, means):

- :func:`voxelize_reference`: ``torch.unique`` over the integer ``(batch, i, j, k)`` rows +
  ``index_add_``. Obviously correct and slow (a lexicographic row sort).
- :func:`voxelize` (fast path): one int64 (int32 when it fits) linear key per point, one stable
  sort, ``unique_consecutive``; the sort permutation *is* the CSR index of the returned
  :class:`Segments`, and the means come from :func:`~xmodal.ops.segment_mean`.

spconv's ``PointToVoxel`` is not used: it caps points per voxel and voxels per sample, returns
voxels in hash order, and its CPU wheel is not optimized; a CUDA path through it has not been
measured (no GPU on the build machine) and is not implemented.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from xmodal.geometry.grid import grid_cells
from xmodal.ops.segment_reduce import segment_mean, segment_reduce
from xmodal.ops.segments import Segments

__all__ = ["SLIDR_CYLINDRICAL_VOXEL", "Voxels", "voxelize", "voxelize_reference"]

SLIDR_CYLINDRICAL_VOXEL = (0.1, 1.0, 0.1)  # (ρ m, φ degrees, z m), SLidR / SuperFlow
COORDS = ("cubic", "cylindrical")
_INT64_MAX = 2**63 - 1
_INT32_MAX = 2**31 - 1


@dataclass(frozen=True, eq=False)
class Voxels:
    """The occupied voxels of a (batch of) point cloud(s); see the module docstring.

    Attributes:
        coords: [V, 4] int32 ``(batch, i, j, k)``, axes in grid order (x, y, z or ρ, φ, z),
            rows sorted lexicographically (= by linear key). Not spconv's order: use
            :meth:`spconv_indices`.
        point2voxel: [N] int64 voxel of every input point, -1 for points outside the range.
        segments: :class:`Segments` of the points inside the range (rows ``points[kept]``, or all
            points when ``kept is None``) into the V voxels; pool with :meth:`pool` or
            :func:`~xmodal.ops.segment_mean` etc.
        features: [V, F] mean of ``points[:, 3:]`` per voxel (differentiable w.r.t. them).
        num_points: [V] int64 points per voxel.
        spatial_shape: ``(n_i, n_j, n_k)`` voxels along each grid axis.
        batch_size: B.
        kept: [N_in] int64 increasing indices of the points inside the range, or None when every
            point is inside (then ``segments`` covers all N rows).
        origin: ``(o_i, o_j, o_k)``: grid index ``floor((u - lower) / size)`` of coordinate 0
            (0 on bounded axes; the per-call minimum on unbounded axes).
        lower: ``(l_0, l_1, l_2)`` in grid units (m / degrees) where index 0 starts on bounded axes
            (0.0 on unbounded axes: their boundaries are multiples of the size).
        voxel_size: ``(s_0, s_1, s_2)`` (m, or m / degrees / m for cylindrical).
        coord_system: ``"cubic"`` or ``"cylindrical"``.
    """

    coords: torch.Tensor
    point2voxel: torch.Tensor
    segments: Segments
    features: torch.Tensor
    num_points: torch.Tensor
    spatial_shape: tuple[int, int, int]
    batch_size: int
    kept: torch.Tensor | None
    origin: tuple[int, int, int]
    lower: tuple[float, float, float]
    voxel_size: tuple[float, float, float]
    coord_system: str

    @property
    def num_voxels(self) -> int:
        return self.coords.shape[0]

    def __len__(self) -> int:
        return self.num_voxels

    # ------------------------------------------------------------------ pooling
    def pool(self, x: torch.Tensor, reduce: str = "mean", backend: str = "auto") -> torch.Tensor:
        """[V, C] ``reduce`` ("sum" | "mean" | "max") of a per-point tensor ``x`` [N, C] (or [N])
        over the voxels; points outside the range are ignored. Differentiable w.r.t. ``x``."""
        n = self.point2voxel.shape[0]
        if not isinstance(x, torch.Tensor) or x.dim() not in (1, 2) or x.shape[0] != n:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"Voxels.pool: x must be [N={n}, C] or [N={n}] (one row per input point), got {shape}")
        if self.kept is not None:
            x = x[self.kept]
        return segment_reduce(x, self.segments, reduce, backend)[0]

    def gather(self, voxel_values: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
        """[N, C] the value of each point's voxel (``fill`` for points outside the range), from
        ``voxel_values`` [V, C] or [V]: maps a per-voxel prediction back to every point."""
        if not isinstance(voxel_values, torch.Tensor) or voxel_values.shape[:1] != (self.num_voxels,):
            shape = tuple(voxel_values.shape) if isinstance(voxel_values, torch.Tensor) else type(voxel_values).__name__
            raise ValueError(
                f"Voxels.gather: voxel_values must have {self.num_voxels} rows (one per voxel), got {shape}"
            )
        out = voxel_values[self.point2voxel.clamp(min=0)]
        if self.kept is not None:
            mask = (self.point2voxel < 0).view(-1, *([1] * (voxel_values.dim() - 1)))
            out = out.masked_fill(mask, fill)
        return out

    def centers(self) -> torch.Tensor:
        """[V, 3] float32 voxel centres in grid coordinates (x, y, z m; or ρ m, φ degrees, z m)."""
        idx = self.coords[:, 1:].double() + torch.tensor(self.origin, dtype=torch.float64, device=self.coords.device)
        size = torch.tensor(self.voxel_size, dtype=torch.float64, device=self.coords.device)
        lower = torch.tensor(self.lower, dtype=torch.float64, device=self.coords.device)
        return (lower + (idx + 0.5) * size).float()

    # ------------------------------------------------------------------ spconv
    def spconv_indices(self, layout: str = "zyx") -> torch.Tensor:
        """[V, 4] int32 contiguous indices for ``spconv.SparseConvTensor``: ``(batch, k, j, i)``
        for ``layout="zyx"`` (spconv / SECOND: z first; for cylindrical grids (z, φ, ρ)), or
        ``(batch, i, j, k)`` for ``layout="xyz"``. Pair with :meth:`spconv_shape`."""
        if layout == "xyz":
            return self.coords.contiguous()
        if layout != "zyx":
            raise ValueError(f"Voxels.spconv_indices: layout must be 'zyx' or 'xyz', got {layout!r}")
        return self.coords[:, [0, 3, 2, 1]].contiguous()

    def spconv_shape(self, layout: str = "zyx") -> list[int]:
        """``spatial_shape`` in the order of :meth:`spconv_indices` (``[n_k, n_j, n_i]`` for zyx)."""
        if layout not in ("zyx", "xyz"):
            raise ValueError(f"Voxels.spconv_shape: layout must be 'zyx' or 'xyz', got {layout!r}")
        shape = list(self.spatial_shape)
        return shape[::-1] if layout == "zyx" else shape

    def to_spconv(self, features: torch.Tensor | None = None, layout: str = "zyx"):
        """A ``spconv.pytorch.SparseConvTensor`` of ``features`` [V, C] (default: the mean point
        features) at these voxels. Imports spconv (with xmodal's CPU backward fix)."""
        from xmodal.models.encoders.spconv_compat import import_spconv

        spconv = import_spconv()

        feats = self.features if features is None else features
        if feats.shape[0] != self.num_voxels:
            raise ValueError(f"Voxels.to_spconv: features must have {self.num_voxels} rows, got {tuple(feats.shape)}")
        return spconv.SparseConvTensor(feats, self.spconv_indices(layout), self.spconv_shape(layout), self.batch_size)


# ----------------------------------------------------------------------------- input checks
def _as_triple(value, name: str, coords: str) -> tuple[float, float, float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (value, SLIDR_CYLINDRICAL_VOXEL[1], value) if coords == "cylindrical" else (value,) * 3
    elif isinstance(value, torch.Tensor):
        value = value.tolist()
    try:
        triple = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"voxelize: {name} must be a number or 3 numbers, got {value!r}") from None
    if len(triple) != 3 or not all(math.isfinite(v) and v > 0 for v in triple):
        raise ValueError(f"voxelize: {name} must be 3 finite numbers > 0, got {value!r}")
    return triple  # type: ignore[return-value]


def _check_range(point_range, size, coords) -> tuple[list[float], list[int]]:
    """lower bounds and whole-number cell counts (the VoxelGridConfig.validate rule)."""
    if isinstance(point_range, torch.Tensor):
        point_range = point_range.tolist()
    try:
        vals = [float(v) for v in point_range]
    except (TypeError, ValueError):
        raise ValueError(f"voxelize: point_range must be 6 numbers, got {point_range!r}") from None
    if len(vals) != 6 or not all(math.isfinite(v) for v in vals):
        raise ValueError(
            f"voxelize: point_range must be 6 finite numbers [lo0, lo1, lo2, hi0, hi1, hi2], got {point_range!r}"
        )
    cyl = coords == "cylindrical"
    try:
        shape = grid_cells(vals[:3], vals[3:], size, axes=("rho", "phi", "z") if cyl else ("x", "y", "z"),
                           name="point_range", units=("m", "deg", "m") if cyl else ("m", "m", "m"))
    except ValueError as exc:
        raise ValueError(f"voxelize: {exc}") from None
    return vals[:3], shape


def _batch_offsets(batch_offsets, n: int, fn: str) -> list[int] | None:
    """Host list [B+1] of the checked offsets (one sync), or None."""
    if batch_offsets is None:
        return None
    if not isinstance(batch_offsets, torch.Tensor):
        batch_offsets = torch.as_tensor(batch_offsets)
    if (
        batch_offsets.dim() != 1
        or batch_offsets.numel() < 2
        or batch_offsets.dtype.is_floating_point
        or batch_offsets.dtype == torch.bool
    ):
        raise ValueError(
            f"{fn}: batch_offsets must be a 1-D integer tensor [B+1], "
            f"got {batch_offsets.dtype} {tuple(batch_offsets.shape)}"
        )
    off = batch_offsets.tolist()
    if off[0] != 0 or off[-1] != n or any(b < a for a, b in zip(off, off[1:])):
        raise ValueError(
            f"{fn}: batch_offsets must start at 0, be non-decreasing and end at N={n}; "
            f"got {off[:8]}{'...' if len(off) > 8 else ''}"
        )
    return off


# ----------------------------------------------------------------------------- quantization
@dataclass(frozen=True)
class _Grid:
    f: torch.Tensor  # [3, N] float grid index (floored, φ wrapped, origin subtracted), any value for dropped points
    keep: torch.Tensor | None  # [N] bool, points inside the range; None when all are
    n_in: int
    offsets: list[int] | None  # batch offsets [B+1]
    feats: torch.Tensor  # [N, F] points[:, 3:]
    n: int
    shape: tuple[int, int, int]
    batch_size: int
    origin: tuple[int, int, int]
    lower: tuple[float, float, float]
    size: tuple[float, float, float]
    coords: str

    def batch_ids(self) -> torch.Tensor:
        """[N] int64 sample of every point."""
        dev = self.f.device
        if self.offsets is None:
            return torch.zeros(self.n, dtype=torch.long, device=dev)
        counts = torch.tensor(self.offsets, device=dev).diff()
        return torch.repeat_interleave(torch.arange(self.batch_size, device=dev), counts, output_size=self.n)


def _quantize(points, voxel_size, point_range, coords, batch_offsets, fn: str) -> _Grid:
    """Check the inputs once and compute every point's grid index (shared by both paths)."""
    if coords not in COORDS:
        raise ValueError(f"{fn}: coords must be one of {COORDS}, got {coords!r}")
    if not isinstance(points, torch.Tensor) or points.dim() != 2 or points.shape[1] < 3:
        shape = tuple(points.shape) if isinstance(points, torch.Tensor) else type(points).__name__
        raise ValueError(f"{fn}: points must be a tensor [N, 3+] (x, y, z, features...), got {shape}")
    if not points.dtype.is_floating_point:
        raise ValueError(f"{fn}: points must be floating point, got {points.dtype}")
    size = _as_triple(voxel_size, "voxel_size", coords)
    n, dev = points.shape[0], points.device
    offsets = _batch_offsets(batch_offsets, n, fn)
    cdt = torch.float64 if points.dtype == torch.float64 else torch.float32
    u = torch.empty((3, n), dtype=cdt, device=dev)  # rows x, y, z: contiguous, computed in place
    u.copy_(points[:, :3].detach().t())
    # a finite sum proves every value finite; an overflowing one is rechecked exactly
    if n and not bool(torch.isfinite(u.sum())) and not bool(torch.isfinite(u).all()):
        raise ValueError(f"{fn}: points has NaN or infinite x, y, z values")
    if coords == "cylindrical":
        rho = torch.hypot(u[0], u[1])
        u[1] = torch.atan2(u[1], u[0]).mul_(180.0 / math.pi)
        u[0] = rho
    if point_range is not None:
        lower, shape = _check_range(point_range, size, coords)
        bounded = [True, True, True]
    else:
        lower, shape = [0.0, 0.0, 0.0], [1, 1, 1]
        bounded = [False, coords == "cylindrical", False]
        if coords == "cylindrical":
            lower[1], cells = -180.0, 360.0 / size[1]
            if abs(cells - round(cells)) > 1e-4:
                raise ValueError(f"{fn}: the φ voxel size ({size[1]:g}°) must divide 360° (or pass point_range)")
            shape[1] = int(round(cells))
    f = (
        u.sub_(torch.tensor(lower, dtype=cdt, device=dev)[:, None])
        .div_(torch.tensor(size, dtype=cdt, device=dev)[:, None])
        .floor_()
    )
    wrap = coords == "cylindrical" and bounded[1] and abs(shape[1] * size[1] - 360.0) < 1e-6 * 360
    if wrap:  # φ = +180° (and float rounding just above it) lands in the -180° voxel
        f[1].remainder_(shape[1])
    keep, n_in = None, n
    if any(b and not (a == 1 and wrap) for a, b in enumerate(bounded)):  # a wrapped φ is always inside
        hi = torch.tensor([s - 1 if b else math.inf for s, b in zip(shape, bounded)], dtype=cdt, device=dev)[:, None]
        lo = torch.tensor([0.0 if b else -math.inf for b in bounded], dtype=cdt, device=dev)[:, None]
        clamped = torch.clamp(f, lo, hi)  # also keeps the float -> int conversion of dropped points defined
        keep = (clamped == f).all(0)
        f = clamped
        n_in = int(keep.sum())
        if n_in == n:
            keep = None
    origin = [0, 0, 0]
    if not all(bounded) and n:
        lo_hi = f.aminmax(dim=1)
        lo, hi = lo_hi.min.tolist(), lo_hi.max.tolist()
        for a in range(3):
            if not bounded[a]:
                if max(abs(lo[a]), abs(hi[a])) > 2.0**52:
                    raise ValueError(
                        f"{fn}: points span more than 2**52 voxels along axis {a}; "
                        "pass point_range or a larger voxel_size"
                    )
                origin[a], shape[a] = int(lo[a]), int(hi[a]) - int(lo[a]) + 1
                if origin[a]:
                    f[a].sub_(origin[a])
    bsz = len(offsets) - 1 if offsets is not None else 1
    if bsz * shape[0] * shape[1] * shape[2] > _INT64_MAX - 1:
        raise ValueError(
            f"{fn}: a grid of {bsz} x {shape} voxels overflows int64 linear keys; "
            "pass point_range or a larger voxel_size"
        )
    return _Grid(f, keep, n_in, offsets, points[:, 3:], n, tuple(shape), bsz, tuple(origin), tuple(lower), size, coords)


def _mean_features(feats: torch.Tensor, segs: Segments, backend: str) -> torch.Tensor:
    if feats.shape[1] == 0:
        return feats.new_zeros((segs.num_segments, 0))
    return segment_mean(feats, segs, backend)


def _voxels(g: _Grid, coords, point2voxel, kept, segs, features) -> Voxels:
    return Voxels(
        coords=coords,
        point2voxel=point2voxel,
        segments=segs,
        features=features,
        num_points=segs.counts,
        spatial_shape=g.shape,
        batch_size=g.batch_size,
        kept=kept,
        origin=g.origin,
        lower=g.lower,
        voxel_size=g.size,
        coord_system=g.coords,
    )


# ----------------------------------------------------------------------------- public API
def voxelize(
    points: torch.Tensor,  # [N, 3+] x, y, z (LiDAR frame, metres), then F feature columns
    voxel_size: float | Sequence[float],  # m (cubic); (ρ m, φ °, z m) (cylindrical)
    point_range: Sequence[float] | None = None,  # [lo0, lo1, lo2, hi0, hi1, hi2] in grid units
    *,
    coords: str = "cubic",  # "cubic" | "cylindrical"
    batch_offsets: torch.Tensor | None = None,  # [B+1] int, cumulative point counts
    backend: str = "auto",  # segment_mean backend for the feature means
) -> Voxels:
    """Group points into voxels (fast path). See the module docstring for the grid definition.

    Returns a :class:`Voxels` with voxels sorted by ``(batch, i, j, k)``; identical to
    :func:`voxelize_reference`.

    Raises:
        ValueError: ``points`` not [N, 3+] floating point or with NaN / infinite x, y, z;
            ``voxel_size`` not positive; ``point_range`` inverted or not a whole number of
            voxels; ``batch_offsets`` not [B+1] from 0 to N; ``coords`` unknown; the grid overflows
            int64 keys.
    """
    g = _quantize(points, voxel_size, point_range, coords, batch_offsets, "voxelize")
    s0, s1, s2 = g.shape
    vol = s0 * s1 * s2
    sentinel = g.batch_size * vol  # key of dropped points: sorts after every voxel
    kdt = torch.int32 if sentinel <= _INT32_MAX else torch.long  # int32 keys sort ~1.5x faster
    idx = g.f.to(kdt)  # [3, N]
    key = idx[0] * (s1 * s2)
    key.add_(idx[1], alpha=s2).add_(idx[2])
    if g.offsets is not None:
        for b, (a, e) in enumerate(zip(g.offsets[:-1], g.offsets[1:])):
            if b and e > a:
                key[a:e] += b * vol
    if g.keep is not None:
        key.masked_fill_(~g.keep, sentinel)
    sorted_key, perm = torch.sort(key, stable=True)
    perm_in = perm[: g.n_in]
    ukey, sorted_ids, counts = torch.unique_consecutive(sorted_key[: g.n_in], return_inverse=True, return_counts=True)
    v = ukey.numel()
    if g.keep is None:
        kept, feats = None, g.feats
        point2voxel = torch.empty(g.n, dtype=torch.long, device=key.device).scatter_(0, perm, sorted_ids)
        segs = Segments.from_sorted(point2voxel, perm, sorted_ids, counts)
    else:
        kept = g.keep.nonzero().squeeze(1)
        feats = g.feats.index_select(0, kept)
        point2voxel = torch.full((g.n,), -1, dtype=torch.long, device=key.device).scatter_(0, perm_in, sorted_ids)
        rank = torch.cumsum(g.keep, 0).sub_(1)  # row of each kept point among the kept
        segs = Segments.from_sorted(point2voxel.index_select(0, kept), rank.index_select(0, perm_in), sorted_ids, counts)
    first = perm_in.index_select(0, segs.offsets[:-1])  # the first point of every voxel
    vc = torch.empty((v, 4), dtype=torch.int32, device=key.device)
    vc[:, 1:] = torch.stack([idx[a].index_select(0, first) for a in range(3)], 1)
    if g.batch_size > 1:
        vc[:, 0] = ukey.div(vol, rounding_mode="floor")
    else:
        vc[:, 0] = 0
    return _voxels(g, vc, point2voxel, kept, segs, _mean_features(feats, segs, backend))


def voxelize_reference(
    points: torch.Tensor,
    voxel_size: float | Sequence[float],
    point_range: Sequence[float] | None = None,
    *,
    coords: str = "cubic",
    batch_offsets: torch.Tensor | None = None,
) -> Voxels:
    """The definition :func:`voxelize` is tested against: ``torch.unique(dim=0)`` over the
    ``(batch, i, j, k)`` rows, means by ``index_add_`` (fp64 for fp64 input, else fp32),
    differentiated by autograd. Same arguments and result as :func:`voxelize`."""
    g = _quantize(points, voxel_size, point_range, coords, batch_offsets, "voxelize_reference")
    kept = g.keep.nonzero().squeeze(1) if g.keep is not None else None
    rows = torch.cat([g.batch_ids()[:, None], g.f.t().long()], 1)  # [N, 4] (batch, i, j, k)
    feats = g.feats
    if kept is not None:
        rows, feats = rows[kept], feats[kept]
    uniq, inverse, counts = torch.unique(rows, dim=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    v = uniq.shape[0]
    acc = torch.float64 if feats.dtype == torch.float64 else torch.float32
    sums = torch.zeros((v, feats.shape[1]), dtype=acc, device=feats.device).index_add(0, inverse, feats.to(acc))
    features = (sums / counts.clamp(min=1)[:, None].to(acc)).to(feats.dtype)
    point2voxel = inverse
    if kept is not None:
        point2voxel = torch.full((g.n,), -1, dtype=torch.long, device=inverse.device)
        point2voxel[kept] = inverse
    segs = Segments.from_ids(inverse, v, check=False)
    return _voxels(g, uniq.reshape(v, 4).int(), point2voxel, kept, segs, features)
