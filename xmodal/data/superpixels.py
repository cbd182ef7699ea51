"""On-disk superpixel cache: one uint16 PNG of SLIC labels per camera image.

Layout (the image's path relative to the dataset root is mirrored, extension ``.png``)::

    <root>/superpixels/<tag>/manifest.json                      method, parameters, counts
    <root>/superpixels/<tag>/samples/CAM_FRONT/<name>.png       nuScenes keyframe cameras
    <root>/superpixels/<tag>/scans/<scene>/color/<frame>.png    ScanNet exported frames

Labels are ``0..K-1`` in a 16-bit PNG: SLidR stores uint8, whose ids alias once an image has
more than 256 superpixels and collide between the six cameras of a sample when they are merged
without offsets; here ids are exact per image and the loader adds per-camera offsets.

The tag names the method and its parameters, ``slic_n150_c6_s3_fast`` (the torch fast path,
:func:`xmodal.ops.slic.slic`) or ``slic_n150_c6_s3_skimage`` (scikit-image,
:func:`xmodal.ops.slic.slic_reference`, what SLidR computes), so both caches can live side by
side. ``prepare_superpixels`` is resumable: images whose PNG exists are skipped; every PNG and
the manifest are written atomically.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from xmodal.data.image_io import read_index_image, read_rgb
from xmodal.errors import DataError, XmodalError, where
from xmodal.utils.atomic import atomic_write

__all__ = [
    "METHODS",
    "SUPERPIXEL_DIR",
    "find_camera_images",
    "load_superpixels",
    "method_tag",
    "prepare_superpixels",
    "superpixel_dir",
    "superpixel_path",
]

SUPERPIXEL_DIR = "superpixels"
MANIFEST = "manifest.json"
SCHEMA_VERSION = 1
METHODS = ("fast", "skimage")
MAX_LABELS = 65536  # uint16 PNG
_PARAM_KEYS = ("method", "n_segments", "compactness", "sigma", "max_num_iter")


def _num(x: float) -> str:
    """6 -> '6', 6.5 -> '6p5' (tags are folder names)."""
    return f"{float(x):g}".replace(".", "p").replace("-", "m")


def method_tag(method: str = "fast", n_segments: int = 150, compactness: float = 6.0, sigma: float = 3.0) -> str:
    """Default cache tag, e.g. ``slic_n150_c6_s3_fast`` (``skimage`` for the reference)."""
    _check_method(method)
    return f"slic_n{int(n_segments)}_c{_num(compactness)}_s{_num(sigma)}_{method}"


def superpixel_dir(root: str | os.PathLike, method_tag: str) -> Path:
    """``<root>/superpixels/<method_tag>``: the folder of one cache."""
    return Path(root) / SUPERPIXEL_DIR / method_tag


def superpixel_path(root: str | os.PathLike, image_relpath: str | os.PathLike, method_tag: str) -> Path:
    """PNG of the camera image ``image_relpath`` (relative to ``root``, e.g. a nuScenes
    ``sample_data.filename``): ``<root>/superpixels/<tag>/<image_relpath with .png>``."""
    rel = Path(image_relpath)
    if rel.is_absolute() or ".." in rel.parts:
        raise DataError(f"image path {where(rel)} must be relative to the dataset root (no '..').")
    return superpixel_dir(root, method_tag) / rel.with_suffix(".png")


def load_superpixels(path: str | os.PathLike) -> np.ndarray:
    """[H, W] uint16 superpixel ids 0..K-1 of one image (cast to int64 before adding offsets)."""
    fix = "run `xmodal prepare superpixels --root <dataroot>` (add --force to rewrite a cache)"
    arr = read_index_image(path, "superpixel map", fix)
    if arr.dtype not in (np.uint16, np.uint8):
        raise DataError(f"superpixel map {where(path)} has dtype {arr.dtype}, expected a 16-bit PNG; {fix}.")
    return arr.astype(np.uint16, copy=False)


# ----------------------------------------------------------------------------- finding images
def find_camera_images(root: str | os.PathLike) -> tuple[str, list[str]]:
    """Camera images of a dataset root, as ``(kind, [paths relative to root])``, sorted.

    - nuScenes (a ``v1.0-*`` folder or ``samples/``): keyframe cameras ``samples/CAM_*/*.jpg``;
    - ScanNet (``scans/``): exported frames ``scans/<scene>/color/*.jpg``.

    Raises:
        DataError: the root is missing, of neither kind, or holds no camera image.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset root {where(root)} is not a folder; pass the nuScenes dataroot or the ScanNet root.")
    if (root / "samples").is_dir() or any(root.glob("v1.0-*")):
        kind, pattern, expected = "nuscenes", "samples/CAM_*/*.jpg", "samples/CAM_*/*.jpg keyframe images"
    elif (root / "scans").is_dir():
        kind, pattern, expected = "scannet", "scans/*/color/*.jpg", "scans/<scene>/color/*.jpg frames"
    else:
        raise DataError(
            f"dataset root {where(root)} is neither nuScenes (v1.0-*/ or samples/) nor ScanNet (scans/); "
            "pass the folder that holds them."
        )
    images = sorted(p.relative_to(root).as_posix() for p in root.glob(pattern) if p.is_file())
    if not images:
        raise DataError(f"{kind} root {where(root)} holds no camera image: expected {expected}.")
    return kind, images


# ----------------------------------------------------------------------------- manifest
def _check_method(method: str) -> None:
    if method not in METHODS:
        raise XmodalError(f"method must be one of {', '.join(METHODS)}, got {method!r}.")


