"""Z-buffer occlusion test of projected points, all cameras at once: ``zbuffer_visibility``.

Outdoors there is no depth map: the projected LiDAR points build their own coarse z-buffer
(docs/conventions.md, "Occlusion tests"). For every camera ``v`` the image is cut into
``cell`` x ``cell`` pixel cells (``ceil(H / cell) x ceil(W / cell)``); each cell keeps the
nearest depth of the pairs that fall in it; a min-filter over ``(2 * dilate + 1)^2`` cells
(infinity outside the grid) spreads it, because LiDAR is sparse and a foreground object must hide
the background points that fall between its own; a pair is visible when

    depth <= zmin + abs_tol + rel_tol * zmin        (zmin: the filtered value at its cell)

Pairs outside their image (or with ``depth <= 0``, or ``valid`` False) are not visible and do
not enter the z-buffer. ``cell=1, dilate=0`` is the exact per-pixel z-buffer.

Frames: ``uv`` in image pixels (u = column, v = row, pixel ``(r, c)`` covers
``[c, c + 1) x [r, r + 1)``), ``depth`` = camera z in metres.

Fast path (:func:`zbuffer_visibility`): one :class:`~xmodal.ops.Segments` index over the
(camera, cell) ids of all pairs, :func:`~xmodal.ops.segment_min` for the per-cell nearest depth,
the min-filter as separable shifted minima on the ``[V, gh, gw]`` grid (equal to
``-max_pool2d(-z)``, faster), one gather back. Grids much
larger than the number of pairs (small cells) index only the occupied cells. The reference
(:func:`zbuffer_visibility_reference`) loops over cameras with a dense grid, ``scatter_reduce``
and explicit shifted minima. Both follow the device of their inputs. Not differentiable (the
output is boolean).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from xmodal.ops.projection import ProjectedPairs, _check_sizes
from xmodal.ops.segment_reduce import segment_min
from xmodal.ops.segments import Segments

__all__ = ["zbuffer_visibility", "zbuffer_visibility_reference"]

#: Index only the occupied cells when the grid has more than this many cells per pair.
_SPARSE_GRID_RATIO = 4


# ----------------------------------------------------------------------------- inputs
def _inputs(pairs, image_sizes, depth, camera, valid, cell, dilate, abs_tol, rel_tol, fn):
    """Validate; returns (uv [M, 2], depth [M], camera [M] int64, valid [M] bool | None, sizes [V, 2])."""
    if isinstance(pairs, ProjectedPairs):
        if depth is not None or camera is not None:
            raise ValueError(f"{fn}: pass either a ProjectedPairs or uv with depth= and camera=, not both")
        uv, depth, camera = pairs.uv, pairs.depth, pairs.camera
        num_cameras = pairs.num_cameras
    elif isinstance(pairs, torch.Tensor):
        uv = pairs
        if not isinstance(depth, torch.Tensor):
            raise ValueError(f"{fn}: depth must be a torch.Tensor [M] (camera z, metres) when uv is given")
        num_cameras = None
    else:
        raise ValueError(f"{fn}: pairs must be a ProjectedPairs or a uv tensor [M, 2], got {type(pairs).__name__}")
    if uv.dim() != 2 or uv.shape[1] != 2 or not uv.dtype.is_floating_point:
        raise ValueError(f"{fn}: uv must be a floating tensor [M, 2] (u = column, v = row), got {tuple(uv.shape)} {uv.dtype}")
    m = uv.shape[0]
    if depth.dim() != 1 or depth.shape[0] != m or not depth.dtype.is_floating_point:
        raise ValueError(f"{fn}: depth must be a floating tensor [M={m}] like uv, got {tuple(depth.shape)} {depth.dtype}")
    if camera is None:
        camera = torch.zeros(m, dtype=torch.int64, device=uv.device)
    elif not isinstance(camera, torch.Tensor) or camera.dim() != 1 or camera.shape[0] != m or camera.dtype.is_floating_point:
        shape = tuple(camera.shape) if isinstance(camera, torch.Tensor) else type(camera).__name__
        raise ValueError(f"{fn}: camera must be an integer tensor [M={m}] like uv, got {shape}")
    if valid is not None and (not isinstance(valid, torch.Tensor) or valid.dtype != torch.bool or valid.shape != (m,)):
        raise ValueError(f"{fn}: valid must be a bool tensor [M={m}] like uv")
    for name, t in (("depth", depth), ("camera", camera), ("valid", valid)):
        if t is not None and t.device != uv.device:
            raise ValueError(f"{fn}: {name} is on {t.device} but uv on {uv.device}; use one device")
    if isinstance(cell, bool) or not isinstance(cell, (int, np.integer)) or cell < 1:
        raise ValueError(f"{fn}: cell must be an integer >= 1 (pixels), got {cell!r}")
    if isinstance(dilate, bool) or not isinstance(dilate, (int, np.integer)) or dilate < 0:
        raise ValueError(f"{fn}: dilate must be an integer >= 0 (cells), got {dilate!r}")
    for name, tol in (("abs_tol", abs_tol), ("rel_tol", rel_tol)):
        if isinstance(tol, bool) or not isinstance(tol, (int, float, np.number)) or not (math.isfinite(tol) and tol >= 0):
            raise ValueError(f"{fn}: {name} must be a finite number >= 0, got {tol!r}")
    sizes = np.asarray(image_sizes.detach().cpu() if isinstance(image_sizes, torch.Tensor) else image_sizes)
    if num_cameras is None:
        num_cameras = sizes.shape[0] if sizes.ndim == 2 else (int(camera.max()) + 1 if m else 1)
    sizes = _check_sizes(sizes, num_cameras, fn)
    if m:
        lo, hi = (int(x) for x in torch.aminmax(camera))
        if lo < 0 or hi >= num_cameras:
            raise ValueError(f"{fn}: camera ids must be in 0 .. {num_cameras - 1} (one per image size), got {lo} .. {hi}")
        total = depth.sum() + uv.sum() if valid is None else torch.where(valid, depth + uv.sum(1), 0).sum()
        if math.isfinite(float(total)):  # one reduction; the exact count only when it fails
            return uv, depth, camera.long(), valid, sizes
        considered = slice(None) if valid is None else valid
        bad = ~(torch.isfinite(depth[considered]) & torch.isfinite(uv[considered]).all(1))
        if bool(bad.any()):
            raise ValueError(
                f"{fn}: depth or uv has {int(bad.sum())} non-finite value(s) among the pairs tested "
                "(NaN depths?); drop them or mark them False in valid="
            )
    return uv, depth, camera.long(), valid, sizes


def _inside(uv, depth, camera, valid, sizes_t):
    """[M] bool: inside its camera's image, depth > 0 (and valid)."""
    hw = sizes_t.to(uv.dtype).index_select(0, camera)  # [M, 2] (H, W)
    ok = (depth > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < hw[:, 1]) & (uv[:, 1] >= 0) & (uv[:, 1] < hw[:, 0])
    return ok if valid is None else ok & valid


