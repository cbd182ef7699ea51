"""Pictures of features: the first three principal components of a feature set as RGB.

``pca_colors(feats)`` maps [N, C] features to [N, 3] uint8 colours (top-3 PCA directions, each
stretched between its 2nd and 98th percentile), so points or pixels with similar features get
similar colours; a distilled student whose picture looks like its teacher's has learnt its
structure. ``render_distillation_panels`` draws the teacher's dense map, the labels and several
students' point features on one camera image, one panel each.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from xmodal.visualization.draw import NUSCENES_EVAL_PALETTE, annotate, blend, grid, save_png, splat_points

__all__ = ["pca_colors", "teacher_map_image", "render_distillation_panels"]


def pca_colors(feats: torch.Tensor | np.ndarray, max_fit: int = 20000, seed: int = 0) -> np.ndarray:
    """[N, 3] uint8 colours from the top-3 principal components of ``feats`` [N, C] (C >= 1; fewer
    than 3 components are padded with mid-grey). The basis is fitted on at most ``max_fit`` rows."""
    x = torch.as_tensor(np.asarray(feats) if not isinstance(feats, torch.Tensor) else feats).detach().float()
    if x.dim() != 2 or x.shape[0] == 0:
        return np.zeros((0 if x.dim() != 2 else x.shape[0], 3), np.uint8)
    g = torch.Generator().manual_seed(seed)
    fit = x[torch.randperm(x.shape[0], generator=g)[:max_fit]]
    mean = fit.mean(0)
    k = min(3, x.shape[1], fit.shape[0])
    _, _, v = torch.linalg.svd(fit - mean, full_matrices=False)
    proj = (x - mean) @ v[:k].T  # [N, k]
    out = np.full((x.shape[0], 3), 128, np.uint8)
    for i in range(k):
        lo, hi = np.percentile(proj[:, i].numpy(), [2, 98])
        out[:, i] = (np.clip((proj[:, i].numpy() - lo) / max(hi - lo, 1e-9), 0, 1) * 255).astype(np.uint8)
    return out


def teacher_map_image(feats: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """[H, W, 3] PCA picture of a teacher map ``feats`` [D, h, w] upsampled to ``size`` (H, W)."""
    up = F.interpolate(feats[None].float(), size, mode="bilinear", align_corners=False)[0]
    return pca_colors(up.flatten(1).T).reshape(size[0], size[1], 3)


def render_distillation_panels(
    image: np.ndarray,  # [H, W, 3] uint8 camera image
    uv: np.ndarray,  # [M, 2] pixels (u = column, v = row) of the points seen by this camera
    depth: np.ndarray,  # [M] camera z, m (nearer points drawn last)
    panels: list[tuple[str, np.ndarray]],  # (title, [M, 3] uint8 colours) per panel
    out: str | os.PathLike,
    teacher: np.ndarray | None = None,  # [H, W, 3] PCA picture of the teacher's map
    labels: np.ndarray | None = None,  # [M] nuScenes eval ids of the points
    ncols: int = 2,
) -> Path:
    """One PNG: the image, the teacher's map, the labels and each panel's point colours."""
    tiles = [annotate(image, "camera")]
    if teacher is not None:
        tiles.append(annotate(blend(image, teacher, 0.75), "teacher dense features (PCA)"))
    dim = (image.astype(np.float32) * 0.35).astype(np.uint8)
    if labels is not None:
        tiles.append(annotate(splat_points(dim, uv, NUSCENES_EVAL_PALETTE[labels], 1, -depth), "lidarseg labels"))
    for title, colors in panels:
        tiles.append(annotate(splat_points(dim, uv, colors, 1, -depth), title))
    return save_png(out, grid(tiles, ncols))
