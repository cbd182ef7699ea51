"""``resized_crop`` (SLidR's ResizedCrop): crop every image to a random box and resize it to one
fixed size, moving its superpixels, teacher map and point <-> pixel pairs with it.

Geometry (image pixels; pixel ``(r, c)`` covers ``[c, c + 1) x [r, r + 1)``, docs/conventions.md):
the crop box is integer, rows ``[i, i + h)`` and columns ``[j, j + w)`` of the ``H x W`` image.
Output pixel ``(r', c')`` of the ``size = (H', W')`` image has its centre at input position
``y = i + (r' + 0.5) h / H'``, ``x = j + (c' + 0.5) w / W'`` (``F.interpolate`` with
``align_corners=False``). So:

- image: bilinear resize of the crop (antialiased when it shrinks, like torchvision), rounded
  back to uint8;
- superpixels: nearest, the input pixel under each output pixel centre (exact where the crop
  is enlarged);
- pairs: the centre ``(row + 0.5, col + 0.5)`` of a pair's pixel goes to ``((row + 0.5 - i) H' / h,
  (col + 0.5 - j) W' / w)``, floored to the output pixel; pairs whose pixel lies outside the box
  are dropped;
- teacher map ``[D, h_t, w_t]`` (spans the input image): resampled with ``F.grid_sample``
  (bilinear, ``align_corners=False``, border padding — the same clamping as the bilinear
  upsampling that turns a map into per-pixel features) at the centres of a new ``feat_size``
  grid that spans the crop. Default ``feat_size=None`` keeps the map's own size ``(h_t, w_t)``:
  one size for every crop (so samples collate), never fewer cells than the crop covered (cells
  get finer than the teacher's stride, by interpolation, not coarser).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from xmodal.data.transforms._common import check_call, check_count, check_interval, num_images
from xmodal.registry import TRANSFORMS
from xmodal.structures.lidar_camera import LidarCameraSample, PixelPairs

__all__ = ["ResizedCropConfig", "ResizedCrop", "sample_crop_box", "map_pixels", "resample_feature_map"]

Box = tuple[int, int, int, int]  # (i, j, h, w): top row, left column, height, width (pixels)


@dataclass(frozen=True)
class ResizedCropConfig:
    """``type: resized_crop``. Defaults are SLidR's. Per image, a box of area ``scale`` times the
    image's and aspect ``ratio`` (width / height) is drawn (torchvision's RandomResizedCrop rule)
    until it keeps more than ``min_pairs`` of the image's pairs or more than ``min_kept`` of them;
    after ``max_tries`` failed boxes the whole image is used (it keeps every pair; the aspect
    ratio may then change). Images without pairs take the first box."""

    size: tuple[int, int] = (224, 416)  # (H', W') of every output image, pixels
    scale: tuple[float, float] = (0.3, 1.0)  # crop area / image area
    ratio: tuple[float, float] = (14.0 / 9.0, 17.0 / 9.0)  # crop width / height
    min_pairs: int = 1024
    min_kept: float = 0.75  # fraction of the image's pairs
    max_tries: int = 10
    feat_size: tuple[int, int] | None = None  # teacher map (h, w) after the crop; None: as before
    antialias: bool = True  # antialias the image when the crop shrinks

    def validate(self) -> None:
        for key in ("size", "feat_size"):
            v = getattr(self, key)
            if v is None and key == "feat_size":
                continue
            if len(v) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v):
                raise ValueError(f"resized_crop.{key} must be two positive integers (height, width), got {v!r}")
        check_interval("resized_crop", "scale", self.scale, low=0.0, high=1.0, open_low=True)
        check_interval("resized_crop", "ratio", self.ratio, low=0.0, open_low=True)
        check_count("resized_crop", "min_pairs", self.min_pairs)
        check_count("resized_crop", "max_tries", self.max_tries, minimum=1)
        if not isinstance(self.min_kept, (int, float)) or not 0.0 <= self.min_kept <= 1.0:
            raise ValueError(f"resized_crop.min_kept is a fraction in [0, 1], got {self.min_kept!r}")


def sample_crop_box(
    rng: np.random.Generator, height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float]
) -> Box:
    """torchvision's ``RandomResizedCrop.get_params`` with ``rng``: up to 10 draws of area and
    log-uniform aspect, then a centred crop clamped to ``ratio``. Returns ``(i, j, h, w)``."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * float(rng.uniform(*scale))
        aspect = math.exp(float(rng.uniform(*log_ratio)))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            i = int(rng.integers(0, height - h + 1))
            j = int(rng.integers(0, width - w + 1))
            return i, j, h, w
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, max(1, int(round(width / ratio[0])))
    elif in_ratio > ratio[1]:
        h, w = height, max(1, int(round(height * ratio[1])))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def map_pixels(
    row: torch.Tensor, col: torch.Tensor, box: Box, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Integer pixels ``row``, ``col`` [M] of the input image -> ``(row', col', inside)`` [M] in the
    ``size`` output of the crop ``box`` (see module docstring); ``inside`` is False for pixels
    outside the box (their row'/col' are meaningless)."""
    i, j, h, w = box
    r = torch.floor((row.to(torch.float64) + 0.5 - i) * (size[0] / h)).to(torch.int64)
    c = torch.floor((col.to(torch.float64) + 0.5 - j) * (size[1] / w)).to(torch.int64)
    inside = (row >= i) & (row < i + h) & (col >= j) & (col < j + w)
    return r, c, inside


def resample_feature_map(
    feats: torch.Tensor,  # [D, h_t, w_t] spans the H x W image
    image_size: tuple[int, int],  # (H, W) of the image the map spans, pixels
    box: Box,  # (i, j, h, w) crop, pixels
    out_size: tuple[int, int],  # (h', w') of the new map, which spans the crop
) -> torch.Tensor:
    """[D, h', w'] map spanning the crop: bilinear samples of ``feats`` at the new cell centres
    ``(i + (a + 0.5) h / h', j + (b + 0.5) w / w')`` (image pixels), border-clamped. Computed in
    float32 (float64 stays float64), returned in ``feats``' dtype."""
    H, W = image_size
    i, j, h, w = box
    dtype = torch.float64 if feats.dtype == torch.float64 else torch.float32
    dev = feats.device
    ys = (i + (torch.arange(out_size[0], dtype=torch.float64) + 0.5) * (h / out_size[0])) * (2.0 / H) - 1.0
    xs = (j + (torch.arange(out_size[1], dtype=torch.float64) + 0.5) * (w / out_size[1])) * (2.0 / W) - 1.0
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)  # [h', w', 2] as (x, y)
    out = F.grid_sample(
        feats[None].to(dtype), grid[None].to(dtype=dtype, device=dev),
        mode="bilinear", padding_mode="border", align_corners=False,
    )
    return out[0].to(feats.dtype)


