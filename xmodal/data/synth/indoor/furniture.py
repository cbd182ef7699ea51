"""Floor-standing furniture of the ScanNet-20 classes, each with its own shape and materials.

Every builder is ``build(rng, edge) -> Obj`` in the object frame of
:mod:`xmodal.data.synth.indoor.objects` (back at y = 0, front towards +y, floor at z = 0).
"""

from __future__ import annotations

import numpy as np

from xmodal.data.synth.indoor import materials as M
from xmodal.data.synth.indoor.objects import (BATHTUB, BED, BOOKSHELF, BOX, CABINET, CHAIR, COUNTER,
                                              DESK, LAMP, OTHERFURNITURE, PILLOW, REFRIGERATOR, SINK,
                                              SOFA, TABLE, TOILET, Obj, part, solid)
from xmodal.data.synth.indoor.shapes import box, cbox, cylinder, ellipsoid, frustum, merge

NB = ("-z",)  # no bottom face: it would lie on the floor, never seen


def _legs(w: float, d: float, h: float, t: float, e: float, inset: float = 0.03, y0: float = 0.0,
          round_: bool = False):
    out = []
    for sx in (-1, 1):
        for sy in (0, 1):
            cx = sx * (w / 2 - inset - t / 2)
            cy = y0 + (inset + t / 2 if sy == 0 else d - inset - t / 2)
            out.append(cylinder(t / 2, 0, h, e, (cx, cy), caps=(False, False)) if round_
                       else cbox((cx, cy), (t, t, h), 0, e, NB))
    return merge(out)


def bed(rng: np.random.Generator, e: float) -> Obj:
    w, d = rng.uniform(1.4, 1.8), rng.uniform(1.95, 2.15)
    frame_mat = M.wood(rng) if rng.random() < 0.6 else M.leather(rng)
    sheet = M.fabric(rng, rgb=M.PAINT_COLORS[rng.integers(len(M.PAINT_COLORS))], pattern="solid")
    duvet = M.fabric(rng, pattern=rng.choice(["stripes", "checks", "dots"]))
    head_h = rng.uniform(0.9, 1.2)
    parts = [
        part(box((-w / 2, 0.06, 0), (w / 2, d, 0.32), e, NB), BED, frame_mat),
        part(box((-w / 2 - 0.02, 0, 0), (w / 2 + 0.02, 0.06, head_h), e, NB + ("-y",)), BED, frame_mat),
        part(box((-w / 2 + 0.02, 0.08, 0.32), (w / 2 - 0.02, d - 0.02, 0.52), e), BED, sheet),
        part(box((-w / 2 - 0.01, d * 0.35, 0.30), (w / 2 + 0.01, d + 0.01, 0.56), e), BED, duvet),
    ]
    pillow = M.fabric(rng, rgb=(0.93, 0.93, 0.90), pattern="solid")
    n_p = 2 if w > 1.3 else 1
    carve = [solid((-w / 2, 0.0, 0), (w / 2, d, 0.32)), solid((-w / 2 - 0.02, 0, 0), (w / 2 + 0.02, 0.06, head_h))]
    for k in range(n_p):  # pillows against the headboard; they hide the mattress / headboard
        cx = (k + 0.5) / n_p * w - w / 2
        x0, x1 = cx - w / n_p / 2 + 0.07, cx + w / n_p / 2 - 0.07
        parts.append(part(box((x0, 0.06, 0.52), (x1, 0.42, 0.64), e, ("-z", "-y")), PILLOW, pillow))
        carve.append(solid((x0, 0.06, 0.52), (x1, 0.42, 0.64), wall=True, below=True, label=PILLOW))
    return Obj("bed", BED, parts, (w + 0.04, d + 0.01, head_h), carve=carve)


