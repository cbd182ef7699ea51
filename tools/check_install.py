"""Fail the install early, with a clear message, if the torch/torchvision pair or open3d does not
import (see setup.py: the CPU-only torch file on some machines breaks the registry torchvision)."""

import sys

try:
    import torch
    import torchvision  # noqa: F401
    from torchvision.ops import nms  # the failing symbol on a mismatched pair

    nms(torch.zeros(1, 4), torch.zeros(1), 0.5)
except Exception as exc:  # pragma: no cover - install-time check
    sys.exit(
        f"xmodal install check: torch/torchvision do not work together ({exc}).\n"
        "Remove the venv (make clean) and install again so pip resolves a matching pair."
    )
try:
    import open3d  # noqa: F401
except Exception as exc:  # pragma: no cover
    sys.exit(f"xmodal install check: open3d does not import ({exc}); see README 'Install'.")
print(f"install ok: torch {torch.__version__}, torchvision {torchvision.__version__}, "
      f"open3d {open3d.__version__}")
