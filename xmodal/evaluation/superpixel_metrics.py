"""Superpixel quality against a ground-truth segmentation (boundary recall, under-segmentation
error, achievable segmentation accuracy), as in the superpixel benchmarks of Neubert & Protzel
(2012) and Stutz et al. (2018).

All functions take two [H, W] integer maps (superpixel labels, ground-truth segment ids; any
non-negative ids, not necessarily contiguous) and are vectorized numpy (joint-id ``bincount``).
A ground-truth map of *classes* merges touching instances of one class into one segment, which
hides the boundaries between them: measure against instance maps where there are any.
"""

from __future__ import annotations

import numpy as np

__all__ = ["achievable_segmentation_accuracy", "boundary_map", "boundary_recall", "undersegmentation_error"]


def _check_pair(labels, gt) -> tuple[np.ndarray, np.ndarray]:
    labels, gt = np.asarray(labels), np.asarray(gt)
    for name, a in (("labels", labels), ("gt", gt)):
        if a.ndim != 2 or a.size == 0:
            raise ValueError(f"{name} must be a non-empty [H, W] map, got shape {a.shape}.")
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name} must hold integer ids, got dtype {a.dtype}.")
        if a.min() < 0:
            raise ValueError(f"{name} must hold non-negative ids, got min {a.min()}.")
    if labels.shape != gt.shape:
        raise ValueError(f"labels {labels.shape} and gt {gt.shape} must have the same shape.")
    return labels, gt


def _compact(ids: np.ndarray) -> tuple[np.ndarray, int]:
    """Ids renumbered 0..n-1 (order kept) and n."""
    flat = ids.ravel().astype(np.int64, copy=False)
    present = np.bincount(flat) > 0
    lut = np.cumsum(present) - 1
    return lut[flat], int(present.sum())


def boundary_map(labels) -> np.ndarray:
    """[H, W] bool: pixels whose right or lower 4-neighbour has another id (one-sided, so a
    boundary between two segments is one pixel thick)."""
    labels = np.asarray(labels)
    b = np.zeros(labels.shape, dtype=bool)
    b[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    b[:-1, :] |= labels[:-1, :] != labels[1:, :]
    return b


def boundary_recall(labels, gt, tolerance: int = 2) -> float:
    """Fraction of ground-truth boundary pixels with a superpixel boundary pixel within
    ``tolerance`` pixels (Chebyshev distance, a ``(2 t + 1)^2`` window). Higher is better.

    Boundaries are one-sided (:func:`boundary_map`). Returns 1.0 when ``gt`` has no boundary.
    """
    from scipy.ndimage import maximum_filter

    labels, gt = _check_pair(labels, gt)
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0 pixels, got {tolerance}.")
    gb = boundary_map(gt)
    n = int(gb.sum())
    if n == 0:
        return 1.0
    sb = boundary_map(labels)
    if tolerance > 0:
        sb = maximum_filter(sb.view(np.uint8), size=2 * int(tolerance) + 1, mode="constant").view(bool)
    return float((gb & sb).sum() / n)


def _joint_counts(labels: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Overlaps of every (superpixel, gt segment) pair that meet: (s [P], g [P], |S & G| [P])."""
    s, ns = _compact(labels)
    g, ng = _compact(gt)
    joint = np.bincount(s * ng + g, minlength=ns * ng)
    nz = np.nonzero(joint)[0]
    return nz // ng, nz % ng, joint[nz]


def undersegmentation_error(labels, gt) -> float:
    """Corrected under-segmentation error (Neubert & Protzel 2012), lower is better::

        UE = 1/N * sum_G sum_{S : S & G != {}} min(|S & G|, |S \\ G|)

    ``N`` pixels, ``S`` superpixels, ``G`` ground-truth segments: every superpixel that leaks
    out of a ground-truth segment is charged the smaller of its inside and outside parts.
    0 when every superpixel lies inside one ground-truth segment.
    """
    labels, gt = _check_pair(labels, gt)
    s, _, inter = _joint_counts(labels, gt)
    size = np.bincount(s, weights=inter)
    return float(np.minimum(inter, size[s] - inter).sum() / labels.size)


def achievable_segmentation_accuracy(labels, gt) -> float:
    """Achievable segmentation accuracy, higher is better: the pixel accuracy when every
    superpixel takes the ground-truth segment it overlaps most, ``1/N * sum_S max_G |S & G|``."""
    labels, gt = _check_pair(labels, gt)
    s, _, inter = _joint_counts(labels, gt)
    best = np.zeros(int(s.max()) + 1, dtype=np.int64)
    np.maximum.at(best, s, inter)
    return float(best.sum() / labels.size)
