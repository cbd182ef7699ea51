"""Things fixed to the walls: doors, windows, curtains, pictures, shower curtains.

Same object frame as :mod:`xmodal.data.synth.indoor.objects`: x along the wall (centred),
y out of the wall (the wall plane is y = 0), z absolute height above the floor. Doors and
windows sit flush in wall openings cut to their outline, so no wall hides behind them; pictures and
curtains hang on the wall, which is cut away behind them (curtains have side returns that close
the gap). Back faces that would lie in the wall plane are not built.
"""

from __future__ import annotations

import numpy as np

from xmodal.data.synth.indoor import materials as M
from xmodal.data.synth.indoor.objects import CURTAIN, DOOR, PICTURE, SHOWER_CURTAIN, WINDOW, Obj, part, solid
from xmodal.data.synth.indoor.shapes import box, grid, merge, wavy_sheet

NB = ("-y",)  # no back face (it would lie in the wall)


def _frame(x0, x1, z0, z1, t, depth, e, y0=0.0):
    """Rectangular frame of bar width ``t``, from ``y0`` to ``y0 + depth`` out of the wall."""
    return merge([
        box((x0, y0, z0), (x1, y0 + depth, z0 + t), e, NB),
        box((x0, y0, z1 - t), (x1, y0 + depth, z1), e, NB),
        box((x0, y0, z0 + t), (x0 + t, y0 + depth, z1 - t), e, NB),
        box((x1 - t, y0, z0 + t), (x1, y0 + depth, z1 - t), e, NB),
    ])


def door(rng: np.random.Generator, e: float) -> Obj:
    """A door leaf flush with the wall in an opening cut exactly to its outline."""
    w, h = rng.uniform(0.82, 0.95), rng.uniform(2.0, 2.1)
    leaf = M.wood(rng, rng.choice(["light", "medium", "dark"]), axis=2)
    if rng.random() < 0.4:
        leaf = M.solid(M.jitter(rng, (0.93, 0.93, 0.9), 0.03), 0.02)
    leaf = M.panels(leaf, 0.55, 0.05, (w, h / 3), axes=(0, 2), origin=(-w / 2, 0.0))
    front = grid((-w / 2, 0, 0), (0, 0, h), (w, 0, 0), e)  # faces +y
    hx = w / 2 - 0.1  # lever handle at 1 m near the free edge
    parts = [part(front, DOOR, leaf),
             part(merge([box((hx - 0.02, 0.0, 0.98), (hx + 0.02, 0.03, 1.02), e, NB),
                         box((hx - 0.13, 0.03, 0.985), (hx + 0.02, 0.045, 1.015), e)]), DOOR, M.metal(rng))]
    return Obj("door", DOOR, parts, (w, 0.045, h),
               carve=[solid((-w / 2, -0.04, 0), (w / 2, 0.004, h), wall=False, below=False)])


def window(rng: np.random.Generator, e: float, w: float, h: float, sill: float) -> Obj:
    """A white-framed window flush with the wall in an opening cut to its outline; the glass,
    3 cm back, shows a sky gradient. The frame has no outer faces (they would be inside the wall)."""
    white = M.solid((0.96, 0.96, 0.95), 0.01)
    t, d = 0.06, 0.05
    x0, x1, z0, z1 = -w / 2, w / 2, sill, sill + h
    frame = merge([
        box((x0, -d, z0), (x1, 0, z0 + t), e, ("-y", "-z", "-x", "+x")),
        box((x0, -d, z1 - t), (x1, 0, z1), e, ("-y", "+z", "-x", "+x")),
        box((x0, -d, z0 + t), (x0 + t, 0, z1 - t), e, ("-y", "-x")),
        box((x1 - t, -d, z0 + t), (x1, 0, z1 - t), e, ("-y", "+x")),
    ])
    glass = grid((x0 + t, -0.03, z0 + t), (0, 0, h - 2 * t), (w - 2 * t, 0, 0), e)  # faces +y
    bars = [box((-0.02, -0.03, z0 + t), (0.02, -0.005, z1 - t), e, NB)]
    if h > 1.0:
        zb = sill + h * 0.62
        bars.append(box((x0 + t, -0.03, zb), (x1 - t, -0.005, zb + 0.04), e, NB))
    parts = [part(glass, WINDOW, M.glass(rng)), part(merge([frame] + bars), WINDOW, white)]
    return Obj("window", WINDOW, parts, (w, 0.01, z1), zmin=z0,
               carve=[solid((x0, -d, z0), (x1, 0.004, z1), wall=False, below=False)])


