"""Analytic road path and ego motion (global frame: x, y on the ground plane, z up, metres).

The road's reference line is ``c(u) = origin + Rz(theta) @ (u, A sin(k u + phi))``; points at
lateral offset ``d`` (positive to the left of the direction of increasing ``u``) lie on the
parallel curve ``c(u) + d n(u)``. The ego drives on the reference line itself with
``u(tau) = u0 + v0 tau + (dv / w) (cos(p) - cos(w tau + p))``, so position, velocity,
acceleration, heading and yaw rate are closed-form and the IMU (:mod:`.canbus`) is exactly
consistent with the ego poses. The ego stays upright (roll = pitch = 0) on flat ground (z = 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xmodal.geometry.transforms import rot_z


@dataclass(frozen=True)
class RoadPath:
    """Reference line of the road (see module docstring)."""

    origin: tuple[float, float]  # global xy of u = 0
    theta: float  # global yaw of the path's u axis, radians
    amp: float  # A, metres
    k: float  # rad / m
    phase: float

    def _g(self, u):  # dy/du in path coordinates
        return self.amp * self.k * np.cos(self.k * u + self.phase)

    def _dg(self, u):  # d2y/du2
        return -self.amp * self.k**2 * np.sin(self.k * u + self.phase)

    def _rot(self, x, y):
        c, s = np.cos(self.theta), np.sin(self.theta)
        return np.stack([c * x - s * y, s * x + c * y], -1)

    def point(self, u, d=0.0) -> np.ndarray:
        """[..., 2] global xy at path parameter ``u`` and lateral offset ``d`` (metres)."""
        u = np.asarray(u, dtype=np.float64)
        p = self._rot(u, self.amp * np.sin(self.k * u + self.phase)) + np.asarray(self.origin)
        return p + np.asarray(d, dtype=np.float64)[..., None] * self.normal(u)

    def yaw(self, u) -> np.ndarray:
        """Global heading of the tangent at ``u`` (radians)."""
        return self.theta + np.arctan(self._g(np.asarray(u, dtype=np.float64)))

    def normal(self, u) -> np.ndarray:
        """[..., 2] unit normal pointing left of the tangent."""
        yaw = self.yaw(u)
        return np.stack([-np.sin(yaw), np.cos(yaw)], -1)

    def speed_factor(self, u) -> np.ndarray:
        """``|dc/du|`` (arc length per unit of u) on the reference line."""
        return np.sqrt(1.0 + self._g(np.asarray(u, dtype=np.float64)) ** 2)

    def arclength(self, u: np.ndarray) -> np.ndarray:
        """Arc length from ``u[0]`` along the reference line for sorted ``u`` (trapezoid rule)."""
        f = self.speed_factor(u)
        return np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * np.diff(u))])


@dataclass(frozen=True)
class EgoMotion:
    """Smooth ego motion along ``path`` (times in microseconds, tau in seconds from t0)."""

    path: RoadPath
    t0_us: int
    u0: float
    v0: float  # mean speed along u, m/s
    dv: float  # speed oscillation amplitude (< v0)
    omega: float  # rad/s
    phi: float

    def tau(self, t_us) -> np.ndarray:
        return (np.asarray(t_us, dtype=np.int64) - self.t0_us).astype(np.float64) * 1e-6

    def u(self, t_us) -> np.ndarray:
        tau = self.tau(t_us)
        return self.u0 + self.v0 * tau + self.dv / self.omega * (np.cos(self.phi) - np.cos(self.omega * tau + self.phi))

    def kinematics(self, t_us) -> dict[str, np.ndarray]:
        """Exact state at ``t_us`` (scalar or [N]).

        Returns ``pos`` [..., 3] global, ``vel`` / ``acc`` [..., 3] global (m/s, m/s^2, without
        gravity), ``yaw`` [...] global heading, ``yaw_rate`` [...] rad/s.
        """
        tau = self.tau(t_us)
        u = self.u(t_us)
        du = self.v0 + self.dv * np.sin(self.omega * tau + self.phi)
        ddu = self.dv * self.omega * np.cos(self.omega * tau + self.phi)
        p = self.path
        g, dg = p._g(u), p._dg(u)
        xy = p.point(u)
        vel = p._rot(du, g * du)
        acc = p._rot(ddu, g * ddu + dg * du**2)
        zeros = np.zeros_like(u)
        return {
            "pos": np.concatenate([xy, zeros[..., None]], -1),
            "vel": np.concatenate([vel, zeros[..., None]], -1),
            "acc": np.concatenate([acc, zeros[..., None]], -1),
            "yaw": p.yaw(u),
            "yaw_rate": dg * du / (1.0 + g**2),
        }

    def pose(self, t_us: int) -> tuple[np.ndarray, np.ndarray]:
        """``(R_global_ego [3, 3], t_global_ego [3])`` at ``t_us``."""
        k = self.kinematics(t_us)
        return rot_z(float(k["yaw"])), np.asarray(k["pos"], dtype=np.float64)
