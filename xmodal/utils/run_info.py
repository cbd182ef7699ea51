"""What a run folder records about how it was made: the resolved config and the environment.

:func:`write_run_info` writes, atomically:

- ``config.yaml``: the resolved config (after ``_base_`` and overrides), which
  :func:`xmodal.config.load_config` reads back to an equal config;
- ``run_info.json``: git SHA of the xmodal source (``"unknown"`` outside a git checkout) and
  whether it had uncommitted changes, versions of xmodal, Python and the key packages (``null``
  for those not installed), time, host and command line.

Nothing here fails because git or a package is missing.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import xmodal
from xmodal.utils.atomic import atomic_write

__all__ = ["write_run_info", "collect_run_info", "git_info", "package_versions"]

# distribution names to look for, per package; the first one installed wins
PACKAGES: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "torchvision": ("torchvision",),
    "numpy": ("numpy",),
    "triton": ("triton",),
    "spconv": ("spconv", "spconv-cu126", "spconv-cu124", "spconv-cu121", "spconv-cu120",
               "spconv-cu118", "spconv-cu117"),
    "open3d": ("open3d", "open3d-cpu"),
    "open_clip": ("open-clip-torch", "open_clip_torch"),
    "gsplat": ("gsplat",),
    "nuscenes-devkit": ("nuscenes-devkit",),
    "scikit-image": ("scikit-image",),
    "scipy": ("scipy",),
    "pyyaml": ("PyYAML", "pyyaml"),
}

_SOURCE_ROOT = Path(xmodal.__file__).resolve().parent.parent  # the checkout holding xmodal/


def write_run_info(
    run_dir: str | os.PathLike, cfg: Any, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Write ``config.yaml`` and ``run_info.json`` into ``run_dir``; return the run info.

    ``extra`` (JSON-serializable) is stored under ``"extra"``, e.g. the config path and the
    overrides the run was started with.
    """
    from xmodal.config import dump_config  # late: keeps utils importable without config

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, run_dir / "config.yaml")
    info = collect_run_info()
    if extra:
        info["extra"] = extra
    with atomic_write(run_dir / "run_info.json", "w") as f:
        json.dump(info, f, indent=2, default=str)
        f.write("\n")
    return info


def collect_run_info() -> dict[str, Any]:
    """Git state, versions, time, host and command line of this process."""
    now = datetime.now(timezone.utc).astimezone()
    info: dict[str, Any] = {
        "git": git_info(_SOURCE_ROOT),
        "xmodal": xmodal.__version__,
        "python": platform.python_version(),
        "packages": package_versions(),
        "time": now.isoformat(timespec="seconds"),
        "host": platform.node(),
        "platform": platform.platform(),
        "cwd": os.getcwd(),
        "command": shlex.join([sys.executable, *sys.argv]),
    }
    torch = sys.modules.get("torch")  # only if the caller already imported it (import is slow)
    if torch is not None:
        try:
            info["torch_cuda"] = torch.version.cuda
            info["cuda_devices"] = [
                torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
            ]
        except Exception as exc:  # a broken CUDA setup must not stop a run from starting
            info["cuda_devices"] = f"unavailable ({type(exc).__name__})"
    return info


def git_info(root: str | os.PathLike) -> dict[str, Any]:
    """``{"sha": ..., "dirty": bool}`` of the git checkout whose top level is ``root``.

    ``{"sha": "unknown", "dirty": None}`` when ``root`` is not the top of a git checkout (an
    installed package inside someone else's repository is not ours), git is missing, or the
    repository has no commit yet.
    """
    unknown = {"sha": "unknown", "dirty": None}
    root = Path(root).resolve()
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != root:
        return unknown
    sha = _git(root, "rev-parse", "HEAD")
    if sha is None:
        return unknown
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return {"sha": sha, "dirty": None if status is None else bool(status)}


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages xmodal's results depend on (None if not installed)."""
    out: dict[str, str | None] = {}
    for key, dists in PACKAGES.items():
        out[key] = None
        for dist in dists:
            try:
                out[key] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
            except Exception:  # a broken metadata folder must not fail a run
                continue
    return out


def _git(root: Path, *args: str) -> str | None:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True, text=True, timeout=10, env=env, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None
