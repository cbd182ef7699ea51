"""LiDAR scans paired with their camera pixels, for distillation and LiDAR segmentation.

``NuScenesPairsDataset`` (``dataset: {type: nuscenes_pairs}``) wraps the keyframe reader of
:mod:`xmodal.data.nuscenes` and returns :class:`~xmodal.structures.LidarCameraSample` tensors:

- ``points`` [N, 3 + F]: x, y, z in the LiDAR frame (metres), then the ``point_features``
  columns (``intensity`` scaled to [0, 1] by 1/255, ``time_lag`` in seconds, ``ring``);
- ``labels`` [N] int64, the 16 lidarseg evaluation classes (0 = ignore);
- with ``load_images``: the camera images [C, 3, H, W] uint8 and the point <-> pixel pairs of
  every camera: projection through the full calibration chain (each camera's own ego pose),
  ``depth > min_depth``, inside the image, and (``occlusion: zbuffer``, the default) the LiDAR
  z-buffer test of :func:`xmodal.ops.zbuffer_visibility` so that points the camera cannot see
  (parallax behind poles, cars) are not paired — SLidR and ScaLR skip this test;
- superpixels from the on-disk cache (``superpixels: <tag>``, written by ``xmodal prepare
  superpixels``) and teacher feature maps from a teacher cache (``teacher_cache: <dir>``).

Augmentations (``xmodal.data.transforms``) are passed in as one callable and draw from a
generator seeded by ``(seed, epoch, index)``: the same sample gets the same augmentation in a
resumed run and in any number of processes. Call :meth:`set_epoch` before each epoch.

A scan with no point visible in any camera yields ``None`` when pairs are required
(``require_pairs``, set for distillation): the collate drops it and counts it, the dataset warns
once per scan (``skipped_tokens``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import torch

from xmodal.data.nuscenes import NuScenesDataset, NuScenesDatasetConfig
from xmodal.errors import ConfigError, DataError
from xmodal.registry import DATASETS
from xmodal.structures import LidarCameraSample, PixelPairs

__all__ = ["NuScenesPairsConfig", "NuScenesPairsDataset", "POINT_FEATURES", "pair_points"]

#: Point feature columns that can follow x, y, z.
POINT_FEATURES = ("intensity", "time_lag", "ring")


@dataclass
class NuScenesPairsConfig(NuScenesDatasetConfig):
    """Options of :class:`NuScenesPairsDataset` (``dataset: {type: nuscenes_pairs}``), on top of
    the keyframe reader's (``info_file``, ``root``, ``sweeps``, ``cameras``, ``load_images``...)."""

    point_features: list[str] = field(default_factory=lambda: ["intensity"])
    min_depth: float = 1.0  # metres; pairs need camera z > min_depth (SLidR: 1 m)
    occlusion: Literal["zbuffer", "none"] = "zbuffer"
    superpixels: Optional[str] = None  # cache tag under <root>/superpixels/, e.g. slic_n150_c6_s3_fast
    teacher_cache: Optional[str] = None  # folder written by build_teacher_cache
    split_file: Optional[str] = None  # keep only the scenes / frames this file names (data/splits/)
    require_pairs: bool = False  # distillation: skip scans with fewer than min_pairs pairs
    min_pairs: int = 1
    seed: int = 0  # augmentation seed (combined with epoch and index)

    def validate(self) -> None:
        super().validate()
        bad = [f for f in self.point_features if f not in POINT_FEATURES]
        if bad:
            raise ConfigError(f"dataset.point_features: unknown column(s) {bad}; allowed: {list(POINT_FEATURES)}")
        if self.min_depth < 0 or self.min_pairs < 0:
            raise ConfigError("dataset.min_depth and dataset.min_pairs must be >= 0")
        if (self.superpixels or self.teacher_cache or self.require_pairs) and not self.load_images:
            raise ConfigError(
                "dataset.superpixels / teacher_cache / require_pairs need camera pairs: set dataset.load_images=true"
            )


def pair_points(
    points: torch.Tensor,  # [N, 3+] LiDAR frame, metres
    lidar2img: np.ndarray,  # [C, 4, 4] K4 @ T_cam_from_lidar
    image_sizes: np.ndarray,  # [C, 2] (H, W)
    intrinsics: np.ndarray,  # [C, 3, 3]
    min_depth: float = 1.0,
    occlusion: str = "zbuffer",
) -> PixelPairs:
    """Point <-> pixel pairs of all cameras (sorted by camera, then point): projection with
    ``depth > min_depth`` inside the image, then optionally the LiDAR z-buffer test (cell from
    :func:`xmodal.geometry.zbuffer_cell` of the cameras' focal length)."""
    from xmodal.geometry import zbuffer_cell
    from xmodal.ops import project_points, zbuffer_visibility

    if len(image_sizes) == 0 or points.shape[0] == 0:
        return PixelPairs.empty()
    pp = project_points(points[:, :3].double(), torch.from_numpy(lidar2img), image_sizes, min_depth)
    if occlusion == "zbuffer" and len(pp):
        cell = zbuffer_cell(float(np.median(intrinsics[:, 0, 0])))
        pp = pp.select(zbuffer_visibility(pp, image_sizes, cell=cell))
    return PixelPairs(pp.point, pp.camera, pp.rows, pp.cols)


