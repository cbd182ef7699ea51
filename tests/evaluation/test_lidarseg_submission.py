"""lidarseg submissions of the synthetic world, scored by the nuScenes devkit and by xmodal."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from xmodal.data.labels import NUSCENES_EVAL_CLASSES
from xmodal.data.nuscenes import NuScenesDataset, NuScenesDatasetConfig, read_points
from xmodal.data.nuscenes_info import prepare_nuscenes
from xmodal.errors import DataError, XmodalError
from xmodal.evaluation.lidarseg_submission import (
    LidarsegSubmissionWriter,
    SubmissionMeta,
    check_lidarseg_submission,
    expected_point_counts,
    export_lidarseg_submission,
    prediction_path,
    score_with_devkit,
    submission_json_path,
    validate_lidarseg_submission,
)
from xmodal.evaluation.segmentation import SegmentationMetric

VERSION = "v1.0-mini"


def keyframes(root, tmp_path, split: str) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """{lidar token: [N] eval labels (0..16, .pcd.bin order)} and {lidar token: N} of a split."""
    info = tmp_path / f"{split}.pkl"
    prepare_nuscenes(root, VERSION, info, split=split, max_sweeps=0, progress=False)
    ds = NuScenesDataset(NuScenesDatasetConfig(info_file=str(info), load_images=False, imu_window=0.0))
    labels = {e["lidar"]["token"]: ds[i].labels for i, e in enumerate(ds.infos["data_list"])}
    return labels, expected_point_counts(ds.infos["data_list"], root)


@pytest.fixture(scope="module")
def mini_val(driving_world, tmp_path_factory):
    """The mini_val keyframes the 2-scene world holds (scene-0103; scene-0916 is absent)."""
    return keyframes(driving_world, tmp_path_factory.mktemp("infos"), "mini_val")


@pytest.fixture(scope="module")
def full_mini_val_world(tmp_path_factory):
    """4 scenes x 1 keyframe: both mini_val scenes present, so the devkit runs unpatched."""
    from xmodal.data.synth.driving import generate_driving_world

    root = tmp_path_factory.mktemp("driving4") / "nuscenes"
    generate_driving_world(root, scenes=4, samples=1, image_scale=0.05, seed=1, progress=False)
    return root, keyframes(root, tmp_path_factory.mktemp("infos4"), "mini_val")


def predictions(labels: dict[str, np.ndarray], kind: str, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for token, gt in labels.items():
        rand = rng.integers(1, 17, len(gt)).astype(np.uint8)
        if kind == "random":
            out[token] = rand
        elif kind == "partly_correct":  # GT on ~60 % of the points, GT-ignore points get anything
            keep = (rng.random(len(gt)) < 0.6) & (gt > 0)
            out[token] = np.where(keep, gt, rand).astype(np.uint8)
        else:  # "perfect"
            out[token] = np.where(gt > 0, gt, rand).astype(np.uint8)
    return out


def xmodal_metric(labels: dict[str, np.ndarray], preds: dict[str, np.ndarray]) -> SegmentationMetric:
    m = SegmentationMetric.nuscenes()
    for token, gt in labels.items():
        m.update(torch.from_numpy(preds[token].astype(np.int64)), torch.from_numpy(gt.astype(np.int64)))
    return m


def assert_same_scores(dev: dict, ours: SegmentationMetric) -> None:
    names = list(NUSCENES_EVAL_CLASSES[1:])
    assert list(dev["iou_per_class"]) == names
    for name, iou in zip(names, ours.iou_per_class()):
        d = dev["iou_per_class"][name]
        assert (math.isnan(d) and math.isnan(iou)) or abs(d - iou) <= 1e-6, name
    assert abs(dev["miou"] - ours.miou()) <= 1e-6
    assert abs(dev["freq_weighted_iou"] - ours.freq_weighted_iou()) <= 1e-6


@pytest.mark.parametrize("kind", ["random", "partly_correct"])
def test_devkit_miou_equals_xmodal_miou(driving_world, mini_val, tmp_path, kind):
    labels, counts = mini_val
    preds = predictions(labels, kind)
    export_lidarseg_submission(tmp_path / "res", "mini_val", preds, expected=counts)
    assert validate_lidarseg_submission(tmp_path / "res", "mini_val", counts) == []
    dev = score_with_devkit(driving_world, VERSION, "mini_val", tmp_path / "res", only_present_scenes=True)
    assert dev["partial_split"] and dev["scenes"] == ["scene-0103"] and dev["num_samples"] == len(labels) == 3
    ours = xmodal_metric(labels, preds)
    assert_same_scores(dev, ours)
    assert ours.to_dict()["miou"] == pytest.approx(dev["miou"], abs=1e-6)
    if kind == "partly_correct":
        assert dev["miou"] > 0.2 > xmodal_metric(labels, predictions(labels, "random")).miou()


def test_devkit_pairs_predictions_with_the_stored_point_order(driving_world, mini_val, tmp_path):
    """The devkit scores prediction i against label i of the lidarseg file, which is in the order
    of the .pcd.bin points: a prediction in that order scores 1, the same values permuted don't."""
    from nuscenes.eval.lidarseg.utils import LidarsegClassMapper
    from nuscenes.nuscenes import NuScenes
    from nuscenes.utils.data_classes import LidarPointCloud
    from nuscenes.utils.data_io import load_bin_file

    labels, counts = mini_val
    nusc = NuScenes(VERSION, str(driving_world), verbose=False)
    mapper = LidarsegClassMapper(nusc)
    for token, ours in labels.items():
        path = driving_world / nusc.get("sample_data", token)["filename"]
        np.testing.assert_array_equal(LidarPointCloud.from_file(str(path)).points.T, read_points(path)[:, :4])
        gt = mapper.convert_label(load_bin_file(str(driving_world / nusc.get("lidarseg", token)["filename"])))
        np.testing.assert_array_equal(gt, ours)  # same order, same 32 -> 16 mapping
    perfect = predictions(labels, "perfect")
    export_lidarseg_submission(tmp_path / "ok", "mini_val", perfect, expected=counts)
    dev = score_with_devkit(driving_world, VERSION, "mini_val", tmp_path / "ok", only_present_scenes=True)
    present = {NUSCENES_EVAL_CLASSES[c] for gt in labels.values() for c in np.unique(gt) if c}
    assert dev["miou"] == 1.0 and all(dev["iou_per_class"][n] == 1.0 for n in present)
    assert all(math.isnan(v) for n, v in dev["iou_per_class"].items() if n not in present)
    rolled = {t: np.roll(p, 1000) for t, p in perfect.items()}
    export_lidarseg_submission(tmp_path / "rolled", "mini_val", rolled, expected=counts)
    assert score_with_devkit(driving_world, VERSION, "mini_val", tmp_path / "rolled", only_present_scenes=True)["miou"] < 0.9


