"""``xmodal teacher``: fit the tiny CLIP of the synthetic worlds, cache teacher features.

- ``xmodal teacher fit-tiny-clip --data DIR --out FILE [--steps N] [--seed S] [--threads T] [--quiet]``
- ``xmodal teacher cache --root DIR --teacher {FILE.pt | teacher.yaml} --out DIR [--pca-dim K] ...``

Imports nothing heavy at module level (``xmodal --help`` stays instant).
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from xmodal.cli.argtypes import non_negative, positive
from xmodal.errors import ConfigError


def add_teacher_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``teacher`` (with ``fit-tiny-clip`` and ``cache``) to the top-level subparsers."""
    p = subparsers.add_parser("teacher", help="frozen teachers: fit the tiny CLIP, cache teacher features")
    tsub = p.add_subparsers(dest="action", metavar="<action>", required=True)
    f = tsub.add_parser(
        "fit-tiny-clip",
        help="train a tiny OpenCLIP model on crops and captions of a synthetic driving world",
        description="Train a tiny open_clip CLIP (ModifiedResNet image tower, 2-layer text tower) "
        "contrastively on image crops and class captions of a world written by `xmodal synth driving`, "
        "hold out its last scene, report zero-shot crop accuracy and dense zero-shot pixel accuracy / "
        "mIoU there, and write FILE (weights + record, readable by open_clip) and FILE.json (the "
        "open_clip model config, metrics and training parameters). Use it as `teacher: {type: "
        "tiny_clip, weights: FILE}`.",
    )
    f.add_argument("--data", required=True, help="dataroot written by `xmodal synth driving` (with semantic/ masks)")
    f.add_argument("--out", required=True, help="file to write, e.g. data/teachers/tiny_clip.pt (+ .json sidecar)")
    f.add_argument("--steps", type=positive(int), default=None,
                   help="training steps of 128 crops (default 420, ~105 s on 2 idle cores)")
    f.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    f.add_argument("--time-limit", type=non_negative(float), default=None,
                   help="seconds of training after which the schedule ends early (default 120; 0 = none: every "
                   "step runs and the same seed gives the same file)")
    f.add_argument("--threads", type=non_negative(int), default=0, help="torch CPU threads (default 0 = torch's default)")
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    f.set_defaults(func=cmd_fit_tiny_clip)

    c = tsub.add_parser(
        "cache",
        help="cache a teacher's dense features of every camera image (fp16 shards, optional PCA)",
        description="Run a frozen teacher on every camera image of a dataset root (nuScenes "
        "samples/CAM_*/*.jpg or ScanNet scans/*/color/*.jpg) at its stored resolution and write fp16 "
        "shards, an index and a manifest to --out. Resumable: run it again to continue.",
    )
    c.add_argument("--root", required=True, help="dataset root (nuScenes dataroot or ScanNet root)")
    c.add_argument("--teacher", required=True,
                   help="a tiny-CLIP file (.pt, from fit-tiny-clip) or a YAML file holding a teacher section "
                   "(`type: open_clip` ...; a top-level `teacher:` key is accepted)")
    c.add_argument("--out", required=True, help="cache folder to write")
    c.add_argument("--pca-dim", type=positive(int), default=None, help="store this many PCA coefficients per cell")
    c.add_argument("--batch-size", type=positive(int), default=8, help="images per teacher call (default 8)")
    c.add_argument("--limit", type=non_negative(int), default=None, help="only the first N images (sorted by path)")
    c.add_argument("--device", default=None, help="torch device, e.g. cuda (default cpu)")
    c.add_argument("--threads", type=non_negative(int), default=0, help="torch CPU threads (default 0 = torch's default)")
    c.add_argument("--force", action="store_true", help="rebuild a cache written with another teacher or options")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    c.set_defaults(func=cmd_teacher_cache)
    return p


def cmd_fit_tiny_clip(args: argparse.Namespace) -> None:
    from xmodal.models.teachers.tiny_clip_fit import FitConfig, fit_tiny_clip

    kw = {"seed": args.seed}
    if args.steps is not None:
        kw["steps"] = args.steps
    if args.time_limit is not None:
        kw["time_limit"] = args.time_limit or None
    cfg = FitConfig(**kw)
    summary = fit_tiny_clip(
        args.data, args.out, cfg, threads=args.threads or None,
        progress=not args.quiet,
    )
    print(json.dumps(summary, indent=2, default=str))


def load_teacher_spec(spec: str):
    """A teacher from the ``--teacher`` argument: a tiny-CLIP ``.pt`` or a YAML teacher section."""
    from xmodal.registry import TEACHERS

    path = Path(spec)
    if not path.is_file():
        raise ConfigError(f"--teacher '{spec}' does not exist; pass a tiny-CLIP file (.pt) or a YAML teacher section.")
    if path.suffix in (".yaml", ".yml"):
        from xmodal.config.yaml_io import parse_yaml

        data = parse_yaml(path.read_text())
        if isinstance(data, dict) and isinstance(data.get("teacher"), dict):
            data = data["teacher"]
        if not isinstance(data, dict) or "type" not in data:
            raise ConfigError(f"--teacher '{spec}': expected a mapping with a `type:` key (or a `teacher:` section).")
        return TEACHERS.build(data)
    return TEACHERS.build({"type": "tiny_clip", "weights": str(path)})


def cmd_teacher_cache(args: argparse.Namespace) -> None:
    import torch

    from xmodal.data.superpixels import find_camera_images
    from xmodal.data.teacher_cache import build_teacher_cache

    if args.threads:
        torch.set_num_threads(args.threads)
    _, images = find_camera_images(args.root)
    if args.limit is not None:
        images = images[: args.limit]
    teacher = load_teacher_spec(args.teacher)
    if args.device:
        teacher.to(args.device)
    parts = ["xmodal", "teacher", "cache", "--root", args.root, "--teacher", args.teacher, "--out", args.out]
    for flag, value in (("--pca-dim", args.pca_dim), ("--limit", args.limit), ("--batch-size", args.batch_size)):
        if value is not None and not (flag == "--batch-size" and value == 8):
            parts += [flag, str(value)]
    command = " ".join(shlex.quote(p) for p in parts)  # recorded; error messages add --force
    summary = build_teacher_cache(
        teacher, args.root, images, args.out, pca_dim=args.pca_dim, batch_size=args.batch_size,
        progress=not args.quiet, force=args.force, command=command,
    )
    print(json.dumps(summary, indent=2, default=str))