def chair(rng: np.random.Generator, e: float) -> Obj:
    w, d, sh = rng.uniform(0.42, 0.5), rng.uniform(0.42, 0.5), rng.uniform(0.44, 0.48)
    metal_legs = rng.random() < 0.4
    legs_mat = M.metal(rng, (0.2, 0.2, 0.22)) if metal_legs else M.wood(rng, axis=2)
    seat_mat = (M.solid(M.FABRIC_COLORS[rng.integers(len(M.FABRIC_COLORS))], 0.05, seed=int(rng.integers(1e6)))
                if rng.random() < 0.5 else M.wood(rng))
    back_h = sh + rng.uniform(0.4, 0.5)
    t = 0.035
    parts = [
        part(_legs(w, d, sh - 0.03, t, e, round_=metal_legs), CHAIR, legs_mat),
        part(box((-w / 2, 0, sh - 0.03), (w / 2, d, sh + 0.02), e), CHAIR, seat_mat),
        part(box((-w / 2, 0.0, sh + 0.02), (w / 2, 0.035, back_h), e), CHAIR, seat_mat),
    ]
    return Obj("chair", CHAIR, parts, (w, d, back_h))


def sofa(rng: np.random.Generator, e: float) -> Obj:
    w, d = rng.uniform(1.6, 2.2), rng.uniform(0.85, 0.95)
    mat = M.fabric(rng, pattern=rng.choice(["solid", "checks", "stripes"]))
    arm, back_d, seat_h = 0.18, 0.22, 0.42
    n_c = 3 if w > 1.9 else 2
    cw = (w - 2 * arm) / n_c
    parts = [
        part(box((-w / 2, 0, 0), (w / 2, d, 0.28), e, NB), SOFA, mat),
        part(box((-w / 2, 0, 0.28), (w / 2, back_d, 0.85), e), SOFA, mat),
        part(box((-w / 2, back_d, 0.28), (-w / 2 + arm, d, 0.62), e), SOFA, mat),
        part(box((w / 2 - arm, back_d, 0.28), (w / 2, d, 0.62), e), SOFA, mat),
    ]
    for k in range(n_c):
        x0 = -w / 2 + arm + k * cw
        parts.append(part(box((x0 + 0.005, back_d, 0.28), (x0 + cw - 0.005, d - 0.01, seat_h + 0.06), e),
                          SOFA, mat))
    return Obj("sofa", SOFA, parts, (w, d, 0.85),
               carve=[solid((-w / 2, 0, 0), (w / 2, d, 0.28)), solid((-w / 2, 0, 0.28), (w / 2, back_d, 0.85))])


def table(rng: np.random.Generator, e: float, w: float | None = None, d: float | None = None) -> Obj:
    w = w or rng.uniform(1.1, 1.7)
    d = d or rng.uniform(0.75, 0.95)
    h = rng.uniform(0.72, 0.77)
    top = M.wood(rng) if rng.random() < 0.7 else M.granite(rng)
    if rng.random() < 0.3:  # round / oval pedestal table
        r = d / 2
        parts = [part(cylinder(r, h - 0.04, h, e, (0, d / 2), scale_xy=(w / d, 1.0)), TABLE, top),
                 part(cylinder(0.05, 0, h - 0.04, e, (0, d / 2), caps=(False, False)), TABLE,
                      M.metal(rng, (0.25, 0.25, 0.27))),
                 part(cylinder(0.25, 0, 0.03, e, (0, d / 2), caps=(False, True)), TABLE,
                      M.metal(rng, (0.25, 0.25, 0.27)))]
        carve = [solid((-0.17, d / 2 - 0.17, 0), (0.17, d / 2 + 0.17, 0.03))]
    else:
        parts = [part(box((-w / 2, 0, h - 0.04), (w / 2, d, h), e), TABLE, top),
                 part(_legs(w, d, h - 0.04, 0.06, e, inset=0.05), TABLE, top)]
        carve = []
    return Obj("table", TABLE, parts, (w, d, h), carve=carve)


