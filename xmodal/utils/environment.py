"""What ``xmodal info`` reports: versions, devices and which backends are usable here."""

from __future__ import annotations

import importlib
import os
import platform
import shutil
import sys

from xmodal import __version__
from xmodal.utils.run_info import package_versions

#: Package key (as in run_info.PACKAGES) -> import name, to check the install really loads.
IMPORT_NAMES = {
    "torch": "torch", "torchvision": "torchvision", "numpy": "numpy", "triton": "triton",
    "spconv": "spconv", "open3d": "open3d", "open_clip": "open_clip", "gsplat": "gsplat",
    "nuscenes-devkit": "nuscenes", "scikit-image": "skimage", "scipy": "scipy", "pyyaml": "yaml",
}


def _packages() -> dict[str, str]:
    """Installed version of each package, or why it is missing or does not import."""
    out = {}
    for key, version in package_versions().items():
        if version is None:
            out[key] = "not installed"
            continue
        try:
            importlib.import_module(IMPORT_NAMES.get(key, key))
            out[key] = version
        except Exception as exc:  # a broken install must not break `xmodal info`
            out[key] = f"{version}, does not import ({type(exc).__name__}: {str(exc).splitlines()[0][:80]})"
    return out


def _backends(cuda: bool) -> dict[str, str]:
    out = {}
    try:
        import open3d as o3d

        o3d.t.geometry.RaycastingScene()
        out["ray casting (open3d)"] = "yes (Embree, CPU)"
    except Exception as exc:
        out["ray casting (open3d)"] = f"no ({type(exc).__name__})"
    try:
        import spconv.pytorch  # noqa: F401

        out["sparse conv (spconv)"] = "CUDA" if cuda else "CPU wheel (forward; backward needs the CPU stream patch, see DESIGN)"
    except Exception as exc:
        out["sparse conv (spconv)"] = f"no ({type(exc).__name__})"
    try:
        import triton  # noqa: F401

        out["triton kernels"] = "CUDA" if cuda else "interpreter only (TRITON_INTERPRET=1, tests)"
    except Exception:
        out["triton kernels"] = "no (triton not installed): pure-PyTorch paths"
    have_nvcc = shutil.which("nvcc") is not None or bool(os.environ.get("CUDA_HOME"))
    out["gsplat rasterizer"] = (
        "CUDA (JIT-compiled on first use)" if cuda and have_nvcc else
        "unavailable (needs CUDA + nvcc)" if not cuda else "CUDA but no nvcc found for the JIT build"
    )
    return out


def environment_report() -> dict[str, dict[str, str]]:
    """Sections ``xmodal``, ``packages``, ``devices``, ``backends`` of strings."""
    import torch

    cuda = torch.cuda.is_available()
    devices = {
        "cpu threads (torch)": str(torch.get_num_threads()),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"),
        "cuda available": str(cuda),
        "torch cuda build": str(torch.version.cuda),
    }
    if cuda:
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            devices[f"cuda:{i}"] = f"{p.name}, {p.total_memory / 2**30:.0f} GiB"
    return {
        "xmodal": {"version": __version__, "python": sys.version.split()[0], "platform": platform.platform()},
        "packages": _packages(),
        "devices": devices,
        "backends": _backends(cuda),
    }