def test_unpatched_devkit_on_a_complete_split(full_mini_val_world, tmp_path):
    from nuscenes.eval.lidarseg.validate_submission import validate_submission
    from nuscenes.nuscenes import NuScenes

    root, (labels, counts) = full_mini_val_world
    assert len(labels) == 2
    preds = predictions(labels, "partly_correct", seed=3)
    export_lidarseg_submission(tmp_path / "res", "mini_val", preds, expected=counts,
                               meta=SubmissionMeta(use_camera=True))  # fmt: skip
    validate_submission(NuScenes(VERSION, str(root), verbose=False), str(tmp_path / "res"), "mini_val")
    dev = score_with_devkit(root, VERSION, "mini_val", tmp_path / "res")
    assert not dev["partial_split"] and dev["scenes"] == ["scene-0103", "scene-0916"]
    assert_same_scores(dev, xmodal_metric(labels, preds))
    meta = json.loads(submission_json_path(tmp_path / "res", "mini_val").read_text())
    assert meta == {"meta": {"use_camera": True, "use_lidar": True, "use_radar": False, "use_map": False, "use_external": False}}


def test_strict_scoring_names_the_missing_scenes(driving_world, mini_val, tmp_path):
    labels, counts = mini_val
    export_lidarseg_submission(tmp_path / "res", "mini_val", predictions(labels, "random"), expected=counts)
    with pytest.raises(DataError, match=r"lacks 1 of the 2 scenes of 'mini_val' \(scene-0916\).*only_present_scenes=True"):
        score_with_devkit(driving_world, VERSION, "mini_val", tmp_path / "res")
    with pytest.raises(DataError, match="not a devkit split"):
        score_with_devkit(driving_world, VERSION, "minival", tmp_path / "res")
    with pytest.raises(DataError, match="LidarSegEval refused.*validate_lidarseg_submission"):
        score_with_devkit(driving_world, VERSION, "mini_train", tmp_path / "res", only_present_scenes=True)


