"""Small raster helpers on uint8 RGB arrays: palettes, point splats, lines, grids, PNG output."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from xmodal.utils.atomic import atomic_write

#: Colours of the 16 nuScenes evaluation classes (index 0 = ignore, grey), close to the devkit's.
NUSCENES_EVAL_PALETTE = np.array(
    [
        [120, 120, 120], [255, 120, 50], [255, 192, 203], [255, 255, 0], [0, 150, 245],
        [0, 255, 255], [255, 127, 0], [255, 0, 0], [255, 240, 150], [135, 60, 0],
        [160, 32, 240], [255, 0, 255], [139, 137, 137], [75, 0, 75], [150, 240, 80],
        [230, 230, 250], [0, 175, 0],
    ],
    dtype=np.uint8,
)  # fmt: skip


def value_colors(values: np.ndarray, vmin: float, vmax: float, cmap: str = "turbo") -> np.ndarray:
    """[N, 3] uint8 colours of scalar ``values`` through a matplotlib colormap."""
    from matplotlib import colormaps

    t = np.clip((np.asarray(values, dtype=np.float64) - vmin) / max(vmax - vmin, 1e-9), 0, 1)
    return (colormaps[cmap](t)[:, :3] * 255).astype(np.uint8)


def splat_points(
    image: np.ndarray,  # [H, W, 3] uint8, modified copy returned
    uv: np.ndarray,  # [N, 2] pixel coords (u = column, v = row)
    colors: np.ndarray,  # [N, 3] uint8
    radius: int = 1,
    order: np.ndarray | None = None,  # [N] draw order key; larger drawn later (e.g. -depth)
) -> np.ndarray:
    """Draw each point as a (2r+1)^2 square; later points overwrite earlier ones."""
    out = image.copy()
    h, w = out.shape[:2]
    idx = np.argsort(order, kind="stable") if order is not None else np.arange(len(uv))
    r0 = np.floor(uv[idx, 1]).astype(np.int64)
    c0 = np.floor(uv[idx, 0]).astype(np.int64)
    col = colors[idx]
    for dr in range(-radius, radius + 1):
        for dc in range(-radius, radius + 1):
            r, c = r0 + dr, c0 + dc
            ok = (r >= 0) & (r < h) & (c >= 0) & (c < w)
            out[r[ok], c[ok]] = col[ok]
    return out


def blend(image: np.ndarray, overlay: np.ndarray, alpha: float) -> np.ndarray:
    """``(1 - alpha) * image + alpha * overlay`` as uint8."""
    return ((1 - alpha) * image.astype(np.float32) + alpha * overlay.astype(np.float32)).astype(np.uint8)


def annotate(image: np.ndarray, text: str) -> np.ndarray:
    """Write ``text`` in the top-left corner on a dark band."""
    im = Image.fromarray(image)
    d = ImageDraw.Draw(im)
    box = d.textbbox((4, 3), text)
    d.rectangle((0, 0, box[2] + 4, box[3] + 3), fill=(0, 0, 0))
    d.text((4, 3), text, fill=(255, 255, 255))
    return np.asarray(im)


def grid(images: list[np.ndarray], ncols: int, pad: int = 4) -> np.ndarray:
    """Tile same-height images into rows of ``ncols`` (widths may differ; padded white)."""
    rows = [images[i : i + ncols] for i in range(0, len(images), ncols)]
    h = max(im.shape[0] for im in images)
    row_w = [sum(im.shape[1] for im in r) + pad * (len(r) - 1) for r in rows]
    out = np.full((len(rows) * h + pad * (len(rows) - 1), max(row_w), 3), 255, np.uint8)
    for i, r in enumerate(rows):
        x = 0
        for im in r:
            out[i * (h + pad) : i * (h + pad) + im.shape[0], x : x + im.shape[1]] = im
            x += im.shape[1] + pad
    return out


def legend(names: list[str], palette: np.ndarray, width: int) -> np.ndarray:
    """A strip with one coloured swatch and name per class."""
    per_row = max(1, width // 150)
    rows = (len(names) + per_row - 1) // per_row
    im = Image.new("RGB", (width, rows * 16 + 4), (255, 255, 255))
    d = ImageDraw.Draw(im)
    for i, name in enumerate(names):
        x, y = (i % per_row) * 150 + 4, (i // per_row) * 16 + 3
        d.rectangle((x, y, x + 11, y + 11), fill=tuple(int(v) for v in palette[i]))
        d.text((x + 15, y), name, fill=(0, 0, 0))
    return np.asarray(im)


def save_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write ``image`` ([H, W, 3] or [H, W] uint8) as a PNG atomically."""
    path = Path(path)
    with atomic_write(path, "wb") as f:
        Image.fromarray(image).save(f, format="PNG")
    return path