def _check_manifest(path: Path, params: dict[str, Any], force: bool) -> None:
    """Refuse to mix parameters inside one cache folder (unless ``force`` rewrites it)."""
    if force or not path.is_file():
        return
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"superpixel manifest {where(path)} cannot be read ({exc}); pass --force to rewrite the cache.") from None
    diff = {k: (old.get(k), params[k]) for k in _PARAM_KEYS if old.get(k) != params[k]}
    if old.get("schema_version") != SCHEMA_VERSION:
        diff["schema_version"] = (old.get("schema_version"), SCHEMA_VERSION)
    if diff:
        shown = ", ".join(f"{k}: cached {a!r} vs asked {b!r}" for k, (a, b) in diff.items())
        raise DataError(
            f"superpixel cache {where(path.parent)} was written with other parameters ({shown}); "
            "pass --force to recompute it, or --tag to write a separate cache."
        )


def _compute(method: str, image: np.ndarray, params: dict[str, Any], device) -> np.ndarray:
    from xmodal.ops.slic import slic, slic_reference

    kw = {k: params[k] for k in ("n_segments", "compactness", "sigma", "max_num_iter")}
    if method == "skimage":
        return slic_reference(image, **kw)
    if device is None or str(device) == "cpu":
        return slic(image, **kw)
    import torch

    return slic(torch.from_numpy(image), device=device, **kw).cpu().numpy()


# ----------------------------------------------------------------------------- prepare
def prepare_superpixels(
    root: str | os.PathLike,
    *,
    method: str = "fast",
    n_segments: int = 150,
    compactness: float = 6.0,
    sigma: float = 3.0,
    max_num_iter: int = 10,
    tag: str | None = None,
    force: bool = False,
    progress: bool = True,
    limit: int | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Compute and cache SLIC superpixels for every camera image of a dataset root.

    Args:
        root: nuScenes dataroot or ScanNet root (see :func:`find_camera_images`).
        method: ``fast`` (torch, :func:`xmodal.ops.slic.slic`) or ``skimage`` (the reference).
        n_segments, compactness, sigma, max_num_iter: SLIC parameters (skimage's meaning;
            defaults: SLidR's setting).
        tag: cache folder name under ``<root>/superpixels`` (default :func:`method_tag`).
        force: recompute images already cached (and accept a manifest with other parameters).
        progress: show a progress bar.
        limit: only the first ``limit`` images (sorted by path).
        device: torch device for ``fast`` (default CPU).

    Returns:
        summary: root, dataset kind, tag, cache folder, images, computed, skipped, mean segments
        per computed image, seconds.

    Raises:
        DataError: unknown root layout, unreadable images, a manifest with other parameters, or
        more labels than a uint16 PNG holds.
    """
    from tqdm import tqdm

    from xmodal import __version__

    _check_method(method)
    if isinstance(n_segments, bool) or int(n_segments) != n_segments or not 1 <= n_segments < MAX_LABELS:
        raise XmodalError(f"n_segments must be an integer in [1, {MAX_LABELS - 1}] (uint16 cache), got {n_segments!r}.")
    if not compactness > 0:
        raise XmodalError(f"compactness must be > 0, got {compactness!r}.")
    if not sigma >= 0:
        raise XmodalError(f"sigma must be >= 0, got {sigma!r}.")
    if limit is not None and limit < 0:
        raise XmodalError(f"limit must be >= 0, got {limit!r}.")
    t0 = time.time()
    root = Path(root)
    kind, images = find_camera_images(root)
    if limit is not None:
        images = images[:limit]
    tag = tag or method_tag(method, n_segments, compactness, sigma)
    out_dir = superpixel_dir(root, tag)
    params = {"method": method, "n_segments": int(n_segments), "compactness": float(compactness),
              "sigma": float(sigma), "max_num_iter": int(max_num_iter)}
    manifest_path = out_dir / MANIFEST
    _check_manifest(manifest_path, params, force)
    manifest = {
        "schema_version": SCHEMA_VERSION,
        **params,
        "dataset": kind,
        "dtype": "uint16",
        "layout": f"{SUPERPIXEL_DIR}/{tag}/<image path relative to the root, .png>",
        "xmodal_version": __version__,
    }
    with atomic_write(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1)

    computed = skipped = 0
    segments = []
    fix = "restore the image (or regenerate the world), then run `xmodal prepare superpixels` again"
    for rel in tqdm(images, desc=f"superpixels {tag}", unit="img", disable=not progress):
        out = superpixel_path(root, rel, tag)
        if out.is_file() and not force:
            skipped += 1
            continue
        labels = _compute(method, read_rgb(root / rel, "camera image", fix), params, device)
        k = int(labels.max()) + 1
        if k > MAX_LABELS:
            raise DataError(f"{where(root / rel)} got {k} superpixels, more than a uint16 PNG holds; lower --n-segments.")
        _write_png(out, labels.astype(np.uint16))
        computed += 1
        segments.append(k)
    return {
        "root": str(root),
        "dataset": kind,
        "tag": tag,
        "dir": str(out_dir),
        "images": len(images),
        "computed": computed,
        "skipped": skipped,
        "segments_mean": float(np.mean(segments)) if segments else None,
        "seconds": round(time.time() - t0, 2),
    }


def _write_png(path: Path, labels: np.ndarray) -> None:
    """[H, W] uint16 -> 16-bit greyscale PNG, atomically (fast zlib level: these are small)."""
    from PIL import Image

    with atomic_write(path, "wb") as f:
        Image.fromarray(labels).save(f, format="PNG", compress_level=1)
