"""voxelize: fast path vs the torch.unique reference, grid definition, SLidR cylindrical voxels,
wrap-around, range, batch, gradients and input errors."""

import math

import numpy as np
import pytest
import torch

from xmodal.config.schema import VoxelGridConfig
from xmodal.ops import segment_mean
from xmodal.ops.voxelize import Voxels, voxelize, voxelize_reference

RANGE = [-6.0, -6.0, -2.0, 6.0, 6.0, 2.0]
CYL_RANGE = [0.0, -180.0, -2.0, 8.0, 180.0, 2.0]


def cloud(n=2000, feats=2, seed=0, dtype=torch.float32, scale=4.0):
    """Points with clusters (several per voxel), a few far outside RANGE, integer-aligned ones."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(n // 20 + 1, 3, generator=g) * scale
    xyz = centers[torch.randint(0, centers.shape[0], (n,), generator=g)] + 0.05 * torch.randn(n, 3, generator=g)
    xyz[: n // 10] = torch.randint(-5, 6, (n // 10, 3), generator=g) * 0.5  # exactly on voxel boundaries
    xyz[n // 10 : n // 10 + 20] *= 10  # outside RANGE
    f = torch.randn(n, feats, generator=g)
    return torch.cat([xyz, f], 1).to(dtype)


def assert_same(a: Voxels, b: Voxels, atol=0.0):
    assert torch.equal(a.coords, b.coords)
    assert a.coords.dtype == torch.int32 and a.coords.shape[1] == 4
    assert torch.equal(a.point2voxel, b.point2voxel) and a.point2voxel.dtype == torch.int64
    assert torch.equal(a.num_points, b.num_points)
    assert (a.kept is None) == (b.kept is None)
    if a.kept is not None:
        assert torch.equal(a.kept, b.kept)
    assert a.spatial_shape == b.spatial_shape and a.origin == b.origin and a.batch_size == b.batch_size
    for key in ("ids", "perm", "offsets", "counts"):
        assert torch.equal(getattr(a.segments, key), getattr(b.segments, key)), key
    assert a.features.dtype == b.features.dtype
    torch.testing.assert_close(a.features, b.features, atol=atol, rtol=atol)


CASES = [
    dict(voxel_size=0.5),
    dict(voxel_size=(0.5, 0.25, 0.4), point_range=RANGE),
    dict(voxel_size=0.1, coords="cylindrical"),
    dict(voxel_size=(0.5, 2.0, 0.5), point_range=CYL_RANGE, coords="cylindrical"),
    dict(voxel_size=(0.5, 5.0, 0.5), point_range=[1.0, -45.0, -2.0, 8.0, 45.0, 2.0], coords="cylindrical"),
]


@pytest.mark.parametrize("kw", CASES, ids=["cubic", "cubic-range", "cyl-slidr", "cyl-range", "cyl-sector"])
@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_fast_matches_reference(kw, batched, dtype):
    pts = cloud(dtype=dtype)
    offsets = torch.tensor([0, 700, 700, 2000]) if batched else None
    a = voxelize(pts, batch_offsets=offsets, **kw)
    b = voxelize_reference(pts, batch_offsets=offsets, **kw)
    assert_same(a, b, atol={torch.float32: 1e-6, torch.float64: 1e-12, torch.bfloat16: 1e-2}[dtype])
    key = a.coords.long()
    lin = ((key[:, 0] * a.spatial_shape[0] + key[:, 1]) * a.spatial_shape[1] + key[:, 2]) * a.spatial_shape[2] + key[
        :, 3
    ]
    assert bool((lin.diff() > 0).all())  # sorted by linear key, no duplicates
    for axis in range(3):
        assert int(a.coords[:, 1 + axis].min()) >= 0 and int(a.coords[:, 1 + axis].max()) < a.spatial_shape[axis]
    # means are means of the points of each voxel
    kept = torch.arange(pts.shape[0]) if a.kept is None else a.kept
    np.testing.assert_allclose(
        a.features.double().numpy(),
        segment_mean(pts[kept, 3:].double(), a.segments, "reference").numpy(),
        atol=1e-2 if dtype == torch.bfloat16 else 1e-5,
    )


def test_large_grid_uses_int64_keys_and_matches_reference():
    pts = cloud(n=3000, scale=300.0)  # ~ 2e5 cells per axis at 1 cm: keys beyond int32
    a, b = voxelize(pts, 0.01), voxelize_reference(pts, 0.01)
    assert math.prod(a.spatial_shape) > 2**31
    assert_same(a, b, atol=1e-6)


def test_cubic_grid_definition():
    pts = torch.tensor(
        [
            [0.05, 0.05, -0.01],
            [0.15, -0.05, 0.1],
            [-51.2, -51.2, -5.0],
            [51.19, 51.19, 2.99],
            [60.0, 0.0, 0.0],
            [0.0, 0.0, 3.5],
        ]
    )
    v = voxelize(pts, (0.1, 0.1, 0.2), [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0])
    assert v.spatial_shape == (1024, 1024, 40) and v.origin == (0, 0, 0)
    ijk = v.coords[v.point2voxel[:4], 1:].tolist()
    assert ijk == [[512, 512, 24], [513, 511, 25], [0, 0, 0], [1023, 1023, 39]]
    assert v.point2voxel[4:].tolist() == [-1, -1]  # outside along x, along z
    # unbounded: voxel boundaries at multiples of the size, indices shifted to start at 0
    u = voxelize(torch.tensor([[0.05, 0.05, -0.01], [0.15, 0.02, 0.05]]), 0.1)
    assert u.origin == (0, 0, -1) and u.spatial_shape == (2, 1, 2)
    assert u.coords[:, 1:].tolist() == [[0, 0, 0], [1, 0, 1]]
    torch.testing.assert_close(u.centers(), torch.tensor([[0.05, 0.05, -0.05], [0.15, 0.05, 0.05]]))


def test_voxel_grid_config_is_accepted_as_is():
    cfg = VoxelGridConfig()
    cfg.validate()
    v = voxelize(cloud(), cfg.voxel_size, cfg.point_cloud_range)
    assert v.spatial_shape == cfg.grid_shape
    with pytest.raises(ValueError, match="point_range extent along x"):
        voxelize(cloud(), 0.3, cfg.point_cloud_range)  # 102.4 / 0.3 is not whole, as VoxelGridConfig says


def test_cylindrical_matches_slidr_quantization():
    """SLidR: floor(rho / 0.1), floor(phi in degrees), floor(z / 0.1) (MinkowskiEngine sparse_quantize)."""
    pts = cloud(n=3000, seed=3, dtype=torch.float64)
    x, y, z = pts[:, 0].numpy(), pts[:, 1].numpy(), pts[:, 2].numpy()
    slidr = np.stack(
        [np.floor(np.hypot(x, y) / 0.1), np.floor(np.degrees(np.arctan2(y, x))), np.floor(z / 0.1)], 1
    ).astype(np.int64)
    v = voxelize(pts, 0.1, coords="cylindrical")
    assert v.voxel_size == (0.1, 1.0, 0.1) and v.spatial_shape[1] == 360 and v.kept is None
    ours = v.coords[v.point2voxel, 1:].long().numpy() + np.array(v.origin)
    np.testing.assert_array_equal(ours[:, [0, 2]], slidr[:, [0, 2]])
    np.testing.assert_array_equal(ours[:, 1], (slidr[:, 1] + 180) % 360)
    # same partition of the points
    _, slidr_inv = np.unique(slidr, axis=0, return_inverse=True)
    pairs = set(zip(v.point2voxel.tolist(), slidr_inv.reshape(-1).tolist()))
    assert len(pairs) == v.num_voxels == slidr_inv.max() + 1


@pytest.mark.parametrize("point_range", [None, CYL_RANGE])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cylindrical_wraps_at_180_degrees(point_range, dtype):
    pts = torch.tensor(
        [
            [-5.0, 0.0, 0.0],  # phi = +180
            [-5.0, -0.0, 0.0],  # phi = -180
            [-5.0, -1e-7, 0.0],  # just above -180
            [-5.0, 1e-7, 0.0],  # just below +180 (float32: rounds to 180)
            [-5.0, 5 * math.tan(math.radians(1.5)), 0.0],  # phi = 178.5
            [-5.0, -5 * math.tan(math.radians(1.5)), 0.0],  # phi = -178.5
        ],
        dtype=dtype,
    )
    size = (0.1, 1.0, 0.1) if point_range is None else (0.5, 2.0, 0.5)
    v = voxelize(pts, size, point_range, coords="cylindrical")
    assert_same(v, voxelize_reference(pts, size, point_range, coords="cylindrical"))
    assert bool((v.point2voxel >= 0).all())
    phi = v.coords[v.point2voxel, 2].tolist()
    n_phi = v.spatial_shape[1]
    assert phi[0] == phi[1] == phi[2] == 0  # +180 and -180 are the same voxel, in [0, n_phi)
    assert phi[3] in (0, n_phi - 1)
    assert phi[4] == n_phi - 1 - (0 if point_range else 1) and phi[5] == (0 if point_range else 1)
    assert max(phi) < n_phi


def test_points_outside_range_and_pool_gather():
    pts = cloud()
    v = voxelize(pts, 0.5, RANGE)
    outside = ((pts[:, :3] < torch.tensor(RANGE[:3])) | (pts[:, :3] >= torch.tensor(RANGE[3:]))).any(1)
    assert bool(outside.any())
    assert torch.equal(v.point2voxel < 0, outside)
    assert torch.equal(v.kept, (~outside).nonzero().squeeze(1))
    assert v.segments.num_rows == int((~outside).sum()) and v.segments.num_segments == v.num_voxels
    assert int(v.num_points.sum()) == v.segments.num_rows
    x = torch.randn(pts.shape[0], 3)
    torch.testing.assert_close(v.pool(x), segment_mean(x[v.kept], v.segments, "reference"))
    torch.testing.assert_close(
        v.pool(x[:, 0], "max"), torch.stack([x[:, 0][v.point2voxel == k].max() for k in range(v.num_voxels)])
    )
    back = v.gather(v.pool(x), fill=-7.0)
    assert bool((back[outside] == -7.0).all())
    torch.testing.assert_close(back[~outside], v.pool(x)[v.point2voxel[~outside]])
    # every point lies inside its voxel
    c = v.centers()[v.point2voxel[~outside]]
    assert bool(((pts[~outside, :3] - c).abs() <= 0.25 + 1e-6).all())


def test_all_points_outside_and_empty_input():
    for fn in (voxelize, voxelize_reference):
        far = torch.full((5, 4), 100.0)
        v = fn(far, 0.5, RANGE)
        assert v.num_voxels == 0 and v.coords.shape == (0, 4) and v.features.shape == (0, 1)
        assert bool((v.point2voxel == -1).all()) and v.kept.numel() == 0
        for kw in (dict(point_range=RANGE), dict(), dict(coords="cylindrical")):
            e = fn(torch.zeros(0, 5), 0.5, batch_offsets=torch.tensor([0, 0, 0]), **kw)
            assert e.num_voxels == 0 and e.coords.shape == (0, 4) and e.features.shape == (0, 2)
            assert e.point2voxel.shape == (0,) and e.batch_size == 2 and min(e.spatial_shape) >= 1
    xyz_only = voxelize(cloud()[:, :3], 0.5)
    assert xyz_only.features.shape == (xyz_only.num_voxels, 0)


def test_batch_offsets_separate_samples():
    a, b = cloud(n=600, seed=1), cloud(n=400, seed=2)
    both = torch.cat([a, a[:100], b])
    v = voxelize(both, 0.5, RANGE, batch_offsets=torch.tensor([0, 600, 700, 1100]))
    assert v.batch_size == 3
    for s, part in enumerate((a, a[:100], b)):
        single = voxelize(part, 0.5, RANGE)
        rows = v.coords[:, 0] == s
        assert torch.equal(v.coords[rows, 1:], single.coords[:, 1:])
        torch.testing.assert_close(v.features[rows], single.features)
    assert bool((v.coords[:, 0].diff() >= 0).all())


@pytest.mark.parametrize("kw", CASES[:4], ids=["cubic", "cubic-range", "cyl-slidr", "cyl-range"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_backward_matches_reference(kw, dtype):
    pts = cloud(n=800, dtype=dtype).requires_grad_()
    g = None
    grads = []
    for fn in (voxelize, voxelize_reference):
        v = fn(pts, batch_offsets=torch.tensor([0, 300, 800]), **kw)
        g = torch.randn(v.features.shape, dtype=dtype, generator=torch.Generator().manual_seed(0)) if g is None else g
        grads.append(torch.autograd.grad(v.features, pts, g)[0])
    torch.testing.assert_close(grads[0], grads[1])
    assert bool((grads[0][:, :3] == 0).all())  # coordinates are quantized: no gradient


def test_gradcheck_reference_and_fast():
    pts = cloud(n=60, feats=2, dtype=torch.float64, scale=1.0)
    xyz, f = pts[:, :3], pts[:, 3:].clone().requires_grad_()
    x = torch.randn(60, 2, dtype=torch.float64, requires_grad=True)
    for fn in (voxelize_reference, voxelize):
        assert torch.autograd.gradcheck(lambda f, fn=fn: fn(torch.cat([xyz, f], 1), 0.5, RANGE).features, (f,))
        v = fn(torch.cat([xyz, f], 1), 0.5)
        assert torch.autograd.gradcheck(lambda x, v=v: v.pool(x, "mean"), (x,))


def test_deterministic():
    pts = cloud(n=3000)
    a, b = voxelize(pts, 0.25, coords="cylindrical"), voxelize(pts.clone(), 0.25, coords="cylindrical")
    assert_same(a, b)
    assert torch.equal(a.features, b.features)


@pytest.mark.filterwarnings("ignore:Using a non-tuple sequence:UserWarning")  # inside spconv's dense()
def test_spconv_layout():
    pts = cloud(n=500)
    v = voxelize(pts, 0.5, RANGE, batch_offsets=torch.tensor([0, 200, 500]))
    zyx = v.spconv_indices()
    assert zyx.dtype == torch.int32 and zyx.is_contiguous()
    assert torch.equal(zyx, v.coords[:, [0, 3, 2, 1]]) and v.spconv_shape() == list(v.spatial_shape[::-1])
    assert torch.equal(v.spconv_indices("xyz"), v.coords) and v.spconv_shape("xyz") == list(v.spatial_shape)
    with pytest.raises(ValueError, match="layout"):
        v.spconv_indices("yxz")
    spconv = pytest.importorskip("spconv.pytorch")
    st = v.to_spconv()
    assert isinstance(st, spconv.SparseConvTensor)
    dense = st.dense()  # [B, F, n_z, n_y, n_x]
    assert dense.shape == (2, 2, *v.spconv_shape())
    b, i, j, k = v.coords[7].tolist()
    torch.testing.assert_close(dense[b, :, k, j, i], v.features[7])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda p: voxelize(p.clone().index_fill_(0, torch.tensor([3]), float("nan")), 0.5), "points has NaN"),
        (
            lambda p: voxelize(p.clone().index_fill_(0, torch.tensor([3]), float("inf")), 0.5, RANGE),
            "points has NaN or infinite",
        ),
        (lambda p: voxelize(p[:, :2], 0.5), "points must be a tensor"),
        (lambda p: voxelize(p.long(), 0.5), "points must be floating point"),
        (lambda p: voxelize(p, 0.0), "voxel_size"),
        (lambda p: voxelize(p, (0.5, 0.5)), "voxel_size"),
        (lambda p: voxelize(p, 0.5, [1, 1, 1, 0, 2, 2]), "point_range along x is empty or inverted"),
        (lambda p: voxelize(p, 0.5, [0, 0, 0, 1, 1]), "point_range must be 6"),
        (lambda p: voxelize(p, 0.7, RANGE), "not a whole number"),
        (lambda p: voxelize(p, 0.5, batch_offsets=torch.tensor([0, 10, 5, 2000])), "batch_offsets"),
        (lambda p: voxelize(p, 0.5, batch_offsets=torch.tensor([0, 10])), "batch_offsets must start at 0"),
        (lambda p: voxelize(p, 0.5, batch_offsets=torch.tensor([0.0, 2000.0])), "batch_offsets must be a 1-D integer"),
        (lambda p: voxelize(p, 0.5, coords="polar"), "coords must be one of"),
        (lambda p: voxelize(p, (0.1, 7.0, 0.1), coords="cylindrical"), "must divide 360"),
        (lambda p: voxelize(p * 1e15, 1e-3), "overflows int64|2\\*\\*52"),
        (lambda p: voxelize_reference(p, -1.0), "voxelize: voxel_size"),
    ],
)
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call(cloud())


def test_pool_and_gather_check_shapes():
    v = voxelize(cloud(), 0.5)
    with pytest.raises(ValueError, match="Voxels.pool: x must be"):
        v.pool(torch.randn(3, 2))
    with pytest.raises(ValueError, match="Voxels.gather"):
        v.gather(torch.randn(v.num_voxels + 1, 2))
