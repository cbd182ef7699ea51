"""``xmodal bench ops``: every hot op against its peers on the same inputs, as ratios.

Each case returns rows ``{case, impl, peer, ms, peer_ms, speedup, threads, device, ...}``;
``speedup = peer_ms / ms`` (> 1: ours is faster). CPU cases run once per thread count; CUDA rows
are added when a GPU is present. Sizes are the issue's (``quick=True`` shrinks everything for the
tests, where only the plumbing is checked, never the numbers).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from xmodal.bench.harness import peak_memory, time_interleaved
from xmodal.losses.info_nce import info_nce, info_nce_reference
from xmodal.ops import Segments, segment_max, segment_mean

__all__ = ["CASES", "run_ops_benchmark", "slidr_superpixel_loss", "pyg_scatter_mean"]


# ----------------------------------------------------------------------------- peers
def pyg_scatter_mean(x: torch.Tensor, ids: torch.Tensor, k: int) -> torch.Tensor:
    """What PyTorch Geometric's ``utils.scatter(reduce='mean')`` does: ``scatter_add_`` of the
    features and of ones, clamp, divide (torch's native scatter path)."""
    n, c = x.shape
    out = x.new_zeros((k, c)).scatter_add_(0, ids[:, None].expand(n, c), x)
    count = x.new_zeros(k).scatter_add_(0, ids, x.new_ones(n)).clamp(min=1)
    return out / count[:, None]


def index_add_mean(x: torch.Tensor, ids: torch.Tensor, k: int) -> torch.Tensor:
    out = x.new_zeros((k, x.shape[1])).index_add_(0, ids, x)
    return out / torch.bincount(ids, minlength=k).clamp(min=1).to(x.dtype)[:, None]


def onehot_sparse_mean(x: torch.Tensor, ids: torch.Tensor, k: int) -> torch.Tensor:
    """SLidR's pooling: a (K x N) COO one-hot matrix times the features, divided by its row sums."""
    n = x.shape[0]
    with torch.no_grad():
        one_hot = torch.sparse_coo_tensor(torch.stack((ids, torch.arange(n, device=x.device))), torch.ones(n, device=x.device), (k, n), check_invariants=False)
    out = one_hot @ x
    return out / (torch.sparse.sum(one_hot, 1).to_dense()[:, None] + 1e-6)


def _torch_scatter():
    try:
        import torch_scatter  # noqa: F401

        return torch_scatter
    except Exception:
        return None


def slidr_superpixel_loss(point_feats, image_feats, pair_points, pair_pixels, superpixels, superpixel_size, tau=0.07):
    """SLidR's superpixel loss (``loss_superpixels_average``), re-implemented from its
    description: superpixel ids offset by ``image index x superpixel_size``; COO one-hot matrices
    (segments x pairs, segments x pixels) multiplied with the gathered point features and the
    [B*H*W, C] pixel features, divided by the counts; empty superpoints masked; InfoNCE."""
    b = superpixels.shape[0]
    dev = point_feats.device
    sp = superpixels + torch.arange(b, device=dev)[:, None, None] * superpixel_size
    k = b * superpixel_size
    sp_pairs = sp[pair_pixels[:, 0], pair_pixels[:, 1], pair_pixels[:, 2]]
    m, p = pair_points.numel(), sp.numel()
    with torch.no_grad():
        one_hot_p = torch.sparse_coo_tensor(torch.stack((sp_pairs, torch.arange(m, device=dev))), torch.ones(m, device=dev), (k, m), check_invariants=False)
        one_hot_i = torch.sparse_coo_tensor(torch.stack((sp.flatten(), torch.arange(p, device=dev))), torch.ones(p, device=dev), (k, p), check_invariants=False)
    kp = one_hot_p @ point_feats[pair_points]
    kp = kp / (torch.sparse.sum(one_hot_p, 1).to_dense()[:, None] + 1e-6)
    q = one_hot_i @ image_feats.permute(0, 2, 3, 1).flatten(0, 2)
    q = q / (torch.sparse.sum(one_hot_i, 1).to_dense()[:, None] + 1e-6)
    mask = torch.where(kp[:, 0] != 0)
    return info_nce_reference(kp[mask], q[mask], tau)


def xmodal_superpixel_loss(point_feats, image_feats, pair_points, pair_segments, pixel_segments, tau=0.07):
    """The same loss with xmodal's ops: :class:`Segments` built once per sample (in the data
    workers), mean pooling without the transposed pixel copy, chunked InfoNCE."""
    kp = segment_mean(point_feats[pair_points], pair_segments)
    q = segment_mean(image_feats, pixel_segments, channels_first=True)
    keep = pair_segments.cached("nonempty", lambda: (pair_segments.counts > 0).nonzero().flatten())
    return info_nce(kp[keep], q[keep], tau)


# ----------------------------------------------------------------------------- helpers
def _row(case: str, impl: str, peer: str, ms: float, peer_ms: float, threads: int | None, device: str, **extra) -> dict:
    return {"case": case, "impl": impl, "peer": peer, "ms": round(ms, 3), "peer_ms": round(peer_ms, 3),
            "speedup": round(peer_ms / ms, 3) if ms > 0 else math.inf, "threads": threads, "device": device, **extra}


def _fwd_bwd(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, g: torch.Tensor) -> Callable[[], None]:
    def run():
        x.grad = None
        fn(x).backward(g)

    return run


def _voronoi_superpixels(b: int, h: int, w: int, n: int, gen: torch.Generator) -> torch.Tensor:
    """[b, h, w] int64 compact segments (nearest of ``n`` random seeds), like SLIC's output."""
    hs, ws = max(h // 8, 1), max(w // 8, 1)
    yy, xx = torch.meshgrid(torch.arange(hs, dtype=torch.float32), torch.arange(ws, dtype=torch.float32), indexing="ij")
    grid = torch.stack((yy.flatten(), xx.flatten()), 1)
    maps = []
    for _ in range(b):
        seeds = torch.rand(n, 2, generator=gen) * torch.tensor([hs, ws])
        lab = torch.cdist(grid, seeds).argmin(1).view(1, 1, hs, ws).float()
        maps.append(torch.nn.functional.interpolate(lab, size=(h, w), mode="nearest").long()[0, 0])
    return torch.stack(maps)


# ----------------------------------------------------------------------------- cases
def case_segment_pooling(threads: int | None, device: str, quick: bool) -> list[dict]:
    """segment_mean / segment_max, N=1e6, C=64, K=1e4 (uniform ids: the worst case for locality;
    and sorted ids: superpixel- or voxel-like locality)."""
    n, c, k = (20_000, 16, 500) if quick else (1_000_000, 64, 10_000)
    gen = torch.Generator().manual_seed(0)
    rows = []
    ts = _torch_scatter()
    for layout in ("uniform", "sorted"):
        ids = torch.randint(0, k, (n,), generator=gen)
        if layout == "sorted":
            ids = ids.sort().values
        ids = ids.to(device)
        segs = Segments.from_ids(ids, k)
        segs.perm  # the index is built once per sample (data workers), not per call
        x = torch.randn(n, c, generator=gen).to(device)
        g = torch.randn(k, c, generator=gen).to(device)
        peers = {"native scatter_add_ (PyG)": lambda t: pyg_scatter_mean(t, ids, k),
                 "index_add_": lambda t: index_add_mean(t, ids, k),
                 "one-hot sparse mm (SLidR)": lambda t: onehot_sparse_mean(t, ids, k)}
        if ts is not None:
            peers["torch_scatter.scatter_mean"] = lambda t: ts.scatter_mean(t, ids, dim=0, dim_size=k)
        ours = lambda t: segment_mean(t, segs)  # noqa: E731
        case = f"segment_mean N={n} C={c} K={k} {layout}"
        with torch.no_grad():
            fns = {"ours": lambda: ours(x), **{name: (lambda f=f: f(x)) for name, f in peers.items()}}
            t = time_interleaved(fns, repeat=3 if quick else 7, device=device)
        for name in peers:
            rows.append(_row(case + " fwd", "xmodal segment_mean", name, t["ours"], t[name], threads, device))
        xg = x.clone().requires_grad_(True)
        fns = {"ours": _fwd_bwd(ours, xg, g), **{name: _fwd_bwd(f, xg, g) for name, f in peers.items()}}
        def ours_with_build(tt):
            s2 = Segments.from_ids(ids, k)
            s2.perm
            return segment_mean(tt, s2)

        fns["ours+build"] = _fwd_bwd(ours_with_build, xg, g)
        t = time_interleaved(fns, repeat=3 if quick else 5, device=device)
        for name in peers:
            rows.append(_row(case + " fwd+bwd", "xmodal segment_mean", name, t["ours"], t[name], threads, device))
        rows.append(_row(case + " fwd+bwd, index built per call", "xmodal Segments.from_ids + segment_mean",
                         "native scatter_add_ (PyG)", t["ours+build"], t["native scatter_add_ (PyG)"], threads, device))
        if layout == "uniform":
            def native_max(tt):
                return tt.new_zeros((k, c)).scatter_reduce_(0, ids[:, None].expand(n, c), tt, "amax", include_self=False)

            fns = {"ours": _fwd_bwd(lambda tt: segment_max(tt, segs)[0], xg, g), "native": _fwd_bwd(native_max, xg, g)}
            t = time_interleaved(fns, repeat=3 if quick else 5, device=device)
            rows.append(_row(f"segment_max N={n} C={c} K={k} {layout} fwd+bwd", "xmodal segment_max",
                             "native scatter_reduce_ amax", t["ours"], t["native"], threads, device))
    return rows


def superpixel_indices(superpixels: torch.Tensor, pair_pixels: torch.Tensor) -> tuple[Segments, Segments]:
    """What xmodal's data workers build once per sample for the superpixel loss: data-driven id
    offsets per image (not a fixed stride), then the index of the point-pixel pairs (sorted, as
    the CPU pooling reads it) and of all pixels. ``superpixels`` [B, H, W] ids per image,
    ``pair_pixels`` [M, 3] (image, row, col)."""
    counts = superpixels.flatten(1).amax(1) + 1
    offsets = torch.cumsum(counts, 0) - counts
    global_sp = superpixels + offsets[:, None, None]
    k = int(counts.sum())
    pair_segments = Segments.from_ids(global_sp[pair_pixels[:, 0], pair_pixels[:, 1], pair_pixels[:, 2]], k)
    pair_segments.perm
    return pair_segments, Segments.from_ids(global_sp.flatten(), k)


def _slidr_inputs(quick: bool, device: str, image_grad: bool):
    gen = torch.Generator().manual_seed(1)
    scans, cams, h, w, c, sp = (2, 2, 32, 48, 8, 20) if quick else (4, 6, 224, 416, 64, 150)
    points_per_scan, pairs_per_scan = (500, 300) if quick else (34_000, 14_000)
    b = scans * cams
    superpixels = _voronoi_superpixels(b, h, w, sp, gen)
    n_points = scans * points_per_scan
    pair_points = torch.cat([torch.randperm(points_per_scan, generator=gen)[:pairs_per_scan] + s * points_per_scan for s in range(scans)])
    m = pair_points.numel()
    cam = torch.cat([torch.randint(0, cams, (pairs_per_scan,), generator=gen) + s * cams for s in range(scans)])
    pair_pixels = torch.stack((cam, torch.randint(0, h, (m,), generator=gen), torch.randint(0, w, (m,), generator=gen)), 1)
    point_feats = torch.nn.functional.normalize(torch.randn(n_points, c, generator=gen), dim=1)
    image_feats = torch.nn.functional.normalize(torch.randn(b, c, h, w, generator=gen), dim=1)
    to = lambda t: t.to(device)  # noqa: E731
    inputs = dict(
        point_feats=to(point_feats).requires_grad_(True), image_feats=to(image_feats).requires_grad_(image_grad),
        pair_points=to(pair_points), pair_pixels=to(pair_pixels), superpixels=to(superpixels), superpixel_size=sp,
    )
    pair_segments, pixel_segments = superpixel_indices(inputs["superpixels"], inputs["pair_pixels"])
    k = pixel_segments.num_segments
    return inputs, pair_segments, pixel_segments, dict(images=b, image_size=f"{h}x{w}", channels=c, segments=k, pairs=m)


def slidr_step_for_memory(quick: bool, image_grad: bool, impl: str, device: str = "cpu"):
    """(step, clear) of the SLidR step for :func:`~xmodal.bench.harness.peak_memory`; the
    indices are built with the inputs (in the data workers), as in the timed rows."""
    inp, pair_segs, pix_segs, _ = _slidr_inputs(quick, device, image_grad)
    pf, imf = inp["point_feats"], inp["image_feats"]

    def clear():
        pf.grad = imf.grad = None

    if impl == "peer":
        return (lambda: slidr_superpixel_loss(**inp).backward()), clear
    return (lambda: xmodal_superpixel_loss(pf, imf, inp["pair_points"], pair_segs, pix_segs).backward()), clear


def case_slidr_step(threads: int | None, device: str, quick: bool) -> list[dict]:
    """A SLidR step: pool points and pixels into superpixels, InfoNCE over ~3,600 segments,
    backward; with the pixel features trainable (SLidR's 1x1 head) and frozen (a fixed teacher)."""
    rows = []
    for image_grad in (True, False):
        inp, pair_segs, pix_segs, meta = _slidr_inputs(quick, device, image_grad)
        pf, imf = inp["point_feats"], inp["image_feats"]

        def clear():
            pf.grad = imf.grad = None

        def peer():
            clear()
            slidr_superpixel_loss(**inp).backward()

        def ours():
            clear()
            xmodal_superpixel_loss(pf, imf, inp["pair_points"], pair_segs, pix_segs).backward()

        def ours_with_build():  # the indices rebuilt inside the step, as the peer does
            clear()
            pairs, pixels = superpixel_indices(inp["superpixels"], inp["pair_pixels"])
            xmodal_superpixel_loss(pf, imf, inp["pair_points"], pairs, pixels).backward()

        t = time_interleaved({"ours": ours, "build": ours_with_build, "peer": peer}, repeat=3 if quick else 5, device=device)
        kw = dict(quick=quick, image_grad=image_grad)
        mem_ours = peak_memory("xmodal.bench.ops:slidr_step_for_memory", dict(kw, impl="ours"), device=device)
        mem_peer = peak_memory("xmodal.bench.ops:slidr_step_for_memory", dict(kw, impl="peer"), device=device)
        label = "trainable image head" if image_grad else "frozen image features"
        rows.append(_row(f"SLidR step ({label}) fwd+bwd", "xmodal Segments + segment_mean + chunked InfoNCE",
                         "SLidR one-hot sparse mm + mm/cross-entropy", t["ours"], t["peer"], threads, device,
                         peak_bytes=mem_ours, peer_peak_bytes=mem_peer,
                         memory_ratio=round(mem_ours / mem_peer, 4) if mem_ours is not None and mem_peer else None, **meta))
        rows.append(_row(f"SLidR step ({label}) fwd+bwd, indices built in the step", "the same + Segments built per step",
                         "SLidR one-hot sparse mm + mm/cross-entropy", t["build"], t["peer"], threads, device))
    return rows


def case_voxelize(threads: int | None, device: str, quick: bool) -> list[dict]:
    """voxelize 1 and 10 sweeps (0.1 m cubic; SLidR's cylindrical 0.1 m / 1 deg / 0.1 m) against
    the 1-D ``torch.unique`` + ``index_add_`` voxelizer (CenterPoint-style) and, for the same
    outputs (CSR index + means), ``torch.unique`` + ``Segments`` (two sorts)."""
    from xmodal.bench.inputs import lidar_sweeps
    from xmodal.ops import voxelize

    rows = []
    rng = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
    for sweeps in ((1,) if quick else (1, 10)):
        p = lidar_sweeps(sweeps, azimuths=100 if quick else 1084).to(device)
        lo = torch.tensor(rng[:3], device=device)
        vox = voxelize(p, 0.1, rng)
        shape = torch.tensor(vox.spatial_shape, device=device)

        def keys():
            f = torch.floor((p[:, :3] - lo) / 0.1)
            keep = ((f >= 0) & (f < shape)).all(1)
            i = f[keep].long()
            return keep, (i[:, 0] * shape[1] + i[:, 1]) * shape[2] + i[:, 2]

        def unique_index_add():
            keep, key = keys()
            u, inv, cnt = torch.unique(key, return_inverse=True, return_counts=True)
            return torch.zeros(u.numel(), p.shape[1] - 3, device=device).index_add_(0, inv, p[keep, 3:]) / cnt[:, None]

        def unique_segments():
            keep, key = keys()
            u, inv = torch.unique(key, return_inverse=True)
            segs = Segments.from_ids(inv, u.numel(), check=False)
            segs.perm
            return segment_mean(p[keep, 3:], segs)

        t = time_interleaved({"ours": lambda: voxelize(p, 0.1, rng), "u1d": unique_index_add, "u1dseg": unique_segments},
                             repeat=3 if quick else 9, device=device)
        case = f"voxelize {p.shape[0]} points, cubic 0.1 m ({vox.num_voxels} voxels)"
        rows.append(_row(case, "xmodal voxelize", "torch.unique + index_add_", t["ours"], t["u1d"], threads, device))
        rows.append(_row(case, "xmodal voxelize", "torch.unique + Segments + segment_mean (index + means, two sorts)", t["ours"], t["u1dseg"], threads, device))
        cyl = voxelize(p, 0.1, coords="cylindrical")

        def cyl_unique():
            rho = torch.linalg.norm(p[:, :2], dim=1)
            phi = torch.rad2deg(torch.atan2(p[:, 1], p[:, 0]))
            q = torch.stack((torch.floor(rho / 0.1), torch.floor(phi), torch.floor(p[:, 2] / 0.1)), 1).long()
            q = q - q.amin(0)
            ext = q.amax(0) + 1
            key = (q[:, 0] * ext[1] + q[:, 1]) * ext[2] + q[:, 2]
            u, inv, cnt = torch.unique(key, return_inverse=True, return_counts=True)
            return torch.zeros(u.numel(), p.shape[1] - 3, device=device).index_add_(0, inv, p[:, 3:]) / cnt[:, None]

        t = time_interleaved({"ours": lambda: voxelize(p, 0.1, coords="cylindrical"), "u1d": cyl_unique},
                             repeat=3 if quick else 9, device=device)
        rows.append(_row(f"voxelize {p.shape[0]} points, SLidR cylindrical ({cyl.num_voxels} voxels)", "xmodal voxelize",
                         "torch.unique + index_add_", t["ours"], t["u1d"], threads, device))
    return rows


def case_bev_pool(threads: int | None, device: str, quick: bool) -> list[dict]:
    """BEV pooling of a BEVDet-size frustum (6 cameras, 16x44 feature pixels, 59 depth bins,
    128x128 cells of 0.8 m) on a precomputed index, against ``index_add_`` of the frustum
    features (and of the materialised depth x feature product for the BEVPoolv2 form)."""
    from xmodal.bench.inputs import bevdet_geometry
    from xmodal.ops import BevGrid, BevPoolIndex, bev_pool

    grid = BevGrid((-51.2, 51.2), (-51.2, 51.2), 0.8, (-5.0, 3.0))
    geo = bevdet_geometry(d=8 if quick else 59, fh=4 if quick else 16, fw=8 if quick else 44).to(device)
    b, n, d, fh, fw, _ = geo.shape
    index = BevPoolIndex.from_geometry(geo, grid)
    m, k = index.num_rows, index.num_cells
    kept = (index.cell_ids >= 0).nonzero().squeeze(1)
    cells = index.cell_ids[kept]
    rows = []
    gen = torch.Generator().manual_seed(2)
    for c in ((8,) if quick else (64, 80)):
        x = torch.rand(m, c, generator=gen).to(device).requires_grad_(True)
        feat = torch.rand(b * n * fh * fw, c, generator=gen).to(device).requires_grad_(True)
        depth = torch.rand(m, generator=gen).to(device).requires_grad_(True)

        def naive(t):
            return torch.zeros(k, t.shape[1], dtype=t.dtype, device=device).index_add_(0, cells, t.index_select(0, kept))

        def materialise(f, dep):
            return naive((f.view(b * n, 1, fh * fw, c) * dep.view(b * n, d, fh * fw, 1)).reshape(m, c))

        def fb(fn, *args):
            def run():
                out = fn(*args)
                out.backward(torch.ones_like(out))
            return run

        with torch.no_grad():
            t = time_interleaved({"plain": lambda: bev_pool(x, index), "naive": lambda: naive(x),
                                  "w": lambda: bev_pool(feat, index, depth), "mat": lambda: materialise(feat, depth)},
                                 repeat=3 if quick else 9, device=device)
        tb = time_interleaved({"plain": fb(bev_pool, x, index), "naive": fb(naive, x),
                               "w": fb(bev_pool, feat, index, depth), "mat": fb(materialise, feat, depth)},
                              repeat=3 if quick else 5, device=device)
        base = f"bev_pool {n} cams {fh}x{fw}x{d} bins C={c} -> 128x128"
        for tt, what in ((t, "fwd"), (tb, "fwd+bwd")):
            rows.append(_row(f"{base} frustum given, {what}", "xmodal bev_pool", "index_add_", tt["plain"], tt["naive"], threads, device))
            rows.append(_row(f"{base} depth x feature (BEVPoolv2 form), {what}", "xmodal bev_pool (weighted)",
                             "materialise + index_add_", tt["w"], tt["mat"], threads, device))
    return rows


def case_projection(threads: int | None, device: str, quick: bool) -> list[dict]:
    """project_points of scan-ordered LiDAR into the six 1600x900 cameras of the nuScenes rig,
    against the naive per-camera loop (``project_points_reference``); ns per point-camera pair."""
    from xmodal.bench.inputs import nuscenes_rig, scan_cloud
    from xmodal.ops import project_points, project_points_reference

    lidar2img, sizes = nuscenes_rig()
    lidar2img = lidar2img.to(device)
    rows = []
    for n, shuffle in (((2000, False),) if quick else ((34_000, False), (300_000, False), (1_000_000, False), (300_000, True))):
        pts = scan_cloud(n, shuffle=shuffle).to(device)
        pairs = project_points(pts, lidar2img, sizes)
        t = time_interleaved({"ours": lambda: project_points(pts, lidar2img, sizes),
                              "loop": lambda: project_points_reference(pts, lidar2img, sizes)},
                             repeat=3 if quick else 11, device=device)
        per = 1e6 / (n * lidar2img.shape[0])  # ms -> ns per point-camera pair
        rows.append(_row(f"project_points {n} points x 6 cameras 1600x900{' (shuffled)' if shuffle else ''}",
                         "xmodal project_points (fused)", "per-camera loop", t["ours"], t["loop"], threads, device,
                         ns_per_pair=round(t["ours"] * per, 2), peer_ns_per_pair=round(t["loop"] * per, 2),
                         valid_fraction=round(len(pairs) / (n * lidar2img.shape[0]), 3)))
    return rows


def _slic_quality(fn, inputs, images, n: int) -> tuple[float, float]:
    """Mean (boundary recall, under-segmentation error) of ``fn`` over ``inputs`` against the GT
    class masks of ``images`` [(image, mask)]."""
    import numpy as np

    from xmodal.evaluation.superpixel_metrics import boundary_recall, undersegmentation_error

    scores = []
    for src, (_, gt) in zip(inputs, images):
        lab = fn(src, n_segments=n)
        lab = lab.cpu().numpy() if torch.is_tensor(lab) else lab
        scores.append((boundary_recall(lab, gt), undersegmentation_error(lab, gt)))
    br, ue = np.mean(scores, 0)
    return round(float(br), 4), round(float(ue), 4)


def case_superpixels(threads: int | None, device: str, quick: bool) -> list[dict]:
    """SLIC on camera images of a synthetic driving world rendered at nuScenes size (1600x900),
    xmodal's multi-resolution torch SLIC against scikit-image at the same parameters (SLidR's
    n_segments=150, compactness=6, sigma=3, and n_segments=1000); quality against the ground-
    truth class masks: boundary recall (2 px) and under-segmentation error."""
    import tempfile
    from pathlib import Path

    import numpy as np
    from PIL import Image

    from xmodal.data.nuscenes_info import semantic_mask_path
    from xmodal.data.synth.driving import generate_driving_world
    from xmodal.ops.slic import slic, slic_reference

    with tempfile.TemporaryDirectory(prefix="xmodal-bench-") as tmp:
        root = Path(tmp) / "world"
        generate_driving_world(root, scenes=1, samples=1, image_scale=0.25 if quick else 1.0, seed=3, progress=False)
        images = []
        for p in sorted((root / "samples").glob("CAM_*/*.jpg"))[: 2 if quick else 3]:
            rel = p.relative_to(root).as_posix()
            images.append((np.array(Image.open(p).convert("RGB")), np.asarray(Image.open(root / semantic_mask_path(rel)))))
    rows = []
    h, w = images[0][0].shape[:2]
    for n in (150, 1000):
        image_t = [torch.from_numpy(im).to(device) for im, _ in images]
        t = time_interleaved({"ours": lambda: [slic(im, n_segments=n) for im in image_t],
                              "skimage": lambda: [slic_reference(im, n_segments=n) for im, _ in images]},
                             repeat=1 if quick else 3, device=device)
        q = _slic_quality(slic, image_t, images, n), _slic_quality(slic_reference, [im for im, _ in images], images, n)
        per = len(images)
        rows.append(_row(f"SLIC {w}x{h} n_segments={n} (per image)", "xmodal slic (torch, multi-resolution)", "scikit-image slic",
                         t["ours"] / per, t["skimage"] / per, threads, device,
                         boundary_recall=q[0][0], peer_boundary_recall=q[1][0],
                         undersegmentation_error=q[0][1], peer_undersegmentation_error=q[1][1],
                         peer_threads=1))  # scikit-image's SLIC is single-threaded
    return rows


CASES: dict[str, Callable[[int | None, str, bool], list[dict]]] = {
    "segment": case_segment_pooling,
    "slidr": case_slidr_step,
    "projection": case_projection,
    "voxelize": case_voxelize,
    "bev_pool": case_bev_pool,
    "superpixels": case_superpixels,
}


def run_ops_benchmark(cases: list[str] | None = None, threads: tuple[int, ...] = (1, 2), quick: bool = False,
                      cuda: bool | None = None, progress: bool = True) -> list[dict]:
    """Run ``cases`` (default: all) on the CPU at each thread count, and on CUDA when present."""
    names = list(CASES) if not cases else cases
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise ValueError(f"bench ops: unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    runs = [(t, "cpu") for t in threads]
    if cuda if cuda is not None else torch.cuda.is_available():
        runs.append((None, "cuda"))
    rows: list[dict] = []
    old = torch.get_num_threads()
    try:
        for t, device in runs:
            if t is not None:
                torch.set_num_threads(t)
            for name in names:
                if progress:
                    print(f"[bench ops] {name} on {device}" + (f", {t} thread(s)" if t else ""), flush=True)
                rows.extend(CASES[name](t, device, quick))
    finally:
        torch.set_num_threads(old)
    return rows
