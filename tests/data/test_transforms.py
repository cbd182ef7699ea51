"""Joint LiDAR + camera transforms (xmodal.data.transforms): pairs stay valid and point at the same
content, point transforms are exact, teacher maps stay aligned, and everything is seeded."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xmodal.data.transforms import (
    Compose,
    DropCuboids,
    DropCuboidsConfig,
    FlipHorizontal,
    FlipHorizontalConfig,
    FlipXY,
    FlipXYConfig,
    ResizedCrop,
    ResizedCropConfig,
    RotateZ,
    RotateZConfig,
    Scale,
    ScaleConfig,
    build_transforms,
)
from xmodal.data.transforms.crop import resample_feature_map
from xmodal.errors import ConfigError
from xmodal.registry import TRANSFORMS
from xmodal.structures.lidar_camera import LidarCameraSample, PixelPairs, collate_lidar_camera

H, W = 24, 40  # hand-built image size; colours encode (row, col): R = 10 row, G = 6 col
KR, KC = 10.0, 6.0
STRIDE = 4  # hand-built teacher map: [C, 3, H / 4, W / 4]


# -- hand-built samples ----------------------------------------------------------------------
def make_sample(
    seed: int = 0, n: int = 3000, cameras: int = 3, labels: bool = True, superpixels: bool = True,
    teacher: bool = True, pairs_per_camera: int = 400,
) -> LidarCameraSample:
    """Points with a unique id in column 3 (and a second feature in column 4), labels = id % 17,
    images whose colour encodes (row, col, camera), superpixel id = row * W + col, and a teacher
    map of stride 4 holding (y, x) of its cell centres in image pixels plus a smooth channel.
    Each (point, camera) has at most one pair."""
    g = torch.Generator().manual_seed(seed)
    xyz = torch.rand(n, 3, generator=g, dtype=torch.float64) * torch.tensor([80.0, 60.0, 6.0]) - torch.tensor([40.0, 30.0, 3.0])
    ids = torch.arange(n, dtype=torch.float64)[:, None]
    points = torch.cat([xyz, ids, torch.rand(n, 1, generator=g, dtype=torch.float64) * 255], 1).float()
    rows = torch.arange(H)[:, None].expand(H, W)
    cols = torch.arange(W)[None, :].expand(H, W)
    img = torch.stack([rows * KR, cols * KC, torch.zeros(H, W)]).round().to(torch.uint8)
    if cameras == 0:
        return LidarCameraSample(f"hand-{seed}", points, (torch.arange(n) % 17) if labels else None, index=seed)
    images = torch.stack([torch.cat([img[:2], torch.full((1, H, W), 40 * k, dtype=torch.uint8)]) for k in range(cameras)])
    parts = []
    for k in range(cameras):
        m = min(pairs_per_camera, n)
        pt = torch.randperm(n, generator=g)[:m]
        parts.append(PixelPairs(pt, torch.full((m,), k), torch.randint(0, H, (m,), generator=g), torch.randint(0, W, (m,), generator=g)))
    pairs = PixelPairs(*(torch.cat([getattr(p, f) for p in parts]) for f in ("point", "camera", "row", "col")))
    tf = None
    if teacher:
        h, w = H // STRIDE, W // STRIDE
        yc = (torch.arange(h, dtype=torch.float32) + 0.5) * STRIDE
        xc = (torch.arange(w, dtype=torch.float32) + 0.5) * STRIDE
        yy, xx = torch.meshgrid(yc, xc, indexing="ij")
        smooth = torch.sin(yy / 7.0) * torch.cos(xx / 9.0)
        tf = torch.stack([torch.stack([yy, xx, smooth + k]) for k in range(cameras)])
    return LidarCameraSample(
        token=f"hand-{seed}",
        points=points,
        labels=(torch.arange(n) % 17) if labels else None,
        images=images,
        pairs=pairs,
        superpixels=(rows * W + cols)[None].repeat(cameras, 1, 1).clone() if superpixels else None,
        teacher_feats=tf,
        index=seed,
    )


def lidar_only(seed: int = 0) -> LidarCameraSample:
    return make_sample(seed, cameras=0, labels=False, superpixels=False, teacher=False)


def snapshot(s: LidarCameraSample) -> LidarCameraSample:
    return copy.deepcopy(s)


def assert_same(a: LidarCameraSample, b: LidarCameraSample) -> None:
    for f in ("points", "labels", "images", "superpixels", "teacher_feats"):
        x, y = getattr(a, f), getattr(b, f)
        assert (x is None) == (y is None), f
        if x is not None:
            assert x.dtype == y.dtype and x.shape == y.shape and torch.equal(x, y), f
    for f in ("point", "camera", "row", "col"):
        assert torch.equal(getattr(a.pairs, f), getattr(b.pairs, f)), f"pairs.{f}"
    assert (a.token, a.index, a.scene) == (b.token, b.index, b.scene)


def assert_valid(s: LidarCameraSample) -> None:
    """Pairs inside their images and points; shapes consistent."""
    n = s.points.shape[0]
    if s.labels is not None:
        assert s.labels.shape == (n,)
    p = s.pairs
    for f in ("point", "camera", "row", "col"):
        assert getattr(p, f).dtype == torch.int64
    if len(p):
        hh, ww = s.images.shape[-2:]
        assert 0 <= int(p.point.min()) and int(p.point.max()) < n
        assert 0 <= int(p.camera.min()) and int(p.camera.max()) < s.num_cameras
        assert 0 <= int(p.row.min()) and int(p.row.max()) < hh
        assert 0 <= int(p.col.min()) and int(p.col.max()) < ww
    if s.images is not None:
        assert s.images.dtype == torch.uint8
        if s.superpixels is not None:
            assert s.superpixels.shape == (s.num_cameras, *s.images.shape[-2:])


def original_pixel(orig: LidarCameraSample) -> dict[tuple[int, int], tuple[int, int]]:
    """(point id, camera) -> (row, col) of the original pair."""
    ids = orig.points[orig.pairs.point, 3].long().tolist()
    return {(i, c): (r, cc) for i, c, r, cc in zip(ids, orig.pairs.camera.tolist(), orig.pairs.row.tolist(), orig.pairs.col.tolist())}


def decoded(s: LidarCameraSample) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Original (row, col, camera) that each pair's pixel shows, from the image colours."""
    px = s.images[s.pairs.camera, :, s.pairs.row, s.pairs.col].double()  # [M, 3]
    return px[:, 0] / KR, px[:, 1] / KC, px[:, 2] / 40


