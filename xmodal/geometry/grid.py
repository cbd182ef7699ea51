"""The whole-number rule shared by every regular grid (voxel configs, ``xmodal.ops.voxelize``)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def grid_cells(
    lower: Sequence[float],
    upper: Sequence[float],
    size: Sequence[float],
    axes: Sequence[str] = ("x", "y", "z"),
    name: str = "point_cloud_range",
    units: Sequence[str] = ("m", "m", "m"),
) -> list[int]:
    """Cells along each axis of the box ``lower .. upper`` cut into cells of ``size``.

    Raises ValueError (naming ``name`` and the axis) when a size is not > 0, an extent is empty
    or inverted, or an extent is not a whole number of cells (tolerance 1e-4 cell); the message
    suggests a range that fits.
    """
    cells_per_axis = []
    for axis, a, b, s, unit in zip(axes, lower, upper, size, units):
        if not s > 0:
            raise ValueError(f"voxel_size along {axis} must be > 0, got {s}.")
        if not b > a:
            raise ValueError(
                f"{name} along {axis} is empty or inverted ({a} .. {b}); "
                "write it as [lo0, lo1, lo2, hi0, hi1, hi2] (x_min, y_min, z_min, x_max, ...)."
            )
        cells = (b - a) / s
        if abs(cells - round(cells)) > 1e-4:
            fit = round(cells) * s
            raise ValueError(
                f"{name} extent along {axis} ({b - a:g} {unit}) is not a whole number "
                f"of voxels of {s:g} {unit} ({cells:.3f}); change the range to e.g. "
                f"{a:g} .. {a + fit:g} or pick a voxel_size that divides {b - a:g}."
            )
        cells_per_axis.append(int(math.floor(cells + 0.5)))
    return cells_per_axis
