"""Materials (class label, texture, colour, LiDAR reflectivity) and procedural textures.

A texture turns the interpolated texture coordinates of ray hits into an albedo (cameras), a
reflectivity (LiDAR intensity) and a gloss (share of sky colour reflected, for glass and paint).
All noise is a hashed value noise: deterministic and independent of any RNG state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xmodal.data.labels import NUSCENES_GENERAL_INDEX

# texture kinds
(T_PLAIN, T_ROAD, T_TILES, T_GRASS, T_PAVERS, T_FACADE, T_FOLIAGE, T_BARK, T_CONE, T_STRIPES, T_CABIN,
 T_BUS, T_CONTAINER, T_WHEEL, T_HIVIS, T_SIGN, T_CONCRETE, T_GLASS, T_PAINT) = range(19)  # fmt: skip


@dataclass(frozen=True)
class Material:
    name: str
    label: str  # nuScenes general class (static world); objects use their instance's class
    texture: int
    color: tuple[float, float, float]
    reflectivity: float  # LiDAR, 0..1 (intensity ~ 255 * reflectivity * incidence term)
    range_noise: float = 0.02  # LiDAR range noise sigma, metres


_M = [
    Material("road", "flat.driveable_surface", T_ROAD, (0.27, 0.27, 0.28), 0.05),
    Material("sidewalk", "flat.sidewalk", T_TILES, (0.62, 0.60, 0.56), 0.18),
    Material("curb", "flat.sidewalk", T_CONCRETE, (0.72, 0.71, 0.68), 0.22),
    Material("terrain", "flat.terrain", T_GRASS, (0.30, 0.44, 0.18), 0.13, 0.03),
    Material("island", "flat.other", T_PAVERS, (0.58, 0.33, 0.25), 0.20),
    Material("island_curb", "flat.other", T_CONCRETE, (0.80, 0.76, 0.55), 0.25),
    Material("facade", "static.manmade", T_FACADE, (0.6, 0.5, 0.4), 0.25),
    Material("roof", "static.manmade", T_CONCRETE, (0.36, 0.35, 0.34), 0.18),
    Material("pole", "static.manmade", T_PLAIN, (0.48, 0.50, 0.53), 0.35),
    Material("sign", "static.manmade", T_SIGN, (0.8, 0.1, 0.1), 0.90),
    Material("fence", "static.manmade", T_PLAIN, (0.25, 0.27, 0.25), 0.30),
    Material("foliage", "static.vegetation", T_FOLIAGE, (0.22, 0.42, 0.15), 0.16, 0.06),
    Material("bark", "static.vegetation", T_BARK, (0.36, 0.27, 0.19), 0.12),
    Material("paint", "vehicle.car", T_PAINT, (0.5, 0.5, 0.5), 0.22),
    Material("cabin", "vehicle.car", T_CABIN, (0.5, 0.5, 0.5), 0.10),
    Material("glass", "vehicle.car", T_GLASS, (0.07, 0.09, 0.11), 0.03),
    Material("tire", "vehicle.car", T_WHEEL, (0.05, 0.05, 0.05), 0.04),
    Material("headlight", "vehicle.car", T_PLAIN, (0.95, 0.95, 0.88), 0.90),
    Material("taillight", "vehicle.car", T_PLAIN, (0.75, 0.05, 0.04), 0.90),
    Material("plate", "vehicle.car", T_PLAIN, (0.95, 0.95, 0.90), 0.95),
    Material("chassis", "vehicle.car", T_PLAIN, (0.13, 0.13, 0.14), 0.12),
    Material("bus_body", "vehicle.bus.rigid", T_BUS, (0.8, 0.1, 0.1), 0.25),
    Material("container", "vehicle.trailer", T_CONTAINER, (0.2, 0.35, 0.6), 0.30),
    Material("machine", "vehicle.construction", T_PAINT, (0.95, 0.70, 0.05), 0.35),
    Material("cone", "movable_object.trafficcone", T_CONE, (0.95, 0.33, 0.04), 0.45),
    Material("barrier", "movable_object.barrier", T_STRIPES, (0.85, 0.1, 0.08), 0.45),
    Material("jersey", "movable_object.barrier", T_CONCRETE, (0.70, 0.69, 0.65), 0.25),
    Material("skin", "human.pedestrian.adult", T_PLAIN, (0.78, 0.58, 0.46), 0.20),
    Material("cloth", "human.pedestrian.adult", T_PLAIN, (0.2, 0.2, 0.4), 0.14),
    Material("hivis", "human.pedestrian.adult", T_HIVIS, (0.85, 0.95, 0.10), 0.55),
    Material("hair", "human.pedestrian.adult", T_PLAIN, (0.08, 0.06, 0.05), 0.08),
    Material("helmet", "human.pedestrian.adult", T_PAINT, (0.9, 0.9, 0.9), 0.40),
    Material("bin", "movable_object.pushable_pullable", T_PLAIN, (0.15, 0.35, 0.18), 0.20),
    Material("frame", "vehicle.bicycle", T_PAINT, (0.1, 0.3, 0.7), 0.30),
]
MATERIALS: tuple[Material, ...] = tuple(_M)
MAT: dict[str, int] = {m.name: i for i, m in enumerate(MATERIALS)}
MAT_LABEL = np.array([NUSCENES_GENERAL_INDEX[m.label] for m in MATERIALS], dtype=np.uint8)
MAT_TEXTURE = np.array([m.texture for m in MATERIALS], dtype=np.int16)
MAT_REFL = np.array([m.reflectivity for m in MATERIALS], dtype=np.float32)
MAT_NOISE = np.array([m.range_noise for m in MATERIALS], dtype=np.float32)


@dataclass
class RoadStyle:
    """Per-scene paint on the road: lines at lateral offsets and zebra crossings (metres)."""

    lines: list[tuple[float, float, float, float, tuple[float, float, float]]] = field(default_factory=list)
    # (d centre, half width, dash period (0 = solid), dash length, rgb)
    crossings: list[tuple[float, float, float, float]] = field(default_factory=list)  # s0, s1, d0, d1


# ----------------------------------------------------------------------------- noise
def _hash(ix, iy, iz, seed: int = 0) -> np.ndarray:
    h = (ix * 73856093) ^ (iy * 19349663) ^ (iz * 83492791) ^ (seed * 2654435761)
    h = (h ^ (h >> 13)) * 1274126177
    h = h ^ (h >> 16)
    return (h & 0xFFFFFF).astype(np.float32) / np.float32(16777216.0)


def hash2(x, y, seed: int = 0) -> np.ndarray:
    """Uniform [0, 1) per integer cell of (x, y)."""
    return _hash(np.floor(x).astype(np.int64), np.floor(y).astype(np.int64), 0, seed)


def _make_table(n: int = 256) -> np.ndarray:
    iy, ix = np.mgrid[0:n, 0:n]
    return _hash(ix.astype(np.int64), iy.astype(np.int64), 0, 12345)


_TABLE = _make_table()
_TMASK = _TABLE.shape[0] - 1


def value_noise(x, y, z=None, seed: int = 0) -> np.ndarray:
    """Smooth value noise in [0, 1) of 2D coordinates (lattice spacing 1, period 256).

    ``z`` (3D use) is folded into the 2D lattice; ``seed`` shifts the lattice.
    """
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.float32)
    if z is not None:
        z = np.asarray(z, dtype=np.float32)
        x, y = x + 0.61 * z, y - 0.79 * z
    x = x + np.float32(37.3 * seed)
    y = y + np.float32(17.9 * seed)
    fx, fy = np.floor(x), np.floor(y)
    tx, ty = x - fx, y - fy
    ix, iy = fx.astype(np.int64) & _TMASK, fy.astype(np.int64) & _TMASK
    ix1, iy1 = (ix + 1) & _TMASK, (iy + 1) & _TMASK
    sx, sy = tx * tx * (3 - 2 * tx), ty * ty * (3 - 2 * ty)
    a, b = _TABLE[iy, ix], _TABLE[iy, ix1]
    c, d = _TABLE[iy1, ix], _TABLE[iy1, ix1]
    top = a + (b - a) * sx
    return top + (c + (d - c) * sx - top) * sy


def fbm(x, y, octaves: int = 3, seed: int = 0) -> np.ndarray:
    out, amp, norm = 0.0, 1.0, 0.0
    for o in range(octaves):
        out = out + amp * value_noise(x * 2**o, y * 2**o, seed=seed + o)
        norm += amp
        amp *= 0.5
    return out / norm


# ----------------------------------------------------------------------------- textures
def apply_textures(
    texture: np.ndarray,  # [N] texture kind
    tex: np.ndarray,  # [N, 3] interpolated texture coordinates
    pos: np.ndarray,  # [N, 3] hit points, global frame
    normal: np.ndarray,  # [N, 3] unit normals facing the sensor, global frame
    albedo: np.ndarray,  # [N, 3] base colour
    refl: np.ndarray,  # [N] base reflectivity
    variant: np.ndarray,  # [N]
    road: RoadStyle,
    need_color: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Albedo [N, 3], reflectivity [N] and gloss [N] after the procedural textures.

    ``need_color=False`` (LiDAR): reflectivity only; albedo and gloss are returned unchanged / zero
    and the costliest textures use their reflectivity-only variants.
    """
    n = len(texture)
    order = np.argsort(texture.astype(np.int16), kind="stable")  # radix sort
    kinds, starts = np.unique(texture[order], return_index=True)
    bounds = list(starts) + [n]
    take = lambda a: np.take(a, order, axis=0)  # noqa: E731
    tex, pos, normal = take(tex), take(pos), take(normal)
    albedo, refl, variant = take(albedo).astype(np.float32), take(refl).astype(np.float32), take(variant)
    gloss = np.zeros(n, dtype=np.float32)
    for k, kind in enumerate(kinds):
        fn = _TEXTURES.get(int(kind)) if need_color else _REFL_TEXTURES.get(int(kind), _TEXTURES.get(int(kind)))
        if fn is None:
            continue
        sl = slice(bounds[k], bounds[k + 1])
        a, r, g = fn(tex[sl], pos[sl], normal[sl], albedo[sl], refl[sl], variant[sl], road)
        albedo[sl], refl[sl], gloss[sl] = a, r, g
    out_a, out_r, out_g = np.empty_like(albedo), np.empty_like(refl), np.empty_like(gloss)
    out_a[order], out_r[order], out_g[order] = albedo, refl, gloss
    return out_a, out_r, out_g


