"""Triangle meshes with per-triangle materials and per-vertex texture coordinates.

A :class:`Mesh` is a struct of arrays. ``tex`` is a per-vertex 3-vector whose meaning depends on
the material's texture (object-local xyz for most; ``(s, d, z)`` road coordinates for the
ground; ``(along, 0, z)`` for facades; ``(radial, axial, angle)`` for cylinders and cones). It is
interpolated at ray hits with the barycentric coordinates, so textures move with their object.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass
class Mesh:
    vertices: np.ndarray  # [V, 3] float64, the mesh's frame (object-local or global), metres
    triangles: np.ndarray  # [T, 3] int64 vertex indices
    tex: np.ndarray  # [V, 3] float32 texture coordinates
    material: np.ndarray  # [T] int16 material id (materials.MATERIALS)
    albedo: np.ndarray  # [T, 3] float32 base colour, 0..1
    variant: np.ndarray  # [T] float32 in [0, 1): per-object texture parameter
    part: np.ndarray  # [V] int16 articulated part id (0 = rigid body)

    @property
    def n_tris(self) -> int:
        return len(self.triangles)

    def transformed(self, R: np.ndarray, t: np.ndarray) -> "Mesh":
        """Copy with ``vertices @ R.T + t`` (tex unchanged)."""
        return Mesh(
            self.vertices @ R.T + t, self.triangles, self.tex, self.material, self.albedo, self.variant, self.part
        )

    def with_part(self, part: int) -> "Mesh":
        self.part = np.full(len(self.vertices), part, dtype=np.int16)
        return self


def make_mesh(vertices, triangles, tex, material: int, albedo, variant: float = 0.0, part: int = 0) -> Mesh:
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    f = np.asarray(triangles, dtype=np.int64).reshape(-1, 3)
    n = len(f)
    return Mesh(
        vertices=v,
        triangles=f,
        tex=np.asarray(tex, dtype=np.float32).reshape(-1, 3),
        material=np.full(n, material, dtype=np.int16),
        albedo=np.broadcast_to(np.asarray(albedo, dtype=np.float32), (n, 3)).copy(),
        variant=np.full(n, variant, dtype=np.float32),
        part=np.full(len(v), part, dtype=np.int16),
    )


def concat(meshes: list[Mesh]) -> Mesh:
    meshes = [m for m in meshes if m.n_tris]
    if not meshes:
        return make_mesh(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3)), 0, (0, 0, 0))
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
    return Mesh(
        vertices=np.concatenate([m.vertices for m in meshes]),
        triangles=np.concatenate([m.triangles + o for m, o in zip(meshes, offsets)]),
        tex=np.concatenate([m.tex for m in meshes]),
        material=np.concatenate([m.material for m in meshes]),
        albedo=np.concatenate([m.albedo for m in meshes]),
        variant=np.concatenate([m.variant for m in meshes]),
        part=np.concatenate([m.part for m in meshes]),
    )


def _rz(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


_BOX_FACES = (  # (axis, sign, u-axis, v-axis); the bottom face last
    (0, 1, 1, 2), (0, -1, 1, 2), (1, 1, 0, 2), (1, -1, 0, 2), (2, 1, 0, 1), (2, -1, 0, 1),
)  # fmt: skip


def _unit_box():
    signs, ua, tris = [], [], []
    for f, (axis, sign, u, v) in enumerate(_BOX_FACES):
        for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
            p = [0, 0, 0]
            p[axis], p[u], p[v] = sign, a, b
            signs.append(p)
            ua.append(u)
        tris += [(4 * f, 4 * f + 1, 4 * f + 2), (4 * f, 4 * f + 2, 4 * f + 3)]
    return np.array(signs, dtype=np.float64), np.array(ua), np.array(tris, dtype=np.int64)


_BOX_SIGNS, _BOX_UA, _BOX_TRIS = _unit_box()
_BOX_CAP = np.repeat([False, False, False, False, True, True], 4)


def box(
    size,
    center=(0, 0, 0),
    material: int = 0,
    albedo=(0.5, 0.5, 0.5),
    variant: float = 0.0,
    yaw: float = 0.0,
    tex: str = "xyz",
    pitch: float = 0.0,
    bottom: bool = True,
) -> Mesh:
    """Axis-aligned box ``size = (lx, ly, lz)`` centred at ``center``, rotated by pitch (about y)
    then yaw (about z) around its centre.

    ``tex="xyz"``: box-local coordinates (origin at the centre); ``tex="facade"``:
    ``(along-face metres from the face's corner, 0, height above the box bottom)`` on the sides and
    ``(x, y, z)`` from the box's corner on the top and bottom.
    """
    h = np.asarray(size, dtype=np.float64) / 2
    nv, nt = (24, 12) if bottom else (20, 10)
    local = _BOX_SIGNS[:nv] * h
    if tex == "facade":
        corner = local + h
        along = np.take_along_axis(corner, _BOX_UA[:nv, None], 1)[:, 0]
        texs = np.where(_BOX_CAP[:nv, None], corner, np.stack([along, np.zeros(nv), corner[:, 2]], -1))
    else:
        texs = local
    v = local
    if pitch:
        c, s = np.cos(pitch), np.sin(pitch)
        v = v @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]).T
    if yaw:
        v = v @ _rz(yaw).T
    return make_mesh(v + np.asarray(center, dtype=np.float64), _BOX_TRIS[:nt], texs, material, albedo, variant)


def prism(
    profile,
    y0: float,
    y1: float,
    material: int = 0,
    albedo=(0.5, 0.5, 0.5),
    variant: float = 0.0,
    offset=(0, 0, 0),
    y_top=None,
) -> Mesh:
    """Extrusion along y of a star-shaped polygon ``profile`` [P, 2] of (x, z) points.

    ``y_top``: optional (y0, y1) used for vertices with z above the profile's mid height (a
    narrower roof, e.g. a car's tumblehome). tex = local xyz.
    """
    prof = np.asarray(profile, dtype=np.float64)
    n = len(prof)
    zmid = 0.5 * (prof[:, 1].min() + prof[:, 1].max())

    def ys(y):
        out = np.full(n, y, dtype=np.float64)
        if y_top is not None:
            out[prof[:, 1] > zmid + 1e-9] = y_top[0] if y == y0 else y_top[1]
        return out

    left = np.stack([prof[:, 0], ys(y1), prof[:, 1]], -1)
    right = np.stack([prof[:, 0], ys(y0), prof[:, 1]], -1)
    cl = np.array([prof[:, 0].mean(), 0.5 * (left[:, 1].mean() + left[:, 1].mean()), prof[:, 1].mean()])
    cr = cl.copy()
    cl[1], cr[1] = left[:, 1].mean(), right[:, 1].mean()
    # side caps (fans) + perimeter quads (separate vertices so faces keep sharp normals)
    verts = [left, right, cl[None], cr[None]]
    il, ir, icl, icr = 0, n, 2 * n, 2 * n + 1
    tris = []
    for i in range(n):
        j = (i + 1) % n
        tris.append((icl, il + i, il + j))
        tris.append((icr, ir + j, ir + i))
    base = 2 * n + 2
    quad_v = []
    for i in range(n):
        j = (i + 1) % n
        quad_v.extend([left[i], left[j], right[j], right[i]])
        b = base + 4 * i
        tris.extend([(b, b + 1, b + 2), (b, b + 2, b + 3)])
    v = np.concatenate(verts + [np.asarray(quad_v)]) + np.asarray(offset, dtype=np.float64)
    return make_mesh(v, tris, v - np.asarray(offset), material, albedo, variant)


@lru_cache(maxsize=32)
def _cylinder_topology(segments: int, caps: bool, apex: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triangles, unit-angle fraction and ring id (0 bottom, 1 top, 2/3 cap centres, 4/5 cap rims)."""
    i = np.arange(segments)
    j = (i + 1) % segments
    tris = [np.stack([i, j, segments + j], -1), np.stack([i, segments + j, segments + i], -1)]
    ring = [np.zeros(segments, int), np.ones(segments, int)]
    if caps:
        nb = 2 * segments
        cb, ct, rb, rt = nb, nb + 1, nb + 2, nb + 2 + segments
        tris.append(np.stack([np.full(segments, cb), rb + j, rb + i], -1))
        if not apex:
            tris.append(np.stack([np.full(segments, ct), rt + i, rt + j], -1))
        ring += [np.array([2, 3]), np.full(segments, 4), np.full(segments, 5)]
    frac = np.concatenate([i / segments, i / segments] + ([np.zeros(2), i / segments, i / segments] if caps else []))
    return np.concatenate(tris).astype(np.int64), frac, np.concatenate(ring)


def cylinder(
    p0,
    p1,
    radius: float,
    segments: int = 10,
    material: int = 0,
    albedo=(0.5, 0.5, 0.5),
    variant: float = 0.0,
    caps: bool = True,
    radius1: float | None = None,
) -> Mesh:
    """Cylinder (or truncated cone with ``radius1`` at ``p1``) from ``p0`` to ``p1``.

    tex = (radial 0 at the cap centre .. 1 on the rim, axial 0 at p0 .. 1 at p1, angle 0..1).
    """
    p0, p1 = np.asarray(p0, dtype=np.float64), np.asarray(p1, dtype=np.float64)
    r1 = radius if radius1 is None else radius1
    a = (p1 - p0) / np.linalg.norm(p1 - p0)
    tmp = (1.0, 0.0, 0.0) if abs(a[0]) < 0.9 else (0.0, 1.0, 0.0)
    e1 = np.array([a[1] * tmp[2] - a[2] * tmp[1], a[2] * tmp[0] - a[0] * tmp[2], a[0] * tmp[1] - a[1] * tmp[0]])
    e1 /= np.linalg.norm(e1)
    e2 = np.array([a[1] * e1[2] - a[2] * e1[1], a[2] * e1[0] - a[0] * e1[2], a[0] * e1[1] - a[1] * e1[0]])
    tris, frac, ring = _cylinder_topology(segments, caps, r1 <= 1e-6)
    ang = 2 * np.pi * frac
    unit = np.cos(ang)[:, None] * e1 + np.sin(ang)[:, None] * e2
    top = (ring == 1) | (ring == 3) | (ring == 5)
    rad = np.where(top, r1, radius) * ((ring != 2) & (ring != 3))
    v = np.where(top[:, None], p1, p0) + rad[:, None] * unit
    tex = np.stack([((ring != 2) & (ring != 3)).astype(float), top.astype(float), frac], -1)
    return make_mesh(v, tris, tex, material, albedo, variant)


def icosphere(subdiv: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Unit icosphere vertices [V, 3] and triangles [T, 3]."""
    t = (1.0 + 5**0.5) / 2
    v = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t), (0, -1, -t), (0, 1, -t),
         (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]  # fmt: skip
    f = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2),
         (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5), (2, 4, 11),
         (6, 2, 10), (8, 6, 7), (9, 8, 1)]  # fmt: skip
    verts = [np.asarray(p, dtype=np.float64) / np.linalg.norm(p) for p in v]
    faces = f
    for _ in range(subdiv):
        cache: dict[tuple[int, int], int] = {}

        def mid(a, b):
            key = (min(a, b), max(a, b))
            if key not in cache:
                m = verts[a] + verts[b]
                verts.append(m / np.linalg.norm(m))
                cache[key] = len(verts) - 1
            return cache[key]

        new = []
        for a, b, c in faces:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            new.extend([(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)])
        faces = new
    return np.asarray(verts), np.asarray(faces, dtype=np.int64)


_ICO = {s: icosphere(s) for s in (0, 1, 2)}


def blob(
    center,
    radii,
    rng: np.random.Generator | None = None,
    bumps: float = 0.0,
    subdiv: int = 0,
    material: int = 0,
    albedo=(0.5, 0.5, 0.5),
    variant: float = 0.0,
) -> Mesh:
    """Ellipsoid with random radial bumps (tree crowns, bushes, heads). tex = local xyz."""
    v, f = _ICO[subdiv]
    v = v.copy()
    if rng is not None and bumps > 0:
        v *= 1.0 + bumps * rng.uniform(-1.0, 1.0, (len(v), 1))
    local = v * np.asarray(radii, dtype=np.float64)
    return make_mesh(local + np.asarray(center, dtype=np.float64), f, local, material, albedo, variant)


def torus(
    center,
    radius: float,
    tube: float,
    segments: int = 12,
    sides: int = 4,
    material: int = 0,
    albedo=(0.1, 0.1, 0.1),
    variant: float = 0.0,
) -> Mesh:
    """Torus in the x-z plane (axis along y), e.g. a bicycle wheel. tex = (1, 0, angle)."""
    a = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    b = np.linspace(0, 2 * np.pi, sides, endpoint=False)
    aa, bb = np.meshgrid(a, b, indexing="ij")
    rr = radius + tube * np.cos(bb)
    v = np.stack([rr * np.cos(aa), tube * np.sin(bb), rr * np.sin(aa)], -1).reshape(-1, 3)
    tris = []
    for i in range(segments):
        for j in range(sides):
            i2, j2 = (i + 1) % segments, (j + 1) % sides
            p, q, r, s = i * sides + j, i2 * sides + j, i2 * sides + j2, i * sides + j2
            tris.extend([(p, q, r), (p, r, s)])
    texs = np.stack([np.ones(len(v)), np.zeros(len(v)), np.repeat(a / (2 * np.pi), sides)], -1)
    return make_mesh(v + np.asarray(center, dtype=np.float64), tris, texs, material, albedo, variant)


def surface_samples(mesh: Mesh, n: int, rng: np.random.Generator) -> np.ndarray:
    """[n, 3] points drawn uniformly (by area) on the mesh surface, in the mesh's frame."""
    tri = mesh.vertices[mesh.triangles]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    idx = rng.choice(len(tri), size=n, p=area / area.sum())
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)
    w = np.stack([1 - s, s * (1 - r2), s * r2], -1)
    return np.einsum("nk,nkd->nd", w, tri[idx])
