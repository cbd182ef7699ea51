"""Dense triangle-mesh primitives for the indoor world.

Every primitive is tessellated so that no edge is longer than ``edge`` metres: vertex colours
then carry texture (ScanNet's ``vh_clean_2`` meshes have a vertex every few centimetres).
Shapes are built in an object-local frame (z up, metres; the object's front faces +y, its back
at y = 0 for wall-standing furniture) and are moved into the room by :func:`transform`.
Triangles wind counter-clockwise seen from outside, so ``cross(v1 - v0, v2 - v0)`` points out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

Material = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (xyz [N,3], normal [N,3]) -> rgb [N,3] 0..1


@dataclass
class Mesh:
    """A triangle mesh piece in some frame (metres)."""

    vertices: np.ndarray  # [N, 3] float64
    faces: np.ndarray  # [F, 3] int64

    def __len__(self) -> int:
        return len(self.vertices)


@dataclass
class Part:
    """A mesh piece of an object with its NYU40 label and material (evaluated in object frame)."""

    mesh: Mesh
    nyu40: int
    material: Material


def merge(meshes: Sequence[Mesh]) -> Mesh:
    """Concatenate meshes (face indices offset)."""
    verts, faces, off = [], [], 0
    for m in meshes:
        verts.append(m.vertices)
        faces.append(m.faces + off)
        off += len(m.vertices)
    if not verts:
        return Mesh(np.zeros((0, 3)), np.zeros((0, 3), np.int64))
    return Mesh(np.concatenate(verts), np.concatenate(faces))


def transform(mesh: Mesh, T: np.ndarray) -> Mesh:
    """Apply a 4x4 rigid transform (object -> room)."""
    return Mesh(mesh.vertices @ T[:3, :3].T + T[:3, 3], mesh.faces.copy())


def _n(length: float, edge: float) -> int:
    return max(1, int(math.ceil(abs(length) / edge - 1e-9)))


def grid(origin, du, dv, edge: float) -> Mesh:
    """Planar parallelogram ``origin + a du + b dv`` (a, b in [0, 1]); normal ``du x dv``."""
    origin, du, dv = (np.asarray(v, np.float64) for v in (origin, du, dv))
    nu, nv = _n(np.linalg.norm(du), edge), _n(np.linalg.norm(dv), edge)
    a, b = np.meshgrid(np.linspace(0, 1, nu + 1), np.linspace(0, 1, nv + 1), indexing="ij")
    verts = origin + a.reshape(-1, 1) * du + b.reshape(-1, 1) * dv
    return Mesh(verts, _grid_faces(nu, nv))


def grid_with_holes(origin, du, dv, edge: float, holes: Sequence[tuple[float, float, float, float]]) -> Mesh:
    """Like :func:`grid`, without the cells inside ``holes`` = ``(a0, b0, a1, b1)`` rectangles in
    the (a, b) in [0, 1]^2 parameters. Grid lines run along every hole edge, so the holes are cut
    exactly (no hidden vertex is left behind an object standing on / against the surface)."""
    origin, du, dv = (np.asarray(v, np.float64) for v in (origin, du, dv))
    lu, lv = np.linalg.norm(du), np.linalg.norm(dv)

    def lines(length, extra):
        base = np.linspace(0, 1, _n(length, edge) + 1)
        cuts = np.clip(np.asarray(extra, np.float64), 0, 1)
        x = np.unique(np.concatenate([base, cuts]))
        keep = np.r_[True, np.diff(x) * length > 1e-3]  # merge lines closer than 1 mm
        return x[keep]

    holes = [h for h in holes if h[2] > h[0] and h[3] > h[1]]
    a = lines(lu, [h[0] for h in holes] + [h[2] for h in holes])
    b = lines(lv, [h[1] for h in holes] + [h[3] for h in holes])
    A, B = np.meshgrid(a, b, indexing="ij")
    verts = origin + A.reshape(-1, 1) * du + B.reshape(-1, 1) * dv
    nu, nv = len(a) - 1, len(b) - 1
    faces = _grid_faces(nu, nv)
    if holes:
        ca, cb = (a[:-1] + a[1:]) / 2, (b[:-1] + b[1:]) / 2
        CA, CB = np.meshgrid(ca, cb, indexing="ij")
        inside = np.zeros(CA.shape, bool)
        for a0, b0, a1, b1 in holes:
            inside |= (CA > a0) & (CA < a1) & (CB > b0) & (CB < b1)
        inside = inside.ravel()
        faces = faces[~np.concatenate([inside, inside])]
    return Mesh(verts, faces)


def _grid_faces(nu: int, nv: int, wrap_u: bool = False) -> np.ndarray:
    """Faces of an (nu+1) x (nv+1) vertex grid (index ``i * (nv + 1) + j``)."""
    i, j = np.meshgrid(np.arange(nu), np.arange(nv), indexing="ij")
    i, j = i.ravel(), j.ravel()
    stride = nv + 1
    v00 = i * stride + j
    v10 = ((i + 1) % (nu + 1 if not wrap_u else nu)) * stride + j
    v01, v11 = v00 + 1, v10 + 1
    return np.concatenate([np.stack([v00, v10, v11], 1), np.stack([v00, v11, v01], 1)]).astype(np.int64)


def box(lo, hi, edge: float, skip: Sequence[str] = ()) -> Mesh:
    """Axis-aligned box from corner ``lo`` to ``hi``; ``skip`` drops faces ('+x', '-z', ...)."""
    lx, ly, lz = lo
    hx, hy, hz = hi
    sx, sy, sz = hx - lx, hy - ly, hz - lz
    faces = {
        "+x": ((hx, ly, lz), (0, sy, 0), (0, 0, sz)),
        "-x": ((lx, ly, lz), (0, 0, sz), (0, sy, 0)),
        "+y": ((lx, hy, lz), (0, 0, sz), (sx, 0, 0)),
        "-y": ((lx, ly, lz), (sx, 0, 0), (0, 0, sz)),
        "+z": ((lx, ly, hz), (sx, 0, 0), (0, sy, 0)),
        "-z": ((lx, ly, lz), (0, sy, 0), (sx, 0, 0)),
    }
    return merge([grid(*v, edge) for k, v in faces.items() if k not in skip])


def cbox(center_xy, size, z0: float, edge: float, skip: Sequence[str] = ()) -> Mesh:
    """Box centred at ``center_xy`` with ``size = (sx, sy, sz)`` standing on ``z = z0``."""
    cx, cy = center_xy
    sx, sy, sz = size
    return box((cx - sx / 2, cy - sy / 2, z0), (cx + sx / 2, cy + sy / 2, z0 + sz), edge, skip)


def _revolve(profile_r: np.ndarray, profile_z: np.ndarray, n_theta: int, scale_xy=(1.0, 1.0),
             center=(0.0, 0.0)) -> Mesh:
    """Surface of revolution of a (r, z) polyline about the z axis (elliptic with ``scale_xy``)."""
    th = np.linspace(0, 2 * np.pi, n_theta, endpoint=False)
    r = profile_r[None, :]
    x = center[0] + scale_xy[0] * r * np.cos(th)[:, None]
    y = center[1] + scale_xy[1] * r * np.sin(th)[:, None]
    z = np.broadcast_to(profile_z[None, :], x.shape)
    verts = np.stack([x, y, z], -1).reshape(-1, 3)
    nv = len(profile_r) - 1
    faces = _grid_faces(n_theta, nv, wrap_u=True)
    # grid faces wind (u=theta, v=profile): normal = d_theta x d_profile; for a profile going up
    # that points outwards.
    return Mesh(verts, faces)


def cylinder(radius: float, z0: float, z1: float, edge: float, center=(0.0, 0.0),
             caps: tuple[bool, bool] = (True, True), scale_xy=(1.0, 1.0)) -> Mesh:
    """(Elliptic) cylinder about a vertical axis, optional bottom / top caps."""
    n_theta = max(8, _n(2 * np.pi * radius * max(scale_xy), edge))
    nz = _n(z1 - z0, edge)
    nr = _n(radius * max(scale_xy), edge)
    parts = [_revolve(np.full(nz + 1, radius), np.linspace(z0, z1, nz + 1), n_theta, scale_xy, center)]
    rings = np.linspace(0, radius, nr + 1)
    if caps[1]:  # top: profile from the rim inwards (outward normal = +z)
        parts.append(_revolve(rings[::-1], np.full(nr + 1, z1), n_theta, scale_xy, center))
    if caps[0]:
        parts.append(_revolve(rings, np.full(nr + 1, z0), n_theta, scale_xy, center))
    return merge(parts)


def frustum(r0: float, r1: float, z0: float, z1: float, edge: float, center=(0.0, 0.0)) -> Mesh:
    """Open truncated cone (lamp shade) from radius ``r0`` at ``z0`` to ``r1`` at ``z1``."""
    n_theta = max(8, _n(2 * np.pi * max(r0, r1), edge))
    nz = _n(math.hypot(z1 - z0, r1 - r0), edge)
    return _revolve(np.linspace(r0, r1, nz + 1), np.linspace(z0, z1, nz + 1), n_theta, (1, 1), center)


def ellipsoid(radii, center, edge: float, z_min: float | None = None) -> Mesh:
    """Ellipsoid with semi-axes ``radii`` at ``center``; optionally cut flat below ``z_min``."""
    rx, ry, rz = radii
    n_theta = max(12, _n(2 * np.pi * max(rx, ry), edge))
    n_phi = max(6, _n(np.pi * max(rx, ry, rz), edge))
    phi = np.linspace(-np.pi / 2, np.pi / 2, n_phi + 1)
    r, z = np.cos(phi), np.sin(phi) * rz + center[2]
    if z_min is not None:
        z = np.maximum(z, z_min)
    r[0] = r[-1] = 0.0
    return _revolve(r, z, n_theta, (rx, ry), center[:2])


def wavy_sheet(width: float, height: float, z0: float, amp: float, period: float, edge: float,
               phase: float = 0.0) -> Mesh:
    """Hanging fabric in the local x-z plane (x in [-w/2, w/2]), folds ``amp`` deep along y."""
    m = grid((-width / 2, 0, z0), (width, 0, 0), (0, 0, height), min(edge, period / 6))
    x = m.vertices[:, 0]
    m.vertices[:, 1] = amp * (1 + np.sin(2 * np.pi * x / period + phase))
    return m


def vertex_normals(mesh: Mesh) -> np.ndarray:
    """[N, 3] unit area-weighted vertex normals (zero-area neighbourhoods get +z)."""
    v, f = mesh.vertices, mesh.faces
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, f[:, k], fn)
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    n = np.where(norm > 1e-12, n / np.maximum(norm, 1e-12), np.array([0.0, 0.0, 1.0]))
    return n