def _mul(a, f):
    return a * np.asarray(f, dtype=np.float32)[:, None]


def _t_plain(tex, pos, n, a, r, v, road):
    return _mul(a, 0.94 + 0.12 * value_noise(tex[:, 0] * 3, tex[:, 1] * 3 + tex[:, 2] * 3)), r, 0.0 * r


def _t_paint(tex, pos, n, a, r, v, road):
    return _mul(a, 0.96 + 0.06 * value_noise(tex[:, 0] * 2, tex[:, 2] * 2)), r, np.full_like(r, 0.12)


def _t_concrete(tex, pos, n, a, r, v, road):
    f = 0.85 + 0.25 * fbm(pos[:, 0] * 1.5 + pos[:, 2], pos[:, 1] * 1.5 - pos[:, 2], 2, seed=7)
    return _mul(a, f), r, 0.0 * r


def _road_paint(s, d, road: RoadStyle) -> tuple[np.ndarray, np.ndarray]:
    """Mask of painted pixels (lines and zebra crossings) and their colour [N, 3]."""
    paint = np.zeros(len(s), dtype=bool)
    col = np.zeros((len(s), 3), dtype=np.float32)
    if road.lines:
        lines = sorted(road.lines)
        ln = np.array([x[:4] for x in lines], dtype=np.float32)  # d, half width, dash period, dash length
        cols = np.array([x[4] for x in lines], dtype=np.float32)
        j = np.clip(np.searchsorted(ln[:, 0], d), 1, max(1, len(ln) - 1))
        jm = np.minimum(j, len(ln) - 1)
        j = np.where(np.abs(d - ln[j - 1, 0]) < np.abs(d - ln[jm, 0]), j - 1, jm)
        near = ln[j]
        paint = (np.abs(d - near[:, 0]) < near[:, 1]) & (
            (near[:, 2] == 0) | (np.mod(s, np.maximum(near[:, 2], 1)) < near[:, 3])
        )
        col = cols[j]
    for s0, s1, d0, d1 in road.crossings:
        m = (s >= s0) & (s <= s1) & (d >= d0) & (d <= d1) & (np.mod(d, 1.0) < 0.5)
        paint |= m
        col[m] = 0.86
    return paint, col