def desk(rng: np.random.Generator, e: float) -> Obj:
    w, d, h = rng.uniform(1.1, 1.5), rng.uniform(0.6, 0.7), 0.74
    mat = M.wood(rng, "light") if rng.random() < 0.6 else M.solid((0.93, 0.93, 0.92), 0.02)
    dw = 0.42
    front = M.panels(mat, 0.6, 0.02, (dw, 0.2), axes=(0, 2), origin=(w / 2 - dw, 0.0))
    parts = [
        part(box((-w / 2, 0, h - 0.03), (w / 2, d, h), e, ("-y",)), DESK, mat),
        part(box((-w / 2, 0, 0), (-w / 2 + 0.03, d - 0.02, h - 0.03), e, NB + ("-y",)), DESK, mat),
        part(box((w / 2 - dw, 0, 0), (w / 2, d - 0.02, h - 0.03), e, NB + ("-y",)), DESK, front),
        part(box((-w / 2 + 0.03, 0.0, 0.35), (w / 2 - dw, 0.02, h - 0.03), e, ("-y",)), DESK, mat),
    ]
    return Obj("desk", DESK, parts, (w, d, h),
               carve=[solid((w / 2 - dw, 0, 0), (w / 2, d - 0.02, h - 0.03)),
                      solid((-w / 2 + 0.03, 0.0, 0.35), (w / 2 - dw, 0.02, h)),
                      solid((-w / 2, 0, 0), (-w / 2 + 0.03, d - 0.02, h)),
                      solid((-w / 2, 0, h - 0.03), (w / 2, d, h))])


def cabinet(rng: np.random.Generator, e: float, h: float | None = None, z0: float = 0.0,
            d: float | None = None) -> Obj:
    w = rng.uniform(0.6, 1.2)
    d = d or rng.uniform(0.4, 0.55)
    h = h or rng.choice([rng.uniform(0.8, 1.0), rng.uniform(1.6, 2.0)])
    body = M.solid(M.jitter(rng, [(0.95, 0.95, 0.93), (0.55, 0.58, 0.62), (0.2, 0.25, 0.4),
                                   (0.6, 0.45, 0.3)][rng.integers(4)], 0.03), 0.02)
    n_doors = 2 if w > 0.75 else 1
    front = M.panels(body, 0.65, 0.025, (w / n_doors, h), axes=(0, 2), origin=(-w / 2, z0))
    parts = [part(box((-w / 2, 0, z0), (w / 2, d, z0 + h), e, ("-y",) + (NB if z0 == 0 else ())),
                  CABINET, front)]
    metal = M.metal(rng, (0.6, 0.6, 0.62))
    for k in range(n_doors):
        cx = -w / 2 + (k + 0.5) * w / n_doors + (0.35 if k == 0 else -0.35) * w / n_doors
        hz = z0 + (h * 0.55 if z0 == 0 else 0.12)
        parts.append(part(cbox((cx, d + 0.015), (0.02, 0.03, 0.16), hz - 0.08, e), CABINET, metal))
    return Obj("cabinet", CABINET, parts, (w, d + 0.03, z0 + h), zmin=z0,
               carve=[solid((-w / 2, 0, z0), (w / 2, d, z0 + h))])


def bookshelf(rng: np.random.Generator, e: float) -> Obj:
    w, d, h = rng.uniform(0.8, 1.2), rng.uniform(0.3, 0.38), rng.uniform(1.5, 2.0)
    mat = M.wood(rng, rng.choice(["light", "dark"]), axis=2)
    t = 0.025
    n_sh = int(rng.integers(4, 6))
    parts = [
        part(box((-w / 2, 0, 0), (-w / 2 + t, d, h), e, NB), BOOKSHELF, mat),
        part(box((w / 2 - t, 0, 0), (w / 2, d, h), e, NB), BOOKSHELF, mat),
        part(box((-w / 2 + t, 0, 0), (w / 2 - t, 0.012, h), e, ("-y",)), BOOKSHELF, mat),
    ]
    bk = M.books(rng)
    for k in range(n_sh + 1):
        z = k * (h - t) / n_sh
        parts.append(part(box((-w / 2 + t, 0.012, z), (w / 2 - t, d, z + t), e), BOOKSHELF, mat))
        if k < n_sh:  # a row of books (part of the bookshelf class), with gaps
            gap = (h - t) / n_sh - t
            x = -w / 2 + t + 0.01
            while x < w / 2 - t - 0.1:
                bw = rng.uniform(0.15, 0.45)
                bw = min(bw, w / 2 - t - 0.01 - x)
                bh = gap * rng.uniform(0.6, 0.9)
                if rng.random() < 0.85:
                    parts.append(part(box((x, 0.03, z + t), (x + bw, d - rng.uniform(0.03, 0.08), z + t + bh), e,
                                          NB), BOOKSHELF, bk))
                x += bw + rng.uniform(0.0, 0.08)
    return Obj("bookshelf", BOOKSHELF, parts, (w, d, h),
               carve=[solid((-w / 2, 0, 0), (w / 2, d, t)), solid((-w / 2, 0, 0), (w / 2, 0.012, h)),
                      solid((-w / 2, 0, 0), (-w / 2 + t, d, h)), solid((w / 2 - t, 0, 0), (w / 2, d, h))])


