"""nuScenes info files and dataset on the synthetic driving world, checked against the devkit."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest

from xmodal.cli.main import main
from xmodal.data.labels import NUSCENES_GENERAL_TO_EVAL
from xmodal.data.nuscenes import SWEEP_LABEL, NuScenesDataset, NuScenesDatasetConfig
from xmodal.data.nuscenes_info import NUSCENES_INFO_SCHEMA, load_infos, prepare_nuscenes
from xmodal.errors import DataError, SchemaError, XmodalError
from xmodal.geometry import project_points


@pytest.fixture(scope="module")
def infos(driving_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("infos")
    paths = {}
    for split in ("mini_train", "mini_val"):
        paths[split] = out / f"nuscenes_infos_{split}.pkl"
        prepare_nuscenes(driving_world, "v1.0-mini", paths[split], split=split, max_sweeps=3, progress=False)
    return paths


@pytest.fixture(scope="module")
def dataset(infos):
    return NuScenesDataset(NuScenesDatasetConfig(info_file=str(infos["mini_train"]), load_masks=True))


@pytest.fixture(scope="module")
def nusc(driving_world):
    from nuscenes.nuscenes import NuScenes

    return NuScenes(version="v1.0-mini", dataroot=str(driving_world), verbose=False)


def test_prepare_splits_follow_the_devkit(infos, nusc):
    from nuscenes.utils.splits import create_splits_scenes

    splits = create_splits_scenes(verbose=False)
    seen = set()
    for split, path in infos.items():
        data = load_infos(path)
        assert data["schema_version"] == NUSCENES_INFO_SCHEMA
        names = {i["scene_name"] for i in data["data_list"]}
        assert names and names <= set(splits[split])
        seen |= {i["token"] for i in data["data_list"]}
    assert seen == {s["token"] for s in nusc.sample}


def test_sample_contents(dataset):
    s = dataset[0]
    assert s.points.dtype == np.float32 and s.points.shape[1] == 5
    assert 15_000 < len(s.points) < 40_000, "an HDL-32E sweep has ~34k points"
    assert s.labels is not None and s.labels.max() <= 16 and len(s.labels) == len(s.points)
    np.testing.assert_array_equal(s.labels, NUSCENES_GENERAL_TO_EVAL[s.labels_general])
    assert s.images.shape[0] == 6 and s.images.dtype == np.uint8
    assert s.masks.shape == s.images.shape[:3]
    assert s.T_cam_from_lidar.shape == (6, 4, 4) and s.intrinsics.shape == (6, 3, 3)
    assert s.boxes.shape[1] == 7 and len(s.box_names) == len(s.boxes) > 0
    imu = s.imu
    assert imu is not None and len(imu.utime) >= 90  # 1 s at 100 Hz
    assert np.all(np.diff(imu.utime) > 0) and imu.utime[-1] <= s.timestamp


def test_sweeps_match_devkit_multisweep(infos, nusc):
    """Sweeps moved into the keyframe frame equal the devkit's LidarPointCloud.from_file_multisweep."""
    from nuscenes.utils.data_classes import LidarPointCloud

    ds = NuScenesDataset(NuScenesDatasetConfig(info_file=str(infos["mini_train"]), sweeps=2, load_images=False))
    s = ds[1]
    pc, times = LidarPointCloud.from_file_multisweep(
        nusc, nusc.get("sample", s.token), "LIDAR_TOP", "LIDAR_TOP", nsweeps=3, min_distance=0.0
    )
    np.testing.assert_allclose(s.points[:, :4], pc.points.T, atol=1e-3)
    np.testing.assert_allclose(s.time_lag, times[0], atol=1e-6)
    np.testing.assert_allclose(np.unique(s.time_lag), [0.0, 0.05, 0.1], atol=2e-3)  # 20 Hz
    sweep = s.time_lag > 0
    assert np.all(s.labels[sweep] == 0) and np.all(s.labels_general[sweep] == SWEEP_LABEL)


def test_boxes_match_devkit_in_the_lidar_frame(dataset, nusc):
    s = dataset[0]
    _, boxes, _ = nusc.get_sample_data(nusc.get("sample", s.token)["data"]["LIDAR_TOP"])
    by_token = {b.token: b for b in boxes}
    for row, token in zip(s.boxes, s.box_tokens):
        b = by_token[token]
        np.testing.assert_allclose(row[:3], b.center, atol=1e-6)
        np.testing.assert_allclose(row[3:6], b.wlh, atol=1e-9)
        yaw = np.arctan2(b.rotation_matrix[1, 0], b.rotation_matrix[0, 0])
        assert abs(np.angle(np.exp(1j * (row[6] - yaw)))) < 1e-6


def test_imu_window_matches_the_ego_pose(dataset, nusc):
    """The IMU orientation at the keyframe is the ego pose's (both ego -> global)."""
    s = dataset[0]
    sd = nusc.get("sample_data", nusc.get("sample", s.token)["data"]["LIDAR_TOP"])
    q_pose = np.array(nusc.get("ego_pose", sd["ego_pose_token"])["rotation"])
    q_imu = s.imu.q[np.argmin(np.abs(s.imu.utime - sd["timestamp"]))]
    assert abs(abs(float(q_pose @ q_imu)) - 1) < 1e-4


