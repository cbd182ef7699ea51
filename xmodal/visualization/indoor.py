"""Pictures of a ScanNet scene: mesh vertices projected into a posed frame, coloured by class.

Vertices are moved world -> camera with the inverse of the frame's camera-to-world pose,
occlusion-tested against the frame's depth map, and drawn on the colour image; next to it the
frame's ground-truth label image (synthetic worlds) or its depth map (real ScanNet).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from xmodal.data.labels import NYU40_TO_SCANNET20, SCANNET20_CLASSES, SCANNET_IGNORE, map_labels
from xmodal.data.scannet import ScanNetDataset, ScanNetScene
from xmodal.errors import XmodalError
from xmodal.visualization.draw import annotate, blend, grid, legend, save_png, splat_points, value_colors

#: Colours of the ScanNet-20 classes (index 0..19; the ScanNet benchmark's colours) and ignore
#: (index 20, black).
SCANNET20_PALETTE = np.array(
    [
        [174, 199, 232], [152, 223, 138], [31, 119, 180], [255, 187, 120], [188, 189, 34],
        [140, 86, 75], [255, 152, 150], [214, 39, 40], [197, 176, 213], [148, 103, 189],
        [196, 156, 148], [23, 190, 207], [247, 182, 210], [219, 219, 141], [255, 127, 14],
        [158, 218, 229], [44, 160, 44], [112, 128, 144], [227, 119, 194], [82, 84, 163],
        [0, 0, 0],
    ],
    dtype=np.uint8,
)  # fmt: skip


def _class_colors(labels20: np.ndarray) -> np.ndarray:
    return SCANNET20_PALETTE[np.where(labels20 == SCANNET_IGNORE, 20, labels20)]


def render_indoor_sample(
    info: str | os.PathLike, index: int, out_dir: str | os.PathLike, frame: int = 0, root: str | None = None
) -> list[Path]:
    """Write ``frame_projection.png`` for scene ``index`` (over all splits of the info file);
    ``root`` overrides the ScanNet root recorded in the info file."""
    ds = ScanNetDataset(info, split="all", root=root)
    if not 0 <= index < len(ds):
        raise XmodalError(f"--index {index} is out of range: '{info}' lists {len(ds)} scenes.")
    return render_indoor_frame(ds[index], frame, out_dir)


def render_indoor_frame(scene: ScanNetScene, frame: int, out_dir: str | os.PathLike) -> list[Path]:
    """Write ``frame_projection.png``: colour | vertices by class (depth-tested) | GT or depth."""
    if not 0 <= frame < len(scene.frames):
        raise XmodalError(f"--frame {frame} is out of range: {scene.name} has {len(scene.frames)} frames.")
    fr = scene.frames[frame]
    h, w = fr.image.shape[:2]
    uv, depth, visible = fr.project(scene.vertices.astype(np.float64))
    radius = max(1, round(w / 640))
    overlay = splat_points(fr.image, uv[visible], _class_colors(scene.labels[visible]), radius, -depth[visible])
    tiles = [
        annotate(fr.image, f"{scene.name} frame {fr.frame_id}"),
        annotate(overlay, f"vertices by class, depth-test visible ({int(visible.sum())})"),
    ]
    if fr.label is not None:
        lab20 = map_labels(fr.label, NYU40_TO_SCANNET20, f"label image of {scene.name} frame {fr.frame_id}")
        tiles.append(annotate(blend(fr.image, _class_colors(lab20), 0.7), "GT label image (ScanNet-20)"))
    else:
        from PIL import Image

        d = value_colors(fr.depth.ravel(), 0, max(float(fr.depth.max()), 1e-3)).reshape(*fr.depth.shape, 3)
        d[fr.depth == 0] = 0
        tiles.append(annotate(np.asarray(Image.fromarray(d).resize((w, h), Image.NEAREST)), "depth"))
    pic = grid(tiles, ncols=len(tiles))
    pic = np.concatenate([pic, legend([*SCANNET20_CLASSES, "ignore"], SCANNET20_PALETTE, pic.shape[1])], axis=0)
    return [save_png(Path(out_dir) / "frame_projection.png", pic)]