def counter(rng: np.random.Generator, e: float, w: float | None = None) -> Obj:
    w = w or rng.uniform(1.6, 2.6)
    d, h = 0.62, rng.uniform(0.88, 0.92)
    body = M.solid(M.jitter(rng, [(0.93, 0.93, 0.9), (0.5, 0.35, 0.22), (0.35, 0.45, 0.4)][rng.integers(3)],
                             0.03), 0.02)
    front = M.panels(body, 0.6, 0.02, (0.6, h - 0.14), axes=(0, 2), origin=(-w / 2, 0.1))
    parts = [
        part(box((-w / 2, 0, 0.1), (w / 2, d - 0.04, h - 0.04), e, ("-y",)), COUNTER, front),
        part(box((-w / 2, 0, 0), (w / 2, d - 0.09, 0.1), e, ("-y", "-z")), COUNTER, M.solid((0.15, 0.15, 0.15))),
        part(box((-w / 2 - 0.02, 0, h - 0.04), (w / 2 + 0.02, d, h), e, ("-y",)), COUNTER, M.granite(rng)),
    ]
    return Obj("counter", COUNTER, parts, (w + 0.04, d, h),
               carve=[solid((-w / 2, 0, 0), (w / 2, d - 0.09, h)), solid((-w / 2, 0, 0.1), (w / 2, d - 0.04, h))])


def sink(rng: np.random.Generator, e: float, z0: float = 0.0) -> Obj:
    """A vessel basin with a tap; on a counter (``z0`` = counter height) or on a pedestal."""
    w, d, bh = rng.uniform(0.45, 0.6), rng.uniform(0.36, 0.45), 0.14
    mat = M.metal(rng, (0.75, 0.76, 0.78)) if (z0 > 0 and rng.random() < 0.5) else M.ceramic(rng)
    chrome = M.metal(rng, (0.82, 0.83, 0.85))
    y0 = 0.1
    parts = []
    base = z0
    if z0 == 0:  # pedestal
        parts.append(part(cylinder(0.09, 0, 0.72, e, (0, y0 + d / 2), caps=(False, False)), SINK, mat))
        base = 0.72
    t = 0.03
    rim = [box((-w / 2, y0, base), (w / 2, y0 + t, base + bh), e, NB),
           box((-w / 2, y0 + d - t, base), (w / 2, y0 + d, base + bh), e, NB),
           box((-w / 2, y0 + t, base), (-w / 2 + t, y0 + d - t, base + bh), e, NB),
           box((w / 2 - t, y0 + t, base), (w / 2, y0 + d - t, base + bh), e, NB),
           box((-w / 2 + t, y0 + t, base), (w / 2 - t, y0 + d - t, base + 0.02), e, NB)]
    parts.append(part(merge(rim), SINK, mat))
    parts.append(part(merge([cylinder(0.015, base, base + bh + 0.18, e, (0, y0 - 0.04)),
                             cbox((0, y0 + 0.03), (0.03, 0.14, 0.025), base + bh + 0.16, e)]), SINK, chrome))
    top = base + bh + 0.18
    carve = [solid((-w / 2, y0, base), (w / 2, y0 + d, base + 0.02), below=True)]
    if z0 == 0:
        carve.append(solid((-0.06, y0 + d / 2 - 0.06, 0), (0.06, y0 + d / 2 + 0.06, 0.72)))
    return Obj("sink", SINK, parts, (w, y0 + d, top), zmin=z0, carve=carve)


