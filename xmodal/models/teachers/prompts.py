"""Text prompts of the nuScenes evaluation classes, for zero-shot use of vision-language teachers.

``NUSCENES_CLASS_PROMPTS`` maps each of the 16 lidarseg evaluation classes
(:data:`xmodal.data.labels.NUSCENES_EVAL_CLASSES` without ``ignore``, in that order) to the
names a caption may use for it (synonyms in the spirit of OpenScene's 43-prompt nuScenes list);
``TEMPLATES`` are the caption templates. ``teacher.class_embeddings(NUSCENES_CLASS_PROMPTS,
TEMPLATES)`` is the ``[16, D]`` zero-shot classifier whose row ``k`` is evaluation id ``k + 1``.
The tiny CLIP (``xmodal teacher fit-tiny-clip``) is trained on captions made from these lists.
"""

from __future__ import annotations

from xmodal.data.labels import NUSCENES_EVAL_CLASSES

__all__ = ["NUSCENES_CLASS_PROMPTS", "TEMPLATES", "captions"]

NUSCENES_CLASS_PROMPTS: dict[str, list[str]] = {
    "barrier": ["barrier", "road barrier", "jersey barrier", "crash barrier"],
    "bicycle": ["bicycle", "bike", "cycle"],
    "bus": ["bus", "city bus", "coach"],
    "car": ["car", "sedan", "automobile", "hatchback"],
    "construction_vehicle": ["construction vehicle", "excavator", "bulldozer", "crane"],
    "motorcycle": ["motorcycle", "motorbike", "scooter"],
    "pedestrian": ["pedestrian", "person", "walking person", "human"],
    "traffic_cone": ["traffic cone", "cone", "safety cone"],
    "trailer": ["trailer", "cargo trailer", "semi trailer"],
    "truck": ["truck", "lorry", "pickup truck", "delivery truck"],
    "driveable_surface": ["road", "asphalt", "street", "driveable surface"],
    "other_flat": ["traffic island", "median", "rail track", "flat ground"],
    "sidewalk": ["sidewalk", "pavement", "footpath", "curb"],
    "terrain": ["grass", "terrain", "lawn", "soil"],
    "manmade": ["building", "wall", "pole", "fence", "traffic sign"],
    "vegetation": ["tree", "vegetation", "bush", "hedge"],
}

TEMPLATES: list[str] = [
    "a photo of a {}.",
    "a {} on a street.",
    "a picture of the {}.",
    "a {} in a driving scene.",
    "a close-up photo of a {}.",
    "a blurry photo of the {}.",
]

assert tuple(NUSCENES_CLASS_PROMPTS) == NUSCENES_EVAL_CLASSES[1:], "keep the evaluation-class order"


def captions(cls: str) -> list[str]:
    """Every ``template.format(synonym)`` caption of evaluation class ``cls``."""
    return [t.format(s) for s in NUSCENES_CLASS_PROMPTS[cls] for t in TEMPLATES]