def _t_road(tex, pos, n, a, r, v, road):
    s, d = tex[:, 0], tex[:, 1]
    f = (0.82 + 0.3 * value_noise(s * 0.6, d * 0.6, seed=1)) * (0.92 + 0.16 * value_noise(s * 9, d * 9, seed=2))
    f = np.where(value_noise(s * 0.08, d * 0.12, seed=3) > 0.72, f * 0.78, f)  # repaired patches
    a = _mul(a, f)
    r = r * (0.9 + 0.2 * f)
    paint, col = _road_paint(s, d, road)
    a[paint] = col[paint] * (0.85 + 0.15 * f[paint, None])
    r[paint] = 0.55
    return a, r, 0.0 * r


def _t_tiles(tex, pos, n, a, r, v, road):
    s, d = tex[:, 0].astype(np.float64), tex[:, 1].astype(np.float64)
    size = 0.4 + 0.3 * (v > 0.5)
    fs, fd = np.mod(s / size, 1.0), np.mod(d / size, 1.0)
    joint = (fs < 0.05) | (fd < 0.05)
    f = (0.9 + 0.2 * hash2(s / size, d / size, seed=4)) * (0.9 + 0.15 * fbm(s * 0.3, d * 0.3, 2, seed=5))
    f = np.where(joint, 0.65 * f, f)
    return _mul(a, f), r * f, 0.0 * r


