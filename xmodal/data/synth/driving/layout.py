"""Static world of one scene: road cross-section, ground, buildings, vegetation, street furniture.

Everything is built in the global frame around the road's reference line (:class:`RoadPath`).
Lateral offsets ``d`` are positive to the left of the driving direction; for left-hand traffic
(Singapore logs) every offset is mirrored, so the ego always drives in its own lane at ``d = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xmodal.data.synth.driving.materials import MAT, RoadStyle
from xmodal.data.synth.driving.meshes import Mesh, blob, box, concat, cylinder, make_mesh
from xmodal.data.synth.driving.trajectory import RoadPath

FACADE_COLORS = np.array([
    [0.62, 0.30, 0.22], [0.78, 0.70, 0.55], [0.85, 0.84, 0.80], [0.55, 0.56, 0.58], [0.70, 0.58, 0.42],
    [0.40, 0.48, 0.58], [0.88, 0.80, 0.65], [0.50, 0.36, 0.30], [0.75, 0.75, 0.72], [0.60, 0.66, 0.62],
])  # fmt: skip
WHITE, YELLOW = (0.88, 0.88, 0.86), (0.90, 0.72, 0.12)


@dataclass
class Lane:
    d: float  # centre, lateral offset (mirrored for left-hand traffic)
    width: float
    direction: int  # +1 along the ego's direction, -1 against
    kind: str  # "ego", "drive", "parking", "bike"
    side: int  # +1 / -1: which road side's curb it is next to (outer lanes), else 0


@dataclass
class Side:
    """One side of the street (lateral offsets are unsigned distances from the reference line)."""

    sign: int  # +1 left of the reference line, -1 right (after mirroring)
    edge: float  # road edge (curb)
    lawn: float  # width of the grass strip next to the curb (0 = none)
    walk: float  # sidewalk width
    setback: float  # terrain between sidewalk and buildings
    curb_h: float

    @property
    def walk_in(self) -> float:
        return self.edge + self.lawn

    @property
    def building(self) -> float:
        return self.edge + self.lawn + self.walk + self.setback


@dataclass
class Layout:
    """Cross-section and static geometry of one scene (global frame)."""

    path: RoadPath
    hand: int  # +1 right-hand traffic, -1 left-hand
    lanes: list[Lane]
    sides: dict[int, Side]
    u_range: tuple[float, float]
    road: RoadStyle
    static: Mesh | None = None
    features: list[str] = field(default_factory=list)
    island: tuple[float, float] | None = None  # raised median (d0, d1) actual offsets

    def side(self, sign: int) -> Side:
        return self.sides[sign]


def cross_section(
    rng: np.random.Generator, hand: int
) -> tuple[list[Lane], dict[int, Side], RoadStyle, tuple | None, list[str]]:
    """Lanes, sidewalks and paint of a street, mirrored by ``hand``."""
    lw = rng.uniform(3.2, 3.7)
    n_same, n_opp = rng.choice([1, 2], p=[0.45, 0.55]), rng.choice([1, 2], p=[0.5, 0.5])
    median = rng.choice(["line", "island"], p=[0.6, 0.4])
    median_w = rng.uniform(1.2, 2.5) if median == "island" else 0.3
    # outer lanes: at least one parking lane (construction zones live there)
    outer = {-1: rng.choice(["parking", "bike", "none"], p=[0.5, 0.3, 0.2]),
             1: rng.choice(["parking", "bike", "none"], p=[0.5, 0.3, 0.2])}  # fmt: skip
    if "parking" not in outer.values():
        outer[int(rng.choice([-1, 1]))] = "parking"
    ow = {"parking": rng.uniform(2.3, 2.6), "bike": rng.uniform(1.6, 2.0), "none": 0.0}
    lanes = [Lane(0.0, lw, 1, "ego", 0)]
    feats = [f"{n_same}+{n_opp} lanes"]
    for i in range(1, n_same):
        lanes.append(Lane(i * lw, lw, 1, "drive", 0))
    left = (n_same - 0.5) * lw
    d_opp0 = left + median_w
    for i in range(n_opp):
        lanes.append(Lane(d_opp0 + (i + 0.5) * lw, lw, -1, "drive", 0))
    right_edge = -0.5 * lw
    left_edge = d_opp0 + n_opp * lw
    lines = []
    # paint: dashed between same-direction lanes, double line (or island) between directions
    for i in range(1, n_same):
        lines.append(((i - 0.5) * lw, 0.075, 9.0, 3.0, WHITE))
    for i in range(1, n_opp):
        lines.append((d_opp0 + i * lw, 0.075, 9.0, 3.0, WHITE))
    centre_col = YELLOW if hand > 0 else WHITE
    island = None
    if median == "line":
        lines += [(left + 0.05, 0.06, 0, 0, centre_col), (left + 0.25, 0.06, 0, 0, centre_col)]
    else:
        island = (left + 0.2, left + median_w - 0.2)
        feats.append("raised median")
    if outer[-1] != "none":
        lines.append((right_edge, 0.07, 0, 0, WHITE))
        lanes.append(Lane(right_edge - ow[outer[-1]] / 2, ow[outer[-1]], 1, outer[-1], -1))
        right_edge -= ow[outer[-1]]
    if outer[1] != "none":
        lines.append((left_edge, 0.07, 0, 0, WHITE))
        lanes.append(Lane(left_edge + ow[outer[1]] / 2, ow[outer[1]], -1, outer[1], 1))
        left_edge += ow[outer[1]]
    feats += [f"{v} lane" for v in outer.values() if v != "none"]
    sides = {}
    for sign, edge in ((-1, -right_edge), (1, left_edge)):
        lawn = rng.choice([0.0, rng.uniform(1.5, 3.0)], p=[0.5, 0.5])
        sides[sign * hand] = Side(
            sign * hand,
            edge,
            lawn,
            rng.uniform(3.0, 5.0),
            rng.choice([0.0, rng.uniform(1.0, 6.0)]),
            rng.uniform(0.12, 0.18),
        )
    for lane in lanes:
        lane.d *= hand
        lane.side *= hand
    lines = [(d * hand, hw, per, dash, col) for d, hw, per, dash, col in lines]
    if island is not None:
        island = tuple(sorted((island[0] * hand, island[1] * hand)))
    return lanes, sides, RoadStyle(lines=lines), island, feats


def ground_strip(path: RoadPath, u: np.ndarray, bands: list[tuple[float, float, float, int]]) -> Mesh:
    """Quad strips along ``u`` for lateral bands ``(d0, d1, z, material)`` plus vertical faces
    where neighbouring bands differ in height. tex = (arc length s, d, z)."""
    s = path.arclength(u)
    n = len(u)
    meshes = []
    bands = sorted(bands, key=lambda b: b[0])

    def strip(d0, z0, d1, z1, mat, albedo):
        p0, p1 = path.point(u, d0), path.point(u, d1)
        v = np.concatenate([np.c_[p0, np.full(n, z0)], np.c_[p1, np.full(n, z1)]])
        tex = np.concatenate([np.c_[s, np.full(n, d0), np.full(n, z0)], np.c_[s, np.full(n, d1), np.full(n, z1)]])
        i = np.arange(n - 1)
        tris = np.concatenate([np.stack([i, i + 1, n + i + 1], -1), np.stack([i, n + i + 1, n + i], -1)])
        return make_mesh(v, tris, tex, mat, albedo)

    from xmodal.data.synth.driving.materials import MATERIALS

    for k, (d0, d1, z, mat) in enumerate(bands):
        meshes.append(strip(d0, z, d1, z, mat, MATERIALS[mat].color))
        if k + 1 < len(bands):
            zn = bands[k + 1][2]
            if abs(zn - z) > 1e-6:
                hi = bands[k + 1][3] if zn > z else mat
                curb = {MAT["sidewalk"]: MAT["curb"], MAT["island"]: MAT["island_curb"]}.get(hi, hi)
                meshes.append(strip(d1, z, d1, zn, curb, MATERIALS[curb].color))
    return concat(meshes)


def build_static(rng: np.random.Generator, layout: Layout, style: dict) -> Mesh:
    """Ground, buildings, trees, poles and signs along ``layout.u_range`` (global frame)."""
    path = layout.path
    u0, u1 = layout.u_range
    u = np.arange(u0, u1 + 2.0, 2.0)
    # -------- ground bands (actual lateral offsets)
    road_d = sorted([layout.side(-1).edge * -1, layout.side(1).edge])
    bands = []
    if layout.island is None:
        bands.append((road_d[0], road_d[1], 0.0, MAT["road"]))
    else:
        a, b = layout.island
        bands += [(road_d[0], a, 0.0, MAT["road"]), (a, b, 0.12, MAT["island"]), (b, road_d[1], 0.0, MAT["road"])]
    for sign in (-1, 1):
        sd = layout.side(sign)
        h = sd.curb_h
        segs = []
        if sd.lawn > 0:
            segs.append((sd.edge, sd.walk_in, MAT["terrain"]))
        segs.append((sd.walk_in, sd.walk_in + sd.walk, MAT["sidewalk"]))
        segs.append((sd.walk_in + sd.walk, sd.building + 30.0, MAT["terrain"] if sd.setback > 0 else MAT["sidewalk"]))
        for a, b, m in segs:
            lo, hi = sorted((sign * a, sign * b))
            bands.append((lo, hi, h, m))
    meshes = [ground_strip(path, u, bands)]
    # far terrain plane, slightly below the strip
    c = path.point(np.array([(u0 + u1) / 2]))[0]
    r = (u1 - u0) / 2 + 200.0
    meshes.append(
        make_mesh(
            [
                [c[0] - r, c[1] - r, -0.05],
                [c[0] + r, c[1] - r, -0.05],
                [c[0] + r, c[1] + r, -0.05],
                [c[0] - r, c[1] + r, -0.05],
            ],
            [[0, 1, 2], [0, 2, 3]],
            [[c[0] - r, c[1] - r, 0], [c[0] + r, c[1] - r, 0], [c[0] + r, c[1] + r, 0], [c[0] - r, c[1] + r, 0]],
            MAT["terrain"],
            (0.30, 0.44, 0.18),
        )
    )
    for sign in (-1, 1):
        meshes += _buildings(rng, layout, sign, style)
        meshes += _street_furniture(rng, layout, sign, style)
    return concat(meshes)


def _place(path: RoadPath, u: float, d: float, z: float = 0.0) -> tuple[np.ndarray, float]:
    p = path.point(np.array([u]), np.array([d]))[0]
    return np.array([p[0], p[1], z]), float(path.yaw(u))


def _buildings(rng, layout: Layout, sign: int, style: dict) -> list[Mesh]:
    path, sd = layout.path, layout.side(sign)
    u0, u1 = layout.u_range
    out = []
    for row, (dist, hmin, hmax) in enumerate(((sd.building, *style["heights"]), (sd.building + 32.0, 15.0, 55.0))):
        u = u0 - rng.uniform(0, 10)
        while u < u1:
            length = rng.uniform(8.0, 30.0) if row == 0 else rng.uniform(15.0, 40.0)
            depth = rng.uniform(10.0, 22.0)
            height = rng.uniform(hmin, hmax)
            uc = u + length / 2
            if row == 1 and rng.random() < 0.35:
                u += length + rng.uniform(5, 30)
                continue
            centre, yaw = _place(path, uc, sign * (dist + depth / 2))
            col = np.clip(FACADE_COLORS[rng.integers(len(FACADE_COLORS))] + rng.normal(0, 0.03, 3), 0, 1)
            out.append(
                box(
                    (length, depth, height + 0.1),
                    (centre[0], centre[1], height / 2 - 0.05),
                    MAT["facade"],
                    col,
                    variant=rng.random(),
                    yaw=yaw,
                    tex="facade",
                    bottom=False,
                )
            )
            if row == 0 and rng.random() < 0.3:  # rooftop structure
                out.append(
                    box(
                        (length * 0.3, depth * 0.3, 2.5),
                        (centre[0], centre[1], height + 1.25),
                        MAT["roof"],
                        (0.45, 0.45, 0.45),
                        yaw=yaw,
                        bottom=False,
                    )
                )
            gap = rng.choice([0.0, rng.uniform(2.0, 12.0)], p=[0.4, 0.6])
            if row == 0 and gap > 4.0:  # trees / bushes in the gap
                for _ in range(rng.integers(1, 3)):
                    p, _y = _place(
                        path, u + length + rng.uniform(1.0, gap - 1.0), sign * (dist + rng.uniform(1.0, depth))
                    )
                    out += _tree(rng, p, style)
            u += length + gap
    return out


def _tree(rng, base, style, max_r: float = 3.2) -> list[Mesh]:
    trunk_h = rng.uniform(3.2, 4.5)
    rad = rng.uniform(0.7, 1.0) * max_r
    rz = rng.uniform(1.6, 2.8)
    col = np.clip(np.asarray(style["foliage"]) * rng.uniform(0.75, 1.25) + rng.normal(0, 0.02, 3), 0, 1)
    top = base + np.array([0, 0, trunk_h])
    return [
        cylinder(
            base - [0, 0, 0.1],
            top + [0, 0, 0.3],
            rng.uniform(0.12, 0.2),
            7,
            MAT["bark"],
            np.clip(np.asarray((0.36, 0.27, 0.19)) * rng.uniform(0.8, 1.2), 0, 1),
        ),
        blob(
            top + [0, 0, rz * 0.85],
            (rad, rad * rng.uniform(0.85, 1.15), rz),
            rng,
            bumps=0.18,
            subdiv=1,
            material=MAT["foliage"],
            albedo=col,
            variant=rng.random(),
        ),
    ]


def _street_furniture(rng, layout: Layout, sign: int, style: dict) -> list[Mesh]:
    path, sd = layout.path, layout.side(sign)
    u0, u1 = layout.u_range
    z = sd.curb_h
    out = []
    # trees on the lawn (or in tree pits near the curb)
    if sd.lawn > 0 or rng.random() < 0.6:
        d_tree = sd.edge + (sd.lawn / 2 if sd.lawn > 0 else 0.7)
        u = u0 + rng.uniform(0, 8)
        while u < u1:
            p, _ = _place(path, u, sign * d_tree, z)
            out += _tree(rng, p, style, max_r=min(3.2, d_tree - sd.edge + 1.0))
            u += rng.uniform(7.0, 14.0)
    # hedges / bushes in the setback
    if sd.setback > 1.5:
        u = u0 + rng.uniform(0, 10)
        while u < u1:
            p, yaw = _place(path, u, sign * (sd.walk_in + sd.walk + sd.setback / 2), z)
            col = np.clip(np.asarray(style["foliage"]) * rng.uniform(0.7, 1.1), 0, 1)
            if rng.random() < 0.5:
                out.append(
                    blob(
                        p + [0, 0, 0.4],
                        (rng.uniform(0.6, 1.2),) * 2 + (rng.uniform(0.5, 0.9),),
                        rng,
                        0.2,
                        material=MAT["foliage"],
                        albedo=col,
                        variant=rng.random(),
                    )
                )
            else:
                ln = rng.uniform(3, 8)
                out.append(
                    box((ln, 0.8, rng.uniform(0.8, 1.4)), p + [0, 0, 0.5], MAT["foliage"], col, rng.random(), yaw=yaw)
                )
            u += rng.uniform(4.0, 12.0)
    # street lights: pole near the curb with an arm over the road
    u = u0 + rng.uniform(0, 20)
    d_pole = sd.walk_in + 0.3 if sd.lawn == 0 else sd.edge + 0.5
    while u < u1:
        p, yaw = _place(path, u, sign * d_pole, z)
        hgt = rng.uniform(7.0, 9.0)
        arm = -sign * np.array([-np.sin(yaw), np.cos(yaw), 0.0]) * 1.8
        out.append(cylinder(p, p + [0, 0, hgt], 0.1, 8, MAT["pole"], (0.48, 0.5, 0.53), radius1=0.07))
        out.append(cylinder(p + [0, 0, hgt - 0.2], p + arm + [0, 0, hgt], 0.05, 6, MAT["pole"], (0.48, 0.5, 0.53)))
        out.append(box((0.6, 0.3, 0.15), p + arm * 1.15 + [0, 0, hgt - 0.05], MAT["pole"], (0.3, 0.3, 0.32), yaw=yaw))
        u += rng.uniform(25.0, 35.0)
    # traffic signs
    u = u0 + rng.uniform(0, 30)
    while u < u1:
        p, yaw = _place(path, u, sign * (sd.walk_in + 0.3), z)
        hgt = rng.uniform(2.2, 2.8)
        out.append(cylinder(p, p + [0, 0, hgt], 0.04, 6, MAT["pole"], (0.6, 0.6, 0.62)))
        plate = (0.05, rng.uniform(0.5, 0.8), rng.uniform(0.5, 0.8))
        out.append(
            box(plate, p + [0, 0, hgt + plate[2] / 2], MAT["sign"], (0.8, 0.1, 0.1), variant=rng.random(), yaw=yaw)
        )
        u += rng.uniform(30.0, 70.0)
    # fences at the back of the sidewalk
    if sd.setback > 0.8 and rng.random() < 0.5:
        d_f = sign * (sd.walk_in + sd.walk + 0.3)
        u = u0
        while u < u1:
            p, yaw = _place(path, u + 1.0, d_f, z)
            out.append(box((2.0, 0.05, 0.9), p + [0, 0, 0.6], MAT["fence"], style["fence"], yaw=yaw))
            out.append(box((0.08, 0.08, 1.2), p + [0, 0, 0.6], MAT["fence"], style["fence"], yaw=yaw))
            u += 2.0
    return out
