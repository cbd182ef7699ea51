"""Label taxonomies shared by the synthetic worlds, the loaders and evaluation.

nuScenes: the 32-class *general* lidarseg taxonomy (``category.json`` ``index``) and the devkit's
mapping to the 16 evaluation classes (0 = ignore, 1..16 = classes, as in
``nuscenes.eval.lidarseg.utils.LidarsegClassMapper``).

ScanNet: NYU40 ids as stored in ``*_vh_clean_2.labels.ply`` and the ScanNet-20 benchmark subset
(``SCANNET20_NYU40_IDS``), mapped to 0..19 with ``SCANNET_IGNORE`` (255) for everything else.
"""

from __future__ import annotations

import numpy as np

# --------------------------------------------------------------------------- nuScenes
# (general class name, lidarseg index) in the order of the devkit's category.json indices.
NUSCENES_GENERAL_CLASSES: tuple[str, ...] = (
    "noise",
    "animal",
    "human.pedestrian.adult",
    "human.pedestrian.child",
    "human.pedestrian.construction_worker",
    "human.pedestrian.personal_mobility",
    "human.pedestrian.police_officer",
    "human.pedestrian.stroller",
    "human.pedestrian.wheelchair",
    "movable_object.barrier",
    "movable_object.debris",
    "movable_object.pushable_pullable",
    "movable_object.trafficcone",
    "static_object.bicycle_rack",
    "vehicle.bicycle",
    "vehicle.bus.bendy",
    "vehicle.bus.rigid",
    "vehicle.car",
    "vehicle.construction",
    "vehicle.emergency.ambulance",
    "vehicle.emergency.police",
    "vehicle.motorcycle",
    "vehicle.trailer",
    "vehicle.truck",
    "flat.driveable_surface",
    "flat.other",
    "flat.sidewalk",
    "flat.terrain",
    "static.manmade",
    "static.other",
    "static.vegetation",
    "vehicle.ego",
)
NUSCENES_GENERAL_INDEX: dict[str, int] = {n: i for i, n in enumerate(NUSCENES_GENERAL_CLASSES)}

# The 16 lidarseg evaluation classes; index 0 is "ignore" (devkit convention).
NUSCENES_EVAL_CLASSES: tuple[str, ...] = (
    "ignore",
    "barrier",
    "bicycle",
    "bus",
    "car",
    "construction_vehicle",
    "motorcycle",
    "pedestrian",
    "traffic_cone",
    "trailer",
    "truck",
    "driveable_surface",
    "other_flat",
    "sidewalk",
    "terrain",
    "manmade",
    "vegetation",
)
NUSCENES_IGNORE = 0

_GENERAL_TO_EVAL_NAME = {
    "movable_object.barrier": "barrier",
    "vehicle.bicycle": "bicycle",
    "vehicle.bus.bendy": "bus",
    "vehicle.bus.rigid": "bus",
    "vehicle.car": "car",
    "vehicle.construction": "construction_vehicle",
    "vehicle.motorcycle": "motorcycle",
    "human.pedestrian.adult": "pedestrian",
    "human.pedestrian.child": "pedestrian",
    "human.pedestrian.construction_worker": "pedestrian",
    "human.pedestrian.police_officer": "pedestrian",
    "movable_object.trafficcone": "traffic_cone",
    "vehicle.trailer": "trailer",
    "vehicle.truck": "truck",
    "flat.driveable_surface": "driveable_surface",
    "flat.other": "other_flat",
    "flat.sidewalk": "sidewalk",
    "flat.terrain": "terrain",
    "static.manmade": "manmade",
    "static.vegetation": "vegetation",
}

#: uint8 lookup table: general lidarseg index (0..31) -> evaluation index (0 = ignore, 1..16).
NUSCENES_GENERAL_TO_EVAL = np.array(
    [
        NUSCENES_EVAL_CLASSES.index(_GENERAL_TO_EVAL_NAME[n]) if n in _GENERAL_TO_EVAL_NAME else 0
        for n in NUSCENES_GENERAL_CLASSES
    ],
    dtype=np.uint8,
)

# --------------------------------------------------------------------------- ScanNet
NYU40_CLASSES: tuple[str, ...] = (
    "unannotated",  # 0
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
    "picture", "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror",
    "floor mat", "clothes", "ceiling", "books", "refrigerator", "television", "paper", "towel",
    "shower curtain", "box", "whiteboard", "person", "night stand", "toilet", "sink", "lamp",
    "bathtub", "bag", "otherstructure", "otherfurniture", "otherprop",
)  # fmt: skip

#: NYU40 ids of the ScanNet-20 benchmark classes, in benchmark order (index = ScanNet-20 id).
SCANNET20_NYU40_IDS: tuple[int, ...] = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39,
)  # fmt: skip
SCANNET20_CLASSES: tuple[str, ...] = tuple(NYU40_CLASSES[i] for i in SCANNET20_NYU40_IDS)
NYU40_INDEX: dict[str, int] = {n: i for i, n in enumerate(NYU40_CLASSES)}
SCANNET_IGNORE = 255

#: uint8 lookup table: NYU40 id (0..40) -> ScanNet-20 id (0..19) or SCANNET_IGNORE.
NYU40_TO_SCANNET20 = np.full(41, SCANNET_IGNORE, dtype=np.uint8)
NYU40_TO_SCANNET20[list(SCANNET20_NYU40_IDS)] = np.arange(20, dtype=np.uint8)


def map_labels(labels: np.ndarray, table: np.ndarray, name: str = "labels") -> np.ndarray:
    """Apply a lookup ``table`` to integer ``labels``; ids outside the table raise a DataError
    that starts with ``name`` (pass the file the labels came from)."""
    from xmodal.errors import DataError

    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= len(table)):
        raise DataError(
            f"{name}: ids must lie in [0, {len(table) - 1}], got [{labels.min()}, {labels.max()}]; "
            "the file is corrupt or uses another taxonomy."
        )
    return table[labels.astype(np.int64)]
