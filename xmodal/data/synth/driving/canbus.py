"""CAN-bus expansion messages derived from the analytic ego motion (``can_bus/scene-XXXX_*.json``).

``ms_imu`` (100 Hz), as read by ``nuscenes.can_bus.can_bus_api.NuScenesCanBus``:

- frame: the ego vehicle frame (x forward, y left, z up), same as nuScenes ``ego_pose``;
- ``linear_accel`` [m/s^2]: specific force ``R_global_ego^T (a_global + g e_z)``, so it includes
  gravity (``z ~ +9.81`` at rest, like the real Microstrain IMU), plus white noise
  ``N(0, 0.03 m/s^2)`` per axis;
- ``rotation_rate`` [rad/s]: body angular rate (here ``(0, 0, yaw_rate)``) plus white noise
  ``N(0, 0.001 rad/s)`` per axis;
- ``q`` (w, x, y, z): orientation of the ego frame in the global frame (= ``ego_pose.rotation``),
  noise-free;
- ``utime`` [us]: on a 10 ms grid from 2 s before the scene's first sample_data to 0.5 s after
  its last (so a 1-2 s IMU window exists before every keyframe).

``pose`` (50 Hz, noise-free): ``pos`` (global, m), ``orientation`` (w, x, y, z), ``vel`` (ego frame,
m/s), ``accel`` (ego frame, m/s^2, without gravity), ``rotation_rate`` (ego frame, rad/s). Its
``vel`` is the initial velocity for dead reckoning from the IMU.

Derived messages, as in the real expansion (``NuScenesCanBus.get_pose_and_route``,
``list_misaligned_routes``, ``plot_baseline_route`` and ``print_*_message_stats`` read them):

- ``route``: the baseline route, a list of ``[x, y]`` (global, m) along the ego's lane from
  50 m before the first pose to 50 m after the last, one point per metre of road;
- ``meta``: per message type (``ms_imu``, ``pose``): ``message_count``, ``message_freq`` (Hz),
  ``timespan`` (s) and ``var_stats``: for each field, ``max`` / ``mean`` / ``min`` / ``std`` of the
  values and ``diff_max`` / ``diff_mean`` / ``diff_min`` / ``diff_std`` of consecutive differences
  (per component for vectors).
"""

from __future__ import annotations

import numpy as np

from xmodal.data.synth.driving.trajectory import EgoMotion
from xmodal.geometry.transforms import rot_z, yaw_quaternion

GRAVITY = 9.80665
IMU_HZ, POSE_HZ = 100, 50
ACCEL_NOISE, GYRO_NOISE = 0.03, 0.001


