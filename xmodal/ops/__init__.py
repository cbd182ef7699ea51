"""Functional ops with a pure-PyTorch reference, a CPU fast path and Triton kernels on CUDA.

See DESIGN.md (ops contract): every op documents its shapes, follows the device of its inputs,
and is tested against its reference forward and backward.
"""

from xmodal.ops.segment_reduce import segment_max, segment_mean, segment_min, segment_reduce, segment_sum
from xmodal.ops.segments import Segments

__all__ = ["Segments", "segment_max", "segment_mean", "segment_min", "segment_reduce", "segment_sum"]
