"""Ray casting of the world with open3d's ``RaycastingScene`` (Embree): cameras, LiDAR, labels.

The static world is one BVH built once per scene; the instances near the ego are posed and put
in a second, small BVH per timestamp (cached), and every ray keeps the nearer of the two hits.
Every sensor reading is instantaneous at its timestamp: a LiDAR sweep is cast at once from the
ego pose at the sweep's timestamp (no rolling shutter / motion distortion inside a sweep), a
camera image from the ego pose and object poses at the camera's own timestamp.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import open3d as o3d

from xmodal.data.labels import NUSCENES_GENERAL_INDEX
from xmodal.data.synth.driving.materials import MAT_LABEL, MAT_NOISE, MAT_REFL, MAT_TEXTURE, RoadStyle, apply_textures
from xmodal.data.synth.driving.rig import LIDAR_MAX_RANGE, LIDAR_MIN_RANGE, CameraSpec, LidarSpec
from xmodal.data.synth.driving.traffic import Poses, Traffic

DYNAMIC_RADIUS = 100.0  # instances farther than this from the ego are left out of a timestamp


@dataclass
class Lighting:
    sun_dir: np.ndarray  # [3] unit, towards the sun, global frame
    sun_rgb: np.ndarray  # [3]
    ambient_rgb: np.ndarray  # [3]
    sky_zenith: np.ndarray  # [3]
    sky_horizon: np.ndarray  # [3]
    haze_m: float
    exposure: float
    noise: float  # image noise sigma (0..1 scale)


@dataclass
class Hits:
    """First hits of a ray batch; per-hit arrays are compact over ``idx``."""

    t: np.ndarray  # [R] distance along the unit ray, inf where nothing was hit
    idx: np.ndarray  # [H] indices of rays that hit
    pos: np.ndarray  # [H, 3] global frame
    normal: np.ndarray  # [H, 3] unit, facing the ray origin
    label: np.ndarray  # [H] uint8 general class
    inst: np.ndarray  # [H] int32 instance index, -1 for the static world
    texture: np.ndarray  # [H]
    tex: np.ndarray  # [H, 3]
    albedo: np.ndarray  # [H, 3]
    refl: np.ndarray  # [H]
    noise: np.ndarray  # [H] LiDAR range noise sigma
    variant: np.ndarray  # [H]


@lru_cache(maxsize=8)
def _vignette(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return 1.0 - 0.12 * (((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2)


class _Geometry:
    """One BVH with packed per-triangle attributes and per-vertex tex."""

    def __init__(self, vertices, triangles, tex, material, albedo, variant, label=None, inst=None, threads=0):
        n = len(triangles)
        self.triangles = triangles
        self.tri_tex = np.take(np.asarray(tex, dtype=np.float32), triangles.reshape(-1), axis=0).reshape(n, 9)
        label = MAT_LABEL[material] if label is None else label
        inst = np.full(n, -1, dtype=np.int32) if inst is None else inst
        # int attrs: label, inst, texture; float attrs: refl, noise, variant, albedo rgb
        self.iattr = np.stack(
            [label.astype(np.int32), inst.astype(np.int32), MAT_TEXTURE[material].astype(np.int32)], -1
        )
        refl_noise_var = np.stack([MAT_REFL[material], MAT_NOISE[material], variant], -1)
        self.fattr = np.concatenate([refl_noise_var, albedo], 1).astype(np.float32)
        self.iattr, self.fattr = np.ascontiguousarray(self.iattr), np.ascontiguousarray(self.fattr)
        self.scene = None
        if n:
            self.scene = o3d.t.geometry.RaycastingScene(nthreads=threads)
            self.scene.add_triangles(
                o3d.core.Tensor(np.ascontiguousarray(vertices, dtype=np.float32)),
                o3d.core.Tensor(np.ascontiguousarray(triangles, dtype=np.uint32)),
            )


class Renderer:
    """Casts rays into one scene's world at any timestamp (global frame)."""

    def __init__(self, static_mesh, traffic: Traffic, road: RoadStyle, lighting: Lighting, threads: int = 0):
        self.threads = threads
        self.traffic, self.road, self.lighting = traffic, road, lighting
        temps = [i.template for i in traffic.instances]
        nv = np.array([len(t.mesh.vertices) for t in temps], dtype=np.int64)
        nf = np.array([t.mesh.n_tris for t in temps], dtype=np.int64)
        self._v_start = np.concatenate([[0], np.cumsum(nv)])
        self._f_start = np.concatenate([[0], np.cumsum(nf)])
        cat = lambda key: np.concatenate([getattr(t.mesh, key) for t in temps]) if temps else None  # noqa: E731
        self._V, self._F, self._tex = cat("vertices"), cat("triangles"), cat("tex")
        self._mat, self._alb, self._var = cat("material"), cat("albedo"), cat("variant")
        self._label = np.array([NUSCENES_GENERAL_INDEX[t.category] for t in temps], dtype=np.uint8)
        # articulation per vertex: pivot, amplitude, phase offset (amplitude 0 = rigid)
        nvt = int(self._v_start[-1]) if temps else 0
        self._pivot = np.zeros((nvt, 3))
        self._amp = np.zeros(nvt)
        self._pphase = np.zeros(nvt)
        for i, t in enumerate(temps):
            if not t.parts:
                continue
            part = t.mesh.part
            for p in t.parts:
                m = np.flatnonzero(part == p.pid) + self._v_start[i]
                self._pivot[m], self._amp[m], self._pphase[m] = p.pivot, p.amplitude, p.phase
        self._gait = np.array([i.gait for i in traffic.instances])
        self._cache: OrderedDict[int, tuple[_Geometry, Poses]] = OrderedDict()
        # instances that never move join the static world's BVH (built once per scene)
        self._moving = (traffic.rate != 0) | traffic.follow if len(traffic) else np.zeros(0, bool)
        m = static_mesh
        label, inst = MAT_LABEL[m.material], np.full(m.n_tris, -1, np.int32)
        verts, tris, tex, mat, alb, var = m.vertices, m.triangles, m.tex, m.material, m.albedo, m.variant
        still = np.flatnonzero(~self._moving)
        if len(still):
            poses = traffic.poses(traffic.ego.t0_us)
            v, f, vi, fi, ii = self._posed(still, poses, 0.0)
            tris = np.concatenate([tris, f + len(verts)])
            verts = np.concatenate([verts, v])
            tex, mat = np.concatenate([tex, self._tex[vi]]), np.concatenate([mat, self._mat[fi]])
            alb, var = np.concatenate([alb, self._alb[fi]]), np.concatenate([var, self._var[fi]])
            label, inst = np.concatenate([label, self._label[ii]]), np.concatenate([inst, ii])
        self.static = _Geometry(verts, tris, tex, mat, alb, var, label=label, inst=inst, threads=threads)

    # ------------------------------------------------------------------ dynamic geometry
    @staticmethod
    def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Concatenation of ``arange(s, s + c)`` over (starts, counts)."""
        total = int(counts.sum())
        offs = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        return offs + np.arange(total)

    def _posed(self, sel: np.ndarray, poses: Poses, tau: float):
        """Vertices [V, 3] float32 (global), triangles, vertex / triangle indices into the template
        arrays and the instance of each triangle, for instances ``sel`` at ``poses``."""
        nv = self._v_start[sel + 1] - self._v_start[sel]
        nf = self._f_start[sel + 1] - self._f_start[sel]
        vi = self._ranges(self._v_start[sel], nv)
        fi = self._ranges(self._f_start[sel], nf)
        vinst = np.repeat(sel, nv)
        v = np.take(self._V, vi, axis=0)
        # limbs swing about local y at their pivot while walking
        walking = poses.speed > 0.3
        amp = self._amp[vi] * walking[vinst]
        if amp.any():
            a = amp * np.sin(2 * np.pi * poses.speed[vinst] / 1.4 * tau + self._gait[vinst] + self._pphase[vi])
            piv = np.take(self._pivot, vi, axis=0)
            x, z = v[:, 0] - piv[:, 0], v[:, 2] - piv[:, 2]
            c, s = np.cos(a), np.sin(a)
            v = np.stack([piv[:, 0] + c * x + s * z, v[:, 1], piv[:, 2] - s * x + c * z], -1)
        c, s = np.cos(poses.yaw)[vinst], np.sin(poses.yaw)[vinst]
        out = np.empty((len(v), 3), dtype=np.float64)
        out[:, 0] = c * v[:, 0] - s * v[:, 1] + poses.xy[vinst, 0]
        out[:, 1] = s * v[:, 0] + c * v[:, 1] + poses.xy[vinst, 1]
        out[:, 2] = v[:, 2] + poses.z[vinst]
        new_start = np.concatenate([[0], np.cumsum(nv)[:-1]])
        tris = np.take(self._F, fi, axis=0) + np.repeat(new_start, nf)[:, None]
        return out, tris, vi, fi, np.repeat(sel, nf).astype(np.int32)

    def dynamic(self, t_us: int, centre_xy: np.ndarray) -> tuple[_Geometry, Poses | None]:
        """Moving instances near ``centre_xy`` posed at ``t_us`` (cached for the last few timestamps)."""
        if t_us in self._cache:
            return self._cache[t_us]
        tr = self.traffic
        poses = tr.poses(t_us) if len(tr) else None
        sel = np.zeros(0, np.int64)
        if len(tr):
            near = np.sum((poses.xy - centre_xy) ** 2, axis=1) < DYNAMIC_RADIUS**2
            sel = np.flatnonzero(near & self._moving)
        if len(sel) == 0:
            e = np.zeros(0, np.int64)
            geo = _Geometry(
                np.zeros((0, 3)),
                np.zeros((0, 3), np.int64),
                np.zeros((0, 3)),
                e,
                np.zeros((0, 3)),
                np.zeros(0),
                label=np.zeros(0, np.uint8),
                inst=np.zeros(0, np.int32),
            )
        else:
            v, f, vi, fi, inst = self._posed(sel, poses, float(tr.ego.tau(t_us)))
            take = lambda a, i: np.take(a, i, axis=0)  # noqa: E731
            geo = _Geometry(
                v,
                f,
                take(self._tex, vi),
                self._mat[fi],
                take(self._alb, fi),
                self._var[fi],
                label=self._label[inst],
                inst=inst,
                threads=self.threads,
            )
        self._cache[t_us] = (geo, poses)
        while len(self._cache) > 8:
            self._cache.popitem(last=False)
        return geo, poses

    # ------------------------------------------------------------------ ray casting
    def _cast_one(self, geo: _Geometry, rays) -> dict[str, np.ndarray] | None:
        if geo.scene is None:
            return None
        res = geo.scene.cast_rays(rays, nthreads=self.threads)
        return {k: res[k].numpy() for k in ("t_hit", "primitive_ids", "primitive_uvs", "primitive_normals")}

    def cast(self, origins: np.ndarray, dirs: np.ndarray, t_us: int, centre_xy: np.ndarray) -> Hits:
        """Cast unit rays (``origins`` [R, 3] or [3], ``dirs`` [R, 3], global frame) at ``t_us``."""
        origins = np.asarray(origins, dtype=np.float32)
        buf = np.empty((len(dirs), 6), dtype=np.float32)
        buf[:, :3] = origins
        buf[:, 3:] = dirs
        rays = o3d.core.Tensor(buf)
        dyn, _ = self.dynamic(t_us, centre_xy)
        rs, rd = self._cast_one(self.static, rays), self._cast_one(dyn, rays)
        st = self.static
        t = rs["t_hit"]
        if rd is not None:  # keep the nearer of the static and the moving world
            use_d = rd["t_hit"] < t
            t = np.minimum(t, rd["t_hit"])
        idx = np.flatnonzero(t < np.inf)
        prim = np.minimum(rs["primitive_ids"][idx], len(st.triangles) - 1)  # static misses: fixed below
        take = lambda a, i: np.take(a, i, axis=0)  # noqa: E731  (much faster than a[i] for rows)
        iattr, fattr, ttex = take(st.iattr, prim), take(st.fattr, prim), take(st.tri_tex, prim)
        uv, normal = take(rs["primitive_uvs"], idx), take(rs["primitive_normals"], idx)
        if rd is not None:
            sub = np.flatnonzero(use_d[idx])
            if len(sub):
                rid = idx[sub]
                pd = rd["primitive_ids"][rid]
                iattr[sub], fattr[sub] = take(dyn.iattr, pd), take(dyn.fattr, pd)
                ttex[sub] = take(dyn.tri_tex, pd)
                uv[sub], normal[sub] = take(rd["primitive_uvs"], rid), take(rd["primitive_normals"], rid)
        u, v = uv[:, 0].copy(), uv[:, 1].copy()
        tt = ttex.T
        tex = np.stack([tt[k] + u * (tt[3 + k] - tt[k]) + v * (tt[6 + k] - tt[k]) for k in range(3)], -1)
        d = take(dirs, idx)
        normal *= np.where(np.einsum("ij,ij->i", normal, d) > 0, np.float32(-1), np.float32(1))[:, None]
        pos = (origins if origins.ndim == 1 else take(origins, idx)) + d * np.take(t, idx)[:, None]
        return Hits(
            t,
            idx,
            pos,
            normal,
            iattr[:, 0].astype(np.uint8),
            iattr[:, 1],
            iattr[:, 2],
            tex,
            fattr[:, 3:6],
            fattr[:, 0],
            fattr[:, 1],
            fattr[:, 2],
        )

    # ------------------------------------------------------------------ sensors
    def render_camera(
        self,
        cam: CameraSpec,
        dirs_cam: np.ndarray,
        R_ge: np.ndarray,
        t_ge: np.ndarray,
        t_us: int,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray]:
        """RGB uint8 [H, W, 3] and semantic mask uint8 [H, W] (general index; 0 = no surface / sky).

        ``dirs_cam``: [H*W, 3] unit pixel rays in the camera frame; ``R_ge, t_ge``: ego pose.
        """
        R_gc = R_ge @ cam.R_ego_cam
        origin = R_ge @ cam.t_ego_cam + t_ge
        dirs = (dirs_cam @ R_gc.T).astype(np.float32)
        hits = self.cast(origin, dirs, t_us, t_ge[:2])
        lt = self.lighting
        albedo, _, gloss = apply_textures(
            hits.texture, hits.tex, hits.pos, hits.normal, hits.albedo, hits.refl, hits.variant, self.road
        )
        f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
        ndl = np.clip(hits.normal @ f32(lt.sun_dir), 0.0, 1.0)
        col = albedo * (f32(lt.ambient_rgb) + f32(lt.sun_rgb) * ndl[:, None])
        col += gloss[:, None] * f32(lt.sky_horizon) * 0.5
        fog = np.exp(-hits.t[hits.idx] / np.float32(lt.haze_m))[:, None]
        col = col * fog + f32(lt.sky_horizon) * (1 - fog)
        h, w = cam.height, cam.width
        img = np.empty((h * w, 3), dtype=np.float32)
        miss = np.isinf(hits.t)
        dm = dirs[miss]
        up = np.sqrt(np.clip(dm[:, 2], 0.0, 1.0))[:, None]
        img[miss] = f32(lt.sky_horizon) * (1 - up) + f32(lt.sky_zenith) * up
        img[miss] += f32(lt.sun_rgb) * 0.5 * np.clip(dm @ f32(lt.sun_dir), 0, 1)[:, None] ** 64
        img[hits.idx] = col
        img = img.reshape(h, w, 3) * (np.float32(lt.exposure) * _vignette(h, w))[..., None]
        img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(lt.noise)
        rgb = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
        mask = np.zeros(h * w, dtype=np.uint8)
        mask[hits.idx] = hits.label
        return rgb, mask.reshape(h, w)

    def lidar_sweep(
        self,
        lidar: LidarSpec,
        dirs_lidar: np.ndarray,
        rings: np.ndarray,
        R_ge: np.ndarray,
        t_ge: np.ndarray,
        t_us: int,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One instantaneous sweep at ``t_us``.

        Returns points [N, 5] float32 (x, y, z in the LIDAR_TOP frame at ``t_us``, intensity 0..255,
        ring), labels [N] uint8 (general index; 0 = spurious noise return) and instance [N] int32.
        Noise model: range noise N(0, 2 cm) (6 cm on foliage), intensity from reflectivity and
        incidence with 8 % gain noise, 1 % random dropouts plus more on dark, far or glass
        surfaces, and ~8 spurious returns per sweep labelled ``noise``.
        """
        R_gl = R_ge @ lidar.R_ego_lidar
        origin = R_ge @ lidar.t_ego_lidar + t_ge
        dirs = (dirs_lidar @ R_gl.T).astype(np.float32)
        hits = self.cast(origin, dirs, t_us, t_ge[:2])
        _, refl, _ = apply_textures(
            hits.texture,
            hits.tex,
            hits.pos,
            hits.normal,
            hits.albedo,
            hits.refl,
            hits.variant,
            self.road,
            need_color=False,
        )
        t = hits.t[hits.idx].astype(np.float64)
        cos = np.abs(np.sum(hits.normal * dirs[hits.idx], 1))
        n = len(t)
        rng_t = t + rng.normal(0.0, 1.0, n) * hits.noise
        p_drop = 0.01 + 0.5 * (refl < 0.05) + 0.6 * (t / LIDAR_MAX_RANGE) ** 2 * (1.0 - np.clip(refl * 2, 0, 1))
        keep = (t >= LIDAR_MIN_RANGE) & (t <= LIDAR_MAX_RANGE) & (rng.random(n) > p_drop)
        inten = 255.0 * refl * (0.3 + 0.7 * cos) * (1.0 + rng.normal(0.0, 0.08, n)) + rng.normal(0.0, 1.0, n)
        inten = np.clip(np.round(inten), 0, 255)
        rays_range = np.full(len(dirs), np.nan)
        rays_range[hits.idx[keep]] = rng_t[keep]
        labels = np.zeros(len(dirs), dtype=np.uint8)
        labels[hits.idx] = hits.label
        inst = np.full(len(dirs), -1, dtype=np.int32)
        inst[hits.idx] = hits.inst
        intensity = np.zeros(len(dirs))
        intensity[hits.idx] = inten
        # spurious returns (dust, multipath): random rays, random range in front of the true hit
        k = rng.poisson(8)
        spur = rng.choice(len(dirs), size=k, replace=False)
        far = np.where(np.isfinite(hits.t[spur]), hits.t[spur], 30.0)
        rays_range[spur] = rng.uniform(LIDAR_MIN_RANGE, np.maximum(LIDAR_MIN_RANGE + 0.1, 0.9 * far))
        labels[spur], inst[spur] = 0, -1
        intensity[spur] = rng.integers(0, 8, k)
        ok = np.isfinite(rays_range)
        pts = np.empty((int(ok.sum()), 5), dtype=np.float32)
        pts[:, :3] = dirs_lidar[ok] * rays_range[ok, None]
        pts[:, 3] = intensity[ok]
        pts[:, 4] = rings[ok]
        return pts, labels[ok], inst[ok]
