"""Meshes of the annotated object classes, in the object's local frame.

Local frame = nuScenes box frame: x forward (length), y left (width), z up, origin at the
centre of the tight axis-aligned box around the mesh at rest. Riders of bicycles and motorcycles
belong to their vehicle (one box, attribute ``cycle.with_rider``, labelled as the vehicle).
Pedestrian legs and arms are articulated parts that swing while walking.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xmodal.data.synth.driving.materials import MAT
from xmodal.data.synth.driving.meshes import Mesh, blob, box, concat, cylinder, prism, surface_samples, torus

CAR_COLORS = np.array([
    [0.92, 0.92, 0.92], [0.05, 0.05, 0.06], [0.62, 0.64, 0.66], [0.35, 0.36, 0.38], [0.10, 0.20, 0.55],
    [0.62, 0.06, 0.06], [0.15, 0.30, 0.18], [0.45, 0.32, 0.20], [0.90, 0.75, 0.10], [0.70, 0.72, 0.75],
])  # fmt: skip
CAR_COLOR_P = np.array([0.22, 0.18, 0.14, 0.14, 0.08, 0.08, 0.04, 0.04, 0.03, 0.05])
BRIGHT = np.array([
    [0.85, 0.12, 0.10], [0.10, 0.35, 0.75], [0.95, 0.95, 0.95], [0.10, 0.55, 0.25], [0.95, 0.60, 0.05],
    [0.55, 0.15, 0.55], [0.15, 0.65, 0.75], [0.95, 0.85, 0.15],
])  # fmt: skip
CLOTH = np.array([
    [0.08, 0.08, 0.10], [0.15, 0.18, 0.35], [0.55, 0.10, 0.10], [0.85, 0.85, 0.82], [0.30, 0.30, 0.32],
    [0.45, 0.35, 0.22], [0.10, 0.35, 0.20], [0.75, 0.55, 0.15], [0.25, 0.45, 0.70], [0.60, 0.25, 0.45],
])  # fmt: skip
SKIN = np.array([[0.90, 0.72, 0.60], [0.78, 0.58, 0.45], [0.58, 0.40, 0.28], [0.36, 0.24, 0.16]])


@dataclass
class Part:
    """An articulated part: vertices with ``mesh.part == pid`` swing about local y at ``pivot``."""

    pid: int
    pivot: np.ndarray  # [3] local
    amplitude: float  # radians
    phase: float  # radians offset within the gait cycle


@dataclass
class Template:
    category: str  # nuScenes general class
    mesh: Mesh  # local box frame
    size: tuple[float, float, float]  # (width, length, height) metres, nuScenes order
    samples: np.ndarray  # [K, 3] local surface points (visibility tests)
    parts: list[Part] = field(default_factory=list)
    rider: bool = False


def _jitter(rng, rgb, s=0.04):
    return np.clip(np.asarray(rgb) + rng.normal(0, s, 3), 0.0, 1.0)


def finalize(category: str, mesh: Mesh, rng: np.random.Generator, parts=(), rider=False, pad_l=0.0) -> Template:
    lo, hi = mesh.vertices.min(0), mesh.vertices.max(0)
    c = (lo + hi) / 2
    mesh.vertices = mesh.vertices - c
    parts = [Part(p.pid, p.pivot - c, p.amplitude, p.phase) for p in parts]
    size = (float(hi[1] - lo[1]), float(hi[0] - lo[0] + pad_l), float(hi[2] - lo[2]))
    return Template(category, mesh, size, surface_samples(mesh, 48, rng), list(parts), rider)


def _wheel(x, y, r, width, tire_color=(0.05, 0.05, 0.05)):
    return cylinder((x, y - width / 2, r), (x, y + width / 2, r), r, 8, MAT["tire"], tire_color)


def _cabin(x_rb, x_fb, x_rt, x_ft, z0, z1, w_base, w_top, color, variant=0.0) -> Mesh:
    m = prism(
        [(x_rb, z0), (x_fb, z0), (x_ft, z1), (x_rt, z1)],
        -w_base / 2,
        w_base / 2,
        MAT["cabin"],
        color,
        variant,
        y_top=(-w_top / 2, w_top / 2),
    )
    v = m.vertices
    m.tex = np.stack([(v[:, 0] - x_rb) / (x_fb - x_rb), v[:, 1], (v[:, 2] - z0) / (z1 - z0)], -1).astype(np.float32)
    return m


def _lights(l, w, z, front=True, back=True):
    out = []
    for sy in (-1, 1):
        if front:
            out.append(box((0.06, 0.32, 0.12), (l / 2, sy * (w / 2 - 0.25), z), MAT["headlight"], (0.95, 0.95, 0.88)))
        if back:
            out.append(box((0.06, 0.28, 0.14), (-l / 2, sy * (w / 2 - 0.22), z), MAT["taillight"], (0.75, 0.05, 0.04)))
    if front:
        out.append(box((0.03, 0.52, 0.12), (l / 2, 0, z - 0.22), MAT["plate"], (0.95, 0.95, 0.9)))
    if back:
        out.append(box((0.03, 0.52, 0.12), (-l / 2, 0, z - 0.12), MAT["plate"], (0.95, 0.95, 0.9)))
    return out


def car(rng: np.random.Generator) -> Template:
    kind = rng.choice(3, p=[0.5, 0.25, 0.25])  # sedan, hatchback, SUV
    l = rng.uniform(4.3, 4.9) if kind == 0 else rng.uniform(3.8, 4.3) if kind == 1 else rng.uniform(4.4, 4.9)
    w = rng.uniform(1.72, 1.86) if kind < 2 else rng.uniform(1.85, 1.98)
    h = rng.uniform(1.40, 1.50) if kind < 2 else rng.uniform(1.65, 1.80)
    color = _jitter(rng, CAR_COLORS[rng.choice(len(CAR_COLORS), p=CAR_COLOR_P)], 0.03)
    r, z0 = (0.32, 0.22) if kind < 2 else (0.37, 0.3)
    belt = z0 + 0.5 * (h - z0) + (0.08 if kind == 2 else 0.0)
    lower = prism([(-l / 2, z0 + 0.12), (-l / 2 + 0.08, belt), (l / 2 - 0.25, belt - 0.04), (l / 2, belt - 0.25),
                   (l / 2 - 0.05, z0), (-l / 2 + 0.05, z0)], -w / 2, w / 2, MAT["paint"], color)  # fmt: skip
    trunk = (0.75, 0.15, 0.2)[kind]
    hood = rng.uniform(1.0, 1.3) if kind != 1 else rng.uniform(0.8, 1.0)
    x_rb, x_fb = -l / 2 + trunk + 0.05, l / 2 - hood
    x_rt = x_rb + (0.55 if kind == 0 else 0.12)
    x_ft = x_fb - (0.85 if kind < 2 else 0.55)
    cab = _cabin(x_rb, x_fb, x_rt, x_ft, belt - 0.02, h, w - 0.1, w - 0.3, color)
    xa = l / 2 - 0.85
    wheels = [_wheel(x, s * (w / 2 - 0.14), r, 0.22) for x in (xa, -l / 2 + 0.85) for s in (-1, 1)]
    parts = [lower, cab, *wheels, *_lights(l, w, belt - 0.12)]
    return finalize("vehicle.car", concat(parts), rng)


def truck(rng: np.random.Generator, tractor: bool = False) -> Template:
    """Box truck, or (``tractor``) a semi-trailer tractor unit (no trailer)."""
    w, r = rng.uniform(2.3, 2.5), 0.5
    cab_color = _jitter(rng, BRIGHT[rng.integers(len(BRIGHT))] if rng.random() < 0.6 else CAR_COLORS[0])
    l = rng.uniform(5.8, 6.6) if tractor else rng.uniform(6.5, 9.0)
    cab_l, cab_h = 2.1, rng.uniform(2.9, 3.4)
    x_cab = l / 2 - cab_l
    parts = [
        box((cab_l, w, cab_h * 0.55), (l / 2 - cab_l / 2, 0, 0.5 + cab_h * 0.275 - 0.25), MAT["paint"], cab_color),
        _cabin(x_cab, l / 2, x_cab, l / 2 - 0.15, 0.25 + cab_h * 0.55, cab_h, w, w - 0.1, cab_color),
        box((l - 0.2, 0.9, 0.35), (0, 0, 0.75), MAT["chassis"], (0.12, 0.12, 0.13)),
    ]
    rear = [-l / 2 + 1.0, -l / 2 + 2.3]
    if tractor:
        parts.append(box((1.2, 1.6, 0.15), (-l / 2 + 1.6, 0, 1.1), MAT["chassis"], (0.2, 0.2, 0.2)))
        parts.append(box((1.0, 0.5, 0.5), (x_cab - 0.6, w / 2 - 0.3, 0.8), MAT["pole"], (0.7, 0.7, 0.72)))
    else:
        cargo_h = rng.uniform(3.2, 3.7)
        color = _jitter(rng, CAR_COLORS[0] if rng.random() < 0.6 else BRIGHT[rng.integers(len(BRIGHT))])
        cargo = box(
            (l - cab_l - 0.2, w + 0.05, cargo_h - 1.0),
            (-cab_l / 2 - 0.1, 0, 1.0 + (cargo_h - 1.0) / 2),
            MAT["container"],
            color,
            variant=rng.random(),
        )
        parts.append(cargo)
    parts += [_wheel(x, s * (w / 2 - 0.2), r, 0.35) for x in [l / 2 - 1.1] + rear for s in (-1, 1)]
    parts += _lights(l, w, 0.9, back=False)
    return finalize("vehicle.truck", concat(parts), rng)


def bus(rng: np.random.Generator) -> Template:
    l, w, h = rng.uniform(10.5, 12.5), 2.55, rng.uniform(3.05, 3.3)
    color = _jitter(rng, BRIGHT[rng.integers(len(BRIGHT))], 0.03)
    body = box((l, w, h - 0.3), (0, 0, 0.3 + (h - 0.3) / 2 - 0.12), MAT["bus_body"], color)
    v = body.vertices
    body.tex = np.stack([v[:, 0] + l / 2, np.full(len(v), l), v[:, 2]], -1).astype(np.float32)
    parts = [body, box((2.5, 1.6, 0.25), (-l / 4, 0, h - 0.12 + 0.12), MAT["paint"], (0.8, 0.8, 0.8))]
    parts += [_wheel(x, s * (w / 2 - 0.25), 0.5, 0.3) for x in (l / 2 - 2.6, -l / 2 + 3.0) for s in (-1, 1)]
    parts += _lights(l, w, 0.8)
    return finalize("vehicle.bus.rigid", concat(parts), rng)


def trailer(rng: np.random.Generator, length: float | None = None) -> Template:
    l = length or rng.uniform(7.0, 12.0)
    w, h = 2.5, rng.uniform(3.7, 4.0)
    color = _jitter(rng, BRIGHT[rng.integers(len(BRIGHT))] if rng.random() < 0.7 else CAR_COLORS[2])
    parts = [
        box((l, w, h - 1.15), (0, 0, 1.15 + (h - 1.15) / 2), MAT["container"], color, variant=rng.random()),
        box((l - 0.4, 1.0, 0.25), (0, 0, 1.0), MAT["chassis"], (0.12, 0.12, 0.13)),
    ]
    parts += [_wheel(x, s * (w / 2 - 0.25), 0.5, 0.35) for x in (-l / 2 + 1.2, -l / 2 + 2.5) for s in (-1, 1)]
    parts += [box((0.12, 0.12, 1.0), (l / 2 - 2.0, s * 0.8, 0.5), MAT["chassis"], (0.2, 0.2, 0.2)) for s in (-1, 1)]
    parts += _lights(l, w, 1.05, front=False)
    return finalize("vehicle.trailer", concat(parts), rng)


def construction(rng: np.random.Generator) -> Template:
    """Excavator (tracks, turret, cab, boom, arm, bucket) in construction yellow."""
    color = _jitter(rng, [(0.95, 0.70, 0.05), (0.95, 0.45, 0.05), (0.85, 0.85, 0.15)][rng.integers(3)], 0.03)
    dark = (0.12, 0.12, 0.13)
    tl = rng.uniform(3.6, 4.2)
    parts = [box((tl, 0.55, 0.8), (0, s * 0.85, 0.4), MAT["chassis"], dark) for s in (-1, 1)]
    swing = rng.uniform(-0.12, 0.12)
    parts.append(box((2.8, 2.2, 1.1), (-0.3, 0, 1.45), MAT["machine"], color, yaw=swing))
    cab = _cabin(-0.5, 0.5, -0.5, 0.4, 2.0, 3.1, 0.95, 0.95, color)
    c, s = np.cos(swing), np.sin(swing)
    cab = cab.transformed(
        np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]), np.array([0.6 * c - 0.55 * s, 0.6 * s + 0.55 * c, 0])
    )
    parts.append(cab)
    # boom up and forward, arm down, bucket
    p0 = np.array([1.0, -0.3, 2.0])
    p1 = p0 + np.array([2.6, 0, 1.6])
    p2 = p1 + np.array([1.2, 0, -2.2])
    rz = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    for a, b, rad in ((p0, p1, 0.22), (p1, p2, 0.16)):
        parts.append(cylinder(rz @ a, rz @ b, rad, 6, MAT["machine"], color))
    parts.append(box((0.8, 1.0, 0.7), rz @ (p2 + [0.2, 0, -0.1]), MAT["chassis"], (0.3, 0.3, 0.3), yaw=swing))
    return finalize("vehicle.construction", concat(parts), rng)


def pedestrian(rng: np.random.Generator, kind: str = "adult") -> Template:
    """``kind``: adult, child or worker (hi-vis vest, helmet)."""
    h = rng.uniform(1.55, 1.92) if kind != "child" else rng.uniform(1.0, 1.35)
    leg, torso, head_r = 0.47 * h, 0.3 * h, 0.065 * h
    sw = 0.21 * h  # shoulder half-width x2
    skin = _jitter(rng, SKIN[rng.integers(len(SKIN))], 0.02)
    shirt = _jitter(rng, CLOTH[rng.integers(len(CLOTH))])
    pants = _jitter(rng, CLOTH[rng.integers(len(CLOTH))])
    parts = []
    for pid, y in ((1, -0.07), (2, 0.07)):
        parts.append(box((0.13, 0.12, leg), (0, y * h / 1.7, leg / 2), MAT["cloth"], pants).with_part(pid))
        parts.append(box((0.22, 0.1, 0.07), (0.05, y * h / 1.7, 0.035), MAT["hair"], (0.1, 0.08, 0.07)).with_part(pid))
    if kind == "worker":
        vest = (0.85, 0.95, 0.1) if rng.random() < 0.6 else (0.98, 0.5, 0.1)
        torso_mat, torso_col = MAT["hivis"], _jitter(rng, vest, 0.02)
    else:
        torso_mat, torso_col = MAT["cloth"], shirt
    parts.append(box((0.22, sw, torso), (0, 0, leg + torso / 2), torso_mat, torso_col))
    for pid, y in ((3, -1), (4, 1)):
        arm = box((0.09, 0.08, torso * 0.95), (0, y * (sw / 2 + 0.05), leg + torso * 0.52), MAT["cloth"], shirt)
        parts.append(arm.with_part(pid))
    parts.append(
        blob(
            (0.0, 0, leg + torso + 0.05 + head_r),
            (head_r * 0.9, head_r * 0.85, head_r),
            material=MAT["skin"],
            albedo=skin,
        )
    )
    top = leg + torso + 0.05 + head_r
    if kind == "worker":
        parts.append(
            blob(
                (0, 0, top + 0.3 * head_r),
                (head_r * 1.15, head_r * 1.1, head_r * 0.8),
                material=MAT["helmet"],
                albedo=(0.95, 0.85, 0.1) if rng.random() < 0.5 else (0.95, 0.95, 0.95),
            )
        )
    else:
        parts.append(
            blob(
                (-0.02, 0, top + 0.35 * head_r),
                (head_r, head_r * 0.95, head_r * 0.7),
                material=MAT["hair"],
                albedo=_jitter(rng, (0.08, 0.06, 0.05), 0.03),
            )
        )
    if kind != "child" and rng.random() < 0.3:  # backpack
        parts.append(
            box(
                (0.14, sw * 0.8, torso * 0.7),
                (-0.18, 0, leg + torso * 0.55),
                MAT["cloth"],
                _jitter(rng, CLOTH[rng.integers(len(CLOTH))]),
            )
        )
    amp = 0.45
    joints = [
        Part(1, np.array([0, 0, leg]), amp, 0.0),
        Part(2, np.array([0, 0, leg]), amp, np.pi),
        Part(3, np.array([0, 0, leg + torso]), amp * 0.7, np.pi),
        Part(4, np.array([0, 0, leg + torso]), amp * 0.7, 0.0),
    ]
    cat = {"adult": "human.pedestrian.adult", "child": "human.pedestrian.child",
           "worker": "human.pedestrian.construction_worker"}[kind]  # fmt: skip
    return finalize(cat, concat(parts), rng, joints, pad_l=0.35)


def _rider(rng, hip, hands, helmet: bool) -> list[Mesh]:
    """A seated rider: torso from the hip leaning to the hands, legs down to the pedals."""
    shirt = _jitter(rng, CLOTH[rng.integers(len(CLOTH))])
    pants = _jitter(rng, CLOTH[rng.integers(len(CLOTH))])
    hip, hands = np.asarray(hip, dtype=np.float64), np.asarray(hands, dtype=np.float64)
    shoulder = hip + np.array([0.25 * (hands[0] - hip[0]), 0, 0.55])
    out = [cylinder(hip, shoulder, 0.15, 6, MAT["cloth"], shirt)]
    for s in (-1, 1):
        out.append(cylinder(shoulder + [0, s * 0.17, 0], hands + [0, s * 0.2, 0], 0.04, 5, MAT["cloth"], shirt))
        knee = hip + np.array([0.35, s * 0.12, -0.05])
        out.append(cylinder(hip + [0, s * 0.1, 0], knee, 0.065, 5, MAT["cloth"], pants))
        out.append(cylinder(knee, knee + [0.0, 0, -0.45], 0.05, 5, MAT["cloth"], pants))
    head = shoulder + np.array([0.06, 0, 0.2])
    if helmet:
        out.append(
            blob(
                head, (0.14, 0.13, 0.14), material=MAT["helmet"], albedo=_jitter(rng, BRIGHT[rng.integers(len(BRIGHT))])
            )
        )
    else:
        out.append(
            blob(head, (0.1, 0.09, 0.11), material=MAT["skin"], albedo=_jitter(rng, SKIN[rng.integers(len(SKIN))]))
        )
    return out


def bicycle(rng: np.random.Generator, rider: bool) -> Template:
    color = _jitter(rng, BRIGHT[rng.integers(len(BRIGHT))] if rng.random() < 0.6 else CAR_COLORS[1])
    R, wb = 0.34, rng.uniform(1.0, 1.1)
    rear, front = np.array([-wb / 2, 0, R]), np.array([wb / 2, 0, R])
    crank = np.array([-0.05, 0, 0.3])
    seat = np.array([-0.22, 0, 0.9])
    head = np.array([wb / 2 - 0.12, 0, 0.88])
    parts = [torus(rear, R, 0.025, 10, 3, MAT["tire"]), torus(front, R, 0.025, 10, 3, MAT["tire"])]
    for a, b in ((rear, crank), (crank, seat), (seat, head), (crank, head), (head, front), (rear, seat)):
        parts.append(cylinder(a, b, 0.022, 4, MAT["frame"], color, caps=False))
    parts.append(cylinder(head + [0, -0.28, 0.12], head + [0, 0.28, 0.12], 0.02, 5, MAT["chassis"], (0.1, 0.1, 0.1)))
    parts.append(cylinder(head, head + [0, 0, 0.12], 0.02, 5, MAT["chassis"], (0.1, 0.1, 0.1)))
    parts.append(box((0.24, 0.12, 0.06), seat + [0, 0, 0.04], MAT["chassis"], (0.08, 0.08, 0.08)))
    if rider:
        parts += _rider(rng, seat + [0, 0, 0.1], head + [0, 0, 0.12], helmet=rng.random() < 0.5)
    return finalize("vehicle.bicycle", concat(parts), rng, rider=rider)


def motorcycle(rng: np.random.Generator, rider: bool) -> Template:
    color = _jitter(rng, BRIGHT[rng.integers(len(BRIGHT))] if rng.random() < 0.6 else CAR_COLORS[1])
    R, wb = 0.31, rng.uniform(1.35, 1.5)
    parts = [cylinder((x, -0.06, R), (x, 0.06, R), R, 8, MAT["tire"]) for x in (-wb / 2, wb / 2)]
    parts.append(box((0.55, 0.32, 0.35), (0.0, 0, 0.45), MAT["chassis"], (0.25, 0.25, 0.27)))  # engine
    parts.append(box((0.5, 0.34, 0.22), (0.2, 0, 0.78), MAT["paint"], color, pitch=0.15))  # tank
    parts.append(box((0.6, 0.3, 0.1), (-0.35, 0, 0.8), MAT["hair"], (0.06, 0.06, 0.06)))  # seat
    parts.append(box((0.5, 0.22, 0.3), (-0.55, 0, 0.62), MAT["paint"], color))  # tail
    fork_top = np.array([wb / 2 - 0.22, 0, 1.0])
    parts.append(cylinder((wb / 2, 0, R), fork_top, 0.04, 5, MAT["pole"], (0.6, 0.6, 0.62)))
    parts.append(
        cylinder(fork_top + [0, -0.35, 0.05], fork_top + [0, 0.35, 0.05], 0.025, 5, MAT["chassis"], (0.1, 0.1, 0.1))
    )
    parts.append(box((0.12, 0.18, 0.14), fork_top + [0.08, 0, -0.1], MAT["headlight"], (0.95, 0.95, 0.88)))
    parts.append(box((0.05, 0.14, 0.06), (-0.8, 0, 0.7), MAT["taillight"], (0.75, 0.05, 0.04)))
    if rider:
        parts += _rider(rng, (-0.3, 0, 0.92), fork_top + [0, 0, 0.05], helmet=True)
    return finalize("vehicle.motorcycle", concat(parts), rng, rider=rider)


def cone(rng: np.random.Generator) -> Template:
    h = rng.uniform(0.5, 0.9)
    r = 0.13 + 0.08 * h
    parts = [
        cylinder((0, 0, 0.03), (0, 0, h), r, 10, MAT["cone"], _jitter(rng, (0.95, 0.33, 0.04), 0.02), radius1=0.025),
        box((2.6 * r, 2.6 * r, 0.03), (0, 0, 0.015), MAT["chassis"], (0.15, 0.15, 0.15)),
    ]
    return finalize("movable_object.trafficcone", concat(parts), rng)


def barrier(rng: np.random.Generator) -> Template:
    kind = rng.integers(3)  # concrete jersey, plastic jersey, striped board
    l = rng.uniform(1.2, 2.0) if kind else rng.uniform(1.8, 3.0)
    if kind < 2:
        hw, h = (0.3, 0.81) if kind == 0 else (0.25, 0.8)
        prof = [(-hw, 0), (hw, 0), (hw * 0.55, 0.3), (hw * 0.25, h), (-hw * 0.25, h), (-hw * 0.55, 0.3)]
        m = prism(
            prof,
            -l / 2,
            l / 2,
            MAT["jersey"] if kind == 0 else MAT["barrier"],
            (
                (0.7, 0.69, 0.65)
                if kind == 0
                else _jitter(rng, [(0.85, 0.1, 0.08), (0.95, 0.45, 0.05)][rng.integers(2)], 0.02)
            ),
        )
        c = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]])  # extrusion along x
        m = m.transformed(c, np.zeros(3))
        m.tex = m.vertices.astype(np.float32)
        parts = [m]
    else:
        col = _jitter(rng, [(0.85, 0.1, 0.08), (0.95, 0.45, 0.05)][rng.integers(2)], 0.02)
        parts = [
            box((l, 0.04, 0.25), (0, 0, 0.85), MAT["barrier"], col),
            box((l, 0.04, 0.2), (0, 0, 0.45), MAT["barrier"], col),
        ]
        parts += [
            box((0.06, 0.5, 1.0), (x, 0, 0.5), MAT["pole"], (0.85, 0.85, 0.85)) for x in (-l / 2 + 0.1, l / 2 - 0.1)
        ]
    return finalize("movable_object.barrier", concat(parts), rng)


def trash_bin(rng: np.random.Generator) -> Template:
    col = _jitter(rng, [(0.12, 0.35, 0.16), (0.3, 0.3, 0.32), (0.1, 0.25, 0.6), (0.08, 0.08, 0.08)][rng.integers(4)])
    w, d, h = rng.uniform(0.5, 0.75), rng.uniform(0.55, 0.8), rng.uniform(0.9, 1.15)
    parts = [
        box((d, w, h - 0.06), (0, 0, (h - 0.06) / 2), MAT["bin"], col),
        box((d + 0.06, w + 0.04, 0.06), (0, 0, h - 0.03), MAT["bin"], col * 0.8),
    ]
    return finalize("movable_object.pushable_pullable", concat(parts), rng)