def _t_grass(tex, pos, n, a, r, v, road):
    x, y = pos[:, 0], pos[:, 1]
    mix = fbm(x * 0.15, y * 0.15, 2, seed=6)[:, None]
    dirt = np.array([0.45, 0.37, 0.24], dtype=np.float32)
    base = a * (1 - 0.7 * mix**2) + dirt * 0.7 * mix**2
    f = 0.75 + 0.45 * value_noise(x * 5, y * 5, seed=8)
    return _mul(base, f), r * (0.8 + 0.4 * f), 0.0 * r


def _t_pavers(tex, pos, n, a, r, v, road):
    s, d = tex[:, 0].astype(np.float64), tex[:, 1].astype(np.float64)
    row = np.floor(d / 0.1)
    sh = s / 0.2 + 0.5 * np.mod(row, 2)
    joint = (np.mod(sh, 1.0) < 0.08) | (np.mod(d / 0.1, 1.0) < 0.12)
    f = (0.85 + 0.3 * hash2(sh, row, seed=9)) * np.where(joint, 0.7, 1.0)
    return _mul(a, f), r, 0.0 * r


def _facade_windows(along, z, v, n) -> np.ndarray:
    floor_h = 3.0 + 0.8 * np.mod(v * 7.0, 1.0)
    spacing = 2.2 + 1.6 * np.mod(v * 13.0, 1.0)
    win_w = spacing * (0.4 + 0.3 * np.mod(v * 29.0, 1.0))
    fa, fz = np.mod(along, spacing), np.mod(z, floor_h)
    window = (fa > (spacing - win_w) / 2) & (fa < (spacing + win_w) / 2) & (fz > 0.3 * floor_h) & (fz < 0.82 * floor_h)
    shop = (z < floor_h) & (np.mod(along, 5.0) > 0.5) & (z > 0.3) & (z < 0.85 * floor_h) & (np.mod(v * 5.0, 1.0) < 0.6)
    return ((window & (z > floor_h)) | shop) & (n[:, 2] <= 0.7)


