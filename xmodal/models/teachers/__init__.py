"""Frozen image teachers: OpenCLIP (global + dense, MaskCLIP-style), the tiny CLIP fitted on a
synthetic world, and any torchvision / timm image network.

Every teacher is a :class:`~xmodal.models.teachers.base.Teacher` registered in
:data:`xmodal.registry.TEACHERS` (``type: open_clip | tiny_clip | image_net``); the registry
imports the modules of this package on first lookup.
"""

from xmodal.models.teachers.base import Teacher

__all__ = ["Teacher"]