def expected(orig: LidarCameraSample, s: LidarCameraSample) -> tuple[torch.Tensor, torch.Tensor]:
    lut = original_pixel(orig)
    ids = s.points[s.pairs.point, 3].long().tolist()
    rc = torch.tensor([lut[(i, c)] for i, c in zip(ids, s.pairs.camera.tolist())], dtype=torch.float64).reshape(-1, 2)
    return rc[:, 0], rc[:, 1]


ALL_TYPES = ["drop_cuboids", "flip_horizontal", "flip_xy", "resized_crop", "rotate_z", "scale"]


# -- registry, configs, errors ------------------------------------------------------------------
def test_registered_and_built_from_config():
    assert set(ALL_TYPES) <= set(TRANSFORMS.names())
    for name in ALL_TYPES:
        cfg = TRANSFORMS.config_class(name)()
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(cfg, next(iter(cfg.__dataclass_fields__)), None)
        assert type(TRANSFORMS.build(cfg)) is TRANSFORMS.get(name)
    t = build_transforms([{"type": "resized_crop", "size": [12, 20], "feat_size": [3, 5]}, {"type": "rotate_z"}])
    assert isinstance(t, Compose) and len(t) == 2 and t.transforms[0].cfg.size == (12, 20)
    assert len(build_transforms(None)) == 0


def test_experiment_config_transforms_list_builds():
    from xmodal.config import config_from_dict, config_to_dict

    cfg = config_from_dict({"name": "t", "transforms": [
        {"type": "rotate_z", "degrees": [-90, 90]}, {"type": "resized_crop", "size": [12, 20], "feat_size": [3, 5]},
    ]})
    assert cfg.transforms[0] == RotateZConfig(degrees=(-90.0, 90.0))
    assert config_from_dict(config_to_dict(cfg)).transforms == cfg.transforms
    out = build_transforms(cfg.transforms)(make_sample(), np.random.default_rng(0))
    assert out.images.shape[-2:] == (12, 20) and out.teacher_feats.shape[-2:] == (3, 5)


