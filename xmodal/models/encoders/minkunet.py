"""MinkUNet-style sparse-voxel UNet on spconv: the LiDAR student.

``MinkUNet(in_channels, out_channels, depth=34, width=1.0)`` follows the MinkowskiEngine
MinkUNet family that SLidR, Seal and SuperFlow distill into: a two-convolution stem, four
encoder stages (stride-2 sparse convolution, then residual blocks of 3x3x3 submanifold
convolutions), four decoder stages (inverse convolution back to the skip's voxels, concatenation
with the skip, residual blocks) and a linear head.

    depth 14: blocks (1, 1, 1, 1, 1, 1, 1, 1)     channels (x width) stem 32,
    depth 18: blocks (2, 2, 2, 2, 2, 2, 2, 2)     encoder 32, 64, 128, 256,
    depth 34: blocks (2, 3, 4, 6, 2, 2, 2, 2)     decoder 256, 128, 96, 96

:meth:`MinkUNet.forward` takes points in the LiDAR frame (``[N, 3 + F]``: x, y, z metres and F
feature columns, e.g. intensity and time lag; a batch is concatenated with ``batch_offsets``),
voxelizes them (:func:`xmodal.ops.voxelize`, cubic or SLidR's cylindrical grid), feeds the mean
of every input column per voxel to the network and returns per-point features ``[N,
out_channels]`` through the voxel -> point map (zeros for points outside ``point_range``). It
runs on CPU (spconv's CPU wheel with xmodal's backward fix) and on CUDA (``spconv-cu120``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from xmodal.models.encoders.spconv_compat import import_spconv
from xmodal.ops.voxelize import Voxels, voxelize

__all__ = ["MinkUNet", "BLOCKS", "CHANNELS"]

spconv = import_spconv()

BLOCKS = {14: (1, 1, 1, 1, 1, 1, 1, 1), 18: (2, 2, 2, 2, 2, 2, 2, 2), 34: (2, 3, 4, 6, 2, 2, 2, 2)}
STEM = 32
CHANNELS = (32, 64, 128, 256, 256, 128, 96, 96)


def _bn_relu(c: int) -> nn.Sequential:
    """BatchNorm + ReLU; inside ``spconv.SparseSequential`` dense modules act on the features."""
    return nn.Sequential(nn.BatchNorm1d(c), nn.ReLU(inplace=True))


class _BasicBlock(spconv.SparseModule):
    """Two 3x3x3 submanifold convolutions with a residual (a linear projection when the channel
    count changes), as MinkowskiEngine's BasicBlock."""

    def __init__(self, cin: int, cout: int, key: str):
        super().__init__()
        self.conv1 = spconv.SubMConv3d(cin, cout, 3, bias=False, indice_key=key)
        self.bn1 = _bn_relu(cout)
        self.conv2 = spconv.SubMConv3d(cout, cout, 3, bias=False, indice_key=key)
        self.bn2 = nn.BatchNorm1d(cout)
        self.skip = nn.Identity() if cin == cout else nn.Sequential(nn.Linear(cin, cout, bias=False), nn.BatchNorm1d(cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.conv1(x)
        out = out.replace_feature(self.bn1(out.features))
        out = self.conv2(out)
        return out.replace_feature(self.relu(self.bn2(out.features) + self.skip(x.features)))


class MinkUNet(nn.Module):
    """Sparse-voxel UNet student; see the module docstring for the architecture and I/O."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        depth: int = 34,
        width: float = 1.0,
        voxel_size: float | Sequence[float] = 0.1,
        coords: str = "cubic",
        point_range: Sequence[float] | None = None,
    ):
        super().__init__()
        if depth not in BLOCKS:
            raise ValueError(f"MinkUNet: depth must be one of {sorted(BLOCKS)}, got {depth}")
        if not width > 0:
            raise ValueError(f"MinkUNet: width must be > 0, got {width}")
        if in_channels < 3:
            raise ValueError(f"MinkUNet: in_channels counts every point column (x, y, z + features): >= 3, got {in_channels}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.voxel_size, self.coords, self.point_range = voxel_size, coords, point_range
        ch = [max(8, int(round(c * width))) for c in CHANNELS]
        stem = max(8, int(round(STEM * width)))
        blocks = BLOCKS[depth]
        self.stem = spconv.SparseSequential(
            spconv.SubMConv3d(in_channels, stem, 3, bias=False, indice_key="subm0"), _bn_relu(stem),
            spconv.SubMConv3d(stem, stem, 3, bias=False, indice_key="subm0"), _bn_relu(stem),
        )
        self.down, self.enc = nn.ModuleList(), nn.ModuleList()
        cin = stem
        for i in range(4):
            self.down.append(spconv.SparseSequential(
                spconv.SparseConv3d(cin, cin, 2, stride=2, bias=False, indice_key=f"down{i + 1}"), _bn_relu(cin)))
            self.enc.append(spconv.SparseSequential(
                *[_BasicBlock(cin if b == 0 else ch[i], ch[i], f"subm{i + 1}") for b in range(blocks[i])]))
            cin = ch[i]
        skips = [ch[2], ch[1], ch[0], stem]
        self.up, self.dec = nn.ModuleList(), nn.ModuleList()
        for j in range(4):
            cout = ch[4 + j]
            self.up.append(spconv.SparseSequential(
                spconv.SparseInverseConv3d(cin, cout, 2, bias=False, indice_key=f"down{4 - j}"), _bn_relu(cout)))
            self.dec.append(spconv.SparseSequential(
                *[_BasicBlock(cout + skips[j] if b == 0 else cout, cout, f"subm{3 - j}") for b in range(blocks[4 + j])]))
            cin = cout
        self.head = nn.Linear(cin, out_channels)

    def voxelize(self, points: torch.Tensor, batch_offsets: torch.Tensor | None = None) -> Voxels:
        """The voxels this network sees for ``points`` [N, 3 + F] (LiDAR frame, metres)."""
        return voxelize(points, self.voxel_size, self.point_range, coords=self.coords, batch_offsets=batch_offsets)

    def forward_voxels(self, vox: Voxels, feats: torch.Tensor) -> torch.Tensor:
        """[V, out_channels] features of the voxels ``vox`` with input features ``feats`` [V, C_in].

        spconv has no bfloat16 kernels (CPU or CUDA): under bf16 autocast the network runs in
        fp32 (the teacher, outside it, keeps bf16); fp16 autocast on CUDA goes through."""
        dev = feats.device.type
        if torch.is_autocast_enabled(dev) and torch.get_autocast_dtype(dev) == torch.bfloat16:
            with torch.autocast(dev, enabled=False):
                return self._forward_voxels(vox, feats.float())
        return self._forward_voxels(vox, feats)

    def _forward_voxels(self, vox: Voxels, feats: torch.Tensor) -> torch.Tensor:
        x = spconv.SparseConvTensor(feats, vox.spconv_indices(), vox.spconv_shape(), vox.batch_size)
        x = self.stem(x)
        skips = [x]
        for down, enc in zip(self.down, self.enc):
            x = enc(down(x))
            skips.append(x)
        skips.pop()  # the bottleneck is not a skip
        for up, dec in zip(self.up, self.dec):
            x = up(x)
            skip = skips.pop()
            x = dec(x.replace_feature(torch.cat([x.features, skip.features], 1)))
        return self.head(x.features)

    def forward(self, points: torch.Tensor, batch_offsets: torch.Tensor | None = None) -> torch.Tensor:
        """[N, out_channels] per-point features of ``points`` [N, in_channels] (columns x, y, z in
        metres, LiDAR frame, then features); points outside the grid get zeros."""
        if points.dim() != 2 or points.shape[1] != self.in_channels:
            raise ValueError(f"MinkUNet: points must be [N, {self.in_channels}] (x, y, z + features), got {tuple(points.shape)}")
        vox = self.voxelize(points, batch_offsets)
        return vox.gather(self.forward_voxels(vox, vox.pool(points, "mean")))


# ----------------------------------------------------------------------------- config
from dataclasses import dataclass  # noqa: E402
from typing import Literal, Optional  # noqa: E402

from xmodal.registry import ENCODERS  # noqa: E402


@dataclass(frozen=True)
class MinkUNetConfig:
    """``backbone: {type: minkunet}``. ``in_channels`` counts every point column (x, y, z and the
    dataset's ``point_features``); ``voxel_size`` is (x, y, z) m for cubic voxels or (ρ m, φ
    degrees, z m) for cylindrical ones (SLidR: 0.1 m, 1°, 0.1 m); ``point_range``, when given, must
    be a whole number of voxels on every axis (checked when the config loads)."""

    in_channels: int = 4
    out_channels: int = 64
    depth: Literal[14, 18, 34] = 34
    width: float = 1.0
    coords: Literal["cubic", "cylindrical"] = "cylindrical"
    voxel_size: tuple[float, float, float] = (0.1, 1.0, 0.1)
    point_range: Optional[tuple[float, float, float, float, float, float]] = None

    def validate(self) -> None:
        if self.in_channels < 3 or self.out_channels < 1 or not self.width > 0:
            raise ValueError("in_channels must be >= 3 (x, y, z + features), out_channels >= 1 and width > 0.")
        if any(not s > 0 for s in self.voxel_size):
            raise ValueError(f"voxel_size must be > 0 on every axis, got {self.voxel_size}.")
        if self.point_range is not None:
            from xmodal.geometry.grid import grid_cells

            grid_cells(self.point_range[:3], self.point_range[3:], self.voxel_size)


@ENCODERS.register("minkunet", config=MinkUNetConfig)
def build_minkunet(cfg: MinkUNetConfig) -> MinkUNet:
    return MinkUNet(
        cfg.in_channels, cfg.out_channels, depth=cfg.depth, width=cfg.width, voxel_size=cfg.voxel_size,
        coords=cfg.coords, point_range=cfg.point_range,
    )
