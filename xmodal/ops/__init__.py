"""Functional ops with a pure-PyTorch reference, a CPU fast path and Triton kernels on CUDA.

See DESIGN.md (ops contract): every op documents its shapes, follows the device of its inputs,
and is tested against its reference forward and backward.
"""

from xmodal.ops.bev_pool import BevGrid, BevPoolIndex, bev_pool, bev_pool_reference
from xmodal.ops.normalize import normalize_channels, normalize_channels_reference
from xmodal.ops.occlusion import zbuffer_visibility, zbuffer_visibility_reference
from xmodal.ops.projection import ProjectedPairs, project_points, project_points_reference
from xmodal.ops.segment_reduce import segment_max, segment_mean, segment_min, segment_reduce, segment_sum
from xmodal.ops.segments import Segments
from xmodal.ops.voxelize import Voxels, voxelize, voxelize_reference

__all__ = [
    "BevGrid",
    "BevPoolIndex",
    "ProjectedPairs",
    "Segments",
    "Voxels",
    "bev_pool",
    "bev_pool_reference",
    "normalize_channels",
    "normalize_channels_reference",
    "project_points",
    "project_points_reference",
    "segment_max",
    "segment_mean",
    "segment_min",
    "segment_reduce",
    "segment_sum",
    "voxelize",
    "voxelize_reference",
    "zbuffer_visibility",
    "zbuffer_visibility_reference",
]
