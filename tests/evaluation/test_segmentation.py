"""SegmentationMetric against hand-computed values and the nuScenes devkit's ConfusionMatrix."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from nuscenes.eval.lidarseg.utils import ConfusionMatrix

from xmodal.data.labels import NUSCENES_EVAL_CLASSES, SCANNET20_CLASSES
from xmodal.evaluation.segmentation import SegmentationMetric


def devkit(pairs: list[tuple[np.ndarray, np.ndarray]]) -> ConfusionMatrix:
    cm = ConfusionMatrix(17, 0)
    for gt, pred in pairs:
        cm.update(gt, pred)
    return cm


def random_batch(rng: np.random.Generator, n: int, absent: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """GT over 0..16 (0 = ignore) and predictions over 1..16, some classes absent from both."""
    classes = np.array([c for c in range(1, 17) if c not in absent])
    gt = rng.choice(np.concatenate([[0], classes]), n)
    pred = np.where(rng.random(n) < 0.5, gt, rng.choice(classes, n))
    pred[pred == 0] = rng.choice(classes, int((pred == 0).sum()))
    return gt, pred


def test_hand_computed_three_classes():
    # ids 0 (ignore), 1, 2, 3: class 3 absent from GT and prediction -> NaN, left out of the mean
    gt = torch.tensor([1, 1, 1, 2, 2, 0, 0])
    pred = torch.tensor([1, 1, 2, 2, 1, 2, 1])
    m = SegmentationMetric(4, 0, ["ignore", "a", "b", "c"])
    m.update(pred, gt)
    # class 1: TP 2, FP 1 (gt 2 -> 1), FN 1 -> 2/4; class 2: TP 1, FP 1, FN 1 -> 1/3
    iou = m.iou_per_class()
    assert iou[0] == pytest.approx(0.5) and iou[1] == pytest.approx(1 / 3) and math.isnan(iou[2])
    assert m.miou() == pytest.approx((0.5 + 1 / 3) / 2)
    assert m.accuracy() == pytest.approx(3 / 5)  # GT-ignore points do not count
    assert m.num_points == 5
    d = m.to_dict()
    assert d["iou_per_class"] == {"a": pytest.approx(0.5), "b": pytest.approx(1 / 3), "c": None}
    json.dumps(d, allow_nan=False)


def test_predicted_but_absent_class_counts_as_zero():
    m = SegmentationMetric(4, 0)
    m.update(torch.tensor([1, 3]), torch.tensor([1, 1]))
    iou = m.iou_per_class()
    assert iou[0] == 0.5 and math.isnan(iou[1]) and iou[2] == 0.0
    assert m.miou() == pytest.approx(0.25)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_devkit_confusion_matrix(seed):
    rng = np.random.default_rng(seed)
    pairs = [random_batch(rng, int(rng.integers(1, 3000)), absent=(5, 9)) for _ in range(4)]
    ours = SegmentationMetric.nuscenes()
    for gt, pred in pairs:
        ours.update(torch.from_numpy(pred), torch.from_numpy(gt))
    ref = devkit(pairs)
    ref_iou = np.asarray(ref.get_per_class_iou())
    np.testing.assert_array_equal(ours.iou_per_class(), ref_iou[1:])  # bitwise, NaN in place
    assert ours.miou() == ref.get_mean_iou()
    assert ours.freq_weighted_iou() == ref.get_freqweighted_iou()
    np.testing.assert_array_equal(ours.confusion(), ref.global_cm[1:, 1:])
    assert math.isnan(ours.iou_per_class()[4]) and math.isnan(ours.iou_per_class()[8])


def test_float32_union_rounding_matches_devkit():
    # unions above 2**24 are rounded by the devkit's float32 cast; we do the same
    m = SegmentationMetric.nuscenes()
    big = np.zeros((17, 17), np.int64)
    big[11, 11], big[11, 13], big[13, 13], big[4, 4] = 123_456_789, 7, 33_333_333, 1
    m.matrix = torch.from_numpy(big.copy())
    ref = ConfusionMatrix(17, 0)
    ref.global_cm = big.copy()
    np.testing.assert_array_equal(m.iou_per_class(), np.asarray(ref.get_per_class_iou())[1:])
    assert m.miou() == ref.get_mean_iou()
    assert m.iou_per_class()[10] != 123_456_789 / (123_456_789 + 7)  # the rounding is real


def test_prediction_of_ignore_policies():
    gt = torch.tensor([1, 1, 2, 2])
    pred = torch.tensor([1, 0, 2, 2])
    with pytest.raises(ValueError, match="ignore id 0.*pred_ignore"):
        SegmentationMetric.nuscenes().update(pred, gt)
    drop = SegmentationMetric.nuscenes(pred_ignore="drop")
    drop.update(pred, gt)
    # the devkit's arithmetic (its update() asserts pred > 0, so build its matrix by hand)
    ref = ConfusionMatrix(17, 0)
    cm = np.zeros((17, 17), np.int64)
    np.add.at(cm, (gt.numpy(), pred.numpy()), 1)
    cm[0, :] = cm[:, 0] = 0
    ref.global_cm = cm
    assert drop.miou() == ref.get_mean_iou() == 1.0 and drop.num_points == 3
    miss = SegmentationMetric.nuscenes(pred_ignore="miss")
    miss.update(pred, gt)
    assert miss.iou_per_class()[0] == 0.5 and miss.iou_per_class()[1] == 1.0
    assert miss.accuracy() == 0.75 and miss.num_points == 4


def test_scannet_ignore_outside_the_range():
    m = SegmentationMetric.scannet20()
    gt = torch.tensor([0, 0, 19, 255, 255, 5])
    pred = torch.tensor([0, 1, 19, 3, 7, 5])
    m.update(pred, gt)
    assert m.num_points == 4 and len(m.iou_per_class()) == 20
    d = m.to_dict()
    assert list(d["iou_per_class"]) == list(SCANNET20_CLASSES)
    assert d["iou_per_class"]["wall"] == 0.5 and d["iou_per_class"]["otherfurniture"] == 1.0
    assert d["iou_per_class"]["floor"] == 0.0  # predicted, absent from GT
    with pytest.raises(ValueError, match=r"target: 1 values outside the label ids 0\.\.19 and ignore id 255"):
        m.update(torch.tensor([1]), torch.tensor([20]))
    with pytest.raises(ValueError, match="ignore id 255"):
        m.update(torch.tensor([255]), torch.tensor([1]))


def test_input_errors():
    m = SegmentationMetric.nuscenes()
    with pytest.raises(ValueError, match="pair up"):
        m.update(torch.tensor([1, 2]), torch.tensor([1]))
    with pytest.raises(ValueError, match="argmax"):
        m.update(torch.rand(3), torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"pred: 1 values outside.*e\.g\. \[17\]"):
        m.update(torch.tensor([17]), torch.tensor([1]))
    assert m.num_points == 0 and math.isnan(m.miou())
    assert m.to_dict()["miou"] is None
    with pytest.raises(ValueError, match="pred_ignore"):
        SegmentationMetric(17, 0, pred_ignore="keep")  # type: ignore[arg-type]


def test_merge_equals_one_update_and_names():
    rng = np.random.default_rng(3)
    a, b = random_batch(rng, 500), random_batch(rng, 700)
    m1, m2, whole = SegmentationMetric.nuscenes(), SegmentationMetric.nuscenes(), SegmentationMetric.nuscenes()
    m1.update(torch.from_numpy(a[1]), torch.from_numpy(a[0]))
    m2.update(torch.from_numpy(b[1]), torch.from_numpy(b[0]))
    whole.update(torch.from_numpy(np.concatenate([a[1], b[1]])), torch.from_numpy(np.concatenate([a[0], b[0]])))
    assert torch.equal(m1.merge(m2).matrix, whole.matrix)
    assert list(whole.to_dict()["iou_per_class"]) == list(NUSCENES_EVAL_CLASSES[1:])
    with pytest.raises(ValueError, match="cannot merge"):
        m1.merge(SegmentationMetric.scannet20())


WORKER = """
import os, sys, datetime, numpy as np, torch, torch.distributed as dist
sys.path.insert(0, os.environ["XMODAL_ROOT"])
from xmodal.evaluation.segmentation import SegmentationMetric
dist.init_process_group("gloo", rank=1, world_size=2, timeout=datetime.timedelta(seconds=60))
data = np.load(os.environ["DATA"])
m = SegmentationMetric.nuscenes()
m.update(torch.from_numpy(data["pred"]), torch.from_numpy(data["gt"]))
m.all_reduce()
np.save(os.environ["OUT"], m.matrix.numpy())
dist.destroy_process_group()
"""


def test_all_reduce_across_two_gloo_processes(tmp_path):
    """Rank 0 (this process) and rank 1 (a subprocess) each hold one batch; after all_reduce both
    hold the matrix of both batches."""
    import datetime

    import torch.distributed as dist

    rng = np.random.default_rng(5)
    (gt0, pred0), (gt1, pred1) = random_batch(rng, 1000), random_batch(rng, 1500)
    np.savez(tmp_path / "data.npz", gt=gt1, pred=pred1)
    (tmp_path / "worker.py").write_text(WORKER)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1",
           "DATA": str(tmp_path / "data.npz"), "OUT": str(tmp_path / "cm1.npy"), "XMODAL_ROOT": root}
    proc = subprocess.Popen([sys.executable, str(tmp_path / "worker.py")], env=env, stderr=subprocess.PIPE, text=True)
    mine = SegmentationMetric.nuscenes()
    mine.update(torch.from_numpy(pred0), torch.from_numpy(gt0))
    try:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=2,
                                timeout=datetime.timedelta(seconds=60))
        mine.all_reduce()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    expect = SegmentationMetric.nuscenes()
    expect.update(torch.from_numpy(pred0), torch.from_numpy(gt0))
    expect.update(torch.from_numpy(pred1), torch.from_numpy(gt1))
    assert torch.equal(mine.matrix, expect.matrix)
    np.testing.assert_array_equal(np.load(tmp_path / "cm1.npy"), expect.matrix.numpy())


@pytest.mark.gpu
def test_follows_the_device_cuda():
    rng = np.random.default_rng(4)
    gt, pred = random_batch(rng, 5000)
    cpu, gpu = SegmentationMetric.nuscenes(), SegmentationMetric.nuscenes()
    cpu.update(torch.from_numpy(pred), torch.from_numpy(gt))
    gpu.update(torch.from_numpy(pred).cuda(), torch.from_numpy(gt).cuda())
    assert gpu.matrix.is_cuda
    assert torch.equal(gpu.matrix.cpu(), cpu.matrix) and gpu.miou() == cpu.miou()
