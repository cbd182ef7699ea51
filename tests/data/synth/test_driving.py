"""`xmodal synth driving`: the devkit reads the world, and the world is self-consistent.

Uses the session fixture ``driving_world`` (tests/conftest.py: 2 scenes x 3 keyframes, 400x225).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from xmodal.data.labels import NUSCENES_GENERAL_CLASSES, NUSCENES_GENERAL_INDEX, NUSCENES_GENERAL_TO_EVAL
from xmodal.data.nuscenes_info import semantic_mask_path
from xmodal.data.synth.driving import generate_driving_world
from xmodal.errors import XmodalError

CAMERAS = ("CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_FRONT_LEFT", "CAM_BACK", "CAM_BACK_LEFT", "CAM_BACK_RIGHT")
#: Dead-reckoning tolerance over a 3-keyframe scene (~1.7 s of IMU): position (m), heading (deg).
IMU_POS_TOL, IMU_YAW_TOL_DEG = 0.03, 0.1


@pytest.fixture(scope="module")
def nusc(driving_world):
    from nuscenes import NuScenes

    return NuScenes(version="v1.0-mini", dataroot=str(driving_world), verbose=False)


def _scene_sample_data(nusc, scene, channel):
    recs = [r for r in nusc.sample_data if r["channel"] == channel
            and nusc.get("sample", r["sample_token"])["scene_token"] == scene["token"]]  # fmt: skip
    return sorted(recs, key=lambda r: r["timestamp"])


def test_devkit_opens_and_files_exist(nusc, driving_world):
    assert len(nusc.scene) == 2 and len(nusc.sample) == 6
    assert len(nusc.lidarseg) == 6 and len(nusc.category) == 32
    for sample in nusc.sample:
        assert set(sample["data"]) == {"LIDAR_TOP", *CAMERAS}
        assert len(sample["anns"]) > 0
    for sd in nusc.sample_data:
        assert (driving_world / sd["filename"]).is_file(), sd["filename"]
        name = Path(sd["filename"]).name
        assert name.startswith(("n008-", "n015-")) and f"__{sd['channel']}__{sd['timestamp']}." in name
        if sd["sensor_modality"] == "camera":
            from PIL import Image

            mask = Image.open(driving_world / semantic_mask_path(sd["filename"]))
            assert mask.mode == "L" and mask.size == (sd["width"], sd["height"]) == (400, 225)
    meta = json.loads((driving_world / "xmodal_synth.json").read_text())
    assert meta["version"] == "v1.0-mini" and meta["seed"] == 0


def test_tables_follow_the_nuscenes_schema(nusc, driving_world):
    for sd in nusc.sample_data:
        cs = nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
        sensor = nusc.get("sensor", cs["sensor_token"])
        assert sensor["channel"] == sd["channel"] and sensor["modality"] == sd["sensor_modality"]
        assert nusc.get("ego_pose", sd["ego_pose_token"])["timestamp"] == sd["timestamp"]
        if sd["sensor_modality"] == "lidar":
            assert sd["fileformat"] == "pcd" and cs["camera_intrinsic"] == [] and sd["width"] == sd["height"] == 0
        else:
            assert sd["fileformat"] == "jpg" and np.array(cs["camera_intrinsic"]).shape == (3, 3)
        if sd["is_key_frame"]:
            assert nusc.get("sample", sd["sample_token"])["data"][sd["channel"]] == sd["token"]
    for scene in nusc.scene:
        chain, tok = [], scene["first_sample_token"]
        while tok:
            chain.append(tok)
            tok = nusc.get("sample", tok)["next"]
        assert len(chain) == scene["nbr_samples"] == 3 and chain[-1] == scene["last_sample_token"]
        log = nusc.get("log", scene["log_token"])
        assert log["logfile"].startswith(f"{log['vehicle']}-{log['date_captured']}-")
        assert log["location"] in ("boston-seaport", "singapore-onenorth", "singapore-queenstown",
                                   "singapore-hollandvillage")  # fmt: skip
        rec = nusc.get("map", log["map_token"])
        assert rec["category"] == "semantic_prior" and (driving_world / rec["filename"]).is_file()
    assert [c["index"] for c in nusc.category] == list(range(32))
    assert [c["name"] for c in nusc.category] == list(NUSCENES_GENERAL_CLASSES)
    assert all(c["description"] for c in nusc.category)
    assert [(v["token"], v["level"]) for v in nusc.visibility] == [
        ("1", "v0-40"), ("2", "v40-60"), ("3", "v60-80"), ("4", "v80-100")]  # fmt: skip
    assert {a["name"] for a in nusc.attribute} == {
        "vehicle.moving", "vehicle.stopped", "vehicle.parked", "cycle.with_rider", "cycle.without_rider",
        "pedestrian.sitting_lying_down", "pedestrian.standing", "pedestrian.moving"}  # fmt: skip


def test_devkit_lidarseg_class_mapper_matches_our_eval_mapping(nusc):
    from nuscenes.eval.lidarseg.utils import LidarsegClassMapper

    from xmodal.data.labels import NUSCENES_EVAL_CLASSES

    mapper = LidarsegClassMapper(nusc)
    fine2coarse = mapper.get_fine_idx_2_coarse_idx()
    assert [fine2coarse[i] for i in range(32)] == NUSCENES_GENERAL_TO_EVAL.tolist()
    assert {v: k for k, v in mapper.get_coarse2idx().items()} == dict(enumerate(NUSCENES_EVAL_CLASSES))


def test_scene_names_follow_official_splits(nusc):
    from nuscenes.utils.splits import create_splits_scenes

    splits = create_splits_scenes()
    names = {s["name"] for s in nusc.scene}
    assert names & set(splits["mini_train"]) and names & set(splits["mini_val"])
    from xmodal.data.synth.driving import scene_names

    version, many = scene_names(40)
    assert version == "v1.0-trainval" and len(set(many)) == 40
    assert set(many) <= set(splits["train"]) | set(splits["val"]) and set(many) & set(splits["val"])


def test_lidar_point_format(nusc, driving_world):
    for sample in nusc.sample:
        sd = nusc.get("sample_data", sample["data"]["LIDAR_TOP"])
        pts = np.fromfile(driving_world / sd["filename"], dtype=np.float32).reshape(-1, 5)
        labels = np.fromfile(driving_world / nusc.get("lidarseg", sd["token"])["filename"], dtype=np.uint8)
        assert len(labels) == len(pts) and 20_000 < len(pts) <= 32 * 1085
        assert labels.max() < 32
        assert set(np.unique(pts[:, 4])) <= set(range(32)) and 0 <= pts[:, 3].min() and pts[:, 3].max() <= 255
        r = np.linalg.norm(pts[:, :3], axis=1)
        assert r.min() >= 0.9 and r.max() <= 101
        # sensor frame: road points close to the car lie ~1.84 m below the sensor
        road = (labels == NUSCENES_GENERAL_INDEX["flat.driveable_surface"]) & (r < 12)
        assert abs(np.median(pts[road, 2]) + 1.84) < 0.15


def test_render_pointcloud_in_image(nusc, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    out = tmp_path / "overlay.png"
    nusc.render_pointcloud_in_image(
        nusc.sample[0]["token"],
        pointsensor_channel="LIDAR_TOP",
        camera_channel="CAM_FRONT",
        show_lidarseg=True,
        out_path=str(out),
    )
    assert out.stat().st_size > 10_000


def test_devkit_renders_and_interpolates_sweep_boxes(nusc, driving_world):
    """Renders with map underlay / lidarseg; boxes of LiDAR sweeps are interpolated to the truth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from nuscenes.utils.data_classes import LidarPointCloud

    from xmodal.data.synth.driving.scene import make_scene
    from xmodal.data.synth.driving.tables import Tables

    sample = nusc.sample[1]
    _, (ax_lidar, ax_cam) = plt.subplots(1, 2)  # no savefig: writing PNGs at dpi 200 takes seconds
    lidar = sample["data"]["LIDAR_TOP"]
    nusc.render_sample_data(lidar, with_anns=False, show_lidarseg=True, underlay_map=True, ax=ax_lidar, verbose=False)
    nusc.render_sample_data(sample["data"]["CAM_FRONT"], ax=ax_cam, verbose=False)
    assert len(ax_lidar.images) == 1 and len(ax_lidar.collections[0].get_offsets()) > 20_000  # map + points
    assert len(ax_cam.images) == 1 and len(ax_cam.lines) > 12  # image + box edges
    ann = max(sample["anns"], key=lambda a: nusc.get("sample_annotation", a)["num_lidar_pts"])
    nusc.render_annotation(ann)
    plt.close("all")
    pc, times = LidarPointCloud.from_file_multisweep(nusc, sample, "LIDAR_TOP", "LIDAR_TOP", nsweeps=5)
    assert len(np.unique(times)) == 5 and 0.19 < times.max() < 0.21 and pc.points.shape[1] > 100_000

    meta = json.loads((driving_world / "xmodal_synth.json").read_text())
    scene = nusc.scene[0]  # the generator's scene 0: its true object motion
    sc = make_scene(meta["seed"], 0, scene["name"], meta["samples"], meta["image_scale"])
    tables = Tables(meta["seed"], [])
    index = {tables.token("instance", (0, c)): c for c in range(len(sc.traffic))}
    errors = []
    for sd in _scene_sample_data(nusc, scene, "LIDAR_TOP"):
        sample = nusc.get("sample", sd["sample_token"])
        if sd["is_key_frame"] or not sample["prev"]:
            continue
        prev = nusc.get("sample", sample["prev"])
        before = {nusc.get("sample_annotation", a)["instance_token"] for a in prev["anns"]}
        truth = sc.traffic.poses(sd["timestamp"]).xy
        for box in nusc.get_boxes(sd["token"]):  # interpolated between the keyframes around the sweep
            inst = nusc.get("sample_annotation", box.token)["instance_token"]
            if inst in before:
                errors.append(np.linalg.norm(box.center[:2] - truth[index[inst]]))
    assert len(errors) > 200 and max(errors) < 0.1


