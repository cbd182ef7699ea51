"""``xmodal synth indoor``: furnished rooms in the ScanNet format, with ground truth.

Each scene is a room (walls, floor, ceiling, door, windows with curtains, pictures, furniture of
the ScanNet-20 classes and some clutter) built from class-specific shapes and procedural
materials, tessellated densely so that vertex colours carry texture. It is written as ScanNet's
``*_vh_clean_2.ply`` / ``*.labels.ply`` (NYU40 ids) plus SensReader-style exported RGB-D frames
ray-cast from the same mesh along a hand-held scanning loop, and ``label_nyu40/`` images (our
extra) for measuring 2D/3D agreement. The real ScanNet loader (:mod:`xmodal.data.scannet`) reads
it unchanged.

Modules: ``shapes`` (dense primitives), ``materials`` (textures), ``furniture`` / ``fixtures``
(object templates), ``layout`` (rooms), ``scene`` (mesh assembly and lighting), ``trajectory``
(camera loop), ``render`` (open3d ray casting), ``writer`` (ScanNet layout), ``world``
(the generator), ``check`` (2D/3D label agreement).
"""

from xmodal.data.synth.indoor.world import IndoorConfig, generate_indoor_world

__all__ = ["IndoorConfig", "generate_indoor_world"]