@pytest.mark.parametrize(
    "cfg, match",
    [
        (lambda: ResizedCropConfig(size=(0, 416)), "resized_crop.size"),
        (lambda: ResizedCropConfig(size=(224,)), "resized_crop.size"),
        (lambda: ResizedCropConfig(scale=(0.0, 1.0)), "resized_crop.scale"),
        (lambda: ResizedCropConfig(scale=(0.5, 1.5)), "resized_crop.scale"),
        (lambda: ResizedCropConfig(ratio=(2.0, 1.0)), "resized_crop.ratio"),
        (lambda: ResizedCropConfig(max_tries=0), "resized_crop.max_tries"),
        (lambda: ResizedCropConfig(feat_size=(4, -1)), "resized_crop.feat_size"),
        (lambda: RotateZConfig(degrees=(10.0, float("nan"))), "rotate_z.degrees"),
        (lambda: FlipXYConfig(p_x=1.5), "flip_xy.p_x"),
        (lambda: ScaleConfig(range=(0.0, 1.1)), "scale.range"),
        (lambda: DropCuboidsConfig(max_fraction=2.0), "drop_cuboids.max_fraction"),
        (lambda: DropCuboidsConfig(min_pairs=-1), "drop_cuboids.min_pairs"),
        (lambda: FlipHorizontalConfig(p=-0.1), "flip_horizontal.p"),
    ],
)
def test_bad_config_raises_in_validate(cfg, match):
    c = cfg()
    with pytest.raises(ValueError, match=match):
        c.validate()
    with pytest.raises(ValueError, match=match):
        TRANSFORMS.build(c)  # the transform validates what it is given


def test_bad_config_from_mapping_names_the_key():
    with pytest.raises(ConfigError, match=r"transforms\[1\].*resized_crop.size"):
        build_transforms([{"type": "scale"}, {"type": "resized_crop", "size": [224, 0]}])
    with pytest.raises(ConfigError, match="Did you mean 'size'"):
        build_transforms([{"type": "resized_crop", "sise": [224, 416]}])
    with pytest.raises(TypeError, match=r"transforms\[0\]"):
        build_transforms([42])


def test_bad_call_arguments():
    s = make_sample()
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        RotateZ()(s, 0)
    bad = s.replace(pairs=PixelPairs(s.pairs.point, s.pairs.camera + 5, s.pairs.row, s.pairs.col))
    with pytest.raises(ValueError, match="pairs.camera"):
        ResizedCrop(ResizedCropConfig(size=(12, 20)))(bad, np.random.default_rng(0))
    with pytest.raises(ValueError, match="box 0"):
        ResizedCrop(ResizedCropConfig(size=(12, 20))).apply(s, [(0, 0, H + 1, W)] * 3)


