"""Object templates shared by the furniture and fixture builders.

An :class:`Obj` is built in its own frame: x across its front (centred), y from its back
(``y = 0``, the wall for wall-standing things) to its front, z up from the floor (absolute
height, metres). ``carve`` boxes (same frame) are solid regions: the room's surfaces inside
them (floor under a cabinet, wall behind a picture) are removed, as a scanned reconstruction
never sees them — otherwise hidden wall / floor vertices a few centimetres behind an object
would pass a depth-map occlusion test with the object's label.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xmodal.data.labels import NYU40_INDEX
from xmodal.data.synth.indoor.shapes import Material, Mesh, Part

# NYU40 ids used by the indoor world.
_N = NYU40_INDEX
WALL, FLOOR, CABINET, BED, CHAIR = _N["wall"], _N["floor"], _N["cabinet"], _N["bed"], _N["chair"]
SOFA, TABLE, DOOR, WINDOW, BOOKSHELF = _N["sofa"], _N["table"], _N["door"], _N["window"], _N["bookshelf"]
PICTURE, COUNTER, DESK, CURTAIN = _N["picture"], _N["counter"], _N["desk"], _N["curtain"]
PILLOW, CEILING, REFRIGERATOR, BOX = _N["pillow"], _N["ceiling"], _N["refrigerator"], _N["box"]
SHOWER_CURTAIN, TOILET, SINK, LAMP = _N["shower curtain"], _N["toilet"], _N["sink"], _N["lamp"]
BATHTUB, OTHERFURNITURE = _N["bathtub"], _N["otherfurniture"]


@dataclass
class Obj:
    """An object in its own frame (see module docstring)."""

    name: str  # template name, e.g. "chair", "coat_rack"
    nyu40: int  # main NYU40 class (parts may differ, e.g. pillows on a bed)
    parts: list[Part]
    size: tuple[float, float, float]  # (w, d, h): x in [-w/2, w/2], y in [0, d], z in [zmin, h]
    zmin: float = 0.0
    # Solid boxes (lo, hi[, nyu40]) that hide what lies inside them: triangles of other objects,
    # or of this object with another label (default: ``nyu40``), are removed there.
    carve: list[tuple] = field(default_factory=list)
    plane: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # walls / floor: (origin, du, dv)

    def __post_init__(self) -> None:  # accept ``carve=[solid(...), ...]`` (lists of boxes)
        flat = []
        for c in self.carve:
            flat.extend(c if isinstance(c, list) else [c])
        self.carve = flat


def part(mesh: Mesh, nyu40: int, material: Material) -> Part:
    return Part(mesh, nyu40, material)


def solid(lo, hi, shrink: float = 0.002, reach: float = 0.03, wall: bool | None = None,
          below: bool | None = None, label: int | None = None) -> list[tuple]:
    """Carve boxes of a solid block ``lo..hi``, shrunk by ``shrink`` so that no hole can show.

    One box reaches ``reach`` past the block's back (-y) when it stands against the wall
    (``wall``; default: ``lo_y == 0``), another past its bottom (-z) when it rests on a surface
    (``below``; default: ``lo_z == 0``, the floor), to take in the surface it touches; two boxes
    rather than one so that the floor hole does not grow behind the block.
    """
    lo = np.asarray(lo, np.float64) + shrink
    hi = np.asarray(hi, np.float64) - shrink
    at_wall = wall if wall is not None else abs(lo[1] - shrink) < 1e-9
    on_floor = below if below is not None else abs(lo[2] - shrink) < 1e-9
    boxes = []
    if at_wall:
        boxes.append(lo - np.array([0.0, reach + shrink, 0.0]))
    if on_floor:
        boxes.append(lo - np.array([0.0, 0.0, reach + shrink]))
    extra = () if label is None else (label,)
    return [(b, hi) + extra for b in boxes] or [(lo, hi) + extra]
