"""Annotated object instances of a scene and their motion.

Every instance moves along a line parallel to the road's reference line at a constant rate of
the path parameter (vehicles in their lane, pedestrians along the sidewalk, cyclists in the bike
lane); parked and standing ones have rate 0; vehicles that follow the ego in its lane keep a
constant gap to it. Instances in one lane or sidewalk slot share their speed, so they never
overlap. Speeds are urban: cars 4-11 m/s, cyclists 3-6 m/s, pedestrians 0.9-1.6 m/s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xmodal.data.synth.driving import objects as obj
from xmodal.data.synth.driving.layout import Lane, Layout
from xmodal.data.synth.driving.trajectory import EgoMotion

VEHICLE_MIX = {"car": 0.68, "truck": 0.1, "bus": 0.08, "motorcycle": 0.08, "semi": 0.06}
PARKED_MIX = {"car": 0.78, "truck": 0.07, "trailer": 0.05, "motorcycle": 0.07, "bicycle": 0.03}


@dataclass
class Instance:
    template: obj.Template
    u0: float  # path parameter at the scene's t0 (or the gap to the ego when follow_ego)
    rate: float  # du/dt (m/s along the reference line); 0 = static
    d: float  # lateral offset of the box centre
    z: float  # height of the box centre
    yaw_offset: float = 0.0  # relative to the path tangent (pi = against the driving direction)
    follow_ego: bool = False
    kind: str = "drive"  # lane kind or "sidewalk" / "zone"
    gait: float = 0.0  # gait phase offset (pedestrians)

    @property
    def category(self) -> str:
        return self.template.category


@dataclass
class Poses:
    """Poses of all instances at one time (global frame)."""

    xy: np.ndarray  # [N, 2]
    z: np.ndarray  # [N]
    yaw: np.ndarray  # [N]
    speed: np.ndarray  # [N] m/s
    velocity: np.ndarray  # [N, 2] m/s


class Traffic:
    """All instances of a scene, with vectorized poses."""

    def __init__(self, instances: list[Instance], ego: EgoMotion):
        self.instances = instances
        self.ego = ego
        self.u0 = np.array([i.u0 for i in instances], dtype=np.float64)
        self.rate = np.array([i.rate for i in instances], dtype=np.float64)
        self.d = np.array([i.d for i in instances], dtype=np.float64)
        self.z = np.array([i.z for i in instances], dtype=np.float64)
        self.yaw_offset = np.array([i.yaw_offset for i in instances], dtype=np.float64)
        self.follow = np.array([i.follow_ego for i in instances], dtype=bool)

    def __len__(self) -> int:
        return len(self.instances)

    def poses(self, t_us: int) -> Poses:
        ego, path = self.ego, self.ego.path
        tau = float(ego.tau(t_us))
        ego_rate = ego.v0 + ego.dv * np.sin(ego.omega * tau + ego.phi)
        u = np.where(self.follow, float(ego.u(t_us)) + self.u0, self.u0 + self.rate * tau)
        rate = np.where(self.follow, ego_rate, self.rate)
        yaw_path = path.yaw(u)
        # speed on the parallel curve at offset d: |dc/du| (1 - kappa d) ~ |dc/du| for gentle curves
        speed_vec = rate * path.speed_factor(u)
        vel = np.stack([np.cos(yaw_path), np.sin(yaw_path)], -1) * speed_vec[:, None]
        return Poses(path.point(u, self.d), self.z, yaw_path + self.yaw_offset, np.abs(speed_vec), vel)


def _pick(rng, mix: dict[str, float]) -> str:
    keys = list(mix)
    p = np.array([mix[k] for k in keys])
    return keys[rng.choice(len(keys), p=p / p.sum())]


def _vehicle(rng, kind: str) -> list[obj.Template]:
    """Templates of one vehicle ('semi' = tractor + trailer, front first)."""
    if kind == "car":
        return [obj.car(rng)]
    if kind == "truck":
        return [obj.truck(rng)]
    if kind == "bus":
        return [obj.bus(rng)]
    if kind == "motorcycle":
        return [obj.motorcycle(rng, rider=True)]
    if kind == "bicycle":
        return [obj.bicycle(rng, rider=True)]
    if kind == "construction":
        return [obj.construction(rng)]
    if kind == "semi":
        return [obj.truck(rng, tractor=True), obj.trailer(rng)]
    raise ValueError(kind)


def _fill_lane(
    rng,
    lane: Lane,
    span: tuple[float, float],
    start: float,
    rate: float,
    required: list[str],
    mix: dict[str, float],
    gap: tuple[float, float],
    kind: str,
    skip=None,
) -> list[Instance]:
    """Place vehicles along ``lane`` from ``start`` forward to span[1], then backward to span[0]."""
    out = []
    yaw_off = 0.0 if lane.direction > 0 else np.pi
    for direction in (1, -1):
        u = start if direction > 0 else start - rng.uniform(*gap)
        while span[0] < u < span[1]:
            name = required.pop(0) if (required and direction > 0) else _pick(rng, mix)
            if kind == "parking" and name in ("motorcycle", "bicycle"):
                temps = [obj.motorcycle(rng, rider=False) if name == "motorcycle" else obj.bicycle(rng, rider=False)]
            elif kind == "parking" and name == "trailer":
                temps = [obj.trailer(rng, length=rng.uniform(6.0, 8.0))]
            else:
                temps = _vehicle(rng, name)
            length = sum(t.size[1] for t in temps) - 1.2 * (len(temps) - 1)
            lo = u if direction > 0 else u - length  # the group occupies [lo, lo + length]
            if skip is not None and skip[0] - 3.0 < lo + length and lo < skip[1] + 3.0:
                u = skip[1] + 3.0 if direction > 0 else skip[0] - 3.0
                continue
            sgn = lane.direction
            pos = lo + length if sgn > 0 else lo  # front of the group in its direction of travel
            for t in temps:
                centre = pos - sgn * t.size[1] / 2
                d = lane.d + rng.normal(0, 0.08) * (kind != "parking")
                out.append(Instance(t, centre, rate, d, t.size[2] / 2, yaw_off + rng.normal(0, 0.02), kind=kind))
                pos = centre - sgn * (t.size[1] / 2 - 1.2)
            u += direction * (length + rng.uniform(*gap))
    return out


def populate(
    rng: np.random.Generator, layout: Layout, ego: EgoMotion, t_end_us: int
) -> tuple[list[Instance], list[str]]:
    """Instances of one scene; the first vehicles near the ego's start cover every object class."""
    u_lo, u_hi = layout.u_range
    T = float(ego.tau(t_end_us))
    ue0 = float(ego.u(ego.t0_us))
    feats = []
    out: list[Instance] = []
    required = ["bus", "semi", "truck", "motorcycle"]
    rng.shuffle(required)
    parking = [ln for ln in layout.lanes if ln.kind == "parking"]
    zone_lane = parking[rng.integers(len(parking))]
    zone = (ue0 + rng.uniform(8.0, 30.0), 0.0)
    zone = (zone[0], zone[0] + rng.uniform(22.0, 32.0))
    for lane in layout.lanes:
        if lane.kind == "ego":
            if rng.random() < 0.6:
                t = _vehicle(rng, _pick(rng, {"car": 0.7, "truck": 0.15, "bus": 0.15}))[0]
                out.append(
                    Instance(t, rng.uniform(12.0, 22.0) + t.size[1] / 2, 0.0, 0.0, t.size[2] / 2, follow_ego=True)
                )
            if rng.random() < 0.5:
                t = obj.car(rng)
                out.append(
                    Instance(t, -rng.uniform(8.0, 14.0) - t.size[1] / 2, 0.0, 0.0, t.size[2] / 2, follow_ego=True)
                )
        elif lane.kind == "drive":
            stopped = rng.random() < 0.15
            v = 0.0 if stopped else rng.uniform(4.0, 11.0) * lane.direction
            span = (u_lo - max(0.0, v * T) - 20, u_hi + max(0.0, -v * T) + 20)
            gap = (1.5, 4.0) if stopped else (8.0, 35.0)
            start = ue0 + rng.uniform(-10.0, 20.0)
            out += _fill_lane(rng, lane, span, start, v, required, VEHICLE_MIX, gap, "drive")
            feats += ["stopped traffic"] if stopped else []
        elif lane.kind == "parking":
            skip = (zone[0], zone[1] + 30.0) if lane is zone_lane else None  # + room for leftovers
            out += _fill_lane(
                rng, lane, (u_lo, u_hi), u_lo + rng.uniform(0, 5), 0.0, [], PARKED_MIX, (0.8, 8.0), "parking", skip=skip
            )
        elif lane.kind == "bike":
            v = rng.uniform(3.0, 6.0) * lane.direction
            span = (u_lo - max(0.0, v * T) - 20, u_hi + max(0.0, -v * T) + 20)
            out += _fill_lane(
                rng, lane, span, ue0 + rng.uniform(-5, 25), v, [], {"bicycle": 1.0}, (12.0, 45.0), "drive"
            )
    # required classes the lanes did not take are parked behind the construction zone
    out += _construction_zone(rng, layout, zone_lane, zone, extra=required)
    feats.append("construction zone")
    for sign in (-1, 1):
        out += _sidewalk(rng, layout, sign, ue0, T)
    return out, feats


