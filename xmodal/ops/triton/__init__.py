"""Triton kernels behind the public ops in :mod:`xmodal.ops` (nothing public lives here).

The kernels run on CUDA tensors, or on CPU tensors when ``TRITON_INTERPRET=1`` is set before
this package is imported (slow, for tests). Call them through the functional API
(e.g. ``xmodal.ops.segment_mean(x, segs, backend="triton")``), not directly.

- :mod:`.segment_kernels`: sorted-segment (deterministic) and atomic segment sum / mean / max,
  forward and backward.
- :mod:`.bench`: ``bench_cuda`` GPU micro-benchmark of those kernels against native scatter.
"""