def refrigerator(rng: np.random.Generator, e: float) -> Obj:
    w, d, h = rng.uniform(0.6, 0.8), rng.uniform(0.62, 0.7), rng.uniform(1.7, 1.9)
    mat = M.metal(rng) if rng.random() < 0.5 else M.solid((0.95, 0.95, 0.95), 0.01)
    split = h * rng.uniform(0.3, 0.4)
    handle = M.solid((0.12, 0.12, 0.13))
    dd = 0.04  # doors stand proud of the body; the gap between them reads as a groove
    parts = [part(box((-w / 2, 0, 0), (w / 2, d - dd, h), e, ("-y", "-z")), REFRIGERATOR, mat),
             part(box((-w / 2, d - dd, 0.03), (w / 2, d, split - 0.01), e), REFRIGERATOR, mat),
             part(box((-w / 2, d - dd, split + 0.01), (w / 2, d, h - 0.01), e), REFRIGERATOR, mat),
             part(cbox((w / 2 - 0.06, d + 0.02), (0.025, 0.04, split - 0.2), 0.1, e), REFRIGERATOR, handle),
             part(cbox((w / 2 - 0.06, d + 0.02), (0.025, 0.04, (h - split) * 0.6), split + 0.08, e),
                  REFRIGERATOR, handle)]
    return Obj("refrigerator", REFRIGERATOR, parts, (w, d + 0.04, h), carve=[solid((-w / 2, 0, 0), (w / 2, d - dd, h))])


def toilet(rng: np.random.Generator, e: float) -> Obj:
    mat = M.ceramic(rng)
    seat = M.solid((0.95, 0.93, 0.88), 0.02) if rng.random() < 0.5 else mat
    parts = [
        part(cbox((0, 0.1), (0.42, 0.2, 0.38), 0.42, e, ("-y",)), TOILET, mat),
        part(cylinder(0.11, 0, 0.3, e, (0, 0.45), caps=(False, False), scale_xy=(1.0, 1.4)), TOILET, mat),
        part(ellipsoid((0.19, 0.26, 0.12), (0, 0.47, 0.32), e, z_min=0.25), TOILET, mat),
        part(cylinder(0.18, 0.41, 0.44, e, (0, 0.48), scale_xy=(1.0, 1.35)), TOILET, seat),
    ]
    return Obj("toilet", TOILET, parts, (0.42, 0.74, 0.8),
               carve=[solid((-0.21, 0, 0.42), (0.21, 0.2, 0.8)), solid((-0.075, 0.345, 0), (0.075, 0.555, 0.3))])


def bathtub(rng: np.random.Generator, e: float) -> Obj:
    w, d, h, t = rng.uniform(1.5, 1.75), rng.uniform(0.7, 0.8), rng.uniform(0.5, 0.58), 0.08
    mat = M.ceramic(rng)
    inner = M.solid((0.85, 0.9, 0.95), 0.02)
    parts = [
        part(merge([box((-w / 2, 0, 0), (w / 2, t, h), e, NB + ("-y",)),
                    box((-w / 2, d - t, 0), (w / 2, d, h), e, NB),
                    box((-w / 2, t, 0), (-w / 2 + t, d - t, h), e, NB),
                    box((w / 2 - t, t, 0), (w / 2, d - t, h), e, NB)]), BATHTUB, mat),
        part(box((-w / 2 + t, t, 0), (w / 2 - t, d - t, 0.1), e, NB), BATHTUB, inner),
    ]
    return Obj("bathtub", BATHTUB, parts, (w, d, h),
               carve=[solid((-w / 2, 0, 0), (w / 2, d, 0.1)), solid((-w / 2, 0, 0), (w / 2, t, h))])


