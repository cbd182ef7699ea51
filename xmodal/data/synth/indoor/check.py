"""2D/3D label agreement of a ScanNet-layout world with ``label_nyu40/`` images.

For every frame: project the mesh vertices with the pose and the depth intrinsics, keep those
the depth map sees (:func:`~xmodal.geometry.depth_map_visibility`), look up the label pixel
they fall on (colour intrinsics: label images are aligned with ``color/``), and compare classes.
Everything is read through :class:`~xmodal.data.scannet.ScanNetDataset`, so this also checks
the loader, the pose / intrinsics conventions and the depth units end to end.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from xmodal.data.labels import NYU40_TO_SCANNET20, SCANNET_IGNORE, map_labels
from xmodal.errors import XmodalError
from xmodal.geometry.projection import pixel_indices


def label_boundary(label: np.ndarray, radius: int = 1) -> np.ndarray:
    """[H, W] bool: pixels whose (2 radius + 1)^2 neighbourhood holds more than one label."""
    h, w = label.shape
    p = np.pad(label, radius, mode="edge")
    out = np.zeros((h, w), bool)
    for dr in range(2 * radius + 1):
        for dc in range(2 * radius + 1):
            out |= p[dr : dr + h, dc : dc + w] != label
    return out


def label_agreement(root: str | os.PathLike, splits=("train", "val"), abs_tol: float = 0.05,
                    rel_tol: float = 0.02, frame_stride: int = 1, boundary_px: int = 1) -> dict[str, Any]:
    """Agreement of vertex classes with the label pixels they project to.

    A vertex is visible in a frame when it projects inside the depth image and
    ``depth_map_visibility(..., abs_tol, rel_tol)`` accepts it. ScanNet-20 figures count visible
    vertices whose class is one of the 20 (a label pixel of an ignored class is a disagreement);
    NYU40 figures count all visible annotated vertices. ``*_interior`` figures leave out
    vertices whose label pixel lies within ``boundary_px`` pixels of a label boundary: at
    silhouettes and contact lines (picture on wall, leg on floor) a vertex lies exactly on the
    edge between two surfaces and either label is right, which caps the raw figure at roughly
    ``1 - edge length x outline length / visible area``.

    Returns:
        ``{"scannet20", "nyu40", "scannet20_interior", "nyu40_interior"}`` fractions,
        ``"visible_vertices"`` (ScanNet-20 count over all frames), ``"frames"`` and
        ``"per_scene"`` (raw ScanNet-20 fraction per scene).
    """
    from xmodal.data.scannet import ScanNetDataset

    tot: dict[str, list[int]] = {k: [0, 0] for k in ("scannet20", "nyu40", "scannet20_interior", "nyu40_interior")}
    frames = 0
    per_scene = {}
    for split in splits:
        ds = ScanNetDataset(root, split, frame_stride=frame_stride)
        for i in range(len(ds)):
            sc = ds[i]
            a_s = n_s = 0
            for fr in sc.frames:
                if fr.label is None:
                    raise XmodalError(f"{sc.name} frame {fr.frame_id} has no label_nyu40 image; "
                                      "agreement needs a synthetic world.")
                uv_c, _, vis = fr.project(sc.vertices, abs_tol, rel_tol)
                idx = np.flatnonzero(vis)
                rows, cols = pixel_indices(uv_c[vis])
                interior = ~label_boundary(fr.label, boundary_px)[rows, cols]
                pix40 = fr.label[rows, cols]
                v40 = sc.labels_nyu40[idx]
                v20 = sc.labels[idx]
                pix20 = map_labels(pix40, NYU40_TO_SCANNET20, f"label image of {sc.name} frame {fr.frame_id}")
                pix20 = pix20.astype(np.int64)
                for key, vert, pix, m in (("nyu40", v40, pix40, v40 > 0),
                                          ("scannet20", v20, pix20, v20 != SCANNET_IGNORE)):
                    for suffix, mm in (("", m), ("_interior", m & interior)):
                        tot[key + suffix][0] += int((pix[mm] == vert[mm]).sum())
                        tot[key + suffix][1] += int(mm.sum())
                m = v20 != SCANNET_IGNORE
                a_s += int((pix20[m] == v20[m]).sum())
                n_s += int(m.sum())
                frames += 1
            per_scene[sc.name] = a_s / max(n_s, 1)
    out: dict[str, Any] = {k: a / max(n, 1) for k, (a, n) in tot.items()}
    out.update(visible_vertices=tot["scannet20"][1], frames=frames, per_scene=per_scene)
    return out