def test_projection_matches_devkit_map_pointcloud_to_image(dataset, nusc):
    """Our chain + projection and the devkit's map_pointcloud_to_image give the same pixels."""
    s = dataset[0]
    sample = nusc.get("sample", s.token)
    for ci, cam in enumerate(s.cameras):
        pts, _coloring, _im = nusc.explorer.map_pointcloud_to_image(
            sample["data"]["LIDAR_TOP"], sample["data"][cam], min_dist=1.0
        )
        uv, depth, valid = project_points(
            s.points[:, :3].astype(np.float64), s.T_cam_from_lidar[ci], s.intrinsics[ci],
            tuple(s.image_sizes[ci]), min_depth=1.0,
        )
        # the devkit keeps 1 < u < W-1 and 1 < v < H-1; compare on that set
        h, w = s.image_sizes[ci]
        keep = valid & (uv[:, 0] > 1) & (uv[:, 0] < w - 1) & (uv[:, 1] > 1) & (uv[:, 1] < h - 1)
        assert keep.sum() == pts.shape[1], cam
        # the devkit moves points through global coordinates in float32 (hundreds of metres here,
        # kilometres on real maps): a few thousandths of a pixel of rounding
        np.testing.assert_allclose(uv[keep], pts[:2].T, atol=1e-2)


def test_lidar_and_camera_masks_agree(dataset, record_property):
    """Full calibration chain (each camera with its own ego pose) + z-buffer test -> >= 98 %."""
    from xmodal.data.synth.driving.check import lidar_mask_agreement

    res = lidar_mask_agreement(dataset)
    record_property("lidar_mask_agreement", res["agreement"])
    print(f"\nlidar/camera class agreement: {res['agreement']:.4f} over {res['points']} visible points")
    assert res["points"] > 20_000
    assert res["agreement"] >= 0.98, res


def test_one_ego_pose_for_both_sensors_is_measurably_wrong(infos):
    """The synthetic cameras fire at their own times while the car moves: skipping the ego
    motion between LiDAR and camera time (a common bug) must cost agreement."""
    from xmodal.data.synth.driving.check import lidar_mask_agreement
    from xmodal.geometry import invert_transform

    cfg = NuScenesDatasetConfig(info_file=str(infos["mini_train"]), load_masks=True, imu_window=0)
    right = lidar_mask_agreement(NuScenesDataset(cfg))["agreement"]
    wrong_ds = NuScenesDataset(cfg)
    for info in wrong_ds.infos["data_list"]:
        for cam in info["cams"].values():
            cam["T_cam_from_lidar"] = invert_transform(cam["T_ego_from_cam"]) @ info["lidar"]["T_ego_from_lidar"]
    wrong = lidar_mask_agreement(wrong_ds)["agreement"]
    print(f"\nfull chain {right:.4f}, one ego pose {wrong:.4f}")
    assert wrong < right - 0.01


# --------------------------------------------------------------------------- bad input
def _copy_world(driving_world, tmp_path):
    dst = tmp_path / "world"
    shutil.copytree(driving_world, dst)
    return dst


def test_missing_dataroot_and_unknown_version(tmp_path, driving_world):
    with pytest.raises(DataError, match="does not exist"):
        prepare_nuscenes(tmp_path / "nope", "v1.0-mini", tmp_path / "i.pkl", progress=False)
    with pytest.raises(DataError, match="unknown nuScenes version 'v2.0'.*v1.0-mini"):
        prepare_nuscenes(driving_world, "v2.0", tmp_path / "i.pkl", progress=False)
    with pytest.raises(DataError, match="split 'train'.*mini_train"):
        prepare_nuscenes(driving_world, "v1.0-mini", tmp_path / "i.pkl", split="train", progress=False)
    assert not (tmp_path / "i.pkl").exists()


def test_truncated_pcd_bin(infos, driving_world, tmp_path):
    root = _copy_world(driving_world, tmp_path)
    info = load_infos(infos["mini_train"])["data_list"][0]
    path = root / info["lidar"]["path"]
    path.write_bytes(path.read_bytes()[:-7])
    ds = NuScenesDataset(NuScenesDatasetConfig(info_file=str(infos["mini_train"]), root=str(root)))
    with pytest.raises(DataError, match=rf"'{path}' is truncated"):
        ds[0]


def test_nan_points_error_or_drop(infos, driving_world, tmp_path):
    root = _copy_world(driving_world, tmp_path)
    info = load_infos(infos["mini_train"])["data_list"][0]
    path = root / info["lidar"]["path"]
    pts = np.fromfile(path, dtype=np.float32).reshape(-1, 5)
    pts[[3, 10], 0] = np.nan
    pts.tofile(path)
    cfg = NuScenesDatasetConfig(info_file=str(infos["mini_train"]), root=str(root), load_images=False)
    with pytest.raises(DataError, match=r"2 non-finite points.*nan_points=drop"):
        NuScenesDataset(cfg)[0]
    cfg.nan_points = "drop"
    s = NuScenesDataset(cfg)[0]
    assert len(s.points) == len(pts) - 2 and len(s.labels) == len(s.points)


