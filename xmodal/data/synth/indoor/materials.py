"""Procedural materials: albedo as a function of object-local position (metres).

A material is a callable ``(xyz [N, 3], normal [N, 3]) -> rgb [N, 3]`` in [0, 1], evaluated at
mesh vertices in the object's own frame (so a pattern moves with its object). Patterns have
periods of ~10 cm or more so that vertex colours sampled every few centimetres carry them:
wood grain and planks, fabric stripes / checks / dots, tiles with grout, speckled stone,
brushed metal, paintings, book spines. Every factory takes a numpy ``Generator`` and draws its
own colours and scales, so two objects of a class differ while the class stays recognisable.
"""

from __future__ import annotations

import numpy as np

from xmodal.data.synth.indoor.shapes import Material

_M = np.uint64(0xFFFFFFFF)


def _hash(ix: np.ndarray, iy: np.ndarray, iz: np.ndarray, seed: int) -> np.ndarray:
    """Integer lattice hash -> float in [0, 1) (deterministic, vectorized)."""
    with np.errstate(over="ignore"):
        h = (ix.astype(np.int64).astype(np.uint64) * np.uint64(73856093)
             ^ iy.astype(np.int64).astype(np.uint64) * np.uint64(19349663)
             ^ iz.astype(np.int64).astype(np.uint64) * np.uint64(83492791)
             ^ np.uint64(seed * 2654435761 & 0xFFFFFFFF)) & _M
        h = ((h >> np.uint64(16)) ^ h) * np.uint64(0x45D9F3B) & _M
        h = ((h >> np.uint64(16)) ^ h) * np.uint64(0x45D9F3B) & _M
        h = (h >> np.uint64(16)) ^ h
    return (h & np.uint64(0xFFFFFF)).astype(np.float64) / float(1 << 24)


def value_noise(p: np.ndarray, scale: float | np.ndarray, seed: int) -> np.ndarray:
    """[N] smooth value noise in [0, 1]; ``scale`` is the feature size in metres."""
    q = p / scale
    i = np.floor(q)
    f = q - i
    f = f * f * (3 - 2 * f)
    out = np.zeros(len(p))
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                w = (f[:, 0] if dx else 1 - f[:, 0]) * (f[:, 1] if dy else 1 - f[:, 1]) * (
                    f[:, 2] if dz else 1 - f[:, 2])
                out += w * _hash(i[:, 0] + dx, i[:, 1] + dy, i[:, 2] + dz, seed)
    return out


def fbm(p: np.ndarray, scale: float, seed: int, octaves: int = 3) -> np.ndarray:
    """[N] fractal noise in [0, 1]."""
    out, amp, tot = np.zeros(len(p)), 1.0, 0.0
    for o in range(octaves):
        out += amp * value_noise(p, scale / 2**o, seed + 101 * o)
        tot += amp
        amp *= 0.5
    return out / tot


def _mix(a, b, t) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a + (b - a) * np.clip(t, 0, 1)[:, None]


def jitter(rng: np.random.Generator, rgb, amount: float = 0.06) -> np.ndarray:
    return np.clip(np.asarray(rgb, np.float64) + rng.uniform(-amount, amount, 3), 0, 1)


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


# --------------------------------------------------------------------------- palettes
WOOD_TONES = {
    "light": ((0.80, 0.64, 0.44), (0.66, 0.48, 0.30)),
    "medium": ((0.62, 0.42, 0.24), (0.45, 0.28, 0.15)),
    "dark": ((0.38, 0.24, 0.14), (0.24, 0.14, 0.08)),
}
FABRIC_COLORS = [(0.70, 0.12, 0.12), (0.15, 0.25, 0.55), (0.20, 0.45, 0.25), (0.55, 0.55, 0.58),
                 (0.80, 0.62, 0.20), (0.45, 0.25, 0.50), (0.30, 0.30, 0.32), (0.85, 0.45, 0.35)]
PAINT_COLORS = [(0.90, 0.88, 0.82), (0.82, 0.86, 0.90), (0.86, 0.90, 0.82), (0.92, 0.86, 0.78),
                (0.85, 0.85, 0.85), (0.93, 0.90, 0.88)]


# --------------------------------------------------------------------------- materials
def solid(rgb, noise: float = 0.03, scale: float = 0.3, seed: int = 0) -> Material:
    rgb = np.asarray(rgb, np.float64)

    def f(p, n):
        return np.clip(rgb * (1 + noise * (2 * value_noise(p, scale, seed) - 1))[:, None], 0, 1)

    return f