def test_boxes_enclose_their_points(nusc, driving_world):
    from nuscenes.utils.geometry_utils import points_in_box

    fractions = []
    for sample in nusc.sample:
        sd = nusc.get("sample_data", sample["data"]["LIDAR_TOP"])
        pts = np.fromfile(driving_world / sd["filename"], dtype=np.float32).reshape(-1, 5)
        labels = np.fromfile(driving_world / nusc.get("lidarseg", sd["token"])["filename"], dtype=np.uint8)
        _, boxes, _ = nusc.get_sample_data(sd["token"])  # boxes in the LiDAR frame
        for box in boxes:
            inside = points_in_box(box, pts[:, :3].T)
            above = inside & (pts[:, 2] > box.corners()[2].min() + 0.2)  # drop the ground under the box
            if above.sum() >= 20:
                fractions.append(np.mean(labels[above] == NUSCENES_GENERAL_INDEX[box.name]))
    assert len(fractions) > 20
    assert np.median(fractions) > 0.95 and np.mean(fractions) > 0.85


def test_annotations_and_instances(nusc):
    vis_tokens = {v["token"] for v in nusc.visibility}
    for ann in nusc.sample_annotation:
        assert ann["visibility_token"] in vis_tokens and ann["num_lidar_pts"] >= 0
        assert len(ann["size"]) == 3 and min(ann["size"]) > 0 and abs(np.linalg.norm(ann["rotation"]) - 1) < 1e-6
        assert ann["category_name"] in NUSCENES_GENERAL_CLASSES
        if ann["next"]:
            nxt = nusc.get("sample_annotation", ann["next"])
            assert nxt["prev"] == ann["token"] and nxt["instance_token"] == ann["instance_token"]
    for inst in nusc.instance:
        chain, tok = [], inst["first_annotation_token"]
        while tok:
            chain.append(tok)
            tok = nusc.get("sample_annotation", tok)["next"]
        assert len(chain) == inst["nbr_annotations"] and chain[-1] == inst["last_annotation_token"]
        samples = [nusc.get("sample_annotation", t)["sample_token"] for t in chain]
        assert all(nusc.get("sample", a)["next"] == b for a, b in zip(samples[:-1], samples[1:]))  # no track gaps
    names = {nusc.get("attribute", t)["name"] for a in nusc.sample_annotation for t in a["attribute_tokens"]}
    assert {"vehicle.moving", "vehicle.parked", "pedestrian.moving"} <= names
    moving = [a for a in nusc.sample_annotation if a["next"] and a["category_name"] == "vehicle.car"
              and np.linalg.norm(nusc.box_velocity(a["token"])[:2]) > 2]  # fmt: skip
    assert moving, "some cars must move"


