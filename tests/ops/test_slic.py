"""Fast SLIC (xmodal.ops.slic.slic) against scikit-image: structure, determinism and quality.

Quality is measured against the synthetic driving world's ground-truth *class* masks: touching
objects of one class form one GT segment, so boundaries between them are not counted (the same
for both methods).
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from xmodal.data.nuscenes_info import semantic_mask_path
from xmodal.evaluation.superpixel_metrics import (
    boundary_recall,
    undersegmentation_error,
)
from xmodal.ops.slic import (
    _RING,
    _SIMPLE,
    _apply_changes,
    _pack_bits,
    enforce_connectivity,
    rgb_to_lab,
    seed_grid,
    slic,
    slic_reference,
)


def n_components(labels: np.ndarray) -> int:
    from skimage.measure import label

    return int(label(labels, background=-1, connectivity=1).max())


def assert_valid(labels: np.ndarray, shape) -> int:
    """Labels 0..K-1, all used, each one 4-connected region; returns K."""
    assert labels.shape == tuple(shape) and labels.dtype == np.int64
    k = int(labels.max()) + 1
    assert labels.min() == 0 and np.unique(labels).size == k
    assert n_components(labels) == k
    return k


def camera_images(root: Path, every: int = 1):
    """(image [H, W, 3] uint8, class mask [H, W]) of the world's keyframe cameras."""
    from PIL import Image

    out = []
    for p in sorted((root / "samples").glob("CAM_*/*.jpg"))[::every]:
        rel = p.relative_to(root).as_posix()
        out.append((np.array(Image.open(p).convert("RGB")), np.asarray(Image.open(root / semantic_mask_path(rel)))))
    return out


def quality(images, fn, n):
    """Mean boundary recall (2 px) and under-segmentation error over the images."""
    q = np.array([(boundary_recall(lab, gt), undersegmentation_error(lab, gt))
                  for lab, gt in ((fn(im, n_segments=n), gt) for im, gt in images)])
    return q.mean(0)


