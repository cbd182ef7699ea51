"""Joint LiDAR + camera augmentations that keep point <-> pixel pairs valid.

Every transform is registered in :data:`xmodal.registry.TRANSFORMS` with a frozen config
dataclass, built with ``TRANSFORMS.build(cfg)`` and called as ``t(sample, rng) -> sample``:

- ``sample``: a :class:`~xmodal.structures.lidar_camera.LidarCameraSample`; images, labels,
  superpixels and teacher maps may each be None (LiDAR-only samples have no images, no pairs).
- ``rng``: a ``numpy.random.Generator``, the only source of randomness (the dataset seeds it from
  (seed, epoch, index), so runs resume exactly and DDP ranks agree).
- returns a new sample. Input tensors are never modified; unchanged tensors may be shared with
  the output, so treat sample tensors as read-only.

Types (module):

- point-only (:mod:`.point`): ``rotate_z``, ``flip_xy``, ``scale`` — move xyz, keep pairs.
- joint (:mod:`.joint`, :mod:`.crop`): ``drop_cuboids``, ``resized_crop``, ``flip_horizontal`` —
  update points / labels / images / superpixels / teacher maps and the pairs together.

:func:`build_transforms` turns the config's ``transforms:`` list into a :class:`Compose`.
"""

from xmodal.data.transforms.compose import Compose, Transform, build_transforms
from xmodal.data.transforms.crop import ResizedCrop, ResizedCropConfig
from xmodal.data.transforms.joint import DropCuboids, DropCuboidsConfig, FlipHorizontal, FlipHorizontalConfig
from xmodal.data.transforms.point import FlipXY, FlipXYConfig, RotateZ, RotateZConfig, Scale, ScaleConfig

__all__ = [
    "Transform", "Compose", "build_transforms",
    "RotateZ", "RotateZConfig", "FlipXY", "FlipXYConfig", "Scale", "ScaleConfig",
    "DropCuboids", "DropCuboidsConfig", "FlipHorizontal", "FlipHorizontalConfig",
    "ResizedCrop", "ResizedCropConfig",
]