def _grid(t_start_us: int, t_end_us: int, hz: int) -> np.ndarray:
    step = 1_000_000 // hz
    first = -(-t_start_us // step) * step
    return np.arange(first, t_end_us + 1, step, dtype=np.int64)


def _to_ego(yaw: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate global vectors [N, 3] into the ego frame of heading ``yaw`` [N] (``R^T v``)."""
    return np.einsum("nji,nj->ni", rot_z(yaw), v)


def imu_messages(ego: EgoMotion, t_start_us: int, t_end_us: int, rng: np.random.Generator) -> list[dict]:
    """``ms_imu`` messages at 100 Hz over [t_start_us, t_end_us] (see module docstring)."""
    t = _grid(t_start_us, t_end_us, IMU_HZ)
    k = ego.kinematics(t)
    acc = _to_ego(k["yaw"], k["acc"] + np.array([0.0, 0.0, GRAVITY])) + rng.normal(0.0, ACCEL_NOISE, (len(t), 3))
    rate = np.zeros((len(t), 3))
    rate[:, 2] = k["yaw_rate"]
    rate += rng.normal(0.0, GYRO_NOISE, (len(t), 3))
    q = yaw_quaternion(k["yaw"])
    return [{"linear_accel": [float(x) for x in acc[i]], "q": [float(x) for x in q[i]],
             "rotation_rate": [float(x) for x in rate[i]], "utime": int(t[i])} for i in range(len(t))]  # fmt: skip


def pose_messages(ego: EgoMotion, t_start_us: int, t_end_us: int) -> list[dict]:
    """``pose`` messages at 50 Hz (noise-free)."""
    t = _grid(t_start_us, t_end_us, POSE_HZ)
    k = ego.kinematics(t)
    vel, acc = _to_ego(k["yaw"], k["vel"]), _to_ego(k["yaw"], k["acc"])
    q = yaw_quaternion(k["yaw"])
    return [{"accel": [float(x) for x in acc[i]], "orientation": [float(x) for x in q[i]],
             "pos": [float(x) for x in k["pos"][i]], "rotation_rate": [0.0, 0.0, float(k["yaw_rate"][i])],
             "utime": int(t[i]), "vel": [float(x) for x in vel[i]]} for i in range(len(t))]  # fmt: skip


def dead_reckon(imu: list[dict], pos0, vel0_global, yaw0: float, query_us) -> tuple[np.ndarray, np.ndarray]:
    """Integrate ``ms_imu`` messages (trapezoid rule) from an initial state at ``imu[0]['utime']``.

    Heading from ``rotation_rate[2]``; velocity and position from ``linear_accel`` rotated to the
    global frame minus gravity. Returns positions [Q, 3] and headings [Q] at ``query_us``
    (linear interpolation between IMU samples).
    """
    t = np.array([m["utime"] for m in imu], dtype=np.int64)
    dt = np.diff(t) * 1e-6
    acc = np.array([m["linear_accel"] for m in imu])
    wz = np.array([m["rotation_rate"][2] for m in imu])
    yaw = yaw0 + np.concatenate([[0.0], np.cumsum(0.5 * (wz[1:] + wz[:-1]) * dt)])
    c, s = np.cos(yaw), np.sin(yaw)
    a_g = np.stack([c * acc[:, 0] - s * acc[:, 1], s * acc[:, 0] + c * acc[:, 1], acc[:, 2] - GRAVITY], -1)
    vel = np.asarray(vel0_global, dtype=np.float64) + np.concatenate(
        [np.zeros((1, 3)), np.cumsum(0.5 * (a_g[1:] + a_g[:-1]) * dt[:, None], 0)]
    )
    pos = np.asarray(pos0, dtype=np.float64) + np.concatenate(
        [np.zeros((1, 3)), np.cumsum(0.5 * (vel[1:] + vel[:-1]) * dt[:, None], 0)]
    )
    q = np.asarray(query_us, dtype=np.int64)
    out = np.stack([np.interp(q, t, pos[:, i]) for i in range(3)], -1)
    return out, np.interp(q, t, yaw)


ROUTE_MARGIN_M, ROUTE_STEP_M = 50.0, 1.0


def route_points(ego: EgoMotion, t_start_us: int, t_end_us: int) -> list[list[float]]:
    """``route``: ``[x, y]`` (global, m) along the ego's path, 50 m beyond its poses at both ends."""
    u0, u1 = float(ego.u(t_start_us)) - ROUTE_MARGIN_M, float(ego.u(t_end_us)) + ROUTE_MARGIN_M
    xy = ego.path.point(np.arange(u0, u1 + 1e-9, ROUTE_STEP_M))
    return [[float(x), float(y)] for x, y in xy]


def _stats(v: np.ndarray) -> dict:
    out = lambda a: a.tolist() if a.ndim else float(a)  # noqa: E731
    d = np.diff(v, axis=0)
    return {"max": out(v.max(0)), "mean": out(v.mean(0)), "min": out(v.min(0)), "std": out(v.std(0)),
            "diff_max": out(d.max(0)), "diff_mean": out(d.mean(0)), "diff_min": out(d.min(0)),
            "diff_std": out(d.std(0))}  # fmt: skip


def meta_message(messages: dict[str, list[dict]]) -> dict:
    """``meta``: statistics of each message type (see module docstring)."""
    meta = {}
    for name, msgs in messages.items():
        t = np.array([m["utime"] for m in msgs], dtype=np.int64)
        span = float(t[-1] - t[0]) * 1e-6
        keys = sorted(k for k in msgs[0] if k != "utime")
        meta[name] = {
            "message_count": len(msgs),
            "message_freq": round((len(msgs) - 1) / span, 3) if span > 0 else 0.0,
            "timespan": round(span, 3),
            "var_stats": {k: _stats(np.array([m[k] for m in msgs], dtype=np.float64)) for k in keys},
        }
    return meta