def paint(rng: np.random.Generator, rgb=None) -> Material:
    """Painted plaster; sometimes a faint vertical-stripe wallpaper."""
    base = jitter(rng, rgb if rgb is not None else PAINT_COLORS[rng.integers(len(PAINT_COLORS))], 0.03)
    s = _seed(rng)
    stripes = rng.random() < 0.35
    period = rng.uniform(0.18, 0.35)

    def f(p, n):
        t = 0.04 * (2 * fbm(p, 0.6, s) - 1)
        if stripes:
            u = p[:, 0] + p[:, 1]
            t = t - 0.07 * (np.sin(2 * np.pi * u / period) > 0.3)
        return np.clip(base * (1 + t)[:, None], 0, 1)

    return f


def wood(rng: np.random.Generator, tone: str | None = None, axis: int = 0) -> Material:
    """Wood with grain rings along ``axis`` (object-local x by default)."""
    light, dark = WOOD_TONES[tone or rng.choice(list(WOOD_TONES))]
    light, dark = jitter(rng, light, 0.04), jitter(rng, dark, 0.03)
    s, freq = _seed(rng), rng.uniform(8, 14)
    other = [a for a in range(3) if a != axis]

    def f(p, n):
        r = np.hypot(p[:, other[0]], p[:, other[1]] * 0.7)
        warp = 0.6 * fbm(p * np.where(np.arange(3) == axis, 0.3, 1.0), 0.4, s)
        g = 0.5 + 0.5 * np.sin(2 * np.pi * (r * freq + warp * 3))
        return _mix(light, dark, 0.75 * g**2 + 0.25 * fbm(p, 0.15, s + 7))

    return f


def planks(rng: np.random.Generator, tone: str | None = None) -> Material:
    """Floor boards along x, ``width`` wide, each a slightly different wood, dark seams."""
    base = wood(rng, tone)
    width, length = rng.uniform(0.14, 0.22), rng.uniform(0.9, 1.6)
    s = _seed(rng)

    def f(p, n):
        row = np.floor(p[:, 1] / width)
        shift = _hash(row, row * 0, row * 0, s) * length
        col = np.floor((p[:, 0] + shift) / length)
        tone_var = 0.85 + 0.3 * _hash(row, col, col * 0, s + 1)
        q = p.copy()
        q[:, 1] = (p[:, 1] % width) + 3.7 * row + 1.3 * col  # decorrelate grain per board
        c = base(q, n) * tone_var[:, None]
        fy = (p[:, 1] / width) % 1.0
        seam = (fy < 0.06) | (fy > 0.94)
        return np.clip(np.where(seam[:, None], c * 0.55, c), 0, 1)

    return f


def tiles(rng: np.random.Generator, rgb=None, size: float | None = None, axes=(0, 1)) -> Material:
    """Square tiles (``size`` m) with grout lines; per-tile tone variation."""
    base = jitter(rng, rgb if rgb is not None else
                   [(0.85, 0.85, 0.82), (0.55, 0.62, 0.70), (0.75, 0.68, 0.58), (0.35, 0.35, 0.38)]
                   [rng.integers(4)], 0.04)
    grout = np.array([0.45, 0.45, 0.43]) if base.mean() > 0.5 else np.array([0.85, 0.85, 0.82])
    size = size or rng.uniform(0.25, 0.45)
    s = _seed(rng)
    a0, a1 = axes

    def f(p, n):
        u, v = p[:, a0] / size, p[:, a1] / size
        iu, iv = np.floor(u), np.floor(v)
        var = 0.9 + 0.2 * _hash(iu, iv, iu * 0, s)
        c = base * var[:, None]
        g = (np.minimum(u % 1, 1 - u % 1) < 0.07) | (np.minimum(v % 1, 1 - v % 1) < 0.07)
        return np.where(g[:, None], grout, c)

    return f


def fabric(rng: np.random.Generator, rgb=None, pattern: str | None = None) -> Material:
    """Fabric: solid, stripes, checks (plaid) or dots, with a soft mottle."""
    base = jitter(rng, rgb if rgb is not None else FABRIC_COLORS[rng.integers(len(FABRIC_COLORS))])
    pattern = pattern or rng.choice(["solid", "stripes", "checks", "dots"])
    accent = np.clip(base * rng.uniform(0.45, 0.7) if rng.random() < 0.5 else base + 0.35, 0, 1)
    period = rng.uniform(0.12, 0.22)
    s = _seed(rng)

    def f(p, n):
        t = np.zeros(len(p))
        if pattern == "stripes":
            t = (np.sin(2 * np.pi * p[:, 0] / period) > 0.2).astype(float)
        elif pattern == "checks":
            t = 0.5 * (np.sin(2 * np.pi * p[:, 0] / period) > 0.3) + 0.5 * (
                np.sin(2 * np.pi * (p[:, 1] + p[:, 2]) / period) > 0.3)
        elif pattern == "dots":
            q = (p / period) % 1.0 - 0.5
            q[np.arange(len(q)), np.abs(n).argmax(1)] = 0.0  # in the surface's own plane
            t = (np.sqrt((q**2).sum(1)) < 0.25).astype(float)
        c = _mix(base, accent, t)
        return np.clip(c * (0.93 + 0.14 * fbm(p, 0.08, s))[:, None], 0, 1)

    return f


