"""Turn a furnished :class:`~xmodal.data.synth.indoor.layout.Room` into one coloured, labelled mesh.

Steps: evaluate each part's material at its vertices (object frame), move the part into the
room, remove the room surfaces hidden inside solid objects (see ``Obj.carve``), and bake
diffuse lighting into the vertex colours: ambient + Lambert from the ceiling lights with
ray-cast shadows. Baked diffuse light is view-independent, like the colours ScanNet fuses into
its meshes, so the colour frames rendered from this mesh agree with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xmodal.data.synth.indoor.layout import Room
from xmodal.data.synth.indoor.shapes import grid_with_holes, vertex_normals


@dataclass
class SceneMesh:
    """The scene as ScanNet stores it, plus ground truth (room frame unless moved, metres)."""

    vertices: np.ndarray  # [N, 3] float64
    faces: np.ndarray  # [F, 3] int64
    colors: np.ndarray  # [N, 3] uint8 (lit)
    nyu40: np.ndarray  # [N] int64 NYU40 id per vertex
    instance: np.ndarray  # [N] int64 object index (into ``names``)
    names: list[str]  # object template names, e.g. "chair"

    @property
    def face_nyu40(self) -> np.ndarray:
        """[F] NYU40 id per triangle (all three vertices of a triangle share it)."""
        return self.nyu40[self.faces[:, 0]]


def _carve(verts, faces, inst, nyu40, boxes) -> np.ndarray:
    """Keep-mask over faces: drop faces whose 3 vertices lie inside a carve box of another object."""
    drop = np.zeros(len(faces), bool)
    for owner, T, lo, hi, label in boxes:
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
        c = corners @ T[:3, :3].T + T[:3, 3]
        near = np.flatnonzero(np.all((verts >= c.min(0)) & (verts <= c.max(0)), axis=1)
                              & ((inst != owner) | (nyu40 != label)))
        if not len(near):
            continue
        Tinv = np.linalg.inv(T)
        p = verts[near] @ Tinv[:3, :3].T + Tinv[:3, 3]
        inside = np.zeros(len(verts), bool)
        inside[near] = np.all((p > lo) & (p < hi), axis=1)
        drop |= inside[faces].all(1)
    return ~drop


def _plane_holes(plane, boxes, owner: int) -> list[tuple[float, float, float, float]]:
    """Rectangles (a0, b0, a1, b1) where carve boxes aligned with ``plane`` cross it."""
    origin, du, dv = plane
    n = np.cross(du, dv)
    n /= np.linalg.norm(n)
    holes = []
    for k, T, lo, hi, _ in boxes:
        if k == owner:
            continue
        R = T[:3, :3]
        # The box must be axis-aligned with the plane: its local axes map onto du, dv, n.
        local = np.abs(R.T @ np.stack([du / np.linalg.norm(du), dv / np.linalg.norm(dv), n], 1))
        if not np.allclose(np.sort(local, 0)[-1], 1.0, atol=1e-6):
            continue
        ax = int(np.argmax(local[:, 2]))  # local axis along the plane normal
        o_local = R.T @ (origin - T[:3, 3])
        if not lo[ax] < o_local[ax] < hi[ax]:
            continue
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
        c = corners @ R.T + T[:3, 3] - origin
        a, b = c @ du / (du @ du), c @ dv / (dv @ dv)
        holes.append((a.min(), b.min(), a.max(), b.max()))
    return holes


def assemble(room: Room, edge: float) -> SceneMesh:
    """Concatenate all parts (object materials evaluated in object frames), carve, no lighting."""
    V, Fs, A, L, I, names, boxes = [], [], [], [], [], [], []
    for k, placed in enumerate(room.placed):
        for box in placed.obj.carve:
            boxes.append((k, placed.T, box[0], box[1], box[2] if len(box) > 2 else placed.obj.nyu40))
    off = 0
    for k, placed in enumerate(room.placed):
        T = placed.T
        names.append(placed.obj.name)
        for p in placed.obj.parts:
            m = p.mesh
            if placed.obj.plane is not None:  # walls / floor: cut exact holes behind / under objects
                m = grid_with_holes(*placed.obj.plane, edge, _plane_holes(placed.obj.plane, boxes, k))
            if not len(m.faces):
                continue
            n_local = vertex_normals(m)
            albedo = np.clip(p.material(m.vertices, n_local), 0, 1)
            V.append(m.vertices @ T[:3, :3].T + T[:3, 3])
            Fs.append(m.faces + off)
            A.append(albedo)
            L.append(np.full(len(m.vertices), p.nyu40, np.int64))
            I.append(np.full(len(m.vertices), k, np.int64))
            off += len(m.vertices)
    verts, faces, inst = np.concatenate(V), np.concatenate(Fs), np.concatenate(I)
    albedo, nyu40 = np.concatenate(A), np.concatenate(L)
    keep = _carve(verts, faces, inst, nyu40, boxes)
    # Drop degenerate triangles (poles of revolved shapes) and unreferenced vertices.
    v = verts[faces]
    area2 = np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1)
    faces = faces[keep & (area2 > 1e-10)]
    used = np.zeros(len(verts), bool)
    used[faces.ravel()] = True
    remap = np.cumsum(used) - 1
    faces = remap[faces]
    colors = (albedo[used] * 255).round().astype(np.uint8)
    return SceneMesh(verts[used], faces, colors, nyu40[used], inst[used], names)


def bake_lighting(mesh: SceneMesh, albedo: np.ndarray, lights: np.ndarray, ambient: float = 0.4,
                  bounce: float = 0.8, intensity: float = 0.75, falloff: float = 2.8,
                  light_radius: float = 0.25, samples: int = 4, threads: int = 0) -> np.ndarray:
    """[N, 3] uint8 lit colours.

    ``albedo * (ambient * (1 + bounce * max(0, -n_z)) + sum_l I |cos(theta_l)| vis_l / (1 + (d_l / falloff)^2))``
    with ``vis_l`` the fraction of ``samples`` points on a disc of ``light_radius`` around light
    ``l`` that a shadow ray reaches (soft shadows), ``bounce`` a crude floor-bounce fill for
    downward faces (ceilings, table undersides), then an exposure that maps the 97th luminance
    percentile to 0.93. The shadow ray starts 3 mm off the surface on the light's side, so faces
    turned away from a light inside a closed object are shadowed by it.
    """
    import open3d as o3d

    from xmodal.data.synth.indoor.render import raycasting_scene

    scene = raycasting_scene(mesh.vertices, mesh.faces, threads)
    v = mesh.vertices
    n = _mesh_normals(mesh)
    light = np.zeros(len(v))
    ang = 2 * np.pi * (np.arange(samples) + 0.5) / samples
    offsets = light_radius * np.stack([np.cos(ang), np.sin(ang), np.zeros(samples)], 1) * np.sqrt(0.5)
    for L in lights:
        d = L - v
        dist = np.linalg.norm(d, axis=1)
        ldir = d / np.maximum(dist, 1e-9)[:, None]
        cos = np.sum(n * ldir, 1)
        origin = v + 0.003 * np.sign(cos)[:, None] * n
        vis = np.zeros(len(v))
        for off in offsets:
            ds = L + off - origin
            dsn = np.linalg.norm(ds, axis=1)
            rays = np.concatenate([origin, ds / np.maximum(dsn, 1e-9)[:, None]], 1).astype(np.float32)
            t = scene.cast_rays(o3d.core.Tensor(rays))["t_hit"].numpy()
            vis += t >= dsn - 0.02
        light += intensity * np.abs(cos) * (vis / samples) / (1 + (dist / falloff) ** 2)
    fill = ambient * (1 + bounce * np.clip(-n[:, 2], 0, 1))
    rgb = albedo * (fill + light)[:, None]
    lum = rgb @ np.array([0.299, 0.587, 0.114])
    exposure = 0.93 / max(np.percentile(lum, 97), 1e-6)
    return (np.clip(rgb * exposure, 0, 1) * 255).round().astype(np.uint8)


def _mesh_normals(mesh: SceneMesh) -> np.ndarray:
    from xmodal.data.synth.indoor.shapes import Mesh

    return vertex_normals(Mesh(mesh.vertices, mesh.faces))


def build_scene_mesh(room: Room, edge: float, threads: int = 0) -> SceneMesh:
    """Assembled, carved and lit mesh of ``room`` (room frame); ``edge``: longest wall / floor edge;
    ``threads``: ray-casting threads (0 = all cores)."""
    mesh = assemble(room, edge)
    albedo = mesh.colors.astype(np.float64) / 255.0
    mesh.colors = bake_lighting(mesh, albedo, room.lights, threads=threads)
    return mesh
