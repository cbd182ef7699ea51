"""``xmodal synth driving``: write a synthetic driving world in the nuScenes format.

Layout of ``out`` (as real nuScenes, plus ``semantic/`` and ``xmodal_synth.json``)::

    v1.0-mini/*.json                         tables (v1.0-trainval beyond 10 scenes)
    samples/LIDAR_TOP/<log>__LIDAR_TOP__<t>.pcd.bin    float32 [N, 5]: x, y, z, intensity, ring
    sweeps/LIDAR_TOP/...                     the 9 sweeps (20 Hz) before each keyframe
    samples/CAM_*/<log>__CAM_*__<t>.jpg      keyframe images (sweeps/CAM_* with camera_sweeps)
    semantic/CAM_*/<log>__CAM_*__<t>.png     uint8 per-pixel general class (0 = noise / sky)
    lidarseg/<version>/<sd_token>_lidarseg.bin   uint8 per-point general class (keyframes)
    can_bus/scene-XXXX_{ms_imu,pose,meta,route}.json   IMU, pose, their statistics, baseline route
    maps/<token>.png                         drivable area + sidewalks at 0.1 m / pixel

Annotations (keyframes): every instance within 80 m of the ego with at least one LiDAR point or
one visible camera sample, and, so that tracks have no gaps (as in nuScenes), at every keyframe
between its first and last such keyframe. ``num_lidar_pts`` counts the keyframe points on the
instance's surface; ``visibility`` is the share of 48 surface samples inside any camera image
that the camera sees unoccluded (the ray to the sample first hits the instance itself), binned as
in nuScenes.
Riders are part of their bicycle / motorcycle (box and lidarseg label).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from xmodal.data.nuscenes_info import CAMERAS, LIDAR, semantic_mask_path
from xmodal.data.synth.driving import canbus
from xmodal.data.synth.driving.render import Renderer
from xmodal.data.synth.driving.rig import (
    CAMERA_PERIOD_US,
    CAMERA_SWEEPS_PER_KEYFRAME,
    LIDAR_PERIOD_US,
    LIDAR_SWEEPS_PER_KEYFRAME,
    LidarSpec,
)
from xmodal.data.synth.driving.scene import LOCATIONS, Scene, make_scene, scene_rng
from xmodal.data.synth.driving.tables import Tables, visibility_token
from xmodal.data.synth.driving.traffic import attribute_name
from xmodal.geometry.transforms import yaw_quaternion
from xmodal.utils.atomic import staged_dir
from xmodal.utils.validate import check_int, check_number

MAX_SAMPLES = 100
SCALE_RANGE = (0.05, 1.0)
ANNOTATION_RANGE = 80.0  # m, horizontal distance from the ego
#: Scenes without CAN-bus data in the devkit (``NuScenesCanBus.can_blacklist``): never used.
CAN_BLACKLIST = {
    161,
    162,
    163,
    164,
    165,
    166,
    167,
    168,
    170,
    171,
    172,
    173,
    174,
    175,
    176,
    309,
    310,
    311,
    312,
    313,
    314,
}
JPEG_QUALITY = 90
CAN_BEFORE_US, CAN_AFTER_US = 2_000_000, 500_000


def scene_names(n: int) -> tuple[str, list[str]]:
    """nuScenes version and ``n`` official scene names, so the devkit's splits apply.

    Up to 10 scenes: ``v1.0-mini`` names, alternating mini_train / mini_val (both non-empty from
    2 scenes). Beyond: ``v1.0-trainval`` names, val names mixed in at the official 150/850 rate.

    The devkit's detection evaluation takes whatever scenes of a split exist, but its lidarseg
    evaluation (``get_samples_in_eval_set``) needs every scene of the split: ``mini_val`` is
    complete from 4 scenes, ``mini_train`` at 10; ``val`` only with (almost) all 850 scenes.
    """
    from nuscenes.utils import splits

    if n <= 10:
        tr, va = list(splits.mini_train), list(splits.mini_val)
        order = [tr[0], va[0], tr[1], va[1]] + tr[2:]
        return "v1.0-mini", order[:n]
    ok = lambda s: int(s[-4:]) not in CAN_BLACKLIST  # noqa: E731
    train, val = [s for s in splits.train if ok(s)], [s for s in splits.val if ok(s)]
    r = len(val) / (len(train) + len(val))
    names, it, iv = [], 0, 0
    for i in range(n):
        if math.floor((i + 1) * r) > math.floor(i * r) and iv < len(val):
            names.append(val[iv])
            iv += 1
        else:
            names.append(train[it])
            it += 1
    return "v1.0-trainval", names


def max_scenes() -> int:
    from nuscenes.utils import splits

    return sum(int(s[-4:]) not in CAN_BLACKLIST for s in list(splits.train) + list(splits.val))


def _validate(scenes, samples, image_scale, seed) -> None:
    check_int("--scenes", scenes, 1, max_scenes())
    check_int("--samples", samples, 1, MAX_SAMPLES)
    check_int("--seed", seed, 0, 2**32 - 1)
    check_number("--image-scale", image_scale, *SCALE_RANGE, hint=" (1 = 1600x900)")


def generate_driving_world(
    out,
    *,
    scenes: int = 2,
    samples: int = 10,
    image_scale: float = 0.25,
    seed: int = 0,
    force: bool = False,
    camera_sweeps: bool = False,
    progress: bool = True,
    threads: int = 0,
) -> dict:
    """Write a synthetic nuScenes-format driving world to ``out`` (see the module docstring).

    Args:
        scenes: number of scenes (one log each); <= 10 gives ``v1.0-mini``, more ``v1.0-trainval``.
        samples: keyframes (2 Hz) per scene; each comes with 9 LiDAR sweeps before it (20 Hz).
        image_scale: camera resolution relative to 1600x900 (intrinsics scaled accordingly).
        seed: the world is byte-identical for a given seed and arguments.
        force: replace a non-empty ``out`` (otherwise refused).
        camera_sweeps: also write the 12 Hz camera frames between keyframes (``sweeps/CAM_*``).
        progress: show a progress bar.
        threads: open3d ray-casting threads (0 = all cores).

    Returns:
        summary dict: version, dataroot, scenes, samples, sample_data, lidar_sweeps,
        camera_images, annotations, instances, seconds, samples_per_second.
    """
    _validate(scenes, samples, image_scale, seed)
    version, names = scene_names(scenes)
    start = time.perf_counter()
    channels = [(LIDAR, "lidar")] + [(c, "camera") for c in CAMERAS]
    with staged_dir(out, force, marker="xmodal_synth.json") as root:
        tables = Tables(seed, channels)
        bar = tqdm(total=scenes * samples, desc="synth driving", unit="sample", disable=not progress)
        for i, name in enumerate(names):
            _write_scene(root, tables, version, seed, i, name, samples, image_scale, camera_sweeps, threads, bar)
        bar.close()
        counts = tables.write(root, version)
        meta = {
            "generator": "xmodal synth driving", "format": 1, "version": version, "seed": seed, "scenes": scenes,
            "samples": samples, "image_scale": image_scale, "camera_sweeps": camera_sweeps,
            "semantic_masks": "semantic/<CHANNEL>/<image basename>.png: uint8 nuScenes-lidarseg general index, "
                              "0 = noise / no surface (sky)",
            "lidar": "x, y, z in the LIDAR_TOP frame at the sweep timestamp (instantaneous sweep), intensity 0..255, "
                     "ring 0 (lowest beam) .. 31",
            "imu": canbus.__doc__.strip().splitlines()[0],
        }  # fmt: skip
        (root / "xmodal_synth.json").write_text(json.dumps(meta, indent=2))
    seconds = time.perf_counter() - start
    n_lidar = sum(1 for r in tables.t["sample_data"] if r["fileformat"] == "pcd")
    return {
        "version": version, "dataroot": str(Path(out)), "scenes": scenes, "samples": counts["sample"],
        "sample_data": counts["sample_data"], "lidar_sweeps": n_lidar - counts["sample"],
        "camera_images": counts["sample_data"] - n_lidar, "annotations": counts["sample_annotation"],
        "instances": counts["instance"], "seconds": round(seconds, 3),
        "samples_per_second": round(counts["sample"] / seconds, 3),
    }  # fmt: skip


def _write_map(root: Path, rel: str, scene: Scene) -> None:
    """Drivable area + sidewalks (255) at 0.1 m / pixel, image origin at global (0, 0) bottom-left."""
    lay = scene.layout
    u = np.arange(lay.u_range[0], lay.u_range[1] + 2.0, 2.0)
    left = lay.side(1).walk_in + lay.side(1).walk
    right = -(lay.side(-1).walk_in + lay.side(-1).walk)
    poly = np.concatenate([lay.path.point(u, np.full_like(u, left)), lay.path.point(u[::-1], np.full_like(u, right))])
    w, h = (np.ceil(poly.max(0) / 0.1) + 20).astype(int)
    img = Image.new("L", (int(w), int(h)), 0)
    ImageDraw.Draw(img).polygon([(float(x / 0.1), float(h - y / 0.1)) for x, y in poly], fill=255)
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, compress_level=6)


def _write_scene(
    root: Path,
    tables: Tables,
    version: str,
    seed: int,
    i: int,
    name: str,
    n_samples: int,
    image_scale: float,
    camera_sweeps: bool,
    threads: int,
    bar,
) -> None:
    sc = make_scene(seed, i, name, n_samples, image_scale)
    rend = Renderer(sc.layout.static, sc.traffic, sc.layout.road, sc.lighting, threads=threads)
    rng = scene_rng(seed, i, 5)  # timing jitter and sensor noise
    scene_token = tables.token("scene", i)
    map_rel = f"maps/{tables.token('map', i)}.png"
    _write_map(root, map_rel, sc)
    log_token = tables.add_log(i, sc.logfile, LOCATIONS[sc.location][0], sc.date, sc.location, map_rel)
    calib = {LIDAR: tables.add_calibrated_sensor(i, LIDAR, sc.rig.lidar.record())}
    for cam in sc.rig.cameras:
        calib[cam.channel] = tables.add_calibrated_sensor(i, cam.channel, cam.record())
    for folder in ["samples", "sweeps", "semantic"]:
        for ch in [LIDAR] + [c.channel for c in sc.rig.cameras]:
            if folder != "semantic" or ch != LIDAR:
                (root / folder / ch).mkdir(parents=True, exist_ok=True)
    (root / "lidarseg" / version).mkdir(parents=True, exist_ok=True)
    dl, rings = LidarSpec.ray_directions()
    dcam = {c.channel: c.ray_directions() for c in sc.rig.cameras}
    n_sweeps = n_samples * LIDAR_SWEEPS_PER_KEYFRAME
    lidar_ts = sc.t0_us + np.arange(n_sweeps) * LIDAR_PERIOD_US + rng.integers(-300, 301, n_sweeps)
    all_ts = list(lidar_ts)

    def pose(t):
        k = sc.ego.kinematics(t)
        return yaw_quaternion(float(k["yaw"])).tolist(), k["pos"]

    keyframes = []  # per keyframe: sample token, instance poses, observed, LiDAR points, visible fraction
    for k in range(n_samples):
        kf = k * LIDAR_SWEEPS_PER_KEYFRAME + LIDAR_SWEEPS_PER_KEYFRAME - 1
        t_kf = int(lidar_ts[kf])
        sample = tables.add_sample(scene_token, i, t_kf)
        kf_inst = None
        for j in range(kf - LIDAR_SWEEPS_PER_KEYFRAME + 1, kf + 1):
            t = int(lidar_ts[j])
            R, tr = sc.ego.pose(t)
            pts, labels, inst = rend.lidar_sweep(sc.rig.lidar, dl, rings, R, tr, t, rng)
            key = j == kf
            rel = f"{'samples' if key else 'sweeps'}/{LIDAR}/{sc.logfile}__{LIDAR}__{t}.pcd.bin"
            pts.tofile(root / rel)
            q, p = pose(t)
            sd = tables.add_sample_data(
                i, LIDAR, sample, calib[LIDAR], t, rel, key, rotation=q, translation=p
            )
            if key:
                seg = f"lidarseg/{version}/{sd}_lidarseg.bin"
                labels.tofile(root / seg)
                tables.add_lidarseg(sd, seg)
                kf_inst = inst
        # candidates for annotation: instances near the ego at the keyframe
        poses_kf = sc.traffic.poses(t_kf)
        ego_xy = sc.ego.kinematics(t_kf)["pos"][:2]
        cand = np.flatnonzero(np.linalg.norm(poses_kf.xy - ego_xy, axis=1) < ANNOTATION_RANGE)
        local = [sc.traffic.instances[c].template.samples for c in cand]
        owner = np.repeat(cand, [len(x) for x in local]).astype(np.int64)
        local = np.concatenate(local) if local else np.zeros((0, 3))
        seen, shown = np.zeros(len(owner), bool), np.zeros(len(owner), bool)
        for cam in sc.rig.cameras:
            t_cam = t_kf + cam.time_offset_us + int(rng.integers(-200, 201))
            times = [t_cam - n * CAMERA_PERIOD_US + int(rng.integers(-200, 201))
                     for n in range(CAMERA_SWEEPS_PER_KEYFRAME - 1, 0, -1)] if camera_sweeps else []  # fmt: skip
            for t in times + [t_cam]:
                key = t == t_cam
                R, tr = sc.ego.pose(t)
                rgb, mask = rend.render_camera(cam, dcam[cam.channel], R, tr, t, rng)
                rel = f"{'samples' if key else 'sweeps'}/{cam.channel}/{sc.logfile}__{cam.channel}__{t}.jpg"
                Image.fromarray(rgb).save(root / rel, quality=JPEG_QUALITY)
                Image.fromarray(mask).save(root / semantic_mask_path(rel), compress_level=3)
                q, p = pose(t)
                tables.add_sample_data(
                    i,
                    cam.channel,
                    sample,
                    calib[cam.channel],
                    t,
                    rel,
                    key,
                    cam.width,
                    cam.height,
                    rotation=q,
                    translation=p,
                )
                all_ts.append(t)
                if key and len(cand):
                    _visibility(rend, cam, R, tr, t, owner, local, seen, shown)
        n_inst = len(sc.traffic)
        npts = np.bincount(kf_inst[kf_inst >= 0], minlength=n_inst)[:n_inst]
        n_seen = np.bincount(owner[seen], minlength=n_inst)
        n_shown = np.bincount(owner[shown], minlength=n_inst)
        observed = np.zeros(n_inst, bool)
        observed[cand] = (npts[cand] > 0) | (n_seen[cand] > 0)
        keyframes.append((sample, poses_kf, observed, npts, n_seen / np.maximum(1, n_shown)))
        bar.update(1)
    _annotate(tables, i, sc, keyframes)
    # CAN bus from 2 s before the first sample_data (IMU windows before the first keyframe) to
    # 0.5 s after the last; IMU (100 Hz) and pose (50 Hz) start together on a 20 ms grid
    t0 = (min(all_ts) - CAN_BEFORE_US) // 20_000 * 20_000
    t1 = max(all_ts) + CAN_AFTER_US
    can = root / "can_bus"
    can.mkdir(exist_ok=True)
    messages = {"ms_imu": canbus.imu_messages(sc.ego, t0, t1, scene_rng(seed, i, 6)),
                "pose": canbus.pose_messages(sc.ego, t0, t1)}  # fmt: skip
    for kind, msgs in messages.items():
        (can / f"{name}_{kind}.json").write_text(json.dumps(msgs))
    (can / f"{name}_meta.json").write_text(json.dumps(canbus.meta_message(messages)))
    (can / f"{name}_route.json").write_text(json.dumps(canbus.route_points(sc.ego, t0, t1)))
    tables.add_scene(scene_token, log_token, name, sc.description)


def _annotate(tables: Tables, i: int, sc: Scene, keyframes: list) -> None:
    """``sample_annotation`` records of one scene, keyframe by keyframe.

    An instance is annotated at every keyframe from the first to the last one where it is observed
    (near the ego, with LiDAR points or a visible camera sample), so tracks have no gaps, as in
    nuScenes: while occluded in between, its box has ``num_lidar_pts`` 0 and a low visibility.
    """
    if not keyframes or not len(sc.traffic):
        return
    observed = np.stack([kf[2] for kf in keyframes])  # [K, N]
    k = np.arange(len(keyframes))[:, None]
    first = np.where(observed, k, len(keyframes)).min(0)
    last = np.where(observed, k, -1).max(0)
    tracked = (k >= first) & (k <= last)
    for (sample, poses, _, npts, frac), row in zip(keyframes, tracked):
        for c in np.flatnonzero(row):
            inst = sc.traffic.instances[c]
            w, l, h = inst.template.size
            tables.add_annotation(
                (i, int(c)),
                inst.category,
                sample,
                [poses.xy[c, 0], poses.xy[c, 1], poses.z[c]],
                [w, l, h],
                yaw_quaternion(float(poses.yaw[c])).tolist(),
                attribute_name(inst, float(poses.speed[c])),
                visibility_token(float(frac[c])),
                int(npts[c]),
            )


def _visibility(rend: Renderer, cam, R_ge, t_ge, t_us, owner, local, seen, shown) -> None:
    """Mark instance surface samples inside ``cam``'s image (``shown``) and unoccluded (``seen``).

    ``owner`` [K] instance of each sample, ``local`` [K, 3] samples in their instance's box frame.
    A sample is unoccluded when the camera ray towards it first hits its own instance.
    """
    _, poses = rend.dynamic(t_us, t_ge[:2])
    origin = R_ge @ cam.t_ego_cam + t_ge
    R_gc = R_ge @ cam.R_ego_cam
    cy, sy = np.cos(poses.yaw[owner]), np.sin(poses.yaw[owner])
    pts = np.stack(
        [
            cy * local[:, 0] - sy * local[:, 1] + poses.xy[owner, 0],
            sy * local[:, 0] + cy * local[:, 1] + poses.xy[owner, 1],
            local[:, 2] + poses.z[owner],
        ],
        -1,
    )
    pc = (pts - origin) @ R_gc
    z = pc[:, 2]
    uv = pc[:, :2] / np.maximum(z, 1e-6)[:, None] @ cam.K[:2, :2].T + cam.K[:2, 2]
    inside = (z > 0.5) & (uv[:, 0] >= 0) & (uv[:, 0] < cam.width) & (uv[:, 1] >= 0) & (uv[:, 1] < cam.height)
    if not inside.any():
        return
    d = pts[inside] - origin
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    hits = rend.cast(origin, d.astype(np.float32), t_us, t_ge[:2])
    hit_inst = np.full(len(d), -1)
    hit_inst[hits.idx] = hits.inst
    ids = np.flatnonzero(inside)
    shown[ids] = True
    seen[ids[hit_inst == owner[inside]]] = True
