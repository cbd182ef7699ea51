"""``xmodal prepare superpixels``: cache SLIC superpixels of every camera image of a dataset.

Imports nothing heavy at module level (``xmodal --help`` stays instant).
"""

from __future__ import annotations

import argparse
import json

from xmodal.cli.argtypes import non_negative, positive


def add_prepare_superpixels_parser(psub) -> argparse.ArgumentParser:
    """Add ``superpixels`` to the ``xmodal prepare`` subparsers ``psub``."""
    p = psub.add_parser(
        "superpixels",
        help="cache SLIC superpixels (uint16 PNG) of every camera image",
        description="Compute SLIC superpixels of every camera image of a nuScenes root "
        "(samples/CAM_*/*.jpg) or ScanNet root (scans/*/color/*.jpg) and write one uint16 PNG per "
        "image under <root>/superpixels/<tag>/, mirroring the image paths. Resumable: images "
        "already cached are skipped. Defaults are SLidR's setting (n=150, compactness 6, sigma 3).",
    )
    p.add_argument("--root", required=True, help="dataset root (nuScenes dataroot or ScanNet root)")
    p.add_argument("--method", choices=["fast", "skimage"], default="fast",
                   help="fast: multi-resolution torch SLIC (default); skimage: scikit-image (reference)")
    p.add_argument("--n-segments", type=positive(int), default=150, help="approximate superpixels per image (default 150)")
    p.add_argument("--compactness", type=positive(float), default=6.0, help="SLIC compactness (default 6)")
    p.add_argument("--sigma", type=non_negative(float), default=3.0, help="Gaussian smoothing, pixels (default 3)")
    p.add_argument("--tag", default=None,
                   help="cache folder under <root>/superpixels (default slic_n<N>_c<C>_s<S>_<method>)")
    p.add_argument("--force", action="store_true", help="recompute images already cached")
    p.add_argument("--limit", type=non_negative(int), default=None, help="only the first N images (sorted by path)")
    p.add_argument("--threads", type=non_negative(int), default=0, help="torch CPU threads (default 0 = torch's default)")
    p.add_argument("--device", default=None, help="torch device for --method fast (default cpu), e.g. cuda")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_prepare_superpixels)
    return p


def cmd_prepare_superpixels(args: argparse.Namespace) -> None:
    from xmodal.data.superpixels import prepare_superpixels

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    summary = prepare_superpixels(
        args.root, method=args.method, n_segments=args.n_segments, compactness=args.compactness,
        sigma=args.sigma, tag=args.tag, force=args.force, progress=not args.quiet, limit=args.limit,
        device=args.device,
    )
    print(json.dumps(summary, indent=2, default=str))
