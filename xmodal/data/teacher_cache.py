"""Teacher-feature cache: fp16 shards of dense teacher maps, optionally PCA-compressed.

Layout of ``out_dir``::

    manifest.json        schema_version, teacher (name + identity: type, config, weights
                         fingerprint), teacher_dim D, feature_dim d (= pca_dim or D), map sizes per
                         image size, PCA summary, sizes (raw fp32 bytes vs stored bytes), command
    pca.npz              mean [D] and components [d, D] float32 (only with pca_dim)
    index.json           {image relpath: [shard file, row]}
    shards/00000.npy     fp16 [n, d, h, w]: n images of one map size, one shard per batch group

Features are the teacher's maps (:class:`xmodal.models.teachers.Teacher`: ``[D, h, w]`` spanning
the image, cell ``(i, j)`` centred at pixel ``((i + 0.5) H / h, (j + 0.5) W / w)``) of each image
at its stored resolution. With ``pca_dim``, a PCA fitted on a sample of pixels of the first
images (``pca_fit_images``) stores ``c = P (f - mu)`` (``P`` [d, D] orthonormal rows) instead of
``f``; :meth:`TeacherCache.load` returns ``c`` (``decode=True``: ``P^T c + mu``, back in the
teacher's space).

Building is resumable and atomic: every shard and the index are written with
:func:`xmodal.utils.atomic.atomic_write`; an interrupted build continues where it stopped when
run again with the same teacher and options. A cache written with another schema, teacher or
PCA setting is refused with the command that rebuilds it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xmodal.errors import DataError, SchemaError, XmodalError, where
from xmodal.utils.atomic import atomic_write

__all__ = ["CACHE_SCHEMA", "build_teacher_cache", "TeacherCache", "fit_pca"]

#: Bump when the cache layout changes; readers refuse other versions.
CACHE_SCHEMA = 1
MANIFEST, INDEX, PCA_FILE, SHARD_DIR = "manifest.json", "index.json", "pca.npz", "shards"
FP16_MAX = 65504.0


def _rebuild_hint(out_dir: Path, manifest: dict | None = None) -> str:
    cmd = (manifest or {}).get("command")
    if cmd:
        return f"rebuild it with `{cmd} --force`"
    return (
        f"rebuild it with `xmodal teacher cache --root <dataroot> --teacher <teacher.yaml | tiny_clip.pt> "
        f"--out {out_dir} --force` (or build_teacher_cache(..., force=True))"
    )


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"teacher cache {what} {where(path)} cannot be read ({exc}); {_rebuild_hint(path.parent)}.") from None


def _write_json(path: Path, data: Any) -> None:
    with atomic_write(path, "w") as f:
        json.dump(data, f, indent=1, default=str)


def _check_relpaths(relpaths: list[str]) -> list[str]:
    out = []
    for r in relpaths:
        p = Path(r)
        if p.is_absolute() or ".." in p.parts:
            raise DataError(f"image path {where(r)} must be relative to the dataset root (no '..').")
        out.append(p.as_posix())
    if len(set(out)) != len(out):
        raise DataError("image_relpaths holds duplicates; pass each image once.")
    return out


def fit_pca(samples: torch.Tensor, dim: int) -> tuple[np.ndarray, np.ndarray, float]:
    """PCA of ``samples`` [P, D] (float): ``(mean [D], components [dim, D] orthonormal rows,
    explained variance ratio)``, components sorted by decreasing variance."""
    x = samples.double()
    mean = x.mean(0)
    xc = x - mean
    cov = xc.T @ xc / max(1, x.shape[0] - 1)
    evals, evecs = torch.linalg.eigh(cov)  # ascending
    order = torch.argsort(evals, descending=True)[:dim]
    comps = evecs[:, order].T
    ratio = float(evals[order].clamp_min(0).sum() / evals.clamp_min(0).sum().clamp_min(1e-30))
    return mean.float().numpy(), comps.float().numpy(), ratio


def _read_images(root: Path, rels: list[str]) -> list[torch.Tensor]:
    from xmodal.data.image_io import read_rgb

    fix = "re-extract the dataset images, or rebuild the cache for the images that exist"
    return [torch.from_numpy(np.array(read_rgb(root / r, "image", fix))).permute(2, 0, 1) for r in rels]


def _run_teacher(teacher: Any, images: list[torch.Tensor], batch_size: int, device: torch.device) -> list[torch.Tensor]:
    """Teacher maps [D, h, w] float32 (CPU) of ``images`` ([3, H, W] uint8), batched by size."""
    out: list[torch.Tensor | None] = [None] * len(images)
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, im in enumerate(images):
        by_size.setdefault(tuple(im.shape[-2:]), []).append(i)
    for idx in by_size.values():
        for k in range(0, len(idx), batch_size):
            sel = idx[k: k + batch_size]
            feats = teacher(torch.stack([images[i] for i in sel]).to(device)).float().cpu()
            for j, i in enumerate(sel):
                out[i] = feats[j]
    return out  # type: ignore[return-value]


def build_teacher_cache(
    teacher: Any,
    root: str | os.PathLike,
    image_relpaths: list[str],
    out_dir: str | os.PathLike,
    *,
    pca_dim: int | None = None,
    batch_size: int = 8,
    progress: bool = True,
    force: bool = False,
    shard_images: int = 64,
    pca_fit_images: int = 64,
    pca_fit_pixels: int = 200_000,
    seed: int = 0,
    device: str | torch.device | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Run ``teacher`` on every image of ``image_relpaths`` (relative to ``root``) and cache the
    maps in ``out_dir`` (layout in the module docstring). Resumable; ``force`` rebuilds.

    Args:
        teacher: a :class:`~xmodal.models.teachers.Teacher` (frozen; its ``identity()`` is stored).
        pca_dim: store ``pca_dim`` PCA coefficients per cell instead of the D teacher channels.
        batch_size: images per teacher call (same-size images are batched together).
        shard_images: images per shard file.
        pca_fit_images, pca_fit_pixels, seed: the PCA is fitted on up to ``pca_fit_pixels`` random
            cells of the first ``pca_fit_images`` images.
        device: where to run the teacher (default: where its weights are).
        command: the command line that built the cache (recorded; error messages repeat it).

    Returns:
        summary: out_dir, images, computed, skipped, teacher_dim, feature_dim, map_sizes,
        raw_fp32_bytes, stored_bytes, compression, pca, seconds.
    """
    from tqdm import tqdm

    t0 = time.perf_counter()
    root, out = Path(root), Path(out_dir)
    rels = _check_relpaths(list(image_relpaths))
    if not rels:
        raise DataError("build_teacher_cache: image_relpaths is empty; pass the images to cache.")
    if pca_dim is not None and not 0 < pca_dim:
        raise XmodalError(f"pca_dim must be a positive integer, got {pca_dim!r}.")
    ident = json.loads(json.dumps(teacher.identity(), default=str))
    if device is None:
        ref = next(iter(teacher.parameters()), None)
        device = ref.device if ref is not None else torch.device("cpu")
    device = torch.device(device)

    mpath = out / MANIFEST
    if out.exists() and any(out.iterdir()):
        if not mpath.is_file():
            raise XmodalError(
                f"teacher cache folder {where(out)} is not empty and holds no {MANIFEST}: it was not written by "
                "build_teacher_cache. Choose an empty or new folder."
            )
        if force:
            shutil.rmtree(out)
        else:
            manifest = _read_json(mpath, "manifest")
            _check_compatible(manifest, out, ident, pca_dim)
    out.mkdir(parents=True, exist_ok=True)
    (out / SHARD_DIR).mkdir(exist_ok=True)

    if mpath.is_file():
        manifest = _read_json(mpath, "manifest")
    else:
        manifest = {
            "schema_version": CACHE_SCHEMA, "kind": "xmodal teacher cache", "teacher": ident,
            "teacher_name": ident.get("name"), "teacher_dim": int(teacher.feature_dim),
            "feature_dim": int(pca_dim or teacher.feature_dim), "dtype": "float16", "root": str(root.resolve()),
            "pca": None, "map_sizes": {}, "command": command,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        if pca_dim is not None:
            if pca_dim > teacher.feature_dim:
                raise XmodalError(f"pca_dim={pca_dim} exceeds the teacher's feature dim {teacher.feature_dim}.")
            manifest["pca"] = _fit_cache_pca(teacher, root, rels[:pca_fit_images], out, pca_dim, batch_size, device,
                                             pca_fit_pixels, seed)
        _write_json(mpath, manifest)

    pca = _load_pca(out) if manifest["pca"] else None
    index: dict[str, list] = _read_json(out / INDEX, "index") if (out / INDEX).is_file() else {}
    todo = [r for r in rels if r not in index]
    next_shard = 1 + max((int(Path(v[0]).stem) for v in index.values()), default=-1)
    bar = tqdm(total=len(todo), desc="teacher cache", disable=not progress, unit="img")
    for k in range(0, len(todo), shard_images):
        group = todo[k: k + shard_images]
        images = _read_images(root, group)
        feats = _run_teacher(teacher, images, batch_size, device)
        by_map: dict[tuple, list[int]] = {}
        for i, f in enumerate(feats):
            by_map.setdefault(tuple(f.shape[-2:]), []).append(i)
            manifest["map_sizes"][f"{images[i].shape[-2]}x{images[i].shape[-1]}"] = list(f.shape[-2:])
        for idx in by_map.values():
            block = torch.stack([feats[i] for i in idx])  # [n, D, h, w]
            if pca is not None:
                block = torch.einsum("kd,ndhw->nkhw", pca[1], block - pca[0].view(1, -1, 1, 1))
            arr = block.clamp_(-FP16_MAX, FP16_MAX).to(torch.float16).numpy()
            name = f"{SHARD_DIR}/{next_shard:05d}.npy"
            next_shard += 1
            with atomic_write(out / name, "wb") as f:
                np.save(f, arr)
            for row, i in enumerate(idx):
                index[group[i]] = [name, row]
        _write_json(out / INDEX, index)
        bar.update(len(group))
    bar.close()

    sizes = _sizes(out, manifest, index)
    manifest["sizes"] = sizes
    manifest["images"] = len(index)
    _write_json(mpath, manifest)
    return {
        "out_dir": str(out), "images": len(rels), "computed": len(todo), "skipped": len(rels) - len(todo),
        "teacher": ident.get("name"), "teacher_dim": manifest["teacher_dim"], "feature_dim": manifest["feature_dim"],
        "map_sizes": manifest["map_sizes"], **sizes,
        "pca": None if not manifest["pca"] else {k: manifest["pca"][k] for k in ("dim", "explained_variance", "fit_samples")},
        "seconds": round(time.perf_counter() - t0, 2),
    }


def _fit_cache_pca(teacher: Any, root: Path, rels: list[str], out: Path, dim: int, batch_size: int,
                   device: torch.device, max_pixels: int, seed: int) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(seed)
    feats = _run_teacher(teacher, _read_images(root, rels), batch_size, device)
    per = max(1, max_pixels // len(feats))
    rows = []
    for f in feats:
        x = f.flatten(1).T  # [h*w, D]
        if x.shape[0] > per:
            x = x[torch.randperm(x.shape[0], generator=gen)[:per]]
        rows.append(x)
    samples = torch.cat(rows)
    mean, comps, ratio = fit_pca(samples, dim)
    with atomic_write(out / PCA_FILE, "wb") as f:
        np.savez(f, mean=mean, components=comps)
    return {"dim": dim, "file": PCA_FILE, "explained_variance": ratio, "fit_images": len(rels),
            "fit_samples": int(samples.shape[0]), "seed": seed}


def _load_pca(out: Path) -> tuple[torch.Tensor, torch.Tensor]:
    path = out / PCA_FILE
    try:
        with np.load(path) as z:
            return torch.from_numpy(z["mean"]), torch.from_numpy(z["components"])
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"teacher cache PCA {where(path)} cannot be read ({exc}); {_rebuild_hint(out)}.") from None


def _sizes(out: Path, manifest: dict, index: dict) -> dict[str, Any]:
    """Raw fp32 size of the teacher maps (D channels) vs bytes on disk (shards + PCA)."""
    shards = sorted({v[0] for v in index.values()})
    stored = sum((out / s).stat().st_size for s in shards)
    if manifest.get("pca"):
        stored += (out / PCA_FILE).stat().st_size
    raw = 0
    for s in shards:
        arr = np.load(out / s, mmap_mode="r")
        raw += arr.shape[0] * manifest["teacher_dim"] * arr.shape[2] * arr.shape[3] * 4
    return {"raw_fp32_bytes": int(raw), "stored_bytes": int(stored), "compression": round(raw / max(1, stored), 2)}


def _check_compatible(manifest: dict, out: Path, ident: dict | None, pca_dim: Any = "any") -> None:
    found = manifest.get("schema_version")
    if found != CACHE_SCHEMA:
        raise SchemaError(
            f"teacher cache {where(out)} has schema_version {found!r}; this xmodal reads schema {CACHE_SCHEMA}. "
            f"{_rebuild_hint(out, manifest)[0].upper()}{_rebuild_hint(out, manifest)[1:]}."
        )
    if ident is not None and manifest.get("teacher") != ident:
        old, new = manifest.get("teacher") or {}, ident
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise DataError(
            f"teacher cache {where(out)} was written by teacher {old.get('name')!r}, not the requested "
            f"{new.get('name')!r} (differing: {', '.join(diff)}); {_rebuild_hint(out, manifest)}, or choose another folder."
        )
    if pca_dim != "any":
        old_pca = (manifest.get("pca") or {}).get("dim")
        if old_pca != pca_dim:
            raise DataError(
                f"teacher cache {where(out)} was written with pca_dim={old_pca}, not {pca_dim}; "
                f"{_rebuild_hint(out, manifest)}, or choose another folder."
            )


class TeacherCache:
    """Read a cache written by :func:`build_teacher_cache`.

    ``TeacherCache(out_dir)`` checks the schema; pass ``expect`` (a Teacher or its
    ``identity()``) to also check which teacher wrote it. ``cache.load(relpath)`` -> ``[d, h, w]``
    float32 (PCA coefficients when the cache has a PCA; ``decode=True`` -> ``[D, h, w]`` in the
    teacher's space).
    """

    def __init__(self, out_dir: str | os.PathLike, expect: Any = None) -> None:
        self.out_dir = Path(out_dir)
        mpath = self.out_dir / MANIFEST
        if not mpath.is_file():
            raise DataError(f"teacher cache {where(self.out_dir)} has no {MANIFEST}; {_rebuild_hint(self.out_dir)[0].lower()}{_rebuild_hint(self.out_dir)[1:]}.")
        self.manifest = _read_json(mpath, "manifest")
        ident = expect.identity() if hasattr(expect, "identity") else expect
        if ident is not None:
            ident = json.loads(json.dumps(ident, default=str))
        _check_compatible(self.manifest, self.out_dir, ident)
        ipath = self.out_dir / INDEX
        self.index: dict[str, list] = _read_json(ipath, "index") if ipath.is_file() else {}
        self.pca = _load_pca(self.out_dir) if self.manifest.get("pca") else None
        self._shards: dict[str, np.ndarray] = {}

    @property
    def feature_dim(self) -> int:
        """d: channels that :meth:`load` returns (the PCA dim, or the teacher's D)."""
        return int(self.manifest["feature_dim"])

    @property
    def teacher_dim(self) -> int:
        """D: channels of the teacher's own maps (what ``load(..., decode=True)`` returns)."""
        return int(self.manifest["teacher_dim"])

    @property
    def teacher_name(self) -> str:
        return str(self.manifest.get("teacher_name"))

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, relpath: object) -> bool:
        return isinstance(relpath, (str, os.PathLike)) and Path(relpath).as_posix() in self.index

    def relpaths(self) -> list[str]:
        return sorted(self.index)

    def _shard(self, name: str) -> np.ndarray:
        if name not in self._shards:
            path = self.out_dir / name
            try:
                self._shards[name] = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise DataError(f"teacher cache shard {where(path)} cannot be read ({exc}); {_rebuild_hint(self.out_dir, self.manifest)}.") from None
        return self._shards[name]

    def load(self, relpath: str | os.PathLike, decode: bool = False) -> torch.Tensor:
        """``[d, h, w]`` float32 features of image ``relpath`` (relative to the dataset root);
        ``decode=True`` maps PCA coefficients back to ``[D, h, w]`` (no-op without PCA)."""
        key = Path(relpath).as_posix()
        if key not in self.index:
            raise DataError(
                f"teacher cache {where(self.out_dir)} has no features for '{key}' ({len(self.index)} images cached); "
                f"add it with `build_teacher_cache` on the same folder (resumable), or {_rebuild_hint(self.out_dir, self.manifest)}."
            )
        name, row = self.index[key]
        x = torch.from_numpy(np.array(self._shard(name)[row], dtype=np.float32))
        if decode and self.pca is not None:
            mean, comps = self.pca
            x = torch.einsum("kd,khw->dhw", comps, x) + mean.view(-1, 1, 1)
        return x
