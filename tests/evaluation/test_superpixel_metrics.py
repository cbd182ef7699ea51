"""Superpixel metrics on hand-made label maps with known answers."""

import numpy as np
import pytest

from xmodal.evaluation.superpixel_metrics import (
    achievable_segmentation_accuracy,
    boundary_map,
    boundary_recall,
    undersegmentation_error,
)


def halves(h=4, w=4):
    """GT: left half 0, right half 1."""
    gt = np.zeros((h, w), np.int64)
    gt[:, w // 2:] = 1
    return gt


def test_identical_maps_are_perfect():
    gt = halves()
    assert boundary_recall(gt, gt, tolerance=0) == 1.0
    assert undersegmentation_error(gt, gt) == 0.0
    assert achievable_segmentation_accuracy(gt, gt) == 1.0


def test_one_superpixel_over_two_halves():
    gt, sp = halves(), np.zeros((4, 4), np.int64)
    assert boundary_recall(sp, gt) == 0.0
    # S = all 16 pixels: for each half min(|S & G| = 8, |S \ G| = 8) -> (8 + 8) / 16
    assert undersegmentation_error(sp, gt) == 1.0
    assert achievable_segmentation_accuracy(sp, gt) == 0.5


def test_finer_superpixels_inside_the_segments():
    gt = halves()
    sp = np.tile(np.arange(4), (4, 1))  # four vertical stripes
    assert boundary_recall(sp, gt, tolerance=0) == 1.0
    assert undersegmentation_error(sp, gt) == 0.0
    assert achievable_segmentation_accuracy(sp, gt) == 1.0


def test_one_row_with_known_numbers():
    gt = np.array([[0] * 5 + [1] * 5])
    sp = np.array([[0] * 7 + [1] * 3])
    # S0 meets G0 (5 in, 2 out -> 2) and G1 (2 in, 5 out -> 2); S1 lies in G1 (-> 0)
    assert undersegmentation_error(sp, gt) == pytest.approx(0.4)
    assert achievable_segmentation_accuracy(sp, gt) == pytest.approx(0.8)
    # the GT boundary pixel is x = 4, the superpixel one x = 6: two pixels apart
    assert boundary_recall(sp, gt, tolerance=1) == 0.0
    assert boundary_recall(sp, gt, tolerance=2) == 1.0


def test_boundary_recall_counts_pixels():
    gt = np.zeros((6, 6), np.int64)
    gt[:, 3:] = 1  # boundary pixels: column 2, six rows
    sp = np.zeros((6, 6), np.int64)
    sp[:3, 3:] = 1  # superpixel boundary only along the top three rows (and the step at row 2)
    assert boundary_recall(sp, gt, tolerance=0) == pytest.approx(3 / 6)
    assert boundary_recall(sp, gt, tolerance=1) == pytest.approx(4 / 6)


def test_ids_need_not_be_contiguous():
    gt = np.array([[0] * 5 + [1] * 5])
    sp = np.array([[0] * 7 + [1] * 3])
    assert undersegmentation_error(sp * 7 + 100, gt * 3 + 9) == pytest.approx(undersegmentation_error(sp, gt))
    assert boundary_recall(sp * 7 + 100, gt * 3 + 9) == boundary_recall(sp, gt)


def test_boundary_map_is_one_sided():
    b = boundary_map(halves())
    assert b.sum() == 4 and b[:, 1].all()


def test_no_gt_boundary_gives_full_recall():
    assert boundary_recall(np.arange(16).reshape(4, 4), np.zeros((4, 4), np.int64)) == 1.0


@pytest.mark.parametrize(
    "labels, gt, match",
    [
        (np.zeros((4, 4), np.int64), np.zeros((4, 5), np.int64), "same shape"),
        (np.zeros((4, 4), np.float32), np.zeros((4, 4), np.int64), "labels must hold integer"),
        (np.zeros((4, 4), np.int64), -np.ones((4, 4), np.int64), "gt must hold non-negative"),
        (np.zeros(4, np.int64), np.zeros(4, np.int64), r"\[H, W\]"),
    ],
)
def test_bad_inputs_name_the_argument(labels, gt, match):
    with pytest.raises(ValueError, match=match):
        undersegmentation_error(labels, gt)