def granite(rng: np.random.Generator) -> Material:
    dark = rng.random() < 0.5
    base = np.array([0.22, 0.22, 0.24]) if dark else np.array([0.80, 0.78, 0.74])
    spot = np.array([0.70, 0.68, 0.65]) if dark else np.array([0.35, 0.33, 0.32])
    s = _seed(rng)

    def f(p, n):
        speck = np.clip((value_noise(p, 0.06, s) - 0.62) * 5, 0, 1)
        t = 0.75 * speck + 0.25 * fbm(p, 0.25, s + 3)
        return _mix(base, spot, t)

    return f


def metal(rng: np.random.Generator, rgb=(0.72, 0.73, 0.75)) -> Material:
    """Brushed metal: vertical streaks and a soft vertical gradient."""
    base = jitter(rng, rgb, 0.03)
    s = _seed(rng)

    def f(p, n):
        streak = value_noise(p * np.array([1.0, 1.0, 0.05]), 0.02, s)
        return np.clip(base * (0.9 + 0.12 * streak + 0.05 * np.sin(p[:, 2] * 2.0))[:, None], 0, 1)

    return f


def ceramic(rng: np.random.Generator) -> Material:
    return solid(jitter(rng, (0.94, 0.95, 0.96), 0.02), noise=0.015, seed=_seed(rng))


def glass(rng: np.random.Generator) -> Material:
    """Window glass: bright sky gradient (the view outside)."""
    top, bottom = np.array([0.55, 0.75, 0.95]), np.array([0.80, 0.88, 0.95])
    s = _seed(rng)

    def f(p, n):
        t = np.clip(p[:, 2] / 2.5, 0, 1)
        cloud = np.clip(fbm(p, 0.3, s) - 0.5, 0, 1) * 1.5
        return np.clip(_mix(bottom, top, t) + cloud[:, None] * 0.3, 0, 1)

    return f


def painting(rng: np.random.Generator) -> Material:
    """A colourful abstract canvas: noise mapped onto a random 4-colour palette."""
    pal = rng.uniform(0.1, 0.95, (4, 3))
    s = _seed(rng)
    scale = rng.uniform(0.08, 0.2)

    def f(p, n):
        t = fbm(p, scale, s) * 3.0
        k = np.clip(np.floor(t).astype(int), 0, 2)
        return _mix(pal[k], pal[k + 1], t - k)

    return f


def books(rng: np.random.Generator) -> Material:
    """Book spines along x: random widths 3-8 cm, saturated colours, light page tops."""
    s = _seed(rng)
    cols = rng.uniform(0.1, 0.85, (64, 3))

    def f(p, n):
        idx = np.floor(p[:, 0] / 0.055 + 0.4 * value_noise(p[:, [0, 0, 0]], 0.1, s)).astype(int) % 64
        c = cols[idx]
        top = n[:, 2] > 0.7
        return np.where(top[:, None], np.array([0.92, 0.90, 0.84]), c)

    return f


def cardboard(rng: np.random.Generator) -> Material:
    return solid(jitter(rng, (0.65, 0.50, 0.32), 0.04), noise=0.08, scale=0.1, seed=_seed(rng))


def leather(rng: np.random.Generator) -> Material:
    base = jitter(rng, [(0.40, 0.22, 0.12), (0.12, 0.12, 0.12), (0.70, 0.55, 0.40)][rng.integers(3)], 0.03)
    s = _seed(rng)

    def f(p, n):
        return np.clip(base * (0.85 + 0.3 * value_noise(p, 0.04, s))[:, None], 0, 1)

    return f


def panels(inner: Material, frame_dark: float = 0.7, margin: float = 0.08, size=(0.4, 0.6),
           axes=(0, 2), origin=(0.0, 0.0)) -> Material:
    """Cabinet / door fronts: a darker groove outlining rectangles of ``size`` on ``axes``,
    the first one starting at ``origin``."""
    a0, a1 = axes

    def f(p, n):
        c = inner(p, n)
        u = ((p[:, a0] - origin[0]) / size[0]) % 1.0
        v = ((p[:, a1] - origin[1]) / size[1]) % 1.0
        edge = (np.minimum(u, 1 - u) < margin / size[0] * 0.5) | (np.minimum(v, 1 - v) < margin / size[1] * 0.5)
        return np.where(edge[:, None], c * frame_dark, c)

    return f
