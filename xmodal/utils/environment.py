"""What ``xmodal info`` reports: versions, devices and which backends are usable here."""

from __future__ import annotations

import importlib
import os
import platform
import shutil
import sys

from xmodal import __version__

#: Distribution name -> import name of the packages xmodal uses.
PACKAGES = {
    "torch": "torch",
    "torchvision": "torchvision",
    "numpy": "numpy",
    "spconv": "spconv",
    "open3d": "open3d",
    "nuscenes-devkit": "nuscenes",
    "open-clip-torch": "open_clip",
    "gsplat": "gsplat",
    "triton": "triton",
    "scikit-image": "skimage",
}


def _version(dist: str, module: str) -> str:
    """Installed version of ``dist``, or why its module does not import."""
    from importlib import metadata

    try:
        importlib.import_module(module)
    except Exception as exc:  # a broken install must not break `xmodal info`
        return f"not importable ({type(exc).__name__}: {str(exc).splitlines()[0][:80]})"
    for name in (dist, f"{dist}-cpu", f"{dist}-cu120"):  # open3d-cpu, spconv-cu120
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "installed"


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
        "packages": {name: _version(name, mod) for name, mod in PACKAGES.items()},
        "devices": devices,
        "backends": _backends(cuda),
    }
