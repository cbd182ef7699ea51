"""The nuscenes_pairs dataset: pairs agree with the per-camera geometry and the GT masks, the
z-buffer removes hidden points, superpixels load with data-driven batch offsets, augmentations
are seeded by (seed, epoch, index), and scans with no visible point are skipped and counted."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from xmodal.data.lidar_camera import NuScenesPairsConfig, NuScenesPairsDataset
from xmodal.data.nuscenes_info import prepare_nuscenes
from xmodal.errors import ConfigError, DataError
from xmodal.structures import collate_lidar_camera


@pytest.fixture(scope="module")
def info(driving_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("pairs") / "info.pkl"
    prepare_nuscenes(driving_world, "v1.0-mini", out, split="all", max_sweeps=0, progress=False)
    return out


def test_pairs_match_geometry_and_masks(info):
    ds = NuScenesPairsDataset(NuScenesPairsConfig(info_file=str(info), load_masks=True, occlusion="none"))
    s, raw = ds[0], ds.base[0]
    assert s.points.shape[1] == 4 and s.points[:, 3].max() <= 1.0  # intensity / 255
    assert s.images.shape == (6, 3, 225, 400) and s.images.dtype == torch.uint8
    for ci in range(6):
        uv, _, valid, _ = raw.project(ci)
        sel = s.pairs.camera == ci
        assert torch.equal(s.pairs.point[sel], torch.from_numpy(np.flatnonzero(valid)))
        np.testing.assert_array_equal(s.pairs.col[sel].numpy(), np.floor(uv[valid, 0]).astype(np.int64))
    general = raw.masks[s.pairs.camera, s.pairs.row, s.pairs.col]
    from xmodal.data.labels import NUSCENES_GENERAL_TO_EVAL

    agree = (torch.from_numpy(NUSCENES_GENERAL_TO_EVAL[general].astype(np.int64)) == s.labels[s.pairs.point]).float().mean()
    assert agree > 0.9
    zb = NuScenesPairsDataset(NuScenesPairsConfig(info_file=str(info), load_masks=True))[0]
    agree_zb = (torch.from_numpy(NUSCENES_GENERAL_TO_EVAL[raw.masks[zb.pairs.camera, zb.pairs.row, zb.pairs.col]].astype(np.int64))
                == zb.labels[zb.pairs.point]).float().mean()
    assert len(zb.pairs) < len(s.pairs) and agree_zb > agree  # the z-buffer removes hidden (mislabelled) pairs


def test_superpixels_augmentation_seed_and_lidar_only(info, driving_world):
    from xmodal.data.superpixels import prepare_superpixels
    from xmodal.data.transforms import build_transforms

    prepare_superpixels(driving_world, method="fast", progress=False, limit=None)
    tf = build_transforms([{"type": "rotate_z"}, {"type": "flip_horizontal"}])
    cfg = NuScenesPairsConfig(info_file=str(info), superpixels="slic_n150_c6_s3_fast", seed=3)
    ds = NuScenesPairsDataset(cfg, transforms=tf)
    a, b = ds[1], ds[1]
    assert torch.equal(a.points, b.points) and torch.equal(a.images, b.images)
    ds.set_epoch(1)
    assert not torch.equal(ds[1].points, a.points)  # another epoch, another augmentation
    batch = collate_lidar_camera([a, ds[0]])
    k0 = int(a.superpixels.max()) + 1
    assert batch.superpixels.shape == (12, 225, 400) and batch.num_superpixels >= k0
    lidar = NuScenesPairsDataset(NuScenesPairsConfig(info_file=str(info), load_images=False))[0]
    assert lidar.images is None and len(lidar.pairs) == 0 and lidar.labels is not None
    with pytest.raises(ConfigError, match="load_images"):
        NuScenesPairsDataset(NuScenesPairsConfig(info_file=str(info), load_images=False, superpixels="x"))
    with pytest.raises(DataError, match="prepare superpixels"):
        NuScenesPairsDataset(NuScenesPairsConfig(info_file=str(info), superpixels="slic_n99_c1_s1_fast"))


def test_scan_without_visible_points_is_skipped_counted_and_warned(info):
    ds = NuScenesPairsDataset(NuScenesPairsConfig(info_file=str(info), min_depth=1e6, require_pairs=True))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert ds[0] is None
        assert ds[0] is None  # warned once per scan
    assert sum("no point visible" in str(w.message) for w in caught) == 1
    batch = collate_lidar_camera([ds[0], ds[1]], require_pairs=True)
    assert batch.skipped == 2 and batch.batch_size == 0
