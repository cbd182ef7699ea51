"""The MinkUNet student: shapes, per-point output through the voxel map, CPU training steps,
parameter counts of the depths, bad arguments."""

from __future__ import annotations

import pytest
import torch

from xmodal.bench.inputs import lidar_sweeps
from xmodal.models.encoders.minkunet import MinkUNet


def _batch(n_per_scan: int = 1500, scans: int = 2):
    clouds = [lidar_sweeps(1, azimuths=n_per_scan // 32, seed=s)[:, :4] for s in range(scans)]
    points = torch.cat(clouds)
    offsets = torch.tensor([0] + [len(c) for c in clouds]).cumsum(0)
    return points, offsets


@pytest.mark.parametrize("coords", ["cubic", "cylindrical"])
def test_per_point_features_and_backward(coords):
    torch.manual_seed(0)
    points, offsets = _batch()
    net = MinkUNet(4, 16, depth=14, width=0.25, voxel_size=0.2, coords=coords)
    out = net(points, offsets)
    assert out.shape == (len(points), 16) and torch.isfinite(out).all()
    # points in one voxel share its feature
    vox = net.voxelize(points, offsets)
    first = torch.zeros(vox.num_voxels, dtype=torch.long).scatter_(0, vox.point2voxel.flip(0), torch.arange(len(points)).flip(0))
    torch.testing.assert_close(out, out[first[vox.point2voxel]])
    out.square().mean().backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_trains_on_cpu():
    torch.manual_seed(0)
    points, offsets = _batch()
    target = (points[:, 2] > -1.0).long()  # ground vs not: learnable from geometry
    net = MinkUNet(4, 2, depth=14, width=0.25, voxel_size=0.25)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(6):
        loss = torch.nn.functional.cross_entropy(net(points, offsets), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_depths_parameter_counts():
    counts = {d: sum(p.numel() for p in MinkUNet(4, 96, depth=d).parameters()) for d in (14, 18, 34)}
    assert counts[14] < counts[18] < counts[34]
    # MinkUNet34 (MinkowskiEngine, 4 in, 96-d head) has ~37.9M parameters
    assert 30e6 < counts[34] < 45e6, counts


def test_bad_arguments():
    with pytest.raises(ValueError, match="depth must be one of"):
        MinkUNet(4, 8, depth=50)
    with pytest.raises(ValueError, match=r"points must be \[N, 4\]"):
        MinkUNet(4, 8, depth=14, width=0.25)(torch.randn(10, 5))


def test_bf16_autocast_runs_the_network_in_fp32():
    """spconv has no bf16 kernels: under bf16 autocast the student must still train."""
    torch.manual_seed(0)
    points, offsets = _batch(800)
    net = MinkUNet(4, 8, depth=14, width=0.25, voxel_size=0.3, coords="cubic")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(points, offsets)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    out.sum().backward()
    assert net.head.weight.grad is not None