def test_eval_classes_present(nusc, driving_world):
    seen = set()
    for rec in nusc.lidarseg:
        labels = np.fromfile(driving_world / rec["filename"], dtype=np.uint8)
        seen |= set(NUSCENES_GENERAL_TO_EVAL[labels].tolist())
    seen.discard(0)
    assert len(seen) >= 10, sorted(seen)


def test_sweeps_chained_and_camera_timing(nusc):
    for scene in nusc.scene:
        lidar = _scene_sample_data(nusc, scene, "LIDAR_TOP")
        assert len(lidar) == 3 * 10 and sum(r["is_key_frame"] for r in lidar) == 3
        assert lidar[0]["prev"] == "" and lidar[-1]["next"] == ""
        for a, b in zip(lidar[:-1], lidar[1:]):
            assert a["next"] == b["token"] and b["prev"] == a["token"]
            assert 45_000 < b["timestamp"] - a["timestamp"] < 55_000  # 20 Hz
            assert b["filename"].startswith("samples/" if b["is_key_frame"] else "sweeps/")
            assert nusc.get("ego_pose", a["ego_pose_token"])["timestamp"] == a["timestamp"]
        for r in lidar:  # a sweep belongs to the keyframe that ends its interval
            assert nusc.get("sample", r["sample_token"])["timestamp"] >= r["timestamp"]
    for sample in nusc.sample:
        t_lidar = nusc.get("sample_data", sample["data"]["LIDAR_TOP"])["timestamp"]
        assert sample["timestamp"] == t_lidar
        offsets = [nusc.get("sample_data", sample["data"][c])["timestamp"] - t_lidar for c in CAMERAS]
        assert all(-50_000 < o < 0 for o in offsets) and len(set(offsets)) == 6
        poses = {
            tuple(nusc.get("ego_pose", nusc.get("sample_data", sample["data"][c])["ego_pose_token"])["translation"])
            for c in CAMERAS
        }
        assert len(poses) == 6  # the car moves between camera triggers