def _construction_zone(rng, layout: Layout, lane: Lane, zone: tuple[float, float], extra: list[str]) -> list[Instance]:
    u0, u1 = zone
    inner = lane.d - np.sign(lane.d) * lane.width / 2  # lane edge toward traffic
    toward_curb = np.sign(lane.d)
    out = []
    # taper + line of cones on the lane edge
    u = u0
    while u < u1:
        frac = np.clip((u - u0) / 6.0, 0.0, 1.0)
        # taper from the curb to just beyond the lane line (the machines fill the closed lane)
        d = (1 - frac) * (lane.d + toward_curb * lane.width * 0.4) + frac * (inner - toward_curb * 0.25)
        t = obj.cone(rng)
        out.append(Instance(t, u, 0.0, d, t.size[2] / 2, rng.uniform(0, 2 * np.pi), kind="zone"))
        u += rng.uniform(2.0, 3.5)
    # barriers in a row along the lane centre
    u = u0 + 6.5
    n_bar = rng.integers(3, 6)
    yaw = rng.choice([0.0, np.pi])
    for _ in range(n_bar):
        t = obj.barrier(rng)
        out.append(Instance(t, u + t.size[1] / 2, 0.0, lane.d + toward_curb * 0.2, t.size[2] / 2, yaw, kind="zone"))
        u += t.size[1] + rng.uniform(0.05, 0.4)
    # machine(s), then workers
    u += 1.0
    t = obj.construction(rng)
    d = lane.d + toward_curb * 0.15
    out.append(Instance(t, u + t.size[1] / 2, 0.0, d, t.size[2] / 2, rng.choice([0.0, np.pi]), kind="zone"))
    u += t.size[1] + 0.8
    for name in extra:  # classes that did not fit in the lanes: parked in the zone
        for t in _vehicle(rng, name):
            if u + t.size[1] > u1 + 25:
                break
            out.append(Instance(t, u + t.size[1] / 2, 0.0, d, t.size[2] / 2, 0.0, kind="zone"))
            u += t.size[1] + 1.0
    for _ in range(rng.integers(1, 4)):
        t = obj.pedestrian(rng, "worker")
        uu = rng.uniform(u0 + 5.0, u0 + 6.3) if rng.random() < 0.5 else rng.uniform(u + 0.3, u + 2.0)
        out.append(
            Instance(t, uu, 0.0, lane.d + rng.uniform(-0.6, 0.6), t.size[2] / 2, rng.uniform(0, 2 * np.pi), kind="zone")
        )
        u = max(u, uu) + 0.8
    return out