def curtains(rng: np.random.Generator, e: float, win_w: float, top: float) -> Obj:
    """A pair of drawn-open curtains (one object) either side of a window ``win_w`` wide centred
    at x = 0, from a pelmet ``top`` m high down to the floor. Side returns close each curtain
    against the wall, so the wall behind it is removed without leaving a visible hole."""
    cw = rng.uniform(0.3, 0.5)
    mat = M.fabric(rng, pattern=rng.choice(["solid", "stripes", "dots"]))
    amp, period, y0 = 0.015, rng.uniform(0.12, 0.18), 0.01
    x_in = win_w / 2 + 0.05
    parts, carve = [], []
    for side in (-1, 1):
        sheet = wavy_sheet(cw, top, 0.0, amp, period, e, phase=float(rng.uniform(0, 6.3)))
        sheet.vertices[:, 0] += side * (x_in + cw / 2)
        sheet.vertices[:, 1] += y0
        vx = sheet.vertices
        y_lo, y_hi = vx[np.argmin(vx[:, 0]), 1], vx[np.argmax(vx[:, 0]), 1]  # sheet depth at its edges
        x0, x1 = sorted((side * x_in, side * (x_in + cw)))
        returns = [grid((x0, 0, 0), (0, 0, top), (0, y_lo, 0), e), grid((x1, 0, 0), (0, y_hi, 0), (0, 0, top), e)]
        parts += [part(sheet, CURTAIN, mat), part(merge(returns), CURTAIN, mat)]
        carve.append(solid((x0, 0, 0), (x1, y0, top)))
    half = x_in + cw
    parts.append(part(box((-half - 0.03, 0, top), (half + 0.03, y0 + 2 * amp + 0.015, top + 0.07), e, NB), CURTAIN,
                      M.solid(M.jitter(rng, (0.9, 0.88, 0.84), 0.04), 0.02)))
    return Obj("curtain", CURTAIN, parts, (2 * half + 0.06, y0 + 2 * amp + 0.015, top + 0.07),
               carve=carve + [solid((-half - 0.03, 0, top), (half + 0.03, y0 + 2 * amp + 0.015, top + 0.07))])


def picture(rng: np.random.Generator, e: float, w: float | None = None, h: float | None = None,
            z0: float = 1.3) -> Obj:
    w = w or rng.uniform(0.4, 1.0)
    h = h or rng.uniform(0.3, min(0.8, w * 1.2))
    t = rng.uniform(0.03, 0.06)
    depth = 0.02
    frame_mat = M.solid(M.jitter(rng, [(0.15, 0.1, 0.08), (0.75, 0.6, 0.25), (0.95, 0.95, 0.95)][rng.integers(3)],
                                  0.03), 0.03)
    canvas = grid((-w / 2 + t, depth - 0.006, z0 + t), (w - 2 * t, 0, 0), (0, 0, h - 2 * t), min(e, 0.03))
    canvas.faces = canvas.faces[:, ::-1]
    parts = [part(canvas, PICTURE, M.painting(rng)),
             part(_frame(-w / 2, w / 2, z0, z0 + h, t, depth, e), PICTURE, frame_mat)]
    return Obj("picture", PICTURE, parts, (w, depth, z0 + h), zmin=z0,
               carve=[solid((-w / 2, 0, z0), (w / 2, depth, z0 + h))])


def shower_curtain(rng: np.random.Generator, e: float, w: float, y: float, z0: float, ceiling: float) -> Obj:
    """Shower curtain inside a bathtub, ``y`` m from the wall, ``w`` wide, hanging from a rod
    down to ``z0`` (just above the tub's rim)."""
    mat = M.fabric(rng, rgb=M.jitter(rng, (0.92, 0.95, 0.97), 0.03), pattern=rng.choice(["stripes", "dots"]))
    top = min(ceiling - 0.2, 2.05)
    cw = w * rng.uniform(0.5, 0.7)  # partly drawn
    sheet = wavy_sheet(cw, top - z0, z0, 0.03, 0.14, e, phase=float(rng.uniform(0, 6.3)))
    sheet.vertices[:, 0] += -w / 2 + cw / 2
    sheet.vertices[:, 1] += y
    rod = box((-w / 2, y + 0.02, top), (w / 2, y + 0.045, top + 0.025), e)
    return Obj("shower_curtain", SHOWER_CURTAIN,
               [part(sheet, SHOWER_CURTAIN, mat), part(rod, SHOWER_CURTAIN, M.metal(rng))],
               (w, y + 0.07, top + 0.03), zmin=z0)