def test_can_bus_imu_matches_ego_poses(nusc, driving_world):
    """Dead reckoning from the IMU reproduces every ego_pose of the scene.

    Initial state: position / orientation / velocity (``vel``, ego frame) of the last ``pose``
    message before the scene's first sample_data (pose and IMU share the 20 ms grid).
    IMU noise: 0.03 m/s^2, 0.001 rad/s.
    """
    from nuscenes.can_bus.can_bus_api import NuScenesCanBus
    from pyquaternion import Quaternion

    from xmodal.data.synth.driving.canbus import dead_reckon

    can = NuScenesCanBus(dataroot=str(driving_world))
    for scene in nusc.scene:
        imu = can.get_messages(scene["name"], "ms_imu")
        pose = can.get_messages(scene["name"], "pose")
        t = np.array([m["utime"] for m in imu])
        assert np.all(np.diff(t) == 10_000)  # 100 Hz
        acc = np.array([m["linear_accel"] for m in imu])
        assert abs(acc[:, 2].mean() - 9.81) < 0.05  # gravity included, z up
        sds = [r for r in nusc.sample_data if nusc.get("sample", r["sample_token"])["scene_token"] == scene["token"]]
        ts = np.array([r["timestamp"] for r in sds])
        first_key = min(s["timestamp"] for s in nusc.sample if s["scene_token"] == scene["token"])
        assert t[0] <= first_key - 1_000_000 and ts.max() < t[-1]  # >= 1 s of IMU before the first keyframe
        # start at the last pose message before the scene's first sample_data
        p0 = max((p for p in pose if p["utime"] <= ts.min()), key=lambda p: p["utime"])
        i0 = int(np.flatnonzero(t == p0["utime"])[0])
        q0 = Quaternion(p0["orientation"])
        eps = [nusc.get("ego_pose", r["ego_pose_token"]) for r in sds]
        pos, yaw = dead_reckon(imu[i0:], p0["pos"], q0.rotate(p0["vel"]), q0.yaw_pitch_roll[0], ts)
        gt = np.array([e["translation"] for e in eps])
        gt_yaw = np.array([Quaternion(e["rotation"]).yaw_pitch_roll[0] for e in eps])
        assert np.abs(pos - gt).max() < IMU_POS_TOL
        assert np.rad2deg(np.abs(np.angle(np.exp(1j * (yaw - gt_yaw)))).max()) < IMU_YAW_TOL_DEG


