"""A comparison table of evaluation results (``metrics.json`` of ``xmodal eval``) in Markdown."""

from __future__ import annotations

from collections.abc import Sequence

from xmodal.data.labels import NUSCENES_EVAL_CLASSES

__all__ = ["comparison_table"]

#: Short column names of the 16 nuScenes evaluation classes.
SHORT = {
    "barrier": "barr", "bicycle": "bicy", "bus": "bus", "car": "car", "construction_vehicle": "cons",
    "motorcycle": "moto", "pedestrian": "ped", "traffic_cone": "cone", "trailer": "trai", "truck": "truc",
    "driveable_surface": "driv", "other_flat": "oflat", "sidewalk": "side", "terrain": "terr",
    "manmade": "manm", "vegetation": "vege",
}


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def comparison_table(rows: Sequence[tuple[str, dict]], classes: Sequence[str] = NUSCENES_EVAL_CLASSES[1:]) -> str:
    """Markdown table: one row per ``(label, metrics)``, columns mIoU, accuracy, then per-class IoU
    in % ("–": the class is absent from the ground truth and never predicted, so it is not in the
    mIoU)."""
    head = ["method", "mIoU", "acc"] + [SHORT.get(c, c) for c in classes]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, m in rows:
        val = m["val"]
        ious = val["iou_per_class"]
        cells = [label, f"**{_pct(val['miou'])}**", _pct(val["accuracy"])] + [_pct(ious.get(c)) for c in classes]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