# ----------------------------------------------------------------------------- structure
@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (3, 5), (37, 53), (101, 203), (225, 400)])
@pytest.mark.parametrize("n", [1, 7, 150, 1000])
def test_labels_are_contiguous_and_connected(shape, n):
    rng = np.random.default_rng(sum(shape) + n)
    h, w = shape
    blocks = np.kron(rng.integers(0, 256, (h // 6 + 1, w // 6 + 1, 3)), np.ones((6, 6, 1)))[:h, :w].astype(np.uint8)
    noisy = np.clip(blocks + rng.normal(0, 12, blocks.shape), 0, 255).astype(np.uint8)
    for image in (blocks, noisy, np.full((h, w, 3), 90, np.uint8)):
        k = assert_valid(slic(image, n_segments=n), shape)
        assert k <= max(h * w, 1)


def test_segment_count_follows_n_segments(driving_world):
    image, _ = camera_images(driving_world, every=7)[0]
    for n in (50, 150, 400, 1000):
        _, rows, cols = seed_grid(*image.shape[:2], n)
        k = assert_valid(slic(image, n_segments=n), image.shape[:2])
        assert 0.4 * rows * cols <= k <= rows * cols, (n, k, rows * cols)


def test_deterministic_and_numpy_equals_tensor(driving_world):
    image, _ = camera_images(driving_world, every=11)[1]
    a = slic(image)
    assert np.array_equal(a, slic(image))
    t = slic(torch.from_numpy(image))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.int64
    assert np.array_equal(a, t.numpy())


def test_grid_matches_skimage():
    from skimage.util import regular_grid

    for shape, n in (((900, 1600), 150), ((900, 1600), 1000), ((225, 400), 150), ((5, 400), 20), ((3, 3), 50)):
        _step, rows, cols = seed_grid(*shape, n)
        grid = np.zeros(shape, bool)
        grid[regular_grid(shape, n)] = True
        assert rows * cols == grid.sum()


def test_lab_matches_skimage():
    from skimage.color import rgb2lab

    rgb = np.random.default_rng(0).random((17, 19, 3)).astype(np.float32)
    rgb[0, :3] = [[0, 0, 0], [1, 1, 1], [0.01, 0.02, 0.03]]
    np.testing.assert_allclose(rgb_to_lab(torch.from_numpy(rgb)).numpy(), rgb2lab(rgb), atol=2e-3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_segments": 0}, "n_segments"),
        ({"n_segments": 2.5}, "n_segments"),
        ({"compactness": 0}, "compactness"),
        ({"sigma": -1}, "sigma"),
        ({"max_num_iter": 0}, "max_num_iter"),
    ],
)
def test_bad_parameters_name_the_argument(kwargs, match):
    image = np.zeros((8, 8, 3), np.uint8)
    for fn in (slic, slic_reference):
        with pytest.raises(ValueError, match=match):
            fn(image, **kwargs)


@pytest.mark.parametrize(
    "image, match",
    [
        (np.zeros((8, 8), np.uint8), r"shape \[H, W, 3\]"),
        (np.zeros((8, 8, 4), np.uint8), r"shape \[H, W, 3\]"),
        (np.zeros((8, 8, 3), np.float32), "uint8"),
        (torch.zeros(8, 8, 3), "uint8"),
    ],
)
def test_bad_images_are_rejected(image, match):
    with pytest.raises(ValueError, match=match):
        slic(image)


# ----------------------------------------------------------------------------- connectivity pieces
def test_simple_point_table():
    def code(*ring_positions):
        eq = torch.zeros(1, 8, dtype=torch.bool)
        eq[0, list(ring_positions)] = True
        return int(_pack_bits(eq)[0])

    assert _SIMPLE[code(*range(8))]  # interior pixel: its label stays connected around it
    assert _SIMPLE[code(1)]  # a tip: one neighbour of its label
    assert not _SIMPLE[code()]  # an isolated pixel: moving it would delete its label
    assert not _SIMPLE[code(1, 5)]  # a bridge N-S: moving it would split its label
    assert _SIMPLE[code(1, 2, 3)]  # N and E joined through NE
    assert not _SIMPLE[code(1, 3)]  # N and E only touch diagonally


def test_apply_changes_never_splits_or_removes_a_label():
    rng = np.random.default_rng(1)
    for trial in range(20):
        base = np.kron(np.arange(12).reshape(3, 4), np.ones((5, 5), np.int64))  # 12 connected blocks
        h, w = base.shape
        padded = torch.full((h + 2, w + 2), -1, dtype=torch.int32)
        padded[1:-1, 1:-1] = torch.from_numpy(base)
        pix = torch.from_numpy(rng.choice(h * w, size=80, replace=False))
        y, x = pix // w, pix % w
        target = torch.from_numpy(rng.integers(0, 12, 80)).to(torch.int32)
        at = (y + 1) * (w + 2) + (x + 1)
        phase = (y % 2) * 2 + x % 2
        pending = [(at[phase == k], target[phase == k]) for k in range(4)]
        _apply_changes(padded, pending, max_rounds=6)
        out = padded[1:-1, 1:-1].numpy().astype(np.int64)
        assert np.unique(out).size == 12 and n_components(out) == 12, trial
    assert len(_RING) == 8


def test_enforce_connectivity_merges_small_fragments():
    labels = np.zeros((10, 10), np.int64)
    labels[:, 5:] = 1
    labels[2, 2] = 1  # a one-pixel fragment of label 1 inside label 0
    labels[8:, 8:] = 2  # a 2x2 corner piece
    out = enforce_connectivity(labels, min_size=5)
    assert out[2, 2] == out[0, 0]  # the fragment joined its surroundings
    assert out[9, 9] == out[0, 9]  # the corner piece joined its longest border neighbour
    assert n_components(out) == out.max() + 1 == 2


# ----------------------------------------------------------------------------- quality vs skimage
@pytest.mark.parametrize("n", [150, 1000])
def test_quality_within_10_percent_of_skimage(driving_world, n):
    """Boundary recall and under-segmentation error (vs GT class masks) of the fast path are
    within 10 % (relative) of skimage's at the same parameters, averaged over 12 cameras."""
    images = camera_images(driving_world, every=3)
    br_fast, ue_fast = quality(images, slic, n)
    br_ref, ue_ref = quality(images, slic_reference, n)
    assert br_fast >= 0.9 * br_ref, (br_fast, br_ref)
    assert ue_fast <= 1.1 * ue_ref, (ue_fast, ue_ref)


@pytest.mark.slow
def test_full_size_quality_and_speed(driving_world, full_size, tmp_path):
    """At nuScenes camera size (1600x900, SLidR's setting): valid labels, quality within 10 % of
    skimage's, and much faster. CI: two cameras of the small world upsampled; ``--full``: a
    world rendered at full size."""
    import time

    from PIL import Image

    if full_size:
        from xmodal.data.synth.driving import generate_driving_world

        root = tmp_path / "full"
        generate_driving_world(root, scenes=1, samples=1, image_scale=1.0, seed=3, progress=False)
        images = camera_images(root)
    else:
        images = [(np.asarray(Image.fromarray(im).resize((1600, 900), Image.BICUBIC)),
                   np.asarray(Image.fromarray(gt).resize((1600, 900), Image.NEAREST)))
                  for im, gt in camera_images(driving_world, every=9)[:2]]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        slic(images[0][0])  # warm-up
        q, t_fast, t_ref = [], 0.0, 0.0
        for image, gt in images:
            t0 = time.process_time()
            fast = slic(image)
            t1 = time.process_time()
            ref = slic_reference(image)
            t2 = time.process_time()
            t_fast, t_ref = t_fast + t1 - t0, t_ref + t2 - t1
            assert_valid(fast, (900, 1600))
            q.append((boundary_recall(fast, gt), undersegmentation_error(fast, gt),
                      boundary_recall(ref, gt), undersegmentation_error(ref, gt)))
    finally:
        torch.set_num_threads(threads)
    br_fast, ue_fast, br_ref, ue_ref = np.mean(q, 0)
    assert br_fast >= 0.9 * br_ref, (br_fast, br_ref)
    assert ue_fast <= 1.1 * ue_ref, (ue_fast, ue_ref)
    assert t_fast * 5 < t_ref, (t_fast, t_ref)  # ~25x on an idle core; loose for shared CI


@pytest.mark.gpu
def test_cuda_matches_structure_and_quality(driving_world):
    images = camera_images(driving_world, every=6)
    for image, _ in images:
        out = slic(torch.from_numpy(image).cuda())
        assert out.is_cuda
        assert_valid(out.cpu().numpy(), image.shape[:2])
    br_gpu, ue_gpu = quality(images, lambda im, **kw: slic(im, device="cuda", **kw).cpu().numpy(), 150)
    br_cpu, ue_cpu = quality(images, slic, 150)
    assert br_gpu >= 0.95 * br_cpu and ue_gpu <= 1.05 * ue_cpu
