"""Self-check of a driving world: LiDAR labels vs camera GT masks at the projected pixels.

Runs through xmodal's own nuScenes dataset (info file -> :class:`NuScenesDataset`), so it checks
the writer, ``prepare`` and the loader's calibration chain together; the chain itself is tested
against the devkit's ``map_pointcloud_to_image`` in ``tests/data/test_nuscenes.py``.
"""

from __future__ import annotations

import numpy as np

from xmodal.data.nuscenes import NuScenesDataset
from xmodal.errors import XmodalError
from xmodal.geometry.projection import pixel_indices


def lidar_mask_agreement(dataset: NuScenesDataset, *, min_depth: float = 1.0) -> dict:
    """Fraction of visible keyframe LiDAR points whose lidarseg class equals the mask class.

    For every keyframe and camera, points go through the full chain (``T_cam_from_lidar`` with
    the camera's own ego pose), are kept when deeper than ``min_depth`` inside the image and
    visible in the LiDAR z-buffer (:meth:`NuScenesSample.project`), and
    are compared with the GT mask pixel they fall in (32-class general ids on both sides).

    The dataset must load masks (``load_masks=True``) and have lidarseg labels, with sweeps=0.

    Returns ``{"agreement", "points", "per_camera": {cam: float},
    "confusions": [(lidar_class, mask_class, count), ...]}`` (top 10 disagreements).
    """
    agree: dict[str, int] = {}
    total: dict[str, int] = {}
    conf = np.zeros((256, 256), dtype=np.int64)
    for i in range(len(dataset)):
        s = dataset[i]
        if s.masks is None or s.labels_general is None:
            raise XmodalError(
                f"lidar_mask_agreement: sample {s.token} has no lidarseg labels or GT masks; it needs a "
                "synthetic world and dataset.load_masks=true."
            )
        for ci, cam in enumerate(s.cameras):
            uv, _, _, vis = s.project(ci, min_depth)
            rows, cols = pixel_indices(uv[vis])
            m, lab = s.masks[ci][rows, cols], s.labels_general[vis]
            agree[cam] = agree.get(cam, 0) + int((m == lab).sum())
            total[cam] = total.get(cam, 0) + int(vis.sum())
            np.add.at(conf, (lab, m), 1)
    np.fill_diagonal(conf, 0)
    flat = conf.ravel()
    top = np.argsort(flat)[::-1][:10]
    n = sum(total.values())
    return {
        "agreement": sum(agree.values()) / max(1, n),
        "points": n,
        "per_camera": {c: agree[c] / max(1, total[c]) for c in sorted(total)},
        "confusions": [(int(k // 256), int(k % 256), int(flat[k])) for k in top if flat[k] > 0],
    }
