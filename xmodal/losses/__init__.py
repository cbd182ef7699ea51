"""Losses, one module per family; each docstring carries its formula."""

from xmodal.losses.info_nce import info_nce, info_nce_reference
from xmodal.losses.pointwise import PointwiseDistill, pointwise_distill
from xmodal.losses.superpixel_contrast import SuperpixelInfoNCE, superpixel_info_nce, superpixel_pool

__all__ = [
    "PointwiseDistill",
    "SuperpixelInfoNCE",
    "info_nce",
    "info_nce_reference",
    "pointwise_distill",
    "superpixel_info_nce",
    "superpixel_pool",
]
