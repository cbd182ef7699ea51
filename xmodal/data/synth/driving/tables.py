"""nuScenes v1.0 tables (+ lidarseg) built record by record and written as JSON.

Tokens are 32-hex MD5 digests of the seed and a record key, so a world is byte-identical for a
given seed. ``ego_pose`` and ``lidarseg`` tokens equal their ``sample_data`` token, as in the
real dataset. A sweep's ``sample_token`` is the keyframe that ends its interval, which is what
``NuScenes.get_boxes`` expects when it interpolates boxes between two keyframes.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path

from xmodal.data.labels import NUSCENES_GENERAL_CLASSES

ATTRIBUTES = {
    "vehicle.moving": "Vehicle is moving.",
    "vehicle.stopped": "Vehicle, with a driver/rider in/on it, is currently stationary but has an intent to move.",
    "vehicle.parked": "Vehicle is stationary (usually for longer duration) with no immediate intent to move.",
    "cycle.with_rider": "There is a rider on the bicycle or motorcycle.",
    "cycle.without_rider": "There is NO rider on the bicycle or motorcycle.",
    "pedestrian.sitting_lying_down": "The human is sitting or lying down.",
    "pedestrian.standing": "The human is standing.",
    "pedestrian.moving": "The human is moving.",
}
VISIBILITY = [
    ("1", "v0-40", "visibility of whole object is between 0 and 40%"),
    ("2", "v40-60", "visibility of whole object is between 40 and 60%"),
    ("3", "v60-80", "visibility of whole object is between 60 and 80%"),
    ("4", "v80-100", "visibility of whole object is between 80 and 100%"),
]
TABLES = ("category", "attribute", "visibility", "instance", "sensor", "calibrated_sensor", "ego_pose", "log", "scene",
          "sample", "sample_data", "sample_annotation", "map", "lidarseg")  # fmt: skip


def stable_token(*parts) -> str:
    """Seed-independent token (categories, attributes, sensors)."""
    return hashlib.md5("/".join(map(str, parts)).encode()).hexdigest()


def visibility_token(fraction: float) -> str:
    return "1" if fraction <= 0.4 else "2" if fraction <= 0.6 else "3" if fraction <= 0.8 else "4"


class Tables:
    """Accumulates the records of all scenes; :meth:`write` links chains and writes JSON."""

    def __init__(self, seed: int, channels: list[tuple[str, str]]):
        self.seed = seed
        self.t: dict[str, list[dict]] = {name: [] for name in TABLES}
        for i, name in enumerate(NUSCENES_GENERAL_CLASSES):
            self.t["category"].append(
                {
                    "token": stable_token("category", name),
                    "name": name,
                    "description": f"nuScenes-lidarseg general class {name}",
                    "index": i,
                }
            )
        for name, desc in ATTRIBUTES.items():
            self.t["attribute"].append({"token": stable_token("attribute", name), "name": name, "description": desc})
        for tok, level, desc in VISIBILITY:
            self.t["visibility"].append({"token": tok, "level": level, "description": desc})
        for channel, modality in channels:
            self.t["sensor"].append(
                {"token": stable_token("sensor", channel), "channel": channel, "modality": modality}
            )
        self._sd_chain: dict[tuple[str, str], list[tuple[int, dict]]] = defaultdict(list)
        self._ann_chain: dict[str, list[dict]] = defaultdict(list)
        self._samples: dict[str, list[dict]] = defaultdict(list)

    def token(self, *parts) -> str:
        return hashlib.md5("/".join(map(str, (self.seed,) + parts)).encode()).hexdigest()

    # ---------------------------------------------------------------- records
    def add_log(self, key, logfile: str, vehicle: str, date: str, location: str, map_filename: str) -> str:
        tok = self.token("log", key)
        self.t["log"].append(
            {"token": tok, "logfile": logfile, "vehicle": vehicle, "date_captured": date, "location": location}
        )
        self.t["map"].append(
            {
                "category": "semantic_prior",
                "token": self.token("map", key),
                "filename": map_filename,
                "log_tokens": [tok],
            }
        )
        return tok

    def add_calibrated_sensor(self, key, channel: str, record: dict) -> str:
        tok = self.token("calibrated_sensor", key, channel)
        self.t["calibrated_sensor"].append({"token": tok, "sensor_token": stable_token("sensor", channel), **record})
        return tok

    def add_sample(self, scene_token: str, key, timestamp: int) -> str:
        tok = self.token("sample", key, timestamp)
        rec = {"token": tok, "timestamp": int(timestamp), "prev": "", "next": "", "scene_token": scene_token}
        self.t["sample"].append(rec)
        self._samples[scene_token].append(rec)
        return tok

    def add_sample_data(
        self,
        key,
        channel: str,
        sample_token: str,
        calib_token: str,
        timestamp: int,
        filename: str,
        is_key_frame: bool,
        width: int = 0,
        height: int = 0,
        rotation=None,
        translation=None,
    ) -> str:
        """A sample_data record and its ego_pose (same token); chained per (scene, channel)."""
        tok = self.token("sample_data", key, channel, timestamp)
        self.t["ego_pose"].append(
            {
                "token": tok,
                "timestamp": int(timestamp),
                "rotation": [float(v) for v in rotation],
                "translation": [float(v) for v in translation],
            }
        )
        rec = {
            "token": tok,
            "sample_token": sample_token,
            "ego_pose_token": tok,
            "calibrated_sensor_token": calib_token,
            "timestamp": int(timestamp),
            "fileformat": "pcd" if filename.endswith(".pcd.bin") else "jpg",
            "is_key_frame": bool(is_key_frame),
            "height": int(height),
            "width": int(width),
            "filename": filename,
            "prev": "",
            "next": "",
        }
        self.t["sample_data"].append(rec)
        self._sd_chain[(str(key), channel)].append((int(timestamp), rec))
        return tok

    def add_lidarseg(self, sd_token: str, filename: str) -> None:
        self.t["lidarseg"].append({"token": sd_token, "sample_data_token": sd_token, "filename": filename})

    def add_annotation(
        self,
        instance_key,
        category: str,
        sample_token: str,
        translation,
        size,
        rotation,
        attribute: str | None,
        visibility: str,
        num_lidar_pts: int,
    ) -> str:
        inst_tok = self.token("instance", instance_key)
        tok = self.token("sample_annotation", instance_key, sample_token)
        rec = {"token": tok, "sample_token": sample_token, "instance_token": inst_tok, "visibility_token": visibility,
               "attribute_tokens": [stable_token("attribute", attribute)] if attribute else [],
               "translation": [float(v) for v in translation], "size": [float(v) for v in size],
               "rotation": [float(v) for v in rotation], "prev": "", "next": "",
               "num_lidar_pts": int(num_lidar_pts), "num_radar_pts": 0}  # fmt: skip
        self.t["sample_annotation"].append(rec)
        if inst_tok not in self._ann_chain:
            self.t["instance"].append(
                {
                    "token": inst_tok,
                    "category_token": stable_token("category", category),
                    "nbr_annotations": 0,
                    "first_annotation_token": "",
                    "last_annotation_token": "",
                }
            )
        self._ann_chain[inst_tok].append(rec)
        return tok

    def add_scene(self, scene_token: str, log_token: str, name: str, description: str) -> None:
        samples = self._samples[scene_token]
        for a, b in zip(samples[:-1], samples[1:]):
            a["next"], b["prev"] = b["token"], a["token"]
        self.t["scene"].append(
            {
                "token": scene_token,
                "log_token": log_token,
                "nbr_samples": len(samples),
                "first_sample_token": samples[0]["token"],
                "last_sample_token": samples[-1]["token"],
                "name": name,
                "description": description,
            }
        )

    # ---------------------------------------------------------------- output
    def _link(self) -> None:
        for chain in self._sd_chain.values():
            chain.sort(key=lambda x: x[0])
            for (_, a), (_, b) in zip(chain[:-1], chain[1:]):
                a["next"], b["prev"] = b["token"], a["token"]
        by_token = {r["token"]: r for r in self.t["instance"]}
        for inst_tok, anns in self._ann_chain.items():
            for a, b in zip(anns[:-1], anns[1:]):
                a["next"], b["prev"] = b["token"], a["token"]
            rec = by_token[inst_tok]
            rec.update(
                nbr_annotations=len(anns),
                first_annotation_token=anns[0]["token"],
                last_annotation_token=anns[-1]["token"],
            )

    def write(self, root: Path, version: str) -> dict[str, int]:
        """Write ``<root>/<version>/<table>.json``; returns the record count per table."""
        self._link()
        folder = Path(root) / version
        folder.mkdir(parents=True, exist_ok=True)
        for name, records in self.t.items():
            with open(folder / f"{name}.json", "w") as f:
                json.dump(records, f, indent=0)
        return {name: len(records) for name, records in self.t.items()}