def test_validation_says_what_is_wrong(mini_val, tmp_path):
    labels, counts = mini_val
    preds = predictions(labels, "random")
    res = tmp_path / "res"
    export_lidarseg_submission(res, "mini_val", preds, expected=counts)
    check_lidarseg_submission(res, "mini_val", counts)
    a, b, c = sorted(counts)
    prediction_path(res, "mini_val", a).unlink()
    np.zeros(counts[b], np.uint8).tofile(prediction_path(res, "mini_val", b))
    np.full(counts[c] - 1, 3, np.uint8).tofile(prediction_path(res, "mini_val", c))
    np.ones(5, np.uint8).tofile(prediction_path(res, "mini_val", "f" * 32))
    submission_json_path(res, "mini_val").write_text(json.dumps({"meta": {"use_lidar": 1}}))
    problems = validate_lidarseg_submission(res, "mini_val", counts)
    text = "\n".join(problems)
    assert f"1 of 3 point clouds have no prediction file in '{res / 'lidarseg' / 'mini_val'}', e.g. {a}" in text
    assert f"1 prediction files in '{res / 'lidarseg' / 'mini_val'}' are not in eval set 'mini_val', e.g. {'f' * 32}" in text
    assert f"'{b}_lidarseg.bin' has {counts[b]} ids outside 1..16" in text
    assert f"'{c}_lidarseg.bin' has {counts[c] - 1} predictions for {counts[c]} points" in text
    assert "meta keys ['use_lidar'], expected exactly" in text and "must be true/false" in text
    assert len(problems) == 6
    with pytest.raises(DataError, match="is invalid:\n- "):
        check_lidarseg_submission(res, "mini_val", counts)
    assert "is missing: no predictions" in validate_lidarseg_submission(tmp_path / "none", "mini_val", counts)[-1]


def test_writer_is_atomic_and_checks_inputs(mini_val, tmp_path):
    labels, counts = mini_val
    preds = predictions(labels, "random")
    tokens = sorted(preds)
    out = tmp_path / "res"
    with pytest.raises(DataError, match="incomplete: 1 of 3 point clouds have no prediction"):
        export_lidarseg_submission(out, "mini_val", {t: preds[t] for t in tokens[:2]}, expected=counts)
    assert not (out / "lidarseg" / "mini_val").exists() and not submission_json_path(out, "mini_val").exists()
    with pytest.raises(RuntimeError, match="crash"):
        with LidarsegSubmissionWriter(out, "mini_val", expected=counts) as w:
            w.add(tokens[0], preds[tokens[0]])
            raise RuntimeError("crash")
    assert not (out / "lidarseg" / "mini_val").exists()
    assert not [p for p in (out / "lidarseg").iterdir()]  # no partial folder left behind
    with LidarsegSubmissionWriter(out, "mini_val", expected=counts) as w:
        with pytest.raises(ValueError, match=r"has 3 values but the point cloud has \d+ points.*inverse indices"):
            w.add(tokens[0], preds[tokens[0]][:3])
        with pytest.raises(ValueError, match="not in eval set"):
            w.add("0" * 32, preds[tokens[0]])
        with pytest.raises(ValueError, match=r"needs 1\.\.16 \(0 = ignore is refused\).*\+1"):
            w.add(tokens[0], np.zeros(3, np.int64))
        with pytest.raises(ValueError, match="not scores"):
            w.add(tokens[0], np.zeros(3, np.float32))
        for t in tokens:
            w.add(t, torch.from_numpy(preds[t].astype(np.int64)))  # tensors are fine
        with pytest.raises(ValueError, match="added twice"):
            w.add(tokens[0], preds[tokens[0]])
    assert validate_lidarseg_submission(out, "mini_val", counts) == []
    np.testing.assert_array_equal(np.fromfile(prediction_path(out, "mini_val", tokens[0]), np.uint8), preds[tokens[0]])
    with pytest.raises(XmodalError, match="not empty; pass --force"):
        export_lidarseg_submission(out, "mini_val", preds, expected=counts)
    flipped = {t: 17 - p for t, p in preds.items()}
    export_lidarseg_submission(out, "mini_val", flipped, expected=counts, force=True)
    np.testing.assert_array_equal(np.fromfile(prediction_path(out, "mini_val", tokens[0]), np.uint8), flipped[tokens[0]])