def test_can_bus_route_and_meta(nusc, driving_world, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from nuscenes.can_bus.can_bus_api import NuScenesCanBus

    can = NuScenesCanBus(dataroot=str(driving_world))
    assert can.list_misaligned_routes() == []  # every pose within 5 m of the baseline route
    for scene in nusc.scene:
        route, pose = can.get_pose_and_route(scene["name"])
        assert route.shape[1] == 2 and len(route) > 100
        meta = can.get_messages(scene["name"], "meta")
        imu = can.get_messages(scene["name"], "ms_imu")
        assert meta["ms_imu"]["message_count"] == len(imu) and abs(meta["ms_imu"]["message_freq"] - 100) < 1e-6
        assert abs(meta["pose"]["var_stats"]["pos"]["mean"][0] - pose[:, 0].mean()) < 1e-6
    name = nusc.scene[0]["name"]
    can.plot_baseline_route(name, out_path=str(tmp_path / "route.png"))
    can.plot_message_data(name, "ms_imu", "linear_accel", 0, out_path=str(tmp_path / "imu.png"))
    assert (tmp_path / "route.png").is_file() and (tmp_path / "imu.png").is_file()


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}  # fmt: skip


def test_deterministic_for_a_seed_with_camera_sweeps(tmp_path):
    kw = dict(scenes=1, samples=1, image_scale=0.1, progress=False, camera_sweeps=True)
    a = _hashes(Path(generate_driving_world(tmp_path / "a", seed=3, **kw)["dataroot"]))
    b = _hashes(Path(generate_driving_world(tmp_path / "b", seed=3, **kw)["dataroot"]))
    c = _hashes(Path(generate_driving_world(tmp_path / "c", seed=4, **kw)["dataroot"]))
    assert a == b  # byte-identical files, tokens included
    data = lambda h: {v for k, v in h.items() if k.endswith((".jpg", ".png", ".bin"))}  # noqa: E731
    assert not data(a) & data(c)  # another seed: no sensor file in common
    # camera sweeps at 12 Hz: keyframe + 5 sweeps per camera per keyframe, each with a GT mask
    from nuscenes import NuScenes

    nusc = NuScenes(version="v1.0-mini", dataroot=str(tmp_path / "a"), verbose=False)
    for cam in CAMERAS:
        recs = sorted((r for r in nusc.sample_data if r["channel"] == cam), key=lambda r: r["timestamp"])
        assert len(recs) == 6 and [r["is_key_frame"] for r in recs] == [False] * 5 + [True]
        assert all(75_000 < b["timestamp"] - a["timestamp"] < 92_000 for a, b in zip(recs[:-1], recs[1:]))
        assert all(a["next"] == b["token"] for a, b in zip(recs[:-1], recs[1:]))
        assert all((tmp_path / "a" / semantic_mask_path(r["filename"])).is_file() for r in recs)


