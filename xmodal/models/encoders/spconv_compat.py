"""spconv on machines without CUDA: the one place xmodal patches a dependency.

spconv's CPU wheel runs the forward on CPU tensors, but its backward asks for the current CUDA
stream unconditionally (``spconv.pytorch.ops`` / ``spconv.pytorch.cppcore``:
``get_current_stream() -> torch.cuda.current_stream().cuda_stream``) before it reaches its own
CPU branch, so training fails with "Found no NVIDIA driver" (spconv issue #366 has the same root
cause in the forward). :func:`import_spconv` replaces that function, in both modules, with one
that returns stream 0 when CUDA is unavailable and defers to the original otherwise. On CUDA
machines nothing changes.

Second fix: the training path of the CPU wheel (``ops.indice_conv`` and its backward, used when
the features require a gradient) gives wrong rows now and then with more than one torch thread
(measured: 1-5 % of small convolutions at 2 threads, none at 1 thread, none in the no-grad
path). :func:`import_spconv` runs those two with one thread on CPU tensors.

Weight layout, for anyone converting weights: spconv 2.x stores a convolution's weight as
``[out, kD, kH, kW, in]`` (dense ``nn.Conv3d``: ``weight.permute(0, 4, 1, 2, 3)``), except that a
1x1x1 ``SubMConv3d`` multiplies by ``weight.view(in, out)``
(tests/models/test_spconv_compat.py checks both against ``F.conv3d``).
"""

from __future__ import annotations

import logging
import warnings

_PATCHED = False


def _cpu_safe(original):
    def get_current_stream():
        import torch

        if not torch.cuda.is_available():
            return 0
        return original()

    get_current_stream.__wrapped__ = original
    return get_current_stream


def _single_threaded_on_cpu(original):
    """Run ``original`` with one torch thread when its features are on the CPU."""

    def run(features, *args, **kwargs):
        import torch

        if features.is_cuda:
            return original(features, *args, **kwargs)
        threads = torch.get_num_threads()
        if threads == 1:
            return original(features, *args, **kwargs)
        torch.set_num_threads(1)
        try:
            return original(features, *args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    run.__wrapped__ = original
    return run


def import_spconv():
    """``spconv.pytorch``, with the CPU backward fix applied once (idempotent)."""
    global _PATCHED
    fx_log = logging.getLogger("torch.fx._symbolic_trace")
    level = fx_log.level
    fx_log.setLevel(logging.ERROR)  # spconv's import trips a torch.fx deprecation message
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import spconv.pytorch as spconv
            from spconv.pytorch import cppcore, ops
    finally:
        fx_log.setLevel(level)
    if not _PATCHED:
        for module in (ops, cppcore):
            if hasattr(module, "get_current_stream"):
                module.get_current_stream = _cpu_safe(module.get_current_stream)
        for name in ("indice_conv", "indice_conv_backward"):
            setattr(ops, name, _single_threaded_on_cpu(getattr(ops, name)))
        _PATCHED = True
    return spconv