def _sidewalk(rng, layout: Layout, sign: int, ue0: float, T: float) -> list[Instance]:
    sd = layout.side(sign)
    u_lo, u_hi = layout.u_range
    z = sd.curb_h
    back = sd.walk_in + sd.walk
    out = []
    slots = np.arange(sd.walk_in + 1.0, back - 1.0 + 1e-6, 0.65)
    for k, d in enumerate(slots):
        standing = rng.random() < 0.25
        v = 0.0 if standing else rng.uniform(0.9, 1.6) * rng.choice([-1, 1])
        span = (u_lo - abs(v) * T - 10, u_hi + abs(v) * T + 10)
        u = span[0] + rng.uniform(0, 10)
        # denser near the ego start so small worlds see people
        while u < span[1]:
            kind = "child" if rng.random() < 0.12 else "adult"
            t = obj.pedestrian(rng, kind)
            yaw = (0.0 if v >= 0 else np.pi) if not standing else rng.uniform(0, 2 * np.pi)
            out.append(
                Instance(
                    t,
                    u,
                    v,
                    sign * d + rng.normal(0, 0.05),
                    z + t.size[2] / 2,
                    yaw,
                    kind="sidewalk",
                    gait=rng.uniform(0, 2 * np.pi),
                )
            )
            u += rng.uniform(5.0, 16.0) if abs(u - ue0) < 60 else rng.uniform(10.0, 35.0)
    # parked bicycles, bins along the back of the sidewalk
    u = u_lo + rng.uniform(0, 10)
    while u < u_hi:
        if rng.random() < 0.4:
            for _ in range(rng.integers(1, 4)):
                t = obj.bicycle(rng, rider=False)
                out.append(
                    Instance(
                        t,
                        u,
                        0.0,
                        sign * (back - 0.4),
                        z + t.size[2] / 2,
                        rng.choice([0, np.pi]) + rng.normal(0, 0.1),
                        kind="sidewalk",
                    )
                )
                u += 0.8
        else:
            t = obj.trash_bin(rng)
            out.append(
                Instance(t, u, 0.0, sign * (back - 0.45), z + t.size[2] / 2, rng.normal(0, 0.2), kind="sidewalk")
            )
        u += rng.uniform(6.0, 25.0)
    return out


def attribute_name(inst: Instance, speed: float) -> str | None:
    """nuScenes attribute of an instance at a given speed (m/s)."""
    cat = inst.category
    if cat in ("vehicle.bicycle", "vehicle.motorcycle"):
        return "cycle.with_rider" if inst.template.rider else "cycle.without_rider"
    if cat.startswith("vehicle."):
        if speed > 0.3:
            return "vehicle.moving"
        return "vehicle.parked" if inst.kind in ("parking", "zone") else "vehicle.stopped"
    if cat.startswith("human.pedestrian"):
        return "pedestrian.moving" if speed > 0.3 else "pedestrian.standing"
    return None
