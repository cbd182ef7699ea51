"""Project LiDAR points into several cameras at once: ``project_points``.

Frames: ``points`` are in the LiDAR frame (metres); ``lidar2img[v]`` maps homogeneous LiDAR
points to homogeneous image points of camera ``v`` (``K4 @ T_cam_from_lidar``, as
:attr:`xmodal.data.nuscenes.NuScenesSample.lidar2img` builds it). For a point ``x``::

    (a, b, z) = lidar2img[v, :3] @ (x, 1)       depth = z  (camera z in metres when K's last
    u = a / z   (column)    v = b / z   (row)            row is (0, 0, 1), as for every pinhole K)

Pixel convention (docs/conventions.md): pixel ``(row, col)`` covers ``[col, col + 1) x
[row, row + 1)``; a pair is *valid* when ``depth > min_depth`` and ``0 <= u < W`` and
``0 <= v < H``, and its pixel is ``(floor(v), floor(u))``.

Output (:class:`ProjectedPairs`): one row per valid (point, camera) pair, **sorted by camera,
then by point** (so the pairs of camera ``v`` are the contiguous rows
``camera_offsets[v]:camera_offsets[v + 1]``, in increasing point order).

Fast path (:func:`project_points`), two phases:

1. **Mask, all N x V candidates, no autograd**, in chunks of points whose planes stay in cache:
   one GEMM for all cameras writes, per camera, five rows over the points: the image borders as
   planes ``a``, ``b``, ``W- z - a``, ``H- z - b`` (``W-`` the largest float below ``W``) and
   the near plane ``z - d+`` (``d+`` the smallest float above ``min_depth``), so that "valid"
   becomes "five planes >= 0" with no division; ``amin`` over the five rows, ``clamp_max(0)``
   and a cast to bool (a cast is ~6x faster than a comparison kernel on CPU) write the chunk's
   columns of one [V, N] mask. Camera-major, so its nonzero entries come out sorted by
   (camera, point).
2. **Compaction** with ``nonzero``, first over 64-bit words of the mask (8 candidates each),
   then only inside the non-empty words: LiDAR scans come in firing order, so a camera's pairs
   form runs and most words are empty (one plain ``nonzero`` when they are not).
3. **Only the M surviving pairs** (~15 % of N x V on a nuScenes rig): gather their points and
   compute ``z, a, b`` with one small GEMM per camera (differentiable), divide, and clamp
   ``u, v`` into ``[0, W-] x [0, H-]`` and ``depth`` above ``d+`` (rounding between the plane
   test and the division must never give ``floor(u) == W``).

Results agree with the per-camera :func:`project_points_reference` to rounding: pairs within
~1e-4 px of an image border (or ~1e-6 m of ``min_depth``) can fall on either side.

Autograd: ``uv`` and ``depth`` are differentiable with respect to ``points`` and ``lidar2img``
(both paths); the pair selection is not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["NAN_MODES", "ProjectedPairs", "project_points", "project_points_reference"]

NAN_MODES = ("error", "drop")
#: Points per chunk of the CPU mask phase: the five plane rows of all cameras (5 * V * 4 B per
#: point, ~4 MB for 6 cameras) stay in the last-level cache, and per-op overhead stays small.
CPU_CHUNK = 32768
#: Below this many pairs, per-camera loops over slices cost more in op overhead than one
#: ``repeat_interleave`` over all pairs.
_FEW_PAIRS = 65536
#: Points per chunk on CUDA (memory bound only).
CUDA_CHUNK = 1 << 22


# ----------------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False)
class ProjectedPairs:
    """Valid (point, camera) pairs, sorted by camera then point (see module docstring).

    ``point`` [M] int64 row of ``points``; ``camera`` [M] int64 camera index; ``uv`` [M, 2]
    float (u = column, v = row, continuous pixels, ``0 <= u < W``, ``0 <= v < H``); ``depth``
    [M] float camera z (m, ``> min_depth``); ``camera_offsets`` [V + 1] int64, the pairs of
    camera ``v`` are rows ``camera_offsets[v]:camera_offsets[v + 1]``.
    """

    point: torch.Tensor
    camera: torch.Tensor
    uv: torch.Tensor
    depth: torch.Tensor
    camera_offsets: torch.Tensor

    def __len__(self) -> int:
        return self.point.numel()

    @property
    def num_cameras(self) -> int:
        return self.camera_offsets.numel() - 1

    @property
    def device(self) -> torch.device:
        return self.point.device

    @property
    def rows(self) -> torch.Tensor:
        """[M] int64 pixel row ``floor(v)``."""
        return self.uv[:, 1].detach().to(torch.int64)  # v >= 0: truncation is floor

    @property
    def cols(self) -> torch.Tensor:
        """[M] int64 pixel column ``floor(u)``."""
        return self.uv[:, 0].detach().to(torch.int64)

    def to(self, device: torch.device | str) -> ProjectedPairs:
        return ProjectedPairs(*(t.to(device) for t in (self.point, self.camera, self.uv, self.depth, self.camera_offsets)))

    def select(self, index: torch.Tensor) -> ProjectedPairs:
        """The pairs at ``index`` (a [M] bool mask or increasing int64 rows), still sorted."""
        if index.dtype == torch.bool:
            index = index.nonzero().squeeze(1)
        camera = self.camera[index]
        counts = torch.bincount(camera, minlength=self.num_cameras)
        offsets = torch.zeros(self.num_cameras + 1, dtype=torch.int64, device=camera.device)
        torch.cumsum(counts, 0, out=offsets[1:])
        return ProjectedPairs(self.point[index], camera, self.uv[index], self.depth[index], offsets)


# ----------------------------------------------------------------------------- validation
def _compute_dtype(points: torch.Tensor) -> torch.dtype:
    return torch.float64 if points.dtype == torch.float64 else torch.float32


def _check_points(points, fn: str) -> None:
    if not isinstance(points, torch.Tensor):
        raise ValueError(f"{fn}: points must be a torch.Tensor [N, 3+] (LiDAR frame, metres), got {type(points).__name__}")
    if points.dim() != 2 or points.shape[1] < 3:
        raise ValueError(f"{fn}: points must have shape [N, 3+] (x, y, z first), got {tuple(points.shape)}")
    if not points.dtype.is_floating_point:
        raise ValueError(f"{fn}: points must be floating point, got {points.dtype}")


def _nonfinite_message(points: torch.Tensor, fn: str) -> tuple[torch.Tensor, str | None]:
    """([N] bool finite rows, error message or None)."""
    finite = torch.isfinite(points[:, :3]).all(1)
    bad = (~finite).nonzero().squeeze(1)
    if bad.numel() == 0:
        return finite, None
    first = ", ".join(str(i) for i in bad[:5].tolist())
    return finite, (
        f"{fn}: points has {bad.numel()} non-finite row(s) (NaN or inf in x, y, z; first at rows {first}); "
        "drop them upstream or pass nan='drop' to ignore them"
    )


def _check_lidar2img(lidar2img, fn: str) -> torch.Tensor:
    """Validate [V, 4, 4] (or [V, 3, 4]); returns the float64 host copy."""
    if not isinstance(lidar2img, torch.Tensor):
        raise ValueError(f"{fn}: lidar2img must be a torch.Tensor [V, 4, 4], got {type(lidar2img).__name__}")
    if lidar2img.dim() != 3 or lidar2img.shape[1] not in (3, 4) or lidar2img.shape[2] != 4:
        raise ValueError(f"{fn}: lidar2img must have shape [V, 4, 4] (or [V, 3, 4]), got {tuple(lidar2img.shape)}")
    if not lidar2img.dtype.is_floating_point:
        raise ValueError(f"{fn}: lidar2img must be floating point, got {lidar2img.dtype}")
    host = lidar2img.detach().to("cpu", torch.float64)
    if host.shape[0] == 0:
        return host
    h = host.numpy()[:, :3]
    finite = np.isfinite(h).reshape(h.shape[0], -1).all(1)
    m = np.where(finite[:, None, None], h[:, :, :3], 1.0)
    # |det| / product of row norms: 1 for orthogonal rows, 0 for a singular block (scale-free)
    det = np.einsum("vi,vi->v", m[:, 0], np.cross(m[:, 1], m[:, 2]))
    defect = np.abs(det) / np.maximum(np.prod(np.linalg.norm(m, axis=2), 1), 1e-300)
    bad = np.flatnonzero(~finite | ~(defect > 1e-9))
    if len(bad):
        v = int(bad[0])
        if not finite[v]:
            raise ValueError(f"{fn}: lidar2img[{v}] has NaN or infinite entries")
        sv = np.linalg.svd(m[v], compute_uv=False)
        raise ValueError(
            f"{fn}: lidar2img[{v}] is singular: its left 3x3 block (K @ R) has singular values "
            f"{', '.join(f'{x:.3g}' for x in sv)}; check the intrinsics and rotation of camera {v}"
        )
    return host


def _check_sizes(image_sizes, num_cameras: int, fn: str) -> np.ndarray:
    """[V, 2] int64 (H, W) on the host; a single (H, W) applies to every camera."""
    try:
        if isinstance(image_sizes, torch.Tensor):
            sizes = image_sizes.detach().cpu().numpy()
        else:
            sizes = np.asarray(image_sizes)
    except (TypeError, ValueError, RuntimeError):  # pragma: no cover - exotic inputs
        raise ValueError(f"{fn}: image_sizes must be [V, 2] (H, W) or one (H, W), got {image_sizes!r}") from None
    if sizes.dtype.kind not in "iuf" or sizes.ndim not in (1, 2) or sizes.shape[-1] != 2:
        raise ValueError(f"{fn}: image_sizes must be [V, 2] (H, W) or one (H, W), got shape {sizes.shape}")
    if sizes.ndim == 1:
        sizes = np.broadcast_to(sizes, (num_cameras, 2))
    if sizes.shape[0] != num_cameras:
        raise ValueError(
            f"{fn}: image_sizes has {sizes.shape[0]} cameras but lidar2img has {num_cameras}; give one (H, W) "
            "per camera, in the same order"
        )
    if sizes.size and (not np.all(np.isfinite(sizes)) or np.any(sizes != np.round(sizes)) or sizes.min() < 1):
        raise ValueError(f"{fn}: image_sizes must be whole numbers of pixels >= 1, got {sizes.tolist()}")
    return sizes.astype(np.int64)


def _check_scalars(min_depth, nan: str, fn: str) -> float:
    if nan not in NAN_MODES:
        raise ValueError(f"{fn}: nan must be one of {', '.join(NAN_MODES)}, got {nan!r}")
    if isinstance(min_depth, bool) or not isinstance(min_depth, (int, float, np.number)) or not (
        math.isfinite(min_depth) and min_depth >= 0
    ):
        raise ValueError(f"{fn}: min_depth must be a finite number >= 0 (metres), got {min_depth!r}")
    return float(min_depth)


def _validate(points, lidar2img, image_sizes, min_depth, nan, fn):
    _check_points(points, fn)
    if isinstance(lidar2img, np.ndarray):  # e.g. NuScenesSample.lidar2img (float64, host)
        lidar2img = torch.as_tensor(lidar2img, device=points.device)
    host = _check_lidar2img(lidar2img, fn)
    if lidar2img.device != points.device:
        raise ValueError(f"{fn}: points are on {points.device} but lidar2img on {lidar2img.device}; use one device")
    sizes = _check_sizes(image_sizes, host.shape[0], fn)
    min_depth = _check_scalars(min_depth, nan, fn)
    return lidar2img, host, sizes, min_depth


def _empty(num_cameras: int, dtype: torch.dtype, device) -> ProjectedPairs:
    z = torch.zeros(0, dtype=torch.int64, device=device)
    return ProjectedPairs(
        z, z.clone(), torch.zeros(0, 2, dtype=dtype, device=device), torch.zeros(0, dtype=dtype, device=device),
        torch.zeros(num_cameras + 1, dtype=torch.int64, device=device),
    )


# ----------------------------------------------------------------------------- reference
def project_points_reference(
    points: torch.Tensor,  # [N, 3+] LiDAR frame, metres
    lidar2img: torch.Tensor,  # [V, 4, 4] LiDAR -> image (K4 @ T_cam_from_lidar)
    image_sizes,  # [V, 2] (H, W) or one (H, W)
    min_depth: float = 1.0,
    nan: str = "error",
) -> ProjectedPairs:
    """Plain per-camera loop (the definition :func:`project_points` is tested against).

    For each camera: ``h = points[:, :3] @ P[:3, :3].T + P[:3, 3]``, ``depth = h[:, 2]``,
    ``u, v = h[:, 0] / depth, h[:, 1] / depth``, valid where ``depth > min_depth`` and the
    pixel is inside the image; pairs in (camera, point) order. Same validation as the fast path.
    """
    fn = "project_points_reference"
    lidar2img, host, sizes, min_depth = _validate(points, lidar2img, image_sizes, min_depth, nan, fn)
    dtype = _compute_dtype(points)
    xyz = points[:, :3].to(dtype)
    finite, msg = _nonfinite_message(points, fn)
    if msg is not None and nan == "error":
        raise ValueError(msg)
    cols = {k: [] for k in ("point", "camera", "uv", "depth")}
    counts = []
    for v in range(host.shape[0]):
        P = lidar2img[v, :3].to(dtype)
        h = xyz @ P[:, :3].T + P[:, 3]
        depth = h[:, 2]
        u = h[:, 0] / depth
        w = h[:, 1] / depth
        ok = (depth > min_depth) & (u >= 0) & (u < float(sizes[v, 1])) & (w >= 0) & (w < float(sizes[v, 0])) & finite
        idx = ok.nonzero().squeeze(1)
        cols["point"].append(idx)
        cols["camera"].append(torch.full_like(idx, v))
        cols["uv"].append(torch.stack([u[idx], w[idx]], 1))
        cols["depth"].append(depth[idx])
        counts.append(idx.numel())
    if not counts:
        return _empty(0, dtype, points.device)
    offsets = torch.tensor(np.concatenate([[0], np.cumsum(counts)]), dtype=torch.int64, device=points.device)
    return ProjectedPairs(*(torch.cat(cols[k]) for k in ("point", "camera", "uv", "depth")), offsets)


# ----------------------------------------------------------------------------- fast path
def _rows_pad(rows: np.ndarray, width: int) -> np.ndarray:
    """[R, 4] -> [R, width] acting on (x, y, z, 1, 0, ...)."""
    out = np.zeros((rows.shape[0], width))
    out[:, :4] = rows
    return out


def _mask_planes(host: np.ndarray, sizes: np.ndarray, min_depth: float, width: int, dtype) -> tuple[np.ndarray, float]:
    """[5 V, width] float64 rows, per block of V rows: ``a``, ``b``, ``W- z - a``, ``H- z - b``,
    ``z - d+``; ``W-`` / ``H-`` the largest ``dtype`` values below W / H, ``d+`` the smallest
    above ``min_depth`` (at least the smallest normal float: z = 0 never passes)."""
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    below = np.nextafter(sizes.astype(np_dtype), np_dtype(0)).astype(np.float64)  # [V, 2] (H-, W-)
    d_plus = max(float(np.nextafter(np_dtype(min_depth), np_dtype(np.inf))), float(np.finfo(np_dtype).tiny))
    a, b, z = host[:, 0], host[:, 1], host[:, 2]  # [V, 4] each
    zt = z.copy()
    zt[:, 3] -= d_plus
    return _rows_pad(np.concatenate([a, b, below[:, 1:2] * z - a, below[:, 0:1] * z - b, zt], 0), width), d_plus


def _value_rows(lidar2img: torch.Tensor, host: np.ndarray, width: int, dtype, grad: bool) -> torch.Tensor:
    """[V, 3, width] rows ``z``, ``a``, ``b`` of every camera (differentiable in ``lidar2img``
    when ``grad``)."""
    if not grad:
        rows = np.zeros((host.shape[0], 3, width))
        rows[:, :, :4] = host[:, [2, 0, 1]]
        return torch.as_tensor(rows, dtype=dtype, device=lidar2img.device)
    P = lidar2img[:, [2, 0, 1]].to(dtype)  # [V, 3, 4]
    if width > 4:
        P = torch.cat([P, P.new_zeros(P.shape[0], 3, width - 4)], 2)
    return P


def _compact(mask: torch.Tensor) -> torch.Tensor:
    """[K] int64 positions of the True entries of the 1-D bool ``mask`` (increasing).

    CPU: ``nonzero`` over 64-bit words (8 entries each) first, then over the non-empty words
    only; falls back to a plain ``nonzero`` when more than 40 % of the words are non-empty (no
    runs to exploit, e.g. shuffled points: there the two levels cost more than one)."""
    n = mask.numel()
    if mask.device.type != "cpu" or n < 4096:
        return mask.nonzero().squeeze(1)
    n8 = n - n % 8
    words = mask[:n8].view(torch.int64)
    blocks = words.to(torch.bool).nonzero().squeeze(1)
    if blocks.numel() * 20 > n:
        return mask.nonzero().squeeze(1)
    j = words.index_select(0, blocks).view(torch.bool).nonzero().squeeze(1)
    pos = (blocks.index_select(0, j >> 3) << 3) | (j & 7)
    if n8 < n:
        pos = torch.cat([pos, mask[n8:].nonzero().squeeze(1) + n8])
    return pos


def project_points(
    points: torch.Tensor,  # [N, 3+] LiDAR frame, metres (extra columns are ignored)
    lidar2img: torch.Tensor,  # [V, 4, 4] LiDAR -> image (K4 @ T_cam_from_lidar), same device (or numpy)
    image_sizes,  # [V, 2] (H, W) pixels, or one (H, W) for every camera
    min_depth: float = 1.0,  # metres; pairs need depth > min_depth
    *,
    nan: str = "error",  # non-finite points: "error" (ValueError) or "drop" (never paired)
    chunk: int | None = None,  # points per chunk (default: CPU_CHUNK on CPU, CUDA_CHUNK on CUDA)
) -> ProjectedPairs:
    """All valid (point, camera) pairs of ``points`` in ``V`` cameras, sorted by camera then point.

    Computes in float64 when ``points`` is float64, else float32; follows the device of
    ``points``. See the module docstring for the definition and the algorithm.

    Raises:
        ValueError: ``points`` not [N, 3+] floating point, or with NaN / inf rows
            (``nan="error"``); ``lidar2img`` not [V, 4, 4], non-finite, or with a singular left
            3x3 block (names ``lidar2img[v]``); ``image_sizes`` not one (H, W) per camera;
            ``min_depth`` negative; devices differ.
    """
    fn = "project_points"
    lidar2img, host, sizes, min_depth = _validate(points, lidar2img, image_sizes, min_depth, nan, fn)
    V, N = host.shape[0], points.shape[0]
    dtype, device = _compute_dtype(points), points.device
    if chunk is None:
        chunk = CPU_CHUNK if device.type == "cpu" else CUDA_CHUNK
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"{fn}: chunk must be an integer >= 1, got {chunk!r}")
    if V == 0 or N == 0:
        return _empty(V, dtype, device)
    n_chunks = max(1, round(N / int(chunk)))
    chunk = -(-N // n_chunks)  # equal chunks (within 2/3 .. 3/2 of the requested size), no small tail

    grad = torch.is_grad_enabled() and (points.requires_grad or lidar2img.requires_grad)
    # rows (x, y, z, 1, 0, ...): narrow contiguous rows are copied whole (one memcpy), their 4th
    # column overwritten with 1 and any later column multiplied by 0
    C = points.shape[1]
    width = C if 4 <= C <= 8 and points.is_contiguous() else 4
    host_planes, d_plus = _mask_planes(host.numpy()[:, :3], sizes, min_depth, width, dtype)
    A = torch.as_tensor(host_planes, dtype=dtype, device=device)  # [5V, width]

    # phase 1: invalid mask [V, N] (True = some plane < 0, or NaN)
    invalid = torch.empty(V, N, dtype=torch.bool, device=device)
    x_buf = torch.empty(chunk, width, dtype=dtype, device=device)
    g_buf = torch.empty(5 * V, chunk, dtype=dtype, device=device)
    m_buf = torch.empty(V, chunk, dtype=dtype, device=device)
    with torch.no_grad():
        for s in range(0, N, chunk):
            n = min(N, s + chunk) - s
            x = x_buf[:n]
            _load_rows(x, points.detach(), s, nan, fn)
            G = torch.mm(A, x.T, out=g_buf[:, :n]) if n == chunk else torch.mm(A, x.T)  # [5V, n]
            planes_min = torch.amin(G.view(5, V, n), 0, out=m_buf[:, :n]) if n == chunk else G.view(5, V, n).amin(0)
            invalid[:, s : s + n].copy_(planes_min.clamp_max_(0))  # < 0 or NaN -> True
        del x_buf, g_buf, m_buf
        # phase 2: compaction; flat rows v * N + p, sorted by (camera, point)
        f = _compact(invalid.view(-1).logical_not_())

    # phase 3: values of the M pairs
    bounds = torch.searchsorted(f, torch.arange(0, (V + 1) * N, N, device=device)).tolist()
    M = f.numel()
    cams = [v for v in range(V) if bounds[v + 1] > bounds[v]]
    if M < _FEW_PAIRS:  # two ops beat 2 V small ones
        counts = torch.as_tensor(np.diff(bounds), device=device)
        camera = torch.repeat_interleave(torch.arange(V, device=device), counts, output_size=M)
        point = f.sub_(camera, alpha=N)  # flat v * N + p -> p
    else:
        camera = torch.empty(M, dtype=torch.int64, device=device)
        point = f
        for v in cams:
            camera[bounds[v] : bounds[v + 1]].fill_(v)
            if v:
                point[bounds[v] : bounds[v + 1]].sub_(v * N)
    if width == C:
        X = points.index_select(0, point).to(dtype)
    else:
        X = torch.nn.functional.pad(points[:, :3].index_select(0, point).to(dtype), (0, 1))
    X.select(1, 3).fill_(1.0)  # [M, width] rows (x, y, z, 1, 0...)
    X[:, 4:].zero_()  # ignored columns (intensity, time, ...) may hold anything, even nan
    P = _value_rows(lidar2img, host.numpy()[:, :3], width, dtype, grad)  # [V, 3, width]: z, a, b
    if grad:
        g = torch.cat([P[v] @ X[bounds[v] : bounds[v + 1]].T for v in cams], 1) if cams else X.new_zeros(3, 0)
        depth = g[0].clamp_min(d_plus)
        uv2 = g[1:3] / depth
    else:
        g = torch.empty(3, M, dtype=dtype, device=device)
        for v in cams:
            torch.mm(P[v], X[bounds[v] : bounds[v + 1]].T, out=g[:, bounds[v] : bounds[v + 1]])
        depth = g[0].clamp_min_(d_plus)
        uv2 = g[1:3].div_(depth)
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    lim = np.nextafter(sizes[:, ::-1].astype(np_dtype), np_dtype(0)).astype(np.float64)  # [V, 2] W-, H-
    if (sizes == sizes[0]).all():
        parts = [(slice(None), 0)]
    else:
        parts = [(slice(bounds[v], bounds[v + 1]), v) for v in cams]
    clamped = []
    for sl, v in parts:  # [0, W-] x [0, H-]: floor(u) < W whatever the rounding
        for r in range(2):
            if grad:
                clamped.append(uv2[r, sl].clamp(0.0, float(lim[v, r])))
            else:
                uv2[r, sl].clamp_(0.0, float(lim[v, r]))
    if grad:
        k = len(parts)
        uv = torch.stack([torch.cat(clamped[0::2]), torch.cat(clamped[1::2])], 1) if k else uv2.T
    else:
        uv = _interleave(uv2[0], uv2[1])
    offsets = torch.as_tensor(np.asarray(bounds, dtype=np.int64), device=device)
    return ProjectedPairs(point, camera, uv, depth, offsets)


def _load_rows(x: torch.Tensor, points: torch.Tensor, s: int, nan: str, fn: str) -> None:
    """Fill ``x`` [n, width] with rows (x, y, z, 1, ...) of ``points[s:s + n]``; non-finite rows
    raise (``nan="error"``) or become NaN (never valid: every plane is NaN)."""
    n, width = x.shape
    if width == points.shape[1]:
        x.copy_(points[s : s + n])
    else:
        x[:, :3].copy_(points[s : s + n, :3])
    x.select(1, 3).fill_(1.0)
    if math.isfinite(float(x.detach().sum())):  # one reduction; the exact test only on failure
        return
    finite = torch.isfinite(x.detach()[:, :3]).all(1)
    if bool(finite.all()):  # only the ignored columns (their plane weight 0 would give 0 * nan), or an overflowing sum
        x[:, 4:].zero_()
        return
    if nan == "error":
        raise ValueError(_nonfinite_message(points, fn)[1])
    with torch.no_grad():
        x[~finite] = float("nan")


def _interleave(u: torch.Tensor, v: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """[M, 2] from two [M] rows: ``torch.complex`` writes interleaved pairs in one vectorized pass
    (a transposed copy is ~7x slower on CPU). Falls back to ``stack`` under autograd."""
    if u.requires_grad or v.requires_grad or u.dtype not in (torch.float32, torch.float64):
        res = torch.stack([u, v], 1)
        if out is not None:
            out.copy_(res)
            return out
        return res
    if out is not None:
        torch.complex(u, v, out=torch.view_as_complex(out))
        return out
    return torch.view_as_real(torch.complex(u, v))