def ottoman(rng: np.random.Generator, e: float) -> Obj:
    r, h = rng.uniform(0.25, 0.35), rng.uniform(0.4, 0.46)
    mat = M.leather(rng) if rng.random() < 0.5 else M.fabric(rng, pattern="checks")
    return Obj("ottoman", OTHERFURNITURE, [part(cylinder(r, 0, h, e, (0, r), caps=(False, True)), OTHERFURNITURE, mat)],
               (2 * r, 2 * r, h), carve=[solid((-0.7 * r, 0.3 * r, 0), (0.7 * r, 1.7 * r, h))])


def coat_rack(rng: np.random.Generator, e: float) -> Obj:
    mat = M.wood(rng, "dark", axis=2)
    h = rng.uniform(1.65, 1.8)
    hooks = [cylinder(0.04, h - 0.25 + 0.05 * k, h - 0.2 + 0.05 * k, e, (0.12 * np.cos(a), 0.25 + 0.12 * np.sin(a)))
             for k, a in enumerate(np.linspace(0, 2 * np.pi, 4, endpoint=False))]
    parts = [part(cylinder(0.025, 0, h, e, (0, 0.25)), OTHERFURNITURE, mat),
             part(cylinder(0.22, 0, 0.03, e, (0, 0.25), caps=(False, True)), OTHERFURNITURE, mat),
             part(merge(hooks), OTHERFURNITURE, mat)]
    return Obj("coat_rack", OTHERFURNITURE, parts, (0.5, 0.5, h), carve=[solid((-0.15, 0.1, 0), (0.15, 0.4, 0.03))])


def bench(rng: np.random.Generator, e: float) -> Obj:
    w, d, h = rng.uniform(1.0, 1.4), rng.uniform(0.35, 0.45), rng.uniform(0.42, 0.48)
    wood = M.wood(rng, "medium")
    cushion = M.fabric(rng, pattern="solid")
    parts = [part(merge([box((-w / 2, 0, 0), (-w / 2 + 0.05, d, h - 0.08), e, NB),
                         box((w / 2 - 0.05, 0, 0), (w / 2, d, h - 0.08), e, NB),
                         box((-w / 2, 0, h - 0.08), (w / 2, d, h - 0.05), e)]), OTHERFURNITURE, wood),
             part(box((-w / 2 + 0.02, 0.02, h - 0.05), (w / 2 - 0.02, d - 0.02, h), e), OTHERFURNITURE, cushion)]
    return Obj("bench", OTHERFURNITURE, parts, (w, d, h))


def otherfurniture(rng: np.random.Generator, e: float) -> Obj:
    return [ottoman, coat_rack, bench][rng.integers(3)](rng, e)


def cardboard_box(rng: np.random.Generator, e: float) -> Obj:
    s = rng.uniform(0.3, 0.55, 3) * (1, 1, 0.8)
    return Obj("box", BOX, [part(box((-s[0] / 2, 0, 0), (s[0] / 2, s[1], s[2]), e, NB), BOX, M.cardboard(rng))],
               tuple(s), carve=[solid((-s[0] / 2, 0, 0), (s[0] / 2, s[1], s[2]))])


def floor_lamp(rng: np.random.Generator, e: float) -> Obj:
    h = rng.uniform(1.5, 1.7)
    metal = M.metal(rng, (0.2, 0.2, 0.2))
    shade = M.solid(M.jitter(rng, (0.95, 0.9, 0.75), 0.04), 0.02)
    parts = [part(merge([cylinder(0.015, 0, h - 0.25, e, (0, 0.2)),
                         cylinder(0.15, 0, 0.025, e, (0, 0.2), caps=(False, True))]), LAMP, metal),
             part(frustum(0.2, 0.12, h - 0.3, h, e, (0, 0.2)), LAMP, shade)]
    return Obj("lamp", LAMP, parts, (0.4, 0.4, h), carve=[solid((-0.1, 0.1, 0), (0.1, 0.3, 0.025))])