@DATASETS.register("nuscenes_pairs", config=NuScenesPairsConfig)
class NuScenesPairsDataset:
    """Keyframes as :class:`LidarCameraSample` (see the module docstring)."""

    def __init__(
        self,
        cfg: NuScenesPairsConfig,
        transforms: Callable[[LidarCameraSample, np.random.Generator], LidarCameraSample] | None = None,
    ) -> None:
        cfg.validate()
        self.cfg = cfg
        self.base = NuScenesDataset(cfg)
        self.transforms = transforms
        self.epoch = 0
        self.skipped_tokens: set[str] = set()
        self.split = None
        if cfg.split_file:
            from xmodal.evaluation.splits import load_split

            self.split = load_split(cfg.split_file)
            self.base.infos["data_list"] = self.split.filter(self.base.infos["data_list"])
        self.teacher_cache = None
        if cfg.teacher_cache:
            from xmodal.data.teacher_cache import TeacherCache

            self.teacher_cache = TeacherCache(cfg.teacher_cache)
        self._sp_dir = None
        if cfg.superpixels:
            from xmodal.data.superpixels import superpixel_dir

            self._sp_dir = superpixel_dir(self.base.root, cfg.superpixels)
            if not self._sp_dir.is_dir():
                raise DataError(
                    f"dataset.superpixels={cfg.superpixels!r}: no cache at '{self._sp_dir}'; run `xmodal prepare "
                    f"superpixels --root {self.base.root}` with the matching parameters, or set dataset.superpixels=null"
                )

    # ------------------------------------------------------------------ protocol
    def __len__(self) -> int:
        return len(self.base)

    def set_epoch(self, epoch: int) -> None:
        """Augmentations of epoch ``epoch`` (call before each epoch's iterator is created)."""
        self.epoch = int(epoch)

    @property
    def infos(self) -> list[dict]:
        return self.base.infos["data_list"]

    def image_relpaths(self, index: int) -> list[str]:
        """Camera image paths (relative to the dataroot) of sample ``index``, in camera order."""
        info = self.infos[index]
        return [info["cams"][c]["path"] for c in self.base.cfg.cameras if c in info["cams"]]

    # ------------------------------------------------------------------ loading
    def point_columns(self, raw) -> torch.Tensor:
        """[N, 3 + F] float32 student input of a keyframe read by ``self.base``: x, y, z and the
        ``point_features`` columns (intensity scaled by 1/255)."""
        cols = [raw.points[:, :3]]
        for name in self.cfg.point_features:
            if name == "intensity":
                cols.append(raw.points[:, 3:4] / 255.0)
            elif name == "ring":
                cols.append(raw.points[:, 4:5])
            else:
                cols.append(raw.time_lag[:, None])
        return torch.from_numpy(np.concatenate(cols, 1).astype(np.float32))

    def _superpixels(self, index: int, sizes: np.ndarray) -> torch.Tensor:
        from xmodal.data.superpixels import load_superpixels

        maps = []
        for rel, (h, w) in zip(self.image_relpaths(index), sizes):
            path = self._sp_dir / Path(rel).with_suffix(".png")
            sp = load_superpixels(path)
            if sp.shape != (h, w):
                raise DataError(
                    f"superpixel map '{path}' is {sp.shape[0]}x{sp.shape[1]} but its image is {h}x{w}; rebuild the "
                    "cache with `xmodal prepare superpixels --force`"
                )
            maps.append(torch.from_numpy(sp.astype(np.int64)))
        return torch.stack(maps)

    def _teacher_feats(self, index: int) -> torch.Tensor:
        maps = []
        for rel in self.image_relpaths(index):
            if rel not in self.teacher_cache:
                raise DataError(
                    f"teacher cache '{self.cfg.teacher_cache}' has no features for '{rel}'; rebuild it for this "
                    "dataset (xmodal.data.teacher_cache.build_teacher_cache) or set dataset.teacher_cache=null"
                )
            maps.append(self.teacher_cache.load(rel))
        return torch.stack(maps)

    def rng(self, index: int) -> np.random.Generator:
        """The augmentation generator of sample ``index`` in the current epoch."""
        return np.random.default_rng([self.cfg.seed, self.epoch, index])

    def __getitem__(self, index: int) -> LidarCameraSample | None:
        cfg = self.cfg
        raw = self.base[index]
        points = self.point_columns(raw)
        labels = None if raw.labels is None else torch.from_numpy(raw.labels.astype(np.int64))
        sample = LidarCameraSample(
            token=raw.token, points=points, labels=labels, scene=raw.scene_name, index=index,
            lidar_token=self.infos[index]["lidar"]["token"],
        )
        if cfg.load_images and raw.images is not None:
            pairs = pair_points(points, raw.lidar2img, raw.image_sizes, raw.intrinsics, cfg.min_depth, cfg.occlusion)
            sample.images = torch.from_numpy(np.ascontiguousarray(raw.images.transpose(0, 3, 1, 2)))
            sample.pairs = pairs
            if self._sp_dir is not None:
                sample.superpixels = self._superpixels(index, raw.image_sizes)
            if self.teacher_cache is not None:
                sample.teacher_feats = self._teacher_feats(index)
        if self.transforms is not None:
            sample = self.transforms(sample, self.rng(index))
        if cfg.require_pairs and len(sample.pairs) < max(cfg.min_pairs, 1):
            if raw.token not in self.skipped_tokens:
                self.skipped_tokens.add(raw.token)
                warnings.warn(
                    f"sample {raw.token} (scene {raw.scene_name}, index {index}) has {len(sample.pairs)} point-pixel "
                    f"pairs (< {max(cfg.min_pairs, 1)}): no point visible in any camera; skipped",
                    stacklevel=2,
                )
            return None
        return sample