def _t_facade(tex, pos, n, a, r, v, road):
    along, z = tex[:, 0], tex[:, 2]
    f = 0.9 + 0.15 * fbm(along * 0.5, z * 0.5, 2, seed=10)
    brick = np.mod(v * 3.0, 1.0) < 0.35
    f = np.where(brick & (np.mod(z / 0.3, 1.0) < 0.12), f * 0.8, f)
    a = _mul(a, f)
    window = _facade_windows(along, z, v, n)
    floor_h = 3.0 + 0.8 * np.mod(v * 7.0, 1.0)
    lit = hash2(along / 2.5, z / floor_h, seed=11)
    glass = np.stack([0.10 + 0.05 * lit, 0.13 + 0.05 * lit, 0.18 + 0.06 * lit], -1).astype(np.float32)
    roof = n[:, 2] > 0.7
    a[window] = glass[window]
    a[roof] = np.float32(0.33) * (0.85 + 0.3 * value_noise(pos[roof, 0], pos[roof, 1], seed=12))[:, None]
    r = np.where(window, 0.06, r).astype(np.float32)
    return a, r, np.where(window, 0.35, 0.0).astype(np.float32)


def _t_foliage(tex, pos, n, a, r, v, road):
    x, y, z = tex[:, 0] * 3.0 + 31 * v, tex[:, 1] * 3.0, tex[:, 2] * 3.0
    n1 = value_noise(x, y, z, seed=13)
    n2 = value_noise(x * 3.3, y * 3.3, z * 3.3, seed=14)
    f = (0.55 + 0.7 * n1) * np.where(n2 < 0.3, 0.55, 1.0)
    return _mul(a, f), r * (0.6 + 0.8 * n2), 0.0 * r


def _t_bark(tex, pos, n, a, r, v, road):
    f = 0.7 + 0.45 * value_noise(tex[:, 2] * 24.0, tex[:, 1] * 3.0, seed=15)
    return _mul(a, f), r, 0.0 * r


def _t_cone(tex, pos, n, a, r, v, road):
    h = tex[:, 1]
    band = ((h > 0.32) & (h < 0.47)) | ((h > 0.58) & (h < 0.7))
    a = a.copy()
    a[band] = (0.92, 0.92, 0.9)
    return a, np.where(band, 0.95, r).astype(np.float32), 0.0 * r


def _t_stripes(tex, pos, n, a, r, v, road):
    white = np.mod((tex[:, 0] + tex[:, 2]) / 0.5, 1.0) < 0.5
    a = a.copy()
    a[white] = (0.93, 0.93, 0.9)
    return a, np.where(white, 0.85, r).astype(np.float32), 0.0 * r


def _t_cabin(tex, pos, n, a, r, v, road):
    x, z = tex[:, 0], tex[:, 2]  # normalised along / height within the cabin
    pillar = (x < 0.08) | (x > 0.92) | (np.abs(x - 0.5) < 0.035) | (z > 0.88) | (z < 0.06)
    roof = np.abs(n[:, 2]) > 0.8
    paint = pillar | roof
    glass = np.array([0.06, 0.08, 0.10], dtype=np.float32)
    out = np.where(paint[:, None], a, glass)
    return out, np.where(paint, 0.22, 0.03).astype(np.float32), np.where(paint, 0.12, 0.4).astype(np.float32)


