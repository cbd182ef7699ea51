"""LiDAR scans with their camera images and point <-> pixel pairs, one sample and a batch.

Frames and units: ``points`` are in the LiDAR frame (metres; columns x, y, z, then features such
as intensity); images are RGB ``[3, H, W]`` uint8; a pair links point ``point`` to pixel
``(row, col)`` of image ``camera`` (pixel ``(r, c)`` covers ``[c, c + 1) x [r, r + 1)``,
docs/conventions.md). Every transform that moves points or pixels updates the pairs with them
(``xmodal.data.transforms``).

Teacher features, when a sample carries them (a feature cache), are a map ``[D, h, w]`` per image
that spans the whole image: cell ``(i, j)`` is centred at pixel ``((i + 0.5) H / h, (j + 0.5) W /
w)``, so ``F.interpolate(feats, (H, W), mode="bilinear", align_corners=False)`` gives per-pixel
features. Teachers (``xmodal.models.teachers``) return maps with the same meaning.

A batch concatenates the points of its samples with ``offsets`` (never padded), stacks the images
of all samples (``image_offsets``), shifts pair indices to the batch rows, and offsets the
superpixel ids of every image by the number of ids before it (data-driven: no fixed 150 per image,
no uint8 aliasing as in SLidR).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

__all__ = ["PixelPairs", "LidarCameraSample", "LidarCameraBatch", "collate_lidar_camera"]


@dataclass
class PixelPairs:
    """Point <-> pixel pairs, all ``[M]`` int64: ``point`` (row of ``points``), ``camera`` (image
    index), ``row``, ``col`` (integer pixel)."""

    point: torch.Tensor
    camera: torch.Tensor
    row: torch.Tensor
    col: torch.Tensor

    @classmethod
    def empty(cls, device: torch.device | str = "cpu") -> PixelPairs:
        z = torch.zeros(0, dtype=torch.int64, device=device)
        return cls(z, z.clone(), z.clone(), z.clone())

    def __len__(self) -> int:
        return self.point.numel()

    def select(self, index: torch.Tensor) -> PixelPairs:
        """The pairs at ``index`` ([M] bool mask or int64 rows), order kept."""
        return PixelPairs(self.point[index], self.camera[index], self.row[index], self.col[index])

    def to(self, device: torch.device | str) -> PixelPairs:
        return PixelPairs(*(t.to(device) for t in (self.point, self.camera, self.row, self.col)))

    def counts_per_camera(self, num_cameras: int) -> torch.Tensor:
        """[num_cameras] int64 pairs per image."""
        return torch.bincount(self.camera, minlength=num_cameras)


@dataclass
class LidarCameraSample:
    """One LiDAR scan with its C camera images (C may be 0 for LiDAR-only evaluation data).

    ``points`` [N, 3+F] float32; ``labels`` [N] int64 evaluation ids (nuScenes: 0 = ignore,
    1..16) or None; ``images`` [C, 3, H, W] uint8 or None; ``pairs`` index ``points`` and
    ``images``; ``superpixels`` [C, H, W] int64 per-image ids ``0..K_c-1`` (-1: no superpixel) or
    None; ``teacher_feats`` [C, D, h, w] float (spans the image, see module docstring) or None.
    ``index`` is the dataset index the sample came from; ``lidar_token`` the LiDAR sample_data
    token (nuScenes lidarseg files and submissions are keyed by it), ``token`` the sample's.
    """

    token: str
    points: torch.Tensor
    labels: torch.Tensor | None = None
    images: torch.Tensor | None = None
    pairs: PixelPairs = field(default_factory=PixelPairs.empty)
    superpixels: torch.Tensor | None = None
    teacher_feats: torch.Tensor | None = None
    scene: str = ""
    index: int = -1
    lidar_token: str = ""

    @property
    def num_cameras(self) -> int:
        return 0 if self.images is None else int(self.images.shape[0])

    def replace(self, **changes) -> LidarCameraSample:
        return dataclasses.replace(self, **changes)


@dataclass
class LidarCameraBatch:
    """B samples collated (see module docstring). ``skipped`` counts samples the collate dropped
    because they had no pair (no point visible in any camera) when pairs were required."""

    tokens: list[str]
    points: torch.Tensor  # [N, 3+F]
    offsets: torch.Tensor  # [B+1] int64 cumulative point counts
    labels: torch.Tensor | None  # [N] int64
    images: torch.Tensor | None  # [I, 3, H, W] uint8
    image_offsets: torch.Tensor  # [B+1] int64 cumulative image counts
    pairs: PixelPairs  # point in 0..N-1, camera in 0..I-1
    superpixels: torch.Tensor | None  # [I, H, W] int64 batch-global ids, -1 = none
    num_superpixels: int
    teacher_feats: torch.Tensor | None  # [I, D, h, w]
    indices: list[int] = field(default_factory=list)
    skipped: int = 0

    @property
    def batch_size(self) -> int:
        return len(self.tokens)

    def to(self, device: torch.device | str) -> LidarCameraBatch:
        def mv(t):
            return None if t is None else t.to(device, non_blocking=True)

        return dataclasses.replace(
            self,
            points=mv(self.points), offsets=mv(self.offsets), labels=mv(self.labels), images=mv(self.images),
            image_offsets=mv(self.image_offsets), pairs=self.pairs.to(device), superpixels=mv(self.superpixels),
            teacher_feats=mv(self.teacher_feats),
        )

    def replace(self, **changes) -> LidarCameraBatch:
        return dataclasses.replace(self, **changes)


def _cat_optional(parts: list[torch.Tensor | None], what: str) -> torch.Tensor | None:
    present = [p is not None for p in parts]
    if not any(present):
        return None
    if not all(present):
        raise ValueError(f"collate_lidar_camera: some samples have {what} and some do not; build them all the same way")
    return torch.cat(parts)  # type: ignore[arg-type]


def collate_lidar_camera(samples: list[LidarCameraSample | None], require_pairs: bool = False) -> LidarCameraBatch:
    """Collate samples into a :class:`LidarCameraBatch`. ``None`` entries (samples a dataset
    skipped) and, with ``require_pairs``, samples with no pair are dropped and counted in
    ``skipped``. Images of all samples must have one size (crop them to one size first)."""
    kept = [s for s in samples if s is not None and (not require_pairs or len(s.pairs) > 0)]
    skipped = len(samples) - len(kept)
    if not kept:
        z = torch.zeros(1, dtype=torch.int64)
        return LidarCameraBatch([], torch.zeros(0, 4), z, None, None, z.clone(), PixelPairs.empty(), None, 0, None, [], skipped)
    sizes = {tuple(s.images.shape[-2:]) for s in kept if s.images is not None}
    if len(sizes) > 1:
        raise ValueError(
            f"collate_lidar_camera: images of one batch must share a size, got {sorted(sizes)}; add a crop/resize "
            "transform (e.g. type: resized_crop) or set the dataset's image_size"
        )
    n_pts = torch.tensor([0] + [s.points.shape[0] for s in kept]).cumsum(0)
    n_img = torch.tensor([0] + [s.num_cameras for s in kept]).cumsum(0)
    pairs = PixelPairs(
        torch.cat([s.pairs.point + n_pts[i] for i, s in enumerate(kept)]),
        torch.cat([s.pairs.camera + n_img[i] for i, s in enumerate(kept)]),
        torch.cat([s.pairs.row for s in kept]),
        torch.cat([s.pairs.col for s in kept]),
    )
    superpixels, num_sp = None, 0
    if any(s.superpixels is not None for s in kept):
        parts = []
        for s in kept:
            if s.superpixels is None:
                raise ValueError("collate_lidar_camera: some samples have superpixels and some do not")
            for sp in s.superpixels:  # per image: shift by the ids used so far
                k = int(sp.max()) + 1 if sp.numel() else 0
                parts.append(torch.where(sp >= 0, sp + num_sp, sp))
                num_sp += max(k, 0)
        superpixels = torch.stack(parts) if parts else None
    images = _cat_optional([s.images for s in kept], "images")
    return LidarCameraBatch(
        tokens=[s.token for s in kept],
        points=torch.cat([s.points for s in kept]),
        offsets=n_pts.to(torch.int64),
        labels=_cat_optional([s.labels for s in kept], "labels"),
        images=images,
        image_offsets=n_img.to(torch.int64),
        pairs=pairs,
        superpixels=superpixels,
        num_superpixels=num_sp,
        teacher_feats=_cat_optional([s.teacher_feats for s in kept], "teacher features"),
        indices=[s.index for s in kept],
        skipped=skipped,
    )
