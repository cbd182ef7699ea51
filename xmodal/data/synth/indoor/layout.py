"""Room layouts: walls, floor, ceiling, fixtures and furniture placed without collisions.

Room frame: x in [0, W], y in [0, D], z up from the floor at 0, metres. Walls are numbered
0: y = 0, 1: x = W, 2: y = D, 3: x = 0; each has a start corner, a unit tangent and an inward
normal, and wall-standing objects are placed with their local x along the tangent and their
local y along the normal. Two room types alternate so that any two consecutive scenes hold all
20 ScanNet benchmark classes, and each scene alone holds 14 or 15 of them:

- ``living``: bed, sofa, table + chairs, desk + chair, cabinet, bookshelf, other furniture;
- ``kitchen_bath``: counter + sink + wall cabinet, refrigerator, bathtub + shower curtain,
  toilet, table + chairs;

and both get a door, windows with curtains, pictures, and some clutter (boxes, lamps) whose
classes are not among the 20. The middle of the room is kept free of anything taller than
1.1 m so the camera can move there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from xmodal.data.synth.indoor import fixtures as X
from xmodal.data.synth.indoor import furniture as FU
from xmodal.data.synth.indoor import materials as M
from xmodal.data.synth.indoor.objects import CEILING, FLOOR, WALL, Obj, part
from xmodal.data.synth.indoor.shapes import grid

ROOM_TYPES = ("living", "kitchen_bath")
SCENE_TYPE_NAMES = {"living": "Living room / Lounge", "kitchen_bath": "Apartment"}


@dataclass
class Placed:
    obj: Obj
    T: np.ndarray  # [4, 4] room <- object


@dataclass
class Room:
    """A furnished room (room frame, metres)."""

    kind: str
    size: tuple[float, float, float]  # (W, D, H)
    placed: list[Placed] = field(default_factory=list)
    lights: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # [L, 3] positions

    def walls(self):
        W, D, _ = self.size
        return [
            (np.array([0.0, 0.0]), np.array([1.0, 0.0]), np.array([0.0, 1.0]), W),
            (np.array([W, 0.0]), np.array([0.0, 1.0]), np.array([-1.0, 0.0]), D),
            (np.array([W, D]), np.array([-1.0, 0.0]), np.array([0.0, -1.0]), W),
            (np.array([0.0, D]), np.array([0.0, -1.0]), np.array([1.0, 0.0]), D),
        ]


class _Planner:
    """Collision bookkeeping: floor rectangles (room-frame AABBs) and wall spans."""

    def __init__(self, room: Room, rng: np.random.Generator, edge: float) -> None:
        self.room, self.rng, self.e = room, rng, edge
        self.floor: list[tuple[float, float, float, float]] = []
        self.spans: list[tuple[int, float, float, float, float]] = []
        W, D, _ = room.size
        self.free_mid = (1.25, 1.25, W - 1.25, D - 1.25)  # camera zone, nothing tall inside

    def wall_T(self, wall: int, s: float, gap: float = 0.0) -> np.ndarray:
        start, t, n, _ = self.room.walls()[wall]
        T = np.eye(4)
        T[:2, 0], T[:2, 1] = t, n
        T[:2, 3] = start + t * s + n * gap
        return T

    @staticmethod
    def footprint(obj: Obj, T: np.ndarray, margin: float = 0.0):
        w, d, _ = obj.size
        c = np.array([[-w / 2, 0, 0, 1], [w / 2, 0, 0, 1], [-w / 2, d, 0, 1], [w / 2, d, 0, 1]]) @ T.T
        return (c[:, 0].min() - margin, c[:, 1].min() - margin, c[:, 0].max() + margin, c[:, 1].max() + margin)

    @staticmethod
    def _overlap(a, b) -> bool:
        return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]

    def _tall_in_mid(self, obj: Obj, T: np.ndarray) -> bool:
        """Does any part of ``obj`` above 1.1 m stand in the camera zone?"""
        x0, y0, x1, y1 = self.free_mid
        for p in obj.parts:
            v = p.mesh.vertices[p.mesh.vertices[:, 2] > 1.1]
            if len(v):
                v = v @ T[:3, :3].T + T[:3, 3]
                if np.any((v[:, 0] > x0) & (v[:, 0] < x1) & (v[:, 1] > y0) & (v[:, 1] < y1)):
                    return True
        return False

    def fits(self, rect, span=None, on_floor=True, obj: Obj | None = None, T: np.ndarray | None = None) -> bool:
        W, D, _ = self.room.size
        tol = 0.06  # footprints carry a margin and may poke through the wall by it
        if rect[0] < -tol or rect[1] < -tol or rect[2] > W + tol or rect[3] > D + tol:
            return False
        if on_floor and any(self._overlap(rect, r) for r in self.floor):
            return False
        if obj is not None and self._tall_in_mid(obj, T):
            return False
        if span is not None:
            for w, s0, s1, z0, z1 in self.spans:
                if w == span[0] and s0 < span[2] and span[1] < s1 and z0 < span[4] and span[3] < z1:
                    return False
        return True

    def snapshot(self) -> tuple[int, int, int]:
        return len(self.floor), len(self.spans), len(self.room.placed)

    def restore(self, snap: tuple[int, int, int]) -> None:
        del self.floor[snap[0]:], self.spans[snap[1]:], self.room.placed[snap[2]:]

    def add(self, obj: Obj, T: np.ndarray, rect=None, span=None) -> Placed:
        if rect is not None:
            self.floor.append(rect)
        if span is not None:
            self.spans.append(span)
        p = Placed(obj, T)
        self.room.placed.append(p)
        return p

    def on_wall(self, build: Callable[[], Obj], walls=(0, 1, 2, 3), tries: int = 60, on_floor=True,
                gap: float = 0.0, margin: float = 0.05, span_pad: float = 0.0) -> Placed | None:
        """Place an object against a wall at a random free spot (rebuilt every 20 tries)."""
        obj = build()
        for k in range(tries):
            if k and k % 20 == 0:
                obj = build()
            wall = int(self.rng.choice(walls))
            L = self.room.walls()[wall][3]
            w = obj.size[0]
            if L < w + 2 * margin:
                continue
            s = self.rng.uniform(w / 2 + margin, L - w / 2 - margin)
            T = self.wall_T(wall, s, gap)
            rect = self.footprint(obj, T, 0.03) if on_floor else None
            span = (wall, s - w / 2 - span_pad, s + w / 2 + span_pad, obj.zmin, obj.size[2])
            if self.fits(rect if rect is not None else self.footprint(obj, T), span, on_floor, obj, T):
                return self.add(obj, T, rect, span)
        return None

    def free(self, obj: Obj, x: float, y: float, yaw: float) -> Placed | None:
        """Place an object centred at ``(x, y)`` facing ``yaw`` (its local +y turned by yaw)."""
        c, s = math.cos(yaw), math.sin(yaw)
        T = np.eye(4)
        T[:2, :2] = [[c, -s], [s, c]]
        T[:3, 3] = (x, y, 0.0)
        T = T @ np.array([[1, 0, 0, 0], [0, 1, 0, -obj.size[1] / 2], [0, 0, 1, 0], [0, 0, 0, 1.0]])
        rect = self.footprint(obj, T, 0.02)
        if self.fits(rect, None, True, obj, T):
            return self.add(obj, T, rect)
        return None


def _structure(room: Room, rng: np.random.Generator, e: float) -> None:
    W, D, H = room.size
    wall_mat = M.paint(rng)
    floor_mat = (M.planks(rng) if room.kind == "living" and rng.random() < 0.7
                 else M.tiles(rng) if room.kind != "living" else M.fabric(rng, rgb=(0.55, 0.5, 0.45), pattern="solid"))
    ceil_mat = M.solid((0.97, 0.97, 0.96), 0.01)
    for start, t, n, L in room.walls():
        p0 = np.array([start[0], start[1], 0.0])
        du = np.array([t[0] * L, t[1] * L, 0.0])
        # grid normal = du x dv must point into the room (n): with dv = +z, du x z = (t_y, -t_x, 0);
        # for a counter-clockwise wall loop that is the outward normal, so swap du and dv.
        plane = (p0, np.array([0.0, 0.0, H]), du)
        m = grid(*plane, e)
        room.placed.append(Placed(Obj("wall", WALL, [part(m, WALL, wall_mat)], (L, 0.0, H), plane=plane), np.eye(4)))
    plane = (np.zeros(3), np.array([W, 0.0, 0.0]), np.array([0.0, D, 0.0]))
    floor = grid(*plane, e)
    ceiling = grid((0, 0, H), (0, D, 0), (W, 0, 0), e)
    room.placed.append(Placed(Obj("floor", FLOOR, [part(floor, FLOOR, floor_mat)], (W, D, 0.0), plane=plane),
                              np.eye(4)))
    room.placed.append(Placed(Obj("ceiling", CEILING, [part(ceiling, CEILING, ceil_mat)], (W, D, H)), np.eye(4)))


def _door_and_windows(pl: _Planner, n_windows: int) -> None:
    rng, e = pl.rng, pl.e
    H = pl.room.size[2]
    d = pl.on_wall(lambda: X.door(rng, e), margin=0.25)
    if d is not None:  # keep the door swing clear
        r = pl.footprint(d.obj, d.T)
        c = (d.T[:2, 1] * 0.9)
        pl.floor.append((min(r[0], r[0] + c[0]), min(r[1], r[1] + c[1]),
                         max(r[2], r[2] + c[0]), max(r[3], r[3] + c[1])))
    for _ in range(n_windows):
        w, h = rng.uniform(0.9, 1.5), rng.uniform(1.1, 1.35)
        sill = rng.uniform(0.8, 0.95)
        top = min(sill + h + rng.uniform(0.1, 0.2), H - 0.08)
        holder = {}

        def build(w=w, h=h, sill=sill, top=top):
            holder["win"] = X.window(rng, e, w, h, sill)
            holder["cur"] = X.curtains(rng, e, w, top)
            return holder["cur"]  # the wider of the two decides the wall span

        p = pl.on_wall(build, margin=0.1)
        if p is not None:
            pl.add(holder["win"], p.T)


def _living(pl: _Planner) -> None:
    rng, e = pl.rng, pl.e
    pl.on_wall(lambda: FU.bed(rng, e))
    pl.on_wall(lambda: FU.sofa(rng, e))
    pl.on_wall(lambda: FU.bookshelf(rng, e))
    pl.on_wall(lambda: FU.cabinet(rng, e))
    desk = pl.on_wall(lambda: FU.desk(rng, e))
    if desk is not None:  # a chair pulled up to the desk
        ch = FU.chair(rng, e)
        front = desk.T @ np.array([-0.15 * desk.obj.size[0], desk.obj.size[1] + 0.3, 0, 1])
        n = desk.T[:2, 1]  # the wall's inward normal: the chair faces back along it
        pl.free(ch, front[0], front[1], math.atan2(n[0], -n[1]) + rng.normal(0, 0.15))
    _dining(pl, n_chairs=int(rng.integers(2, 5)))
    other = FU.otherfurniture(rng, e)
    if other.name == "ottoman":
        if not any(pl.free(other, *_rand_mid(pl), rng.uniform(0, 2 * np.pi)) for _ in range(40)):
            pl.on_wall(lambda: FU.bench(rng, e))
    elif pl.on_wall(lambda: other) is None:
        for _ in range(40):
            if pl.free(FU.ottoman(rng, e), *_rand_mid(pl), rng.uniform(0, 2 * np.pi)):
                break


def _kitchen_bath(pl: _Planner) -> None:
    rng, e = pl.rng, pl.e
    c = pl.on_wall(lambda: FU.counter(rng, e))
    if c is not None:  # sink on it and a wall cabinet above it
        sx = rng.uniform(-0.25, 0.25) * c.obj.size[0]
        T = c.T @ np.array([[1, 0, 0, sx], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
        pl.add(FU.sink(rng, e, z0=c.obj.size[2]), T)
        up = FU.cabinet(rng, e, h=0.7, z0=c.obj.size[2] + 0.55, d=0.35)
        pl.add(up, c.T)
    pl.on_wall(lambda: FU.refrigerator(rng, e))
    holder = {}

    def tub():
        holder["tub"] = FU.bathtub(rng, e)
        return holder["tub"]

    t = pl.on_wall(tub)
    if t is not None:
        w, d, h = t.obj.size
        pl.add(X.shower_curtain(rng, e, w, d - 0.15, h + 0.03, pl.room.size[2]), t.T)
    pl.on_wall(lambda: FU.toilet(rng, e), margin=0.2)
    if rng.random() < 0.5:
        pl.on_wall(lambda: FU.sink(rng, e), margin=0.1)
    _dining(pl, n_chairs=int(rng.integers(2, 4)))
    if rng.random() < 0.5:
        pl.on_wall(lambda: FU.cabinet(rng, e))


def _rand_mid(pl: _Planner) -> tuple[float, float]:
    W, D, _ = pl.room.size
    return pl.rng.uniform(1.0, W - 1.0), pl.rng.uniform(1.0, D - 1.0)


def _dining(pl: _Planner, n_chairs: int) -> None:
    """A table near the middle with chairs around it facing it (retried until 2 chairs fit)."""
    rng, e = pl.rng, pl.e
    W, D, _ = pl.room.size
    for attempt in range(40):
        snap = pl.snapshot()
        tab = FU.table(rng, e)
        x, y = rng.uniform(1.5, W - 1.5), rng.uniform(1.4, D - 1.4)
        yaw = rng.choice([0.0, np.pi / 2]) + rng.normal(0, 0.05)
        p = pl.free(tab, x, y, yaw)
        if p is None:
            continue
        w, d, _ = tab.size
        spots = [(0, -d / 2 - 0.36, 0.0), (0, d / 2 + 0.36, np.pi), (-w / 2 - 0.36, 0, -np.pi / 2),
                 (w / 2 + 0.36, 0, np.pi / 2)]
        rng.shuffle(spots)
        placed = 0
        for lx, ly, lyaw in spots:
            if placed == n_chairs:
                break
            c = p.T @ np.array([lx, ly + d / 2, 0, 1])
            placed += pl.free(FU.chair(rng, e), c[0], c[1], yaw + lyaw + rng.normal(0, 0.12)) is not None
        if placed >= min(2, n_chairs) or attempt == 39:
            return
        pl.restore(snap)


def _clutter(pl: _Planner) -> None:
    rng, e = pl.rng, pl.e
    for _ in range(int(rng.integers(1, 4))):
        # Against the wall or clearly off it: a carve box reaches 3 cm behind an object.
        pl.on_wall(lambda: FU.cardboard_box(rng, e), gap=0.0 if rng.random() < 0.5 else rng.uniform(0.06, 0.2))
    if rng.random() < 0.6:
        pl.on_wall(lambda: FU.floor_lamp(rng, e), gap=0.05)
    for _ in range(int(rng.integers(2, 4))):
        z0 = rng.uniform(1.2, 1.5)
        pl.on_wall(lambda z0=z0: X.picture(rng, e, z0=z0), on_floor=False, margin=0.15, span_pad=0.1)


def build_room(rng: np.random.Generator, kind: str, edge: float) -> Room:
    """A furnished room of ``kind`` (see :data:`ROOM_TYPES`), deterministic for ``rng``."""
    if kind not in ROOM_TYPES:
        raise ValueError(f"room kind must be one of {ROOM_TYPES}, got {kind!r}")
    W, D = rng.uniform(5.2, 6.6), rng.uniform(4.4, 5.6)
    H = rng.uniform(2.5, 2.8)
    room = Room(kind, (W, D, H))
    _structure(room, rng, edge)
    pl = _Planner(room, rng, edge)
    _door_and_windows(pl, n_windows=int(rng.integers(1, 3)))
    (_living if kind == "living" else _kitchen_bath)(pl)
    _clutter(pl)
    lights = [(W * f, D * rng.uniform(0.4, 0.6), H - 0.05) for f in ((0.33, 0.67) if W > 5.5 else (0.5,))]
    room.lights = np.array(lights) + np.r_[rng.normal(0, 0.2, 2), 0.0]
    return room