# ----------------------------------------------------------------------------- fast path
def _min_filter(grid: torch.Tensor, d: int) -> torch.Tensor:
    """[V, gh, gw] minimum over the (2d+1) x (2d+1) window of every cell, +inf outside the grid:
    the same as ``-max_pool2d(-grid, 2d+1, stride=1, padding=d)``, separable (rows, then columns;
    3-6x faster than max_pool2d on CPU)."""
    gh, gw = grid.shape[-2:]
    x = F.pad(grid, (d, d, d, d), value=float("inf"))
    rows = x[..., :, 0:gw]
    for k in range(1, 2 * d + 1):
        rows = torch.minimum(rows, x[..., :, k : k + gw])
    out = rows[..., 0:gh, :]
    for k in range(1, 2 * d + 1):
        out = torch.minimum(out, rows[..., k : k + gh, :])
    return out


def zbuffer_visibility(
    pairs: ProjectedPairs | torch.Tensor,  # ProjectedPairs, or uv [M, 2] pixels (u = column, v = row)
    image_sizes,  # [V, 2] (H, W) pixels, or one (H, W)
    *,
    depth: torch.Tensor | None = None,  # [M] camera z (m), with uv
    camera: torch.Tensor | None = None,  # [M] int camera index, with uv (default: all 0)
    valid: torch.Tensor | None = None,  # [M] bool: pairs to test (default: all inside their image)
    cell: int = 8,  # pixels; see xmodal.geometry.zbuffer_cell for LiDAR
    dilate: int = 1,  # cells
    abs_tol: float = 0.5,  # metres
    rel_tol: float = 0.1,
) -> torch.Tensor:
    """[M] bool: visible in the z-buffer of the pairs themselves (see module docstring).

    Raises:
        ValueError: shapes or devices that do not match, camera ids outside ``image_sizes``,
            non-finite ``depth`` / ``uv`` among the tested pairs, bad ``cell`` / ``dilate`` /
            tolerances.
    """
    fn = "zbuffer_visibility"
    uv, depth, camera, valid, sizes = _inputs(pairs, image_sizes, depth, camera, valid, cell, dilate, abs_tol, rel_tol, fn)
    m, dev = uv.shape[0], uv.device
    out = torch.zeros(m, dtype=torch.bool, device=dev)
    if m == 0 or sizes.shape[0] == 0:
        return out
    V = sizes.shape[0]
    gh, gw = int(-(-sizes[:, 0].max() // cell)), int(-(-sizes[:, 1].max() // cell))
    uv, depth = uv.detach(), depth.detach()
    idx = _inside(uv, depth, camera, valid, torch.as_tensor(sizes, device=dev)).nonzero().squeeze(1)
    if idx.numel() == 0:
        return out
    d = depth.index_select(0, idx)
    cells = uv.index_select(0, idx).to(torch.int64).div_(cell, rounding_mode="floor")  # [k, 2] (col, row) cells
    ids = (camera.index_select(0, idx) * gh + cells[:, 1]) * gw + cells[:, 0]  # (camera, cell row, cell col)
    K = V * gh * gw
    if K > _SPARSE_GRID_RATIO * idx.numel() + 4096:  # small cells: index the occupied cells only
        occupied, local = torch.unique(ids, return_inverse=True)
        zmin = segment_min(d, Segments.from_ids(local, occupied.numel(), check=False))[0]
        grid = torch.full((K,), float("inf"), dtype=d.dtype, device=dev).index_copy_(0, occupied, zmin)
    else:
        segs = Segments.from_ids(ids, K, check=False)
        grid = segment_min(d, segs)[0].masked_fill_(segs.counts == 0, float("inf"))
    if dilate > 0:
        grid = _min_filter(grid.view(V, gh, gw), dilate)
    z = grid.reshape(-1).index_select(0, ids)
    out[idx] = d <= z + abs_tol + rel_tol * z
    return out


# ----------------------------------------------------------------------------- reference
def zbuffer_visibility_reference(
    pairs: ProjectedPairs | torch.Tensor,
    image_sizes,
    *,
    depth: torch.Tensor | None = None,
    camera: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
    cell: int = 8,
    dilate: int = 1,
    abs_tol: float = 0.5,
    rel_tol: float = 0.1,
) -> torch.Tensor:
    """Per-camera loop with a dense padded grid, ``scatter_reduce(amin)`` and explicit shifted
    minima (the definition :func:`zbuffer_visibility` is tested against)."""
    fn = "zbuffer_visibility_reference"
    uv, depth, camera, valid, sizes = _inputs(pairs, image_sizes, depth, camera, valid, cell, dilate, abs_tol, rel_tol, fn)
    out = torch.zeros(uv.shape[0], dtype=torch.bool, device=uv.device)
    ok = _inside(uv, depth, camera, valid, torch.as_tensor(sizes, device=uv.device)) if uv.shape[0] else out
    for v in range(sizes.shape[0]):
        h, w = (int(x) for x in sizes[v])
        sel = (ok & (camera == v)).nonzero().squeeze(1)
        gh, gw = -(-h // cell), -(-w // cell)
        rows = torch.floor(uv[sel, 1]).long() // cell + dilate
        cols = torch.floor(uv[sel, 0]).long() // cell + dilate
        d = depth[sel]
        zbuf = torch.full((gh + 2 * dilate, gw + 2 * dilate), float("inf"), dtype=depth.dtype, device=uv.device)
        zbuf.view(-1).scatter_reduce_(0, rows * zbuf.shape[1] + cols, d, "amin")
        zmin = zbuf.clone()
        for dr in range(-dilate, dilate + 1):
            for dc in range(-dilate, dilate + 1):
                shifted = torch.full_like(zbuf, float("inf"))
                H, W = zbuf.shape
                shifted[max(dr, 0) : H + min(dr, 0), max(dc, 0) : W + min(dc, 0)] = zbuf[
                    max(-dr, 0) : H + min(-dr, 0), max(-dc, 0) : W + min(-dc, 0)
                ]
                zmin = torch.minimum(zmin, shifted)
        z = zmin[rows, cols]
        out[sel] = d <= z + abs_tol + rel_tol * z
    return out
