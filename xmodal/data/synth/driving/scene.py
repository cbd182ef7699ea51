"""One scene (= one log): location, timing, road, ego motion, world, traffic, lighting, rig."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import numpy as np

from xmodal.data.synth.driving.layout import Layout, build_static, cross_section
from xmodal.data.synth.driving.render import Lighting
from xmodal.data.synth.driving.rig import LIDAR_PERIOD_US, LIDAR_SWEEPS_PER_KEYFRAME, Rig, make_rig
from xmodal.data.synth.driving.traffic import Traffic, populate
from xmodal.data.synth.driving.trajectory import EgoMotion, RoadPath

# location: (vehicle, UTC offset hours, traffic hand)
LOCATIONS = {
    "boston-seaport": ("n008", -4, 1),
    "singapore-onenorth": ("n015", 8, -1),
    "singapore-queenstown": ("n015", 8, -1),
    "singapore-hollandvillage": ("n015", 8, -1),
}


@dataclass
class Scene:
    index: int
    name: str
    location: str
    logfile: str
    date: str
    t0_us: int  # first LiDAR sweep
    n_samples: int
    rig: Rig
    layout: Layout
    ego: EgoMotion
    traffic: Traffic
    lighting: Lighting
    description: str



def scene_rng(seed: int, index: int, stream: int) -> np.random.Generator:
    """Independent RNG per (seed, scene, purpose) so scenes do not depend on each other."""
    return np.random.default_rng([seed, index, stream])


def _lighting(rng: np.random.Generator, hour: float) -> tuple[Lighting, str]:
    elev = np.deg2rad(np.clip(70 - abs(hour - 12.5) * 9 + rng.normal(0, 5), 8, 75))
    azim = rng.uniform(0, 2 * np.pi)
    sun_dir = np.array([np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim), np.sin(elev)])
    weather = rng.choice(["clear", "overcast", "hazy"], p=[0.55, 0.3, 0.15])
    warm = np.clip((np.deg2rad(30) - elev) / np.deg2rad(25), 0, 1)
    sun_col = np.array([1.0, 0.97 - 0.12 * warm, 0.92 - 0.3 * warm])
    if weather == "clear":
        sun, amb = rng.uniform(0.75, 0.95), rng.uniform(0.32, 0.45)
        zen, hor = np.array([0.30, 0.50, 0.85]), np.array([0.72, 0.80, 0.90]) + warm * np.array([0.2, 0.0, -0.2])
        haze = rng.uniform(900, 2000)
    elif weather == "overcast":
        sun, amb = rng.uniform(0.15, 0.3), rng.uniform(0.6, 0.75)
        zen, hor = np.array([0.62, 0.64, 0.68]), np.array([0.78, 0.79, 0.80])
        haze = rng.uniform(500, 1200)
    else:
        sun, amb = rng.uniform(0.5, 0.7), rng.uniform(0.45, 0.55)
        zen, hor = np.array([0.55, 0.62, 0.75]), np.array([0.82, 0.82, 0.80])
        haze = rng.uniform(150, 400)
    amb_col = amb * (0.6 * hor + 0.4 * np.array([1.0, 1.0, 1.0]))
    lt = Lighting(sun_dir=sun_dir, sun_rgb=sun * sun_col, ambient_rgb=amb_col, sky_zenith=np.clip(zen, 0, 1),
                  sky_horizon=np.clip(hor, 0, 1), haze_m=float(haze), exposure=float(rng.uniform(0.92, 1.12)),
                  noise=float(rng.uniform(0.008, 0.02)))  # fmt: skip
    return lt, f"{weather}, sun {np.rad2deg(elev):.0f} deg"


def make_scene(seed: int, index: int, name: str, n_samples: int, image_scale: float) -> Scene:
    rng = scene_rng(seed, index, 0)
    # Boston (right-hand traffic) and Singapore (left-hand) alternate, so two scenes see both
    boston = (index + seed) % 2 == 0
    location = "boston-seaport" if boston else str(rng.choice([k for k in LOCATIONS if k.startswith("singapore")]))
    vehicle, utc, hand = LOCATIONS[location]
    day = _dt.date(2018, 7, 23) + _dt.timedelta(days=int(rng.integers(0, 70)))
    hour = float(rng.uniform(8.0, 18.0))
    tz = _dt.timezone(_dt.timedelta(hours=utc))
    start = _dt.datetime(day.year, day.month, day.day, tzinfo=tz) + _dt.timedelta(seconds=int(hour * 3600))
    logfile = f"{vehicle}-{start.strftime('%Y-%m-%d-%H-%M-%S')}{start.strftime('%z')}"
    t0_us = int(start.timestamp()) * 1_000_000 + int(rng.integers(30_000_000, 600_000_000))
    rig = make_rig(scene_rng(seed, index, 1), image_scale)

    # road + ego motion (origin fixed below so that global coordinates are positive)
    lam = rng.uniform(200.0, 500.0)
    k = 2 * np.pi / lam
    amp = float(rng.uniform(0, 1) ** 1.5 * min(0.01 / k**2, 30.0))
    path = RoadPath((0.0, 0.0), float(rng.uniform(0, 2 * np.pi)), amp, float(k), float(rng.uniform(0, 2 * np.pi)))
    v0 = float(rng.uniform(3.0, 9.0))
    ego_args = dict(
        t0_us=t0_us,
        u0=0.0,
        v0=v0,
        dv=float(rng.uniform(0.0, min(2.5, v0 - 1.5))),
        omega=float(2 * np.pi / rng.uniform(6.0, 16.0)),
        phi=float(rng.uniform(0, 2 * np.pi)),
    )
    ego = EgoMotion(path=path, **ego_args)
    t_end = t0_us + (n_samples * LIDAR_SWEEPS_PER_KEYFRAME - 1) * LIDAR_PERIOD_US  # last keyframe
    u_range = (float(ego.u(t0_us - 2_000_000)) - 110.0, float(ego.u(t_end + 2_000_000)) + 130.0)
    uu = np.linspace(*u_range, 64)
    pts = np.concatenate([path.point(uu, np.full_like(uu, s)) for s in (-90.0, 90.0)])
    origin = tuple(float(v) for v in -pts.min(0) + 50.0 + rng.uniform(0, 300.0, 2))
    path = RoadPath(origin, path.theta, path.amp, path.k, path.phase)
    ego = EgoMotion(path=path, **ego_args)

    lanes, sides, road, island, feats = cross_section(rng, hand)
    layout = Layout(path, hand, lanes, sides, u_range, road, island=island, features=feats)
    s_ego = float(path.arclength(np.array([u_range[0], 0.0]))[1])
    edges = sorted([-sides[-1].edge, sides[1].edge])
    for _ in range(rng.integers(1, 3)):
        s0 = s_ego + rng.uniform(8.0, 60.0)
        road.crossings.append((s0, s0 + rng.uniform(3.0, 4.5), edges[0] + 0.3, edges[1] - 0.3))
    style = {
        "heights": [(5.0, 14.0), (8.0, 30.0), (12.0, 45.0)][int(rng.integers(3))],
        "foliage": np.array(
            [(0.22, 0.42, 0.15), (0.30, 0.45, 0.12), (0.18, 0.34, 0.14), (0.45, 0.42, 0.14)][
                int(rng.choice(4, p=[0.4, 0.3, 0.2, 0.1]))
            ]
        ),
        "fence": (0.25, 0.27, 0.25) if rng.random() < 0.5 else (0.7, 0.7, 0.7),
    }
    layout.static = build_static(scene_rng(seed, index, 2), layout, style)
    instances, tfeats = populate(scene_rng(seed, index, 3), layout, ego, t_end)
    lighting, weather = _lighting(scene_rng(seed, index, 4), hour)
    desc = f"Synthetic {location}, {', '.join(feats + sorted(set(tfeats)))}, {weather}, ego {v0:.0f} m/s"
    return Scene(
        index,
        name,
        location,
        logfile,
        day.isoformat(),
        t0_us,
        n_samples,
        rig,
        layout,
        ego,
        Traffic(instances, ego),
        lighting,
        desc,
    )