# -- point transforms -----------------------------------------------------------------------
def fitted_map(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """The 3x3 linear map A with after = before @ A.T (least squares, float64)."""
    sol = torch.linalg.lstsq(before[:, :3].double(), after[:, :3].double()).solution
    return sol.T


@pytest.mark.parametrize("seed", range(4))
def test_rotate_z_is_a_rotation_about_z(seed):
    s = make_sample(seed)
    keep = snapshot(s)
    out = RotateZ(RotateZConfig(degrees=(10.0, 20.0)))(s, np.random.default_rng(seed))
    A = fitted_map(s.points, out.points)
    assert abs(float(torch.det(A)) - 1) < 1e-5
    assert torch.allclose(A @ A.T, torch.eye(3, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(A[2], torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64), atol=1e-6)
    angle = np.degrees(np.arctan2(float(A[1, 0]), float(A[0, 0])))
    assert 10 - 1e-3 <= angle <= 20 + 1e-3
    torch.testing.assert_close(out.points[:, :2].norm(dim=1), s.points[:, :2].norm(dim=1), rtol=1e-6, atol=1e-5)
    assert torch.equal(out.points[:, 2], s.points[:, 2]) and torch.equal(out.points[:, 3:], s.points[:, 3:])
    assert out.points.dtype == torch.float32
    assert out.pairs is s.pairs and out.images is s.images and out.labels is s.labels
    assert_same(s, keep)


def test_flip_xy_is_exact_and_independent():
    s = make_sample()
    out = FlipXY(FlipXYConfig(p_x=1.0, p_y=0.0))(s, np.random.default_rng(0))
    assert torch.equal(out.points[:, 0], -s.points[:, 0]) and torch.equal(out.points[:, 1:], s.points[:, 1:])
    out = FlipXY(FlipXYConfig(p_x=0.0, p_y=1.0))(s, np.random.default_rng(0))
    assert torch.equal(out.points[:, 1], -s.points[:, 1])
    assert torch.equal(out.points[:, [0, 2, 3, 4]], s.points[:, [0, 2, 3, 4]])
    seen = {}
    t = FlipXY()
    small = make_sample(n=50)
    for seed in range(400):
        o = t(small, np.random.default_rng(seed))
        A = torch.diag(fitted_map(small.points, o.points)).round()
        assert torch.allclose(fitted_map(small.points, o.points), torch.diag(A), atol=1e-6)
        key = (float(A[0]), float(A[1]))
        seen[key] = seen.get(key, 0) + 1
    assert set(seen) == {(1.0, 1.0), (-1.0, 1.0), (1.0, -1.0), (-1.0, -1.0)}
    assert all(60 < v < 140 for v in seen.values()), seen  # 100 each expected (p = 0.5, independent)


def test_scale_is_isotropic():
    s = make_sample()
    out = Scale(ScaleConfig(range=(0.9, 1.1)))(s, np.random.default_rng(3))
    A = fitted_map(s.points, out.points)
    f = float(A[0, 0])
    assert 0.9 <= f <= 1.1
    assert torch.allclose(A, torch.eye(3, dtype=torch.float64) * f, atol=1e-6)
    torch.testing.assert_close(out.points[:, :3].norm(dim=1), s.points[:, :3].norm(dim=1) * f, rtol=1e-5, atol=1e-5)
    assert torch.equal(out.points[:, 3:], s.points[:, 3:]) and out.pairs is s.pairs


# -- drop_cuboids ----------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_drop_cuboids_keeps_labels_points_and_pairs_aligned(seed):
    s = make_sample(seed)
    keep = snapshot(s)
    out = DropCuboids(DropCuboidsConfig(max_fraction=0.6, min_pairs=0))(s, np.random.default_rng(seed))
    assert_same(s, keep)
    assert_valid(out)
    ids = out.points[:, 3].long()
    assert out.points.shape[0] < s.points.shape[0], "max_fraction=0.6 with min_pairs=0 always drops something here"
    assert bool((ids[1:] > ids[:-1]).all()), "kept points keep their order"
    assert torch.equal(out.points, s.points[ids]) and torch.equal(out.labels, s.labels[ids])
    # removed points form a box: no kept point lies strictly inside their bounding box
    removed = torch.ones(s.points.shape[0], dtype=torch.bool)
    removed[ids] = False
    r = s.points[removed, :3]
    lo, hi = r.min(0).values, r.max(0).values
    assert not bool(((out.points[:, :3] > lo) & (out.points[:, :3] < hi)).all(1).any())
    extent = s.points[:, :3].max(0).values - s.points[:, :3].min(0).values
    assert bool((hi - lo <= 0.6 * extent + 1e-4).all())
    # pairs: same 3D points and pixels as before, exactly those of kept points
    before = {(int(s.points[p, 3]), c, rr, cc) for p, c, rr, cc in zip(*(getattr(s.pairs, f).tolist() for f in ("point", "camera", "row", "col")))}
    after = [(int(out.points[p, 3]), c, rr, cc) for p, c, rr, cc in zip(*(getattr(out.pairs, f).tolist() for f in ("point", "camera", "row", "col")))]
    kept_ids = set(ids.tolist())
    assert set(after) == {b for b in before if b[0] in kept_ids} and len(after) == len(set(after))
    assert out.images is s.images and out.superpixels is s.superpixels and out.teacher_feats is s.teacher_feats


def test_drop_cuboids_respects_min_pairs():
    s = make_sample(1)
    counts = s.pairs.counts_per_camera(3)
    strict = DropCuboids(DropCuboidsConfig(max_fraction=0.6, min_pairs=int(counts.max())))
    loose = DropCuboids(DropCuboidsConfig(max_fraction=0.6, min_pairs=int(counts.min()) - 120))
    for seed in range(10):
        out = strict(s, np.random.default_rng(seed))
        # every image had <= min_pairs pairs, so any pair lost would break the rule: no drop that loses one
        assert len(out.pairs) == len(s.pairs)
        o2 = loose(s, np.random.default_rng(seed))
        assert bool((o2.pairs.counts_per_camera(3) >= int(counts.min()) - 120).all())
    assert any(len(loose(s, np.random.default_rng(k)).pairs) < len(s.pairs) for k in range(10))
    none = DropCuboids(DropCuboidsConfig(max_fraction=0.0))(s, np.random.default_rng(0))
    assert_same(none, s)


# -- flip_horizontal -------------------------------------------------------------------------
def test_flip_horizontal_moves_pairs_with_content():
    s = make_sample(2)
    keep = snapshot(s)
    out = FlipHorizontal(FlipHorizontalConfig(p=1.0))(s, np.random.default_rng(0))
    assert_same(s, keep)
    assert_valid(out)
    assert torch.equal(out.images, s.images.flip(-1)) and torch.equal(out.superpixels, s.superpixels.flip(-1))
    assert torch.equal(out.pairs.col, W - 1 - s.pairs.col) and torch.equal(out.pairs.row, s.pairs.row)
    r, c, cam = decoded(out)
    er, ec = expected(s, out)
    assert torch.allclose(r, er, atol=0.06) and torch.allclose(c, ec, atol=0.1) and torch.equal(cam.long(), out.pairs.camera)
    # the flipped teacher map, upsampled, equals the upsampled map flipped (exact: the map spans the image)
    up = F.interpolate(out.teacher_feats, (H, W), mode="bilinear", align_corners=False)
    ref = F.interpolate(s.teacher_feats, (H, W), mode="bilinear", align_corners=False).flip(-1)
    torch.testing.assert_close(up, ref)
    # per image, p = 0.5
    flips = [FlipHorizontal()(s, np.random.default_rng(k)) for k in range(60)]
    per_image = torch.tensor([[bool(torch.equal(f.images[k], s.images[k].flip(-1))) for k in range(3)] for f in flips])
    assert 0.3 < per_image.float().mean() < 0.7 and per_image.any(1).sum() > per_image.all(1).sum()


# -- resized_crop ----------------------------------------------------------------------------
def test_resample_feature_map_alignment():
    g = torch.Generator().manual_seed(0)
    tf = torch.rand(2, 6, 10, generator=g, dtype=torch.float64)  # spans a 24 x 40 image, stride 4
    torch.testing.assert_close(resample_feature_map(tf, (24, 40), (0, 0, 24, 40), (6, 10)), tf)
    # a crop on cell borders at the same stride gives the cells exactly
    torch.testing.assert_close(resample_feature_map(tf, (24, 40), (4, 8, 12, 16), (3, 4)), tf[:, 1:4, 2:6])
    # anywhere: a bilinear sample at each new cell centre (hand-written, border-clamped)
    box, out = (3, 5, 13, 29), (5, 7)
    got = resample_feature_map(tf, (24, 40), box, out)
    for a in range(out[0]):
        for b in range(out[1]):
            # new cell centre in image pixels -> teacher cell index coordinates (stride 4)
            y = (box[0] + (a + 0.5) * box[2] / out[0]) * 6 / 24 - 0.5
            x = (box[1] + (b + 0.5) * box[3] / out[1]) * 10 / 40 - 0.5
            y, x = min(max(y, 0.0), 5.0), min(max(x, 0.0), 9.0)
            y0, x0 = min(int(np.floor(y)), 4), min(int(np.floor(x)), 8)
            fy, fx = y - y0, x - x0
            v = (tf[:, y0, x0] * (1 - fy) * (1 - fx) + tf[:, y0 + 1, x0] * fy * (1 - fx)
                 + tf[:, y0, x0 + 1] * (1 - fy) * fx + tf[:, y0 + 1, x0 + 1] * fy * fx)
            torch.testing.assert_close(got[:, a, b], v)


@pytest.mark.parametrize("size, exact", [((48, 80), True), ((16, 28), False)])
def test_resized_crop_pairs_point_at_the_same_content(size, exact):
    """Enlarging crops (48x80 from 24x40 at scale >= 0.3): every pair shows exactly its old pixel;
    shrinking ones (16x28): within the output pixel's footprint."""
    t = ResizedCrop(ResizedCropConfig(size=size, min_pairs=50, scale=(0.3, 1.0), ratio=(1.4, 1.9)))
    for seed in range(5):
        s = make_sample(seed)
        keep = snapshot(s)
        boxes = t.sample_boxes(s, np.random.default_rng(seed))
        out = t(s, np.random.default_rng(seed))
        assert_same(s, keep)
        assert_same(out, t.apply(s, boxes))
        assert_valid(out)
        assert out.images.shape == (3, 3, *size) and out.superpixels.shape == (3, *size)
        assert out.teacher_feats.shape == s.teacher_feats.shape, "feat_size=None keeps the map's size"
        counts = out.pairs.counts_per_camera(3)
        before = s.pairs.counts_per_camera(3)
        assert bool(((counts > 50) | (counts > 0.75 * before)).all())
        r, c, cam = decoded(out)
        er, ec = expected(s, out)
        assert torch.equal(cam.round().long(), out.pairs.camera)
        # the superpixel under the pair is (nearest) the pair's old pixel
        sp = out.superpixels[out.pairs.camera, out.pairs.row, out.pairs.col]
        spr, spc = (sp // W).double(), (sp % W).double()
        # the teacher's (y, x) channels upsampled to the output: the old pixel centre
        up = F.interpolate(out.teacher_feats, size, mode="bilinear", align_corners=False)
        ty = up[out.pairs.camera, 0, out.pairs.row, out.pairs.col].double()
        tx = up[out.pairs.camera, 1, out.pairs.row, out.pairs.col].double()
        hs = torch.tensor([boxes[k][2] / size[0] for k in out.pairs.camera.tolist()], dtype=torch.float64)
        ws = torch.tensor([boxes[k][3] / size[1] for k in out.pairs.camera.tolist()], dtype=torch.float64)
        # the teacher clamps within half a cell (stride 4) of the image border, and the resampled map
        # within half of its cell of the output border
        fh, fw = out.teacher_feats.shape[-2:]
        orow, ocol = out.pairs.row.double() + 0.5, out.pairs.col.double() + 0.5
        my, mx = 2 + hs * size[0] / fh, 2 + ws * size[1] / fw  # + one new cell, input pixels
        inner = (er >= my) & (er < H - my) & (ec >= mx) & (ec < W - mx)
        inner &= (orow >= 0.5 * size[0] / fh) & (orow <= size[0] - 0.5 * size[0] / fh)
        inner &= (ocol >= 0.5 * size[1] / fw) & (ocol <= size[1] - 0.5 * size[1] / fw)
        assert int(inner.sum()) > 0.1 * len(out.pairs)
        if exact:
            assert torch.equal(r.round(), er) and torch.equal(c.round(), ec)
            assert torch.equal(spr, er) and torch.equal(spc, ec)
            assert bool(((ty - (er + 0.5)).abs()[inner] <= 0.5 * hs[inner] + 1e-4).all())
            assert bool(((tx - (ec + 0.5)).abs()[inner] <= 0.5 * ws[inner] + 1e-4).all())
        else:  # antialiased bilinear: within the footprint (+ edge truncation and rounding)
            assert bool(((r - er).abs() <= 0.5 * hs + 1.0).all()) and bool(((c - ec).abs() <= 0.5 * ws + 1.0).all())
            assert bool(((spr - er).abs() <= hs).all()) and bool(((spc - ec).abs() <= ws).all())
            assert bool(((ty - (er + 0.5)).abs()[inner] <= 0.5 * hs[inner] + 1e-4).all())


@pytest.mark.parametrize("feat_size", [None, (3, 5), (9, 17)])
def test_resized_crop_teacher_map_matches_crop_of_upsampled_map(feat_size):
    """upsample(resampled map) == resize(crop(upsample(original map))) away from the crop border
    (where the two clamp differently): exact on the linear (y, x) channels, close on the smooth one."""
    size = (20, 36)
    t = ResizedCrop(ResizedCropConfig(size=size, min_pairs=0, feat_size=feat_size))
    s = make_sample(4)
    up0 = F.interpolate(s.teacher_feats, (H, W), mode="bilinear", align_corners=False)
    for seed in range(4):
        rng = np.random.default_rng(seed)
        boxes = t.sample_boxes(s, rng)
        out = t.apply(s, boxes)
        fh, fw = feat_size or s.teacher_feats.shape[-2:]
        assert out.teacher_feats.shape == (3, 3, fh, fw)
        up = F.interpolate(out.teacher_feats, size, mode="bilinear", align_corners=False)
        for k, (i, j, h, w) in enumerate(boxes):
            ref = F.interpolate(up0[k : k + 1, :, i : i + h, j : j + w], size, mode="bilinear", align_corners=False)[0]
            # margins: half a new-map cell at the crop border; at the image border also the teacher's
            # clamped half cell and one new cell whose interpolation reaches into it
            cy, cx = size[0] / fh, size[1] / fw  # new-map cell, output pixels
            my = int(np.ceil((cy + 0.5 * STRIDE * size[0] / h) if (i == 0 or i + h == H) else 0.5 * cy)) + 1
            mx = int(np.ceil((cx + 0.5 * STRIDE * size[1] / w) if (j == 0 or j + w == W) else 0.5 * cx)) + 1
            a, b = up[k][:, my : size[0] - my, mx : size[1] - mx], ref[:, my : size[0] - my, mx : size[1] - mx]
            if a.numel() == 0:
                continue
            # (y, x) channels are linear: any bilinear resampling reproduces them
            torch.testing.assert_close(a[:2], b[:2], atol=1e-3, rtol=0)
            if feat_size != (3, 5):  # a map at least as fine as the crop's cells: close on the smooth one
                assert float((a[2] - b[2]).abs().max()) < 0.1  # channel range 2: 5 %


def test_half_precision_teacher_maps_stay_half():
    s = make_sample()
    s = s.replace(teacher_feats=s.teacher_feats.half())
    for t in (ResizedCrop(ResizedCropConfig(size=(12, 20))), FlipHorizontal(FlipHorizontalConfig(p=1.0))):
        out = t(s, np.random.default_rng(0))
        assert out.teacher_feats.dtype == torch.float16 and bool(torch.isfinite(out.teacher_feats).all())


def test_resized_crop_retries_and_falls_back_to_the_whole_image():
    s = make_sample(5)
    # impossible: keep > 10_000 pairs or > 100 % -> after max_tries the whole image is used
    t = ResizedCrop(ResizedCropConfig(size=(12, 20), min_pairs=10_000, min_kept=1.0, max_tries=3))
    out = t(s, np.random.default_rng(0))
    assert t.sample_boxes(s, np.random.default_rng(0)) == [(0, 0, H, W)] * 3
    assert len(out.pairs) == len(s.pairs)
    # images without pairs take the first box; empty pairs are fine
    s0 = s.replace(pairs=PixelPairs.empty())
    out0 = ResizedCrop(ResizedCropConfig(size=(12, 20)))(s0, np.random.default_rng(0))
    assert len(out0.pairs) == 0 and out0.images.shape == (3, 3, 12, 20)
    batch = collate_lidar_camera([out, out0])
    assert batch.images.shape == (6, 3, 12, 20) and batch.teacher_feats.shape[0] == 6


# -- every transform on partial samples; compositions; determinism ------------------------------
def all_transforms(size=(48, 80)) -> list:
    return build_transforms([
        {"type": "rotate_z"}, {"type": "flip_xy"}, {"type": "scale", "range": [0.9, 1.1]},
        {"type": "drop_cuboids", "max_fraction": 0.4, "min_pairs": 100},
        {"type": "resized_crop", "size": list(size), "min_pairs": 100},
        {"type": "flip_horizontal"},
    ]).transforms


@pytest.mark.parametrize("variant", ["lidar_only", "no_labels", "no_superpixels", "no_teacher", "no_pairs"])
def test_transforms_handle_missing_parts(variant):
    s = {
        "lidar_only": lidar_only(),
        "no_labels": make_sample(labels=False),
        "no_superpixels": make_sample(superpixels=False),
        "no_teacher": make_sample(teacher=False),
        "no_pairs": make_sample().replace(pairs=PixelPairs.empty()),
    }[variant]
    keep = snapshot(s)
    for t in all_transforms():
        out = t(s, np.random.default_rng(1))
        assert_valid(out)
        for f in ("images", "labels", "superpixels", "teacher_feats"):
            assert (getattr(out, f) is None) == (getattr(s, f) is None), (t, f)
    assert_same(s, keep)


@pytest.mark.parametrize("seed", range(8))
def test_random_compositions_keep_pairs_on_their_content(seed):
    order = np.random.default_rng(100 + seed)
    ts = all_transforms()
    chosen = [ts[k] for k in order.permutation(len(ts))[: order.integers(2, len(ts) + 1)]]
    # one resized_crop at most, so the enlargement keeps contents exact
    pipeline = Compose(chosen)
    s = make_sample(seed)
    keep = snapshot(s)
    out = pipeline(s, np.random.default_rng(seed))
    assert_same(s, keep)
    assert_valid(out)
    assert out.labels is not None and torch.equal(out.labels, out.points[:, 3].long() % 17), "labels follow their points"
    r, c, cam = decoded(out)
    er, ec = expected(s, out)
    assert torch.equal(r.round(), er) and torch.equal(c.round(), ec) and torch.equal(cam.round().long(), out.pairs.camera)
    again = pipeline(s, np.random.default_rng(seed))
    assert_same(out, again)
    other = pipeline(s, np.random.default_rng(seed + 1000))
    assert not torch.equal(other.points, out.points) or len(chosen) == 0


def test_seeded_and_independent_of_call_history():
    pipeline = Compose(all_transforms(size=(16, 28)))
    s = make_sample(7)
    first = pipeline(s, np.random.default_rng(42))
    for k in range(3):  # other calls in between change nothing
        pipeline(make_sample(k), np.random.default_rng(k))
    assert_same(first, pipeline(s, np.random.default_rng(42)))
    assert_same(first, Compose(all_transforms(size=(16, 28)))(snapshot(s), np.random.default_rng(42)))


# -- a real (synthetic nuScenes) sample -----------------------------------------------------------
@pytest.fixture(scope="module")
def real_sample(driving_world, tmp_path_factory):
    from xmodal.data.nuscenes import NuScenesDataset, NuScenesDatasetConfig
    from xmodal.data.nuscenes_info import prepare_nuscenes

    info = tmp_path_factory.mktemp("transforms") / "info.pkl"
    prepare_nuscenes(driving_world, "v1.0-mini", info, split="mini_train", max_sweeps=0, progress=False)
    ns = NuScenesDataset(NuScenesDatasetConfig(info_file=str(info), load_masks=True, imu_window=0))[0]
    parts = []
    for ci in range(len(ns.cameras)):
        uv, _, _, visible = ns.project(ci)
        idx = np.nonzero(visible)[0]
        parts.append((idx, np.full(len(idx), ci), np.floor(uv[idx, 1]), np.floor(uv[idx, 0])))
    pairs = PixelPairs(*(torch.from_numpy(np.concatenate([p[k] for p in parts]).astype(np.int64)) for k in range(4)))
    # the GT masks ride along as "superpixels" (nearest), the 32-class labels as labels
    return LidarCameraSample(
        token=ns.token,
        points=torch.cat([torch.from_numpy(ns.points), torch.arange(len(ns.points), dtype=torch.float32)[:, None]], 1),
        labels=torch.from_numpy(ns.labels_general.astype(np.int64)),
        images=torch.from_numpy(ns.images).permute(0, 3, 1, 2).contiguous(),
        pairs=pairs,
        superpixels=torch.from_numpy(ns.masks.astype(np.int64)),
    )


def agreement(s: LidarCameraSample) -> float:
    p = s.pairs
    return float((s.superpixels[p.camera, p.row, p.col] == s.labels[p.point]).double().mean())


def test_real_sample_pairs_keep_agreeing_with_gt_masks(real_sample):
    s = real_sample
    base = agreement(s)
    assert len(s.pairs) > 6 * 1024 and base > 0.95
    pipeline = build_transforms([
        {"type": "rotate_z"}, {"type": "flip_xy"}, {"type": "drop_cuboids"},
        {"type": "resized_crop"}, {"type": "flip_horizontal"},
    ])
    for seed in range(3):
        out = pipeline(s, np.random.default_rng(seed))
        assert_valid(out)
        assert out.images.shape == (6, 3, 224, 416)
        counts = out.pairs.counts_per_camera(6)
        before = s.pairs.counts_per_camera(6)
        assert bool(((counts > 1024) | (counts > 0.75 * before)).all())
        assert abs(agreement(out) - base) < 0.03, (seed, agreement(out), base)
        # the colour under each pair is about the colour it had (pairs matched by point id, column 5)
        lut = {(int(i), int(c)): k for k, (i, c) in enumerate(zip(s.points[s.pairs.point, 5].tolist(), s.pairs.camera.tolist()))}
        src = torch.tensor([lut[(int(i), int(c))] for i, c in zip(out.points[out.pairs.point, 5].tolist(), out.pairs.camera.tolist())])
        old = s.images[s.pairs.camera[src], :, s.pairs.row[src], s.pairs.col[src]].float()
        new = out.images[out.pairs.camera, :, out.pairs.row, out.pairs.col].float()
        assert float((old - new).abs().mean()) < 12, float((old - new).abs().mean())