def test_missing_camera_image(infos, driving_world, tmp_path):
    root = _copy_world(driving_world, tmp_path)
    info = load_infos(infos["mini_train"])["data_list"][0]
    img = root / info["cams"]["CAM_BACK"]["path"]
    img.unlink()
    ds = NuScenesDataset(NuScenesDatasetConfig(info_file=str(infos["mini_train"]), root=str(root)))
    with pytest.raises(DataError, match=rf"image '{img}' is missing"):
        ds[0]
    out = tmp_path / "infos.pkl"
    with pytest.raises(DataError, match="sensor files .* are missing"):
        prepare_nuscenes(root, "v1.0-mini", out, progress=False)
    assert not out.exists(), "nothing half-written"


def test_malformed_can_bus_file(infos, driving_world, tmp_path):
    root = _copy_world(driving_world, tmp_path)
    info = load_infos(infos["mini_train"])["data_list"][0]
    (root / info["can_bus_imu"]).write_text('[{"utime": 1}]')
    ds = NuScenesDataset(NuScenesDatasetConfig(info_file=str(infos["mini_train"]), root=str(root), load_images=False))
    with pytest.raises(DataError, match=r"CAN-bus file .* could not be read.*imu_window=0"):
        ds[0]
    ds.cfg.imu_window = 0
    assert ds[0].imu is None


def test_unwritable_out_fails_before_work(driving_world, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DataError, match="cannot create the folder"):
        prepare_nuscenes(driving_world, "v1.0-mini", blocker / "sub" / "i.pkl", progress=False)


def test_greyscale_camera_image_is_read_as_rgb(infos, driving_world, tmp_path):
    from PIL import Image

    root = _copy_world(driving_world, tmp_path)
    info = load_infos(infos["mini_train"])["data_list"][0]
    img = root / info["cams"]["CAM_FRONT"]["path"]
    Image.open(img).convert("L").save(img)
    s = NuScenesDataset(NuScenesDatasetConfig(info_file=str(infos["mini_train"]), root=str(root)))[0]
    assert s.images.shape[-1] == 3


def test_info_file_of_another_schema(infos, tmp_path):
    data = load_infos(infos["mini_train"])
    data["schema_version"] = NUSCENES_INFO_SCHEMA + 1
    bad = tmp_path / "old.pkl"
    bad.write_bytes(pickle.dumps(data))
    with pytest.raises(SchemaError, match=r"schema_version 2.*xmodal prepare nuscenes --root .* "
                       r"--version v1.0-mini --split mini_train --max-sweeps 3"):
        NuScenesDataset(NuScenesDatasetConfig(info_file=str(bad)))
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="could not be read"):
        load_infos(tmp_path / "junk.pkl")


def test_unknown_config_key(tmp_path, infos):
    from xmodal.config import load_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"dataset:\n  type: nuscenes\n  info_file: {infos['mini_train']}\n  sweep: 3\n")
    with pytest.raises(XmodalError, match=r"sweep.*sweeps"):
        load_config(cfg)


# --------------------------------------------------------------------------- CLI + pictures
def test_cli_prepare_and_vis(driving_world, tmp_path, capsys):
    info = tmp_path / "infos.pkl"
    assert main(["prepare", "nuscenes", "--root", str(driving_world), "--version", "v1.0-mini",
                 "--split", "mini_val", "--out", str(info), "--quiet"]) == 0
    assert main(["vis", "sample", "--info", str(info), "--out", str(tmp_path / "vis")]) == 0
    names = sorted(p.name for p in (tmp_path / "vis").glob("*.png"))
    assert names == ["bev.png", "projection_class.png", "projection_depth.png", "projection_mask.png"]
    assert main(["vis", "sample", "--info", str(info), "--index", "999"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert main(["prepare", "nuscenes", "--root", str(tmp_path / "missing"), "--version", "v1.0-mini",
                 "--out", str(info)]) == 2


@pytest.mark.slow
def test_agreement_at_higher_resolution(tmp_path, full_size):
    """The >= 98 % agreement holds at full camera resolution too (reduced: half resolution)."""
    from xmodal.data.synth.driving import generate_driving_world
    from xmodal.data.synth.driving.check import lidar_mask_agreement

    scale, scenes, samples = (1.0, 2, 4) if full_size else (0.5, 1, 2)
    root = tmp_path / "world"
    generate_driving_world(root, scenes=scenes, samples=samples, image_scale=scale, seed=7, progress=False)
    prepare_nuscenes(root, "v1.0-mini", tmp_path / "i.pkl", max_sweeps=0, progress=False)
    ds = NuScenesDataset(NuScenesDatasetConfig(info_file=str(tmp_path / "i.pkl"), load_masks=True))
    res = lidar_mask_agreement(ds)
    print(f"\nscale {scale}: agreement {res['agreement']:.4f} over {res['points']} points; per camera "
          + ", ".join(f"{c} {v:.3f}" for c, v in res["per_camera"].items()))
    assert res["agreement"] >= 0.98, res
    assert min(res["per_camera"].values()) >= 0.96, res
