"""Pictures of a nuScenes keyframe: LiDAR projected on the six cameras, and a bird's-eye view.

These are how one checks calibration by eye: points coloured by depth must hug object outlines
in every camera, and points coloured by class must land on pixels of the same class.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from xmodal.data.labels import NUSCENES_EVAL_CLASSES, NUSCENES_GENERAL_TO_EVAL
from xmodal.data.nuscenes import NuScenesSample
from xmodal.errors import XmodalError
from xmodal.visualization.draw import (
    NUSCENES_EVAL_PALETTE,
    annotate,
    blend,
    grid,
    legend,
    save_png,
    splat_points,
    value_colors,
)

#: Camera layout of the 2 x 3 grid, as seen from the driver's seat.
GRID_ORDER = ("CAM_FRONT_LEFT", "CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_BACK_LEFT", "CAM_BACK", "CAM_BACK_RIGHT")


def _projections(sample: NuScenesSample):
    """Per camera: (index, name, uv [K, 2], depth [K], point indices [K], z-buffer visible [K])
    of the points inside the image and deeper than 1 m."""
    for ci, cam in enumerate(sample.cameras):
        uv, depth, valid, vis = sample.project(ci)
        idx = np.flatnonzero(valid)
        yield ci, cam, uv[idx], depth[idx], idx, vis[idx]


def render_driving_sample(sample: NuScenesSample, out_dir: str | os.PathLike, max_depth: float = 60.0) -> list[Path]:
    """Write ``projection_depth.png``, ``projection_class.png`` (and ``projection_mask.png``
    when GT masks are loaded) and ``bev.png`` into ``out_dir``; return the paths."""
    if sample.images is None:
        raise XmodalError("render_driving_sample needs images: set dataset.load_images=true.")
    out_dir = Path(out_dir)
    radius = max(1, round(sample.images.shape[2] / 800))
    depth_tiles, class_tiles, mask_tiles = {}, {}, {}
    for ci, cam, uv, depth, idx, vis in _projections(sample):
        img = sample.images[ci]
        order = -depth  # near points drawn last
        depth_tiles[cam] = annotate(
            splat_points(img, uv, value_colors(depth, 0, max_depth), radius, order),
            f"{cam}  depth 0-{max_depth:.0f} m  ({len(idx)} pts)",
        )
        if sample.labels is not None:
            cols = NUSCENES_EVAL_PALETTE[sample.labels[idx[vis]]]
            class_tiles[cam] = annotate(
                splat_points(img, uv[vis], cols, radius, order[vis]),
                f"{cam}  class, z-buffer visible ({int(vis.sum())}/{len(idx)})",
            )
        if sample.masks is not None:
            mask_rgb = NUSCENES_EVAL_PALETTE[NUSCENES_GENERAL_TO_EVAL[sample.masks[ci]]]
            mask_tiles[cam] = annotate(blend(img, mask_rgb, 0.6), f"{cam}  GT mask (16 classes)")
    paths = []
    names = list(NUSCENES_EVAL_CLASSES)
    for fname, tiles, with_legend in (
        ("projection_depth.png", depth_tiles, False),
        ("projection_class.png", class_tiles, True),
        ("projection_mask.png", mask_tiles, True),
    ):
        if not tiles:
            continue
        pic = grid([tiles[c] for c in GRID_ORDER if c in tiles], ncols=3)
        if with_legend:
            pic = np.concatenate([pic, legend(names, NUSCENES_EVAL_PALETTE, pic.shape[1])], axis=0)
        paths.append(save_png(out_dir / fname, pic))
    paths.append(save_png(out_dir / "bev.png", render_bev(sample)))
    return paths


def render_bev(sample: NuScenesSample, extent: float = 50.0, resolution: float = 0.1) -> np.ndarray:
    """Bird's-eye view [H, W, 3] of the points (class colours, else height) and boxes.

    The image shows the LiDAR frame's x to the right and y up (for nuScenes LIDAR_TOP, forward
    is up), ``extent`` metres each way at ``resolution`` metres per pixel.
    """
    from PIL import Image, ImageDraw

    size = int(round(2 * extent / resolution))
    img = np.full((size, size, 3), 20, np.uint8)
    p = sample.points
    u = (p[:, 0] + extent) / resolution
    v = (extent - p[:, 1]) / resolution
    if sample.labels is not None:
        cols = NUSCENES_EVAL_PALETTE[sample.labels]
    else:
        cols = value_colors(p[:, 2], -3, 3)
    img = splat_points(img, np.stack([u, v], 1), cols, radius=1, order=p[:, 2])
    im = Image.fromarray(img)
    d = ImageDraw.Draw(im)
    for ring in range(10, int(extent) + 1, 10):  # range rings every 10 m
        r = ring / resolution
        d.ellipse((size / 2 - r, size / 2 - r, size / 2 + r, size / 2 + r), outline=(70, 70, 70))
    for (x, y, _, w, l, _, yaw), name in zip(sample.boxes, sample.box_names):
        c, s = np.cos(yaw), np.sin(yaw)
        corners = np.array([[l / 2, w / 2], [l / 2, -w / 2], [-l / 2, -w / 2], [-l / 2, w / 2]])
        xy = corners @ np.array([[c, s], [-s, c]]) + [x, y]
        pix = [((px + extent) / resolution, (extent - py) / resolution) for px, py in xy]
        d.polygon(pix, outline=(255, 255, 255))
        front = ((x + c * l / 2 + extent) / resolution, (extent - (y + s * l / 2)) / resolution)
        d.line([((x + extent) / resolution, (extent - y) / resolution), front], fill=(255, 255, 255))
    d.text((6, 6), f"{sample.scene_name}  BEV +-{extent:.0f} m, rings every 10 m, {len(sample.boxes)} boxes",
           fill=(255, 255, 255))
    out = np.asarray(im)
    if sample.labels is not None:
        out = np.concatenate([out, legend(list(NUSCENES_EVAL_CLASSES), NUSCENES_EVAL_PALETTE, size)], axis=0)
    return out