def _t_bus(tex, pos, n, a, r, v, road):
    x, z = tex[:, 0], tex[:, 2]  # along the bus from its rear (m), height above its bottom (m)
    length = tex[:, 1]  # the bus body stores its length here
    window = (z > 1.25) & (z < 2.55) & (np.mod(x, 1.45) > 0.14) & (x > 0.4) & (x < length - 0.15)
    front = (x > length - 0.05) & (z > 0.95) & (z < 2.75)
    stripe = (z > 0.55) & (z < 0.75)
    out = a.copy()
    out[stripe] = 0.92
    glass = window | front
    out[glass] = (0.07, 0.09, 0.12)
    return out, np.where(glass, 0.03, r).astype(np.float32), np.where(glass, 0.4, 0.1).astype(np.float32)


def _t_container(tex, pos, n, a, r, v, road):
    along = tex[:, 0] + tex[:, 1]
    f = (0.85 + 0.15 * np.sin(2 * np.pi * along / 0.3)) * (0.85 + 0.25 * fbm(tex[:, 0], tex[:, 2] * 2, 2, seed=16))
    return _mul(a, f), r, 0.0 * r


def _t_wheel(tex, pos, n, a, r, v, road):
    rim = tex[:, 0] < 0.55
    out = np.where(rim[:, None], np.float32(0.55), a)
    return out, np.where(rim, 0.4, r).astype(np.float32), 0.0 * r


def _t_hivis(tex, pos, n, a, r, v, road):
    band = np.mod(tex[:, 2] / 0.22, 1.0) < 0.22
    out = np.where(band[:, None], np.float32(0.85), a)
    return out, np.where(band, 0.95, r).astype(np.float32), 0.0 * r


_SIGN_COLORS = np.array([[0.80, 0.08, 0.08], [0.08, 0.25, 0.70], [0.92, 0.92, 0.9], [0.95, 0.75, 0.05],
                         [0.05, 0.45, 0.25]], dtype=np.float32)  # fmt: skip


def _t_sign(tex, pos, n, a, r, v, road):
    out = _SIGN_COLORS[(v * len(_SIGN_COLORS)).astype(np.int64) % len(_SIGN_COLORS)]
    return out, r, np.full_like(r, 0.05)


def _t_glass(tex, pos, n, a, r, v, road):
    return a, r, np.full_like(r, 0.45)


_TEXTURES = {
    T_PLAIN: _t_plain, T_PAINT: _t_paint, T_CONCRETE: _t_concrete, T_ROAD: _t_road, T_TILES: _t_tiles,
    T_GRASS: _t_grass, T_PAVERS: _t_pavers, T_FACADE: _t_facade, T_FOLIAGE: _t_foliage, T_BARK: _t_bark,
    T_CONE: _t_cone, T_STRIPES: _t_stripes, T_CABIN: _t_cabin, T_BUS: _t_bus, T_CONTAINER: _t_container,
    T_WHEEL: _t_wheel, T_HIVIS: _t_hivis, T_SIGN: _t_sign, T_GLASS: _t_glass,
}  # fmt: skip


# ----------------------------------------------------------------------------- LiDAR-only variants
def _r_road(tex, pos, n, a, r, v, road):
    s, d = tex[:, 0], tex[:, 1]
    r = r * (0.9 + 0.2 * (0.82 + 0.3 * value_noise(s * 0.6, d * 0.6, seed=1)))
    paint, _ = _road_paint(s, d, road)
    return a, np.where(paint, np.float32(0.55), r), 0.0 * r


def _r_facade(tex, pos, n, a, r, v, road):
    return a, np.where(_facade_windows(tex[:, 0], tex[:, 2], v, n), np.float32(0.06), r), 0.0 * r


def _r_foliage(tex, pos, n, a, r, v, road):
    x, y, z = tex[:, 0] * 3.0 + 31 * v, tex[:, 1] * 3.0, tex[:, 2] * 3.0
    n2 = value_noise(x * 3.3, y * 3.3, z * 3.3, seed=14)
    return a, r * (0.6 + 0.8 * n2), 0.0 * r


_REFL_TEXTURES = {T_ROAD: _r_road, T_FACADE: _r_facade, T_FOLIAGE: _r_foliage}
