"""zbuffer_visibility: the multi-camera fast path (Segments + segment_min + max_pool2d) against
the per-camera reference and a hand-written numpy definition, hand-computed cases, per-pixel
buffers, the host-side geometry wrapper, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xmodal.geometry import zbuffer_visibility as host_zbuffer_visibility
from xmodal.ops.occlusion import zbuffer_visibility, zbuffer_visibility_reference
from xmodal.ops.projection import project_points


def numpy_definition(uv, depth, image_size, cell, dilate, abs_tol=0.5, rel_tol=0.1, valid=None):
    """One camera, point by point: nearest depth per cell, min over the neighbouring cells."""
    h, w = image_size
    gh, gw = -(-h // cell), -(-w // cell)
    rows, cols = np.floor(uv[:, 1]), np.floor(uv[:, 0])
    ok = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w) & (depth > 0)
    if valid is not None:
        ok &= valid
    zbuf = np.full((gh, gw), np.inf)
    for i in np.flatnonzero(ok):
        r, c = int(rows[i]) // cell, int(cols[i]) // cell
        zbuf[r, c] = min(zbuf[r, c], depth[i])
    out = np.zeros(len(depth), bool)
    for i in np.flatnonzero(ok):
        r, c = int(rows[i]) // cell, int(cols[i]) // cell
        z = zbuf[max(r - dilate, 0) : r + dilate + 1, max(c - dilate, 0) : c + dilate + 1].min()
        out[i] = depth[i] <= z + abs_tol + rel_tol * z
    return out


def random_pairs(m: int, sizes, seed: int, dtype=torch.float64):
    """uv (some outside, some on integer pixel borders), depth (some <= 0), camera."""
    g = np.random.default_rng(seed)
    sizes = np.asarray(sizes)
    cam = g.integers(0, len(sizes), m)
    hw = sizes[cam]
    uv = g.uniform(-3, 1, (m, 2)) + g.uniform(0, 1.05, (m, 2)) * hw[:, ::-1]
    uv[: m // 4] = np.floor(uv[: m // 4])
    depth = g.choice([2.0, 5.0, 20.0, 40.0], m) * g.uniform(0.9, 1.1, m)
    depth[g.random(m) < 0.03] = -1.0
    return (torch.tensor(uv, dtype=dtype), torch.tensor(depth, dtype=dtype), torch.from_numpy(cam))


# ----------------------------------------------------------------------------- hand-computed
@pytest.mark.parametrize("fn", [zbuffer_visibility, zbuffer_visibility_reference])
def test_hand_computed(fn):
    uv = torch.tensor([[10.0, 10.0], [11.0, 11.0], [40.0, 40.0], [12.0, 9.0]])
    depth = torch.tensor([5.0, 20.0, 20.0, 5.4])
    assert fn(uv, (64, 64), depth=depth, cell=8, dilate=1).tolist() == [True, False, True, True]
    uv2, d2 = torch.tensor([[10.0, 10.0], [17.0, 10.0]]), torch.tensor([5.0, 20.0])
    assert fn(uv2, (64, 64), depth=d2, cell=8, dilate=1).tolist() == [True, False]
    assert fn(uv2, (64, 64), depth=d2, cell=8, dilate=0).tolist() == [True, True]
    # tolerance: 5 m + 0.5 m + 10 % -> 6.0 m hidden only above
    d3 = torch.tensor([5.0, 6.0]), torch.tensor([5.0, 6.01])
    assert fn(uv2, (64, 64), depth=d3[0], cell=8).tolist() == [True, True]
    assert fn(uv2, (64, 64), depth=d3[1], cell=8).tolist() == [True, False]
    # another camera never occludes: same pixels, camera 1
    cams = torch.tensor([0, 1])
    assert fn(uv2, [(64, 64), (64, 64)], depth=d2, camera=cams, cell=8).tolist() == [True, True]
    # outside the image, behind the camera or not valid: not visible, and they hide nothing
    uv4 = torch.tensor([[10.0, 10.0], [64.0, 10.0], [-0.5, 3.0], [10.5, 10.5], [11.0, 11.0]])
    d4 = torch.tensor([20.0, 1.0, 1.0, -1.0, 1.0])
    valid = torch.tensor([True, True, True, True, False])
    assert fn(uv4, (64, 64), depth=d4, valid=valid, cell=8).tolist() == [True, False, False, False, False]


# ----------------------------------------------------------------------------- fast vs reference
@pytest.mark.parametrize("cell,dilate", [(8, 1), (1, 0), (1, 2), (3, 0), (29, 1), (5, 3)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fast_matches_reference_and_definition(cell, dilate, dtype):
    sizes = [(45, 80), (90, 160), (30, 41)]
    uv, depth, cam = random_pairs(3000, sizes, seed=cell * 10 + dilate, dtype=dtype)
    valid = torch.rand(3000, generator=torch.Generator().manual_seed(cell)) < 0.9
    kw = {"depth": depth, "camera": cam, "valid": valid, "cell": cell, "dilate": dilate}
    fast = zbuffer_visibility(uv, sizes, **kw)
    ref = zbuffer_visibility_reference(uv, sizes, **kw)
    assert torch.equal(fast, ref)
    assert 0.05 < fast.float().mean() < 0.95  # both outcomes occur
    for v in range(3):  # each camera on its own, against the numpy definition
        sel = (cam == v).numpy()
        want = numpy_definition(uv.double().numpy()[sel], depth.double().numpy()[sel], sizes[v], cell, dilate,
                                valid=valid.numpy()[sel])
        np.testing.assert_array_equal(fast.numpy()[sel], want)


def test_pairs_from_project_points_and_a_single_image_size():
    g = torch.Generator().manual_seed(3)
    K4 = torch.eye(4)
    K4[:3, :3] = torch.tensor([[40.0, 0, 32], [0, 40, 24], [0, 0, 1]])
    yaws = torch.arange(4) * (torch.pi / 2)
    T = torch.zeros(4, 4, 4)  # cameras looking along +x, +y, -x, -y (OpenCV axes), at the origin
    T[:, 0, 0], T[:, 0, 1] = torch.sin(yaws), -torch.cos(yaws)
    T[:, 1, 2] = -1.0
    T[:, 2, 0], T[:, 2, 1] = torch.cos(yaws), torch.sin(yaws)
    T[:, 3, 3] = 1.0
    pts = torch.randn(20000, 3, generator=g) * torch.tensor([20.0, 20.0, 2.0])
    sizes = [(48, 64)] * 4
    pairs = project_points(pts, K4 @ T, sizes)
    assert len(pairs) > 5000
    vis = zbuffer_visibility(pairs, sizes, cell=4)
    assert vis.shape == (len(pairs),) and vis.dtype == torch.bool
    assert torch.equal(vis, zbuffer_visibility_reference(pairs, (48, 64), cell=4))
    assert torch.equal(vis, zbuffer_visibility(pairs.uv, sizes, depth=pairs.depth, camera=pairs.camera, cell=4))
    assert 0 < int(vis.sum()) < len(vis)  # a random cloud hides most of itself


def test_per_pixel_zbuffer_is_the_nearest_point_per_pixel():
    """cell=1, dilate=0, no tolerance: visible iff nearest (ties: all nearest) in its pixel."""
    uv, depth, _ = random_pairs(5000, [(20, 30)], seed=5)
    vis = zbuffer_visibility(uv, (20, 30), depth=depth, cell=1, dilate=0, abs_tol=0.0, rel_tol=0.0)
    pix = torch.floor(uv).long()
    inside = (pix[:, 0] >= 0) & (pix[:, 0] < 30) & (pix[:, 1] >= 0) & (pix[:, 1] < 20) & (depth > 0)
    key = pix[:, 1] * 30 + pix[:, 0]
    for k in key[inside].unique()[:200].tolist():
        rows = (inside & (key == k)).nonzero().squeeze(1)
        assert vis[rows].tolist() == (depth[rows] == depth[rows].min()).tolist()
    assert not vis[~inside].any()


def test_host_wrapper_keeps_its_signature_and_results():
    g = np.random.default_rng(1)
    uv = g.uniform(-5, 70, (2000, 2))
    depth = g.uniform(-1, 50, 2000).astype(np.float32)
    valid = g.random(2000) < 0.8
    for cell, dilate in ((8, 1), (2, 0), (29, 1)):
        got = host_zbuffer_visibility(uv, depth, (60, 64), cell=cell, dilate=dilate, valid=valid)
        assert got.dtype == bool and got.shape == (2000,)
        np.testing.assert_array_equal(got, numpy_definition(uv, depth.astype(np.float64), (60, 64), cell, dilate, valid=valid))


def test_empty_inputs():
    e = torch.zeros(0, 2)
    assert zbuffer_visibility(e, (10, 10), depth=torch.zeros(0)).shape == (0,)
    assert zbuffer_visibility_reference(e, [(10, 10), (5, 5)], depth=torch.zeros(0), camera=torch.zeros(0, dtype=torch.long)).shape == (0,)
    outside = torch.tensor([[-1.0, 0.0]])
    assert zbuffer_visibility(outside, (10, 10), depth=torch.ones(1)).tolist() == [False]


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("fn", [zbuffer_visibility, zbuffer_visibility_reference])
def test_bad_input(fn):
    uv, depth, cam = random_pairs(50, [(20, 30), (20, 30)], seed=0)
    sizes = [(20, 30), (20, 30)]
    nan_depth = depth.clone()
    nan_depth[3] = float("nan")
    with pytest.raises(ValueError, match=r"depth or uv has 1 non-finite value.*NaN depths"):
        fn(uv, sizes, depth=nan_depth, camera=cam)
    ok = torch.ones(50, dtype=torch.bool)
    ok[3] = False
    fn(uv, sizes, depth=nan_depth, camera=cam, valid=ok)  # excluded pairs may hold anything
    with pytest.raises(ValueError, match=r"depth must be a floating tensor \[M=50\]"):
        fn(uv, sizes, depth=depth[:49], camera=cam)
    with pytest.raises(ValueError, match=r"camera must be an integer tensor \[M=50\]"):
        fn(uv, sizes, depth=depth, camera=cam[:10])
    with pytest.raises(ValueError, match=r"camera ids must be in 0 \.\. 1"):
        fn(uv, sizes, depth=depth, camera=cam + 1)
    with pytest.raises(ValueError, match=r"camera ids must be in 0 \.\. 0 \(one per image size\)"):
        fn(uv, [(20, 30)], depth=depth, camera=cam)
    with pytest.raises(ValueError, match=r"cell must be an integer >= 1"):
        fn(uv, sizes, depth=depth, camera=cam, cell=0)
    with pytest.raises(ValueError, match=r"dilate must be an integer >= 0"):
        fn(uv, sizes, depth=depth, camera=cam, dilate=-1)
    with pytest.raises(ValueError, match=r"abs_tol must be a finite number >= 0"):
        fn(uv, sizes, depth=depth, camera=cam, abs_tol=float("nan"))
    with pytest.raises(ValueError, match=r"valid must be a bool tensor \[M=50\]"):
        fn(uv, sizes, depth=depth, camera=cam, valid=torch.ones(50))
    with pytest.raises(ValueError, match=r"depth must be a torch.Tensor"):
        fn(uv, sizes)
    with pytest.raises(ValueError, match=r"uv must be a floating tensor \[M, 2\]"):
        fn(uv[:, :1], sizes, depth=depth)


# ----------------------------------------------------------------------------- CUDA
@pytest.mark.gpu
@pytest.mark.parametrize("cell,dilate", [(8, 1), (1, 0)])
def test_cuda_matches_cpu(cell, dilate):
    sizes = [(45, 80), (90, 160)]
    uv, depth, cam = random_pairs(20000, sizes, seed=2, dtype=torch.float32)
    cpu = zbuffer_visibility(uv, sizes, depth=depth, camera=cam, cell=cell, dilate=dilate)
    gpu = zbuffer_visibility(uv.cuda(), sizes, depth=depth.cuda(), camera=cam.cuda(), cell=cell, dilate=dilate)
    assert gpu.device.type == "cuda" and torch.equal(gpu.cpu(), cpu)