def test_devkit_evaluations_run(tmp_path):
    """LidarSegEval and DetectionEval on mini_val, with ground truth as the submission.

    The devkit's lidarseg evaluation needs every scene of the split: mini_val is complete from 4 scenes.
    """
    from nuscenes import NuScenes
    from nuscenes.eval.detection.config import config_factory
    from nuscenes.eval.detection.evaluate import DetectionEval
    from nuscenes.eval.detection.utils import category_to_detection_name
    from nuscenes.eval.lidarseg.evaluate import LidarSegEval
    from nuscenes.eval.lidarseg.utils import get_samples_in_eval_set

    root = tmp_path / "nuscenes"
    generate_driving_world(root, scenes=4, samples=1, image_scale=0.05, seed=1, progress=False)
    nusc = NuScenes(version="v1.0-mini", dataroot=str(root), verbose=False)
    res = tmp_path / "results"
    (res / "lidarseg" / "mini_val").mkdir(parents=True)
    (res / "mini_val").mkdir()
    modality = {"use_camera": False, "use_lidar": True, "use_radar": False, "use_map": False, "use_external": False}
    (res / "mini_val" / "submission.json").write_text(json.dumps({"meta": modality}))
    boxes = {}
    tokens = get_samples_in_eval_set(nusc, "mini_val")
    assert len(tokens) == 2
    for tok in tokens:
        sd = nusc.get("sample", tok)["data"]["LIDAR_TOP"]
        labels = NUSCENES_GENERAL_TO_EVAL[np.fromfile(root / nusc.get("lidarseg", sd)["filename"], dtype=np.uint8)]
        np.maximum(labels, 1).astype(np.uint8).tofile(res / "lidarseg" / "mini_val" / f"{sd}_lidarseg.bin")
        boxes[tok] = []
        for a in nusc.get("sample", tok)["anns"]:
            ann = nusc.get("sample_annotation", a)
            if category_to_detection_name(ann["category_name"]) and ann["num_lidar_pts"] > 0:
                attrs = [nusc.get("attribute", t)["name"] for t in ann["attribute_tokens"]]
                boxes[tok].append({
                    "sample_token": tok, "translation": ann["translation"], "size": ann["size"],
                    "rotation": ann["rotation"], "velocity": [0.0, 0.0], "detection_score": 1.0,
                    "detection_name": category_to_detection_name(ann["category_name"]),
                    "attribute_name": attrs[0] if attrs else ""})  # fmt: skip
    seg = LidarSegEval(nusc, str(res), eval_set="mini_val", verbose=False).evaluate()
    assert seg["miou"] > 0.99
    (res / "det.json").write_text(json.dumps({"meta": modality, "results": boxes}))
    det = DetectionEval(nusc, config_factory("detection_cvpr_2019"), str(res / "det.json"), eval_set="mini_val",
                        output_dir=str(res), verbose=False)  # fmt: skip
    metrics, _ = det.evaluate()
    present = {b.detection_name for b in det.gt_boxes.all}  # classes without boxes count as AP 0
    result = metrics.serialize()
    assert len(present) >= 5 and all(result["mean_dist_aps"][c] > 0.99 for c in present)
    assert all(result["label_tp_errors"][c]["trans_err"] < 1e-6 for c in present)


@pytest.mark.slow
def test_trainval_beyond_ten_scenes(tmp_path):
    from nuscenes import NuScenes
    from nuscenes.utils.splits import create_splits_scenes

    summary = generate_driving_world(tmp_path / "tv", scenes=11, samples=1, image_scale=0.05, progress=False)
    assert summary["version"] == "v1.0-trainval"
    nusc = NuScenes(version="v1.0-trainval", dataroot=str(tmp_path / "tv"), verbose=False)
    names = {s["name"] for s in nusc.scene}
    splits = create_splits_scenes()
    assert len(names) == 11 and names & set(splits["train"]) and names & set(splits["val"])


def test_refuses_non_empty_out_and_bad_arguments(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(XmodalError, match="--force"):
        generate_driving_world(out, scenes=1, samples=1, image_scale=0.1, progress=False)
    assert (out / "keep.txt").exists()
    for kw, arg in (
        (dict(scenes=0), "--scenes"),
        (dict(samples=0), "--samples"),
        (dict(image_scale=3.0), "--image-scale"),
        (dict(seed=-1), "--seed"),
        (dict(samples=1.5), "--samples"),
    ):
        with pytest.raises(XmodalError, match=arg):
            generate_driving_world(tmp_path / "new", progress=False, **kw)
    assert not (tmp_path / "new").exists()
    with pytest.raises(XmodalError, match="not written by this command"):  # --force spares other folders
        generate_driving_world(out, scenes=1, samples=1, image_scale=0.1, progress=False, force=True)
    assert (out / "keep.txt").exists()
    (out / "keep.txt").unlink()
    generate_driving_world(out, scenes=1, samples=1, image_scale=0.1, seed=1, progress=False)
    summary = generate_driving_world(out, scenes=1, samples=1, image_scale=0.1, progress=False, force=True)
    assert summary["samples"] == 1 and summary["lidar_sweeps"] == 9
    assert json.loads((out / "xmodal_synth.json").read_text())["seed"] == 0