@TRANSFORMS.register("resized_crop", config=ResizedCropConfig)
class ResizedCrop:
    """Random crop + resize of every image to ``cfg.size``; one box per image (images of a sample
    get different boxes). Pairs keep their order; dropped pairs are those outside their box.
    Samples without images are returned as they are. Draws from ``rng`` per image, in image order.
    """

    def __init__(self, cfg: ResizedCropConfig = ResizedCropConfig()) -> None:
        cfg.validate()
        self.cfg = cfg

    def choose_box(self, rng: np.random.Generator, height: int, width: int, row: torch.Tensor, col: torch.Tensor) -> Box:
        """A box for one ``height x width`` image whose pairs sit at pixels ``row``, ``col`` [M]."""
        cfg = self.cfg
        total = row.numel()
        for _ in range(cfg.max_tries):
            box = sample_crop_box(rng, height, width, cfg.scale, cfg.ratio)
            if total == 0:
                return box
            i, j, h, w = box
            kept = int(((row >= i) & (row < i + h) & (col >= j) & (col < j + w)).sum())
            if kept > cfg.min_pairs or kept / total > cfg.min_kept:
                return box
        return 0, 0, height, width

    def sample_boxes(self, sample: LidarCameraSample, rng: np.random.Generator) -> list[Box]:
        """The crop box ``(i, j, h, w)`` of each image of ``sample`` (what ``__call__`` draws)."""
        check_call("resized_crop", sample, rng)
        c = num_images("resized_crop", sample)
        if c == 0:
            return []
        H, W = int(sample.images.shape[-2]), int(sample.images.shape[-1])
        pairs = sample.pairs
        boxes = []
        for ci in range(c):
            on = pairs.camera == ci
            boxes.append(self.choose_box(rng, H, W, pairs.row[on], pairs.col[on]))
        return boxes

    def apply(self, sample: LidarCameraSample, boxes: list[Box]) -> LidarCameraSample:
        """Crop image ``k`` of ``sample`` to ``boxes[k]`` and resize it to ``cfg.size`` (no
        randomness). ValueError if the boxes do not match the images."""
        c = num_images("resized_crop", sample)
        if len(boxes) != c:
            raise ValueError(f"resized_crop: sample {sample.token!r} has {c} image(s) but {len(boxes)} box(es) were given")
        if c == 0:
            return sample.replace()
        cfg = self.cfg
        images, sp, tf = sample.images, sample.superpixels, sample.teacher_feats
        H, W = int(images.shape[-2]), int(images.shape[-1])
        Ho, Wo = cfg.size
        feat_size = None if tf is None else (cfg.feat_size or (int(tf.shape[-2]), int(tf.shape[-1])))
        pairs = sample.pairs
        new_row, new_col = pairs.row.clone(), pairs.col.clone()
        keep = torch.zeros(len(pairs), dtype=torch.bool, device=pairs.row.device)
        out_img, out_sp, out_tf = [], [], []
        for ci, box in enumerate(boxes):
            i, j, h, w = (int(v) for v in box)
            if not (0 <= i and 0 <= j and h > 0 and w > 0 and i + h <= H and j + w <= W):
                raise ValueError(f"resized_crop: box {ci} = {tuple(box)} (i, j, h, w) is not inside the {H}x{W} image")
            on = pairs.camera == ci
            r, cc, inside = map_pixels(pairs.row[on], pairs.col[on], (i, j, h, w), cfg.size)
            new_row[on], new_col[on], keep[on] = r, cc, inside
            out_img.append(self._resize_image(images[ci, :, i : i + h, j : j + w]))
            if sp is not None:
                rows = i + torch.floor((torch.arange(Ho, dtype=torch.float64) + 0.5) * (h / Ho)).long().clamp(max=h - 1)
                cols = j + torch.floor((torch.arange(Wo, dtype=torch.float64) + 0.5) * (w / Wo)).long().clamp(max=w - 1)
                out_sp.append(sp[ci].index_select(0, rows.to(sp.device)).index_select(1, cols.to(sp.device)))
            if tf is not None:
                out_tf.append(resample_feature_map(tf[ci], (H, W), (i, j, h, w), feat_size))
        new_pairs = PixelPairs(pairs.point, pairs.camera, new_row, new_col).select(keep)
        return sample.replace(
            images=torch.stack(out_img),
            superpixels=None if sp is None else torch.stack(out_sp),
            teacher_feats=None if tf is None else torch.stack(out_tf),
            pairs=new_pairs,
        )

    def __call__(self, sample: LidarCameraSample, rng: np.random.Generator) -> LidarCameraSample:
        return self.apply(sample, self.sample_boxes(sample, rng))

    def _resize_image(self, crop: torch.Tensor) -> torch.Tensor:
        """[3, h, w] crop -> [3, H', W'] bilinear, in the crop's dtype (uint8 rounded, clamped)."""
        size = tuple(self.cfg.size)
        if tuple(crop.shape[-2:]) == size:
            return crop.clone()
        x = crop[None].to(torch.float32)
        # antialias only changes the axes that shrink (checked: upsampling is plain bilinear)
        y = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=self.cfg.antialias)[0]
        if crop.dtype == torch.uint8:
            return y.round_().clamp_(0, 255).to(torch.uint8)
        return y.to(crop.dtype)

    def __repr__(self) -> str:
        cfg = self.cfg
        return f"ResizedCrop(size={cfg.size}, scale={cfg.scale}, ratio={cfg.ratio}, feat_size={cfg.feat_size})"
