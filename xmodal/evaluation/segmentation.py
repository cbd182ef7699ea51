"""Semantic-segmentation metrics from a confusion matrix, defined as the nuScenes devkit does.

:class:`SegmentationMetric` accumulates a confusion matrix (rows = ground truth, columns =
prediction) with ``torch.bincount`` on the device of its inputs. The matrix is a plain int64
tensor, so ranks combine with ``dist.all_reduce(metric.matrix)`` (or :meth:`all_reduce`) and
objects with :meth:`merge`.

Definition (``nuscenes.eval.lidarseg.utils.ConfusionMatrix`` in nuscenes-devkit 1.2.0, which
``LidarSegEval`` uses; xmodal's numbers equal it on the same predictions):

- the ignore class (nuScenes: id 0) is removed from the matrix, row **and** column: points whose
  ground truth is ignore never count, whatever was predicted;
- ``IoU_c = TP_c / (TP_c + FP_c + FN_c)``, computed as ``int64 / float32(union)`` in float64 (the
  devkit casts the union to float32, which rounds unions above 2**24 points; we do the same);
- a class with an empty union (absent from ground truth *and* prediction) has IoU NaN and is left
  out of the mean: ``mIoU = nanmean(IoU_c)``; a class that is predicted but absent from the
  ground truth has IoU 0 and does count;
- the devkit refuses predictions equal to the ignore id (``assert pred > 0``). Here
  ``pred_ignore`` chooses: ``"error"`` (default, as the devkit), ``"drop"`` (the devkit's matrix
  arithmetic: the ignore column is zeroed, so such points vanish) or ``"miss"`` (they count as
  false negatives of their ground-truth class).

``accuracy`` is trace / total and ``freq_weighted_iou`` is the devkit's
``nansum(gt_count * IoU) / total``, both over the same matrix.
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

import numpy as np
import torch

from xmodal.data.labels import NUSCENES_EVAL_CLASSES, NUSCENES_IGNORE, SCANNET20_CLASSES, SCANNET_IGNORE

PredIgnore = Literal["error", "drop", "miss"]
_POLICIES = ("error", "drop", "miss")


class SegmentationMetric:
    """Confusion-matrix accumulator over ``num_classes`` label ids ``0..num_classes-1``.

    Args:
        num_classes: number of label ids. nuScenes lidarseg: 17 (0 = ignore, 1..16 classes);
            ScanNet-20: 20 (0..19), with ``ignore_index=255`` outside the range.
        ignore_index: the id that is not a class. Inside ``[0, num_classes)`` it is one of the
            ids (nuScenes); outside it is an extra value (ScanNet 255). ``None``: no ignore id.
        class_names: ``num_classes`` names (the ignore id's entry included when it lies inside);
            default ``class_<i>``.
        pred_ignore: what a prediction equal to ``ignore_index`` means (see module doc).
        device: where the matrix starts; it moves to the device of the first inputs it sees.
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int | None = None,
        class_names: Sequence[str] | None = None,
        pred_ignore: PredIgnore = "error",
        device: torch.device | str | None = None,
    ) -> None:
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}.")
        if pred_ignore not in _POLICIES:
            raise ValueError(f"pred_ignore={pred_ignore!r}; allowed: {', '.join(_POLICIES)}.")
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"class_names has {len(class_names)} names for num_classes={num_classes}.")
        self.num_classes = int(num_classes)
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        self.pred_ignore: PredIgnore = pred_ignore
        self.class_names = tuple(class_names) if class_names is not None else tuple(f"class_{i}" for i in range(num_classes))
        inside = self.ignore_index is not None and 0 <= self.ignore_index < self.num_classes
        # Matrix slot of the ignore id: the id itself when inside, an extra last slot otherwise.
        self._slot = self.ignore_index if inside else (self.num_classes if self.ignore_index is not None else None)
        self.size = self.num_classes + (1 if self.ignore_index is not None and not inside else 0)
        #: ids that are evaluated classes (every id but the ignore id), in id order
        self.class_ids = [i for i in range(self.num_classes) if i != self.ignore_index]
        #: [size, size] int64 counts, rows = ground truth, columns = prediction (ignore slot included)
        self.matrix = torch.zeros(self.size, self.size, dtype=torch.int64, device=device)

    # ------------------------------------------------------------------ presets
    @classmethod
    def nuscenes(cls, pred_ignore: PredIgnore = "error", device: torch.device | str | None = None) -> "SegmentationMetric":
        """The 16 nuScenes lidarseg classes, ids 1..16, 0 = ignore (the devkit's convention)."""
        return cls(len(NUSCENES_EVAL_CLASSES), NUSCENES_IGNORE, NUSCENES_EVAL_CLASSES, pred_ignore, device)

    @classmethod
    def scannet20(cls, pred_ignore: PredIgnore = "error", device: torch.device | str | None = None) -> "SegmentationMetric":
        """ScanNet-20 benchmark classes, ids 0..19, 255 = ignore."""
        return cls(len(SCANNET20_CLASSES), SCANNET_IGNORE, SCANNET20_CLASSES, pred_ignore, device)

    # ------------------------------------------------------------------ accumulation
    def _slots(self, x: torch.Tensor, what: str, allow_ignore: bool) -> torch.Tensor:
        """Map ids to matrix slots; ``what`` names the argument in errors."""
        x = x.reshape(-1).long()
        ig = self.ignore_index
        is_ig = (x == ig) if ig is not None else torch.zeros_like(x, dtype=torch.bool)
        bad = ((x < 0) | (x >= self.num_classes)) & ~is_ig
        n_bad, n_ig = (int(v) for v in torch.stack([bad.sum(), is_ig.sum()]).tolist())
        if n_bad:
            vals = torch.unique(x[bad])[:5].tolist()
            raise ValueError(
                f"{what}: {n_bad} values outside the label ids 0..{self.num_classes - 1}"
                f"{'' if ig is None else f' and ignore id {ig}'} (e.g. {vals}); map the labels to "
                "this taxonomy first (xmodal.data.labels)."
            )
        if n_ig and not allow_ignore:
            raise ValueError(
                f"{what}: {n_ig} predictions equal the ignore id {ig}; the nuScenes devkit refuses "
                f"them (predictions must be class ids {self.class_ids[0]}..{self.class_ids[-1]}). "
                "Predict over the classes only, or build the metric with pred_ignore='drop' "
                "(devkit arithmetic: such points vanish) or 'miss' (they count as false negatives)."
            )
        if self._slot is not None and self._slot != ig:
            x = torch.where(is_ig, torch.full_like(x, self._slot), x)
        return x

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch. ``pred`` [N] and ``target`` [N]: integer label ids (any shape, same
        numel), on the same device; the matrix moves to that device."""
        pred, target = torch.as_tensor(pred), torch.as_tensor(target)
        if pred.numel() != target.numel():
            raise ValueError(f"pred has {pred.numel()} values but target has {target.numel()}; they must pair up.")
        if pred.is_floating_point() or target.is_floating_point():
            raise ValueError("pred and target must be integer label ids, not scores (take argmax first).")
        if pred.device != target.device:
            raise ValueError(f"pred is on {pred.device} but target on {target.device}; put them on one device.")
        if self.matrix.device != pred.device:
            self.matrix = self.matrix.to(pred.device)
        t = self._slots(target, "target", allow_ignore=True)
        p = self._slots(pred, "pred", allow_ignore=self.pred_ignore != "error")
        counts = torch.bincount(t * self.size + p, minlength=self.size * self.size)
        self.matrix += counts.view(self.size, self.size)

    def merge(self, other: "SegmentationMetric") -> "SegmentationMetric":
        """Add the counts of ``other`` (same classes and ignore id) into this one; returns self."""
        if (other.num_classes, other.ignore_index) != (self.num_classes, self.ignore_index):
            raise ValueError(
                f"cannot merge a metric over {other.num_classes} ids (ignore {other.ignore_index}) "
                f"into one over {self.num_classes} ids (ignore {self.ignore_index})."
            )
        self.matrix += other.matrix.to(self.matrix.device)
        return self

    def all_reduce(self, group: object | None = None) -> "SegmentationMetric":
        """Sum the matrix over all ranks (no-op without an initialised process group)."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.matrix, op=dist.ReduceOp.SUM, group=group)
        return self

    def reset(self) -> None:
        self.matrix.zero_()

    # ------------------------------------------------------------------ metrics
    def confusion(self) -> np.ndarray:
        """[C, C] int64 confusion over the evaluated classes (rows GT, columns prediction) after
        the devkit's removal of the ignore row and column, C = ``len(class_ids)``."""
        m = self.matrix.detach().cpu().numpy()
        return m[np.ix_(self.class_ids, self.class_ids)]

    def _counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """(intersection, gt count, pred count) per evaluated class and the number of points."""
        conf = self.confusion()
        inter = np.diagonal(conf).copy()
        gt = conf.sum(axis=1)
        pred = conf.sum(axis=0)
        total = int(conf.sum())
        if self.pred_ignore == "miss" and self._slot is not None:
            missed = self.matrix.detach().cpu().numpy()[self.class_ids, self._slot]
            gt = gt + missed
            total += int(missed.sum())
        return inter, gt, pred, total

    def iou_per_class(self) -> np.ndarray:
        """[C] float64 IoU of each evaluated class (order ``class_ids``); NaN where the class is in
        neither the ground truth nor the predictions."""
        inter, gt, pred, _ = self._counts()
        union = gt + pred - inter
        with np.errstate(divide="ignore", invalid="ignore"):
            return inter / union.astype(np.float32)  # the devkit's float32 cast of the union

    def _devkit_layout(self, per_class: np.ndarray) -> np.ndarray:
        """[num_classes] with NaN at an in-range ignore id, as the devkit's arrays are laid out
        (``nanmean`` sums pairwise, so the layout decides the last bit of the mean)."""
        full = np.full(self.num_classes, np.nan)
        full[self.class_ids] = per_class
        return full

    def miou(self) -> float:
        """``nanmean`` of :meth:`iou_per_class`; NaN when no class has any point."""
        iou = self._devkit_layout(self.iou_per_class())
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else math.nan

    def accuracy(self) -> float:
        """Overall point accuracy: correct / counted points (NaN with no points)."""
        inter, _, _, total = self._counts()
        return float(inter.sum() / total) if total else math.nan

    def mean_accuracy(self) -> float:
        """Mean over classes present in the ground truth of their recall (NaN with none)."""
        inter, gt, _, _ = self._counts()
        with np.errstate(divide="ignore", invalid="ignore"):
            acc = inter / gt.astype(np.float64)
        return float(np.nanmean(acc)) if np.isfinite(acc).any() else math.nan

    def freq_weighted_iou(self) -> float:
        """The devkit's ``nansum(gt_count * IoU) / total`` (NaN with no points)."""
        _, gt, _, total = self._counts()
        weighted = self._devkit_layout(gt * self.iou_per_class())
        return float(np.nansum(weighted) / total) if total else math.nan

    @property
    def num_points(self) -> int:
        """Points that count (ground truth not ignore; under ``drop`` also prediction not ignore)."""
        return self._counts()[3]

    def to_dict(self) -> dict:
        """Metrics for a JSON result file; NaN is written as ``None`` (JSON has no NaN)."""
        def num(v: float) -> float | None:
            return None if math.isnan(v) else float(v)

        names = [self.class_names[i] for i in self.class_ids]
        return {
            "miou": num(self.miou()),
            "accuracy": num(self.accuracy()),
            "mean_accuracy": num(self.mean_accuracy()),
            "freq_weighted_iou": num(self.freq_weighted_iou()),
            "iou_per_class": {n: num(v) for n, v in zip(names, self.iou_per_class())},
            "num_points": self.num_points,
            "ignore_index": self.ignore_index,
            "pred_ignore": self.pred_ignore,
            "definition": "nuscenes-devkit lidarseg ConfusionMatrix: ignore row+column removed, "
            "IoU = TP/(TP+FP+FN), nanmean over classes (empty union = NaN, left out)",
        }

    def __repr__(self) -> str:
        return (
            f"SegmentationMetric(num_classes={self.num_classes}, ignore_index={self.ignore_index}, "
            f"points={self.num_points}, miou={self.miou():.4f})"
        )
