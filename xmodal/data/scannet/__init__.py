"""ScanNet (v2) in its export format: meshes, NYU40 vertex labels and posed RGB-D frames.

- :func:`prepare_scannet` indexes a root into a versioned JSON info file
  (``xmodal prepare scannet --root DIR --out FILE``);
- :class:`ScanNetDataset` returns one :class:`ScanNetScene` per scene (vertices, colours,
  ScanNet-20 labels, lazily loaded :class:`ScanNetFrame` s);
- :func:`read_ply` / :func:`write_ply` read and write ScanNet's PLY meshes.

The folder layout it reads is documented in :mod:`xmodal.data.scannet.files`.
"""

from xmodal.data.scannet.dataset import FrameSequence, ScanNetDataset, ScanNetFrame, ScanNetScene
from xmodal.data.scannet.ply import PlyMesh, read_ply, write_ply
from xmodal.data.scannet.prepare import SCHEMA_VERSION, build_info, load_info, prepare_scannet

__all__ = [
    "SCHEMA_VERSION",
    "FrameSequence",
    "PlyMesh",
    "ScanNetDataset",
    "ScanNetFrame",
    "ScanNetScene",
    "build_info",
    "load_info",
    "prepare_scannet",
    "read_ply",
    "write_ply",
]
