"""Evaluation protocols of LiDAR backbones: linear probing and fine-tuning (``xmodal eval``).

Both build the ``lidar_segmentation`` model of the config, load the ``backbone.*`` weights of
``eval.pretrained`` (a pretraining run's ``model_final.pt`` or any checkpoint; random init when
null), train on ``dataset`` (its ``split_file`` sets the label fraction), and score ``eval.val``
with the **last** weights: per-class IoU and mIoU over the 16 nuScenes classes, defined as the
devkit defines them (:class:`~xmodal.evaluation.segmentation.SegmentationMetric`). With
``eval.submission_dir`` the val predictions are also exported in the lidarseg submission format
and, with ``eval.devkit_eval_set``, scored by the devkit's own ``LidarSegEval`` (its mIoU is
stored next to ours; they must agree).

The metrics JSON records the protocol, the split file (name, kind, fraction, sha256), the
checkpoint choice, the pretrained checkpoint and its teacher, the seed, the git SHA and the wall
time.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from xmodal.config import config_to_dict
from xmodal.errors import ConfigError
from xmodal.experiment import build_dataset, build_model, collate_for, run_dir_of
from xmodal.utils.atomic import atomic_write

__all__ = ["evaluate", "load_backbone", "predict_scans", "linear_probe_in_memory"]


def load_backbone(model: torch.nn.Module, path: str | None) -> dict:
    """Load the ``backbone.*`` weights of checkpoint ``path`` into ``model.backbone``; returns the
    load report plus the pretraining config's teacher (``{}`` for random init)."""
    if path is None:
        return {"pretrained": None, "teacher": None}
    from xmodal.engine.checkpoint import load_weights

    report = load_weights(model.backbone, path, remap=[("backbone.", "")], strict=False)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)  # model_final.pt or a training checkpoint
    cfg = (ckpt.get("config") if isinstance(ckpt, dict) else None) or {}
    missing = report.get("missing", [])
    if missing:
        raise ConfigError(
            f"eval.pretrained '{path}' lacks {len(missing)} backbone weights (e.g. {missing[:3]}); is it a checkpoint of "
            "the same backbone (model.backbone depth/width)?"
        )
    teacher = cfg.get("teacher")
    cache = (cfg.get("dataset") or {}).get("teacher_cache")
    if teacher is None and cache:  # distilled from cached maps: the cache names its teacher
        teacher = {"cache": cache}
        try:
            from xmodal.data.teacher_cache import TeacherCache

            c = TeacherCache(cache)
            teacher.update(name=c.teacher_name, identity=c.manifest.get("teacher"))
        except Exception as exc:  # the cache may have moved since pretraining; keep its path
            teacher["unreadable"] = f"{type(exc).__name__}: {exc}"
    return {
        "pretrained": str(path),
        "pretrain_run": cfg.get("name"),
        "teacher": teacher,
        "teacher_cache": cache,
        "pretrain_loss": cfg.get("loss"),
        "load_report": {k: v for k, v in report.items() if k in ("missing", "unexpected", "mismatched")},
    }


@torch.no_grad()
def _features(backbone, dataset, max_points: int | None, seed: int, progress: bool, what: str):
    feats, labels = [], []
    gen = torch.Generator().manual_seed(seed)
    backbone.eval()
    for i in tqdm(range(len(dataset)), desc=what, disable=not progress, leave=False):
        s = dataset[i]
        f = backbone(s.points, torch.tensor([0, len(s.points)]))
        keep = (s.labels > 0).nonzero().squeeze(1)
        if max_points is not None and keep.numel() > max_points:
            keep = keep[torch.randperm(keep.numel(), generator=gen)[:max_points]]
        feats.append(f[keep])
        labels.append(s.labels[keep])
    return torch.cat(feats), torch.cat(labels)


def linear_probe_in_memory(model, dataset, ev, seed: int, progress: bool = True) -> dict:
    """Train ``model.head`` on frozen backbone features of ``dataset`` held in memory."""
    x, y = _features(model.backbone, dataset, ev.probe_max_points_per_scan, seed, progress, "probe features")
    torch.manual_seed(seed)
    head = model.head
    head.train()
    opt = torch.optim.AdamW(head.parameters(), lr=ev.probe_lr, weight_decay=ev.probe_weight_decay)
    steps = ev.probe_epochs * max(1, -(-len(x) // ev.probe_batch_points))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(seed)
    last = float("nan")
    for _ in tqdm(range(ev.probe_epochs), desc="linear probe", disable=not progress, leave=False):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), ev.probe_batch_points):
            idx = perm[i : i + ev.probe_batch_points]
            loss = torch.nn.functional.cross_entropy(head(x[idx]), y[idx] - 1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            last = float(loss.detach())
    head.eval()
    return {"train_points": int(len(x)), "steps": steps, "last_loss": last}


@torch.no_grad()
def predict_scans(model, dataset, progress: bool = True):
    """Yield ``(lidar_token, pred [N] uint8 eval ids 1..K, labels [N] or None)`` for every scan."""
    model.eval()
    for i in tqdm(range(len(dataset)), desc="predict", disable=not progress, leave=False):
        s = dataset[i]
        logits = model.logits(s.points, torch.tensor([0, len(s.points)]))
        yield s.lidar_token, (logits.argmax(1) + 1).to(torch.uint8), s.labels


def _protocol_record(cfg, ds) -> dict:
    split = getattr(ds, "split", None)
    return {
        "name": cfg.eval.protocol,
        "split": split.describe() if split is not None else {"name": "all", "fraction": 1.0, "file": None},
        "train_scans": len(ds),
        "checkpoint_choice": cfg.eval.checkpoint_choice,
        "head": cfg.model.head,
        "probe_features": cfg.eval.probe_features if cfg.eval.protocol == "linear-probe" else None,
    }


def evaluate(cfg, out: str | Path | None = None, progress: bool = True) -> dict:
    """Run ``cfg.eval.protocol`` and write ``<out>/metrics.json`` (default ``work_dir/name``)."""
    from xmodal.evaluation.segmentation import SegmentationMetric
    from xmodal.models.lidar_segmentation import LidarSegmentationModel
    from xmodal.utils.run_info import collect_run_info, write_run_info

    t0 = time.perf_counter()
    ev = cfg.eval
    if ev.val is None:
        raise ConfigError("xmodal eval needs `eval.val:` (the dataset to score, e.g. the val info file)")
    out = Path(out) if out is not None else run_dir_of(cfg)
    out.mkdir(parents=True, exist_ok=True)
    frozen = ev.protocol == "linear-probe"
    if cfg.model is None or getattr(cfg.model, "freeze_backbone", None) is None:
        raise ConfigError("xmodal eval needs `model: {type: lidar_segmentation, ...}`")
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, freeze_backbone=frozen))
    model = build_model(cfg)  # initial weights from cfg.seed
    if not isinstance(model, LidarSegmentationModel):
        raise ConfigError("xmodal eval needs model.type=lidar_segmentation")
    pretrained = load_backbone(model, ev.pretrained)
    write_run_info(out, cfg, extra={"eval": True})
    if frozen and ev.probe_features == "memory":
        train_ds = build_dataset(cfg, augment=False)
        fit = linear_probe_in_memory(model, train_ds, ev, cfg.seed, progress)
    else:
        from xmodal.engine import Trainer

        train_ds = build_dataset(cfg)
        trainer = Trainer(cfg, model, train_ds, collate_for(model), out / "train", resume="auto", progress=progress)
        summary = trainer.fit()
        fit = {k: summary.get(k) for k in ("steps", "epochs", "last_loss", "skipped_samples", "wall_time_s") if k in summary}
    val_ds = build_dataset(cfg, ev.val, augment=False)
    metric = SegmentationMetric.nuscenes()
    writer = None
    if ev.submission_dir:
        from xmodal.evaluation.lidarseg_submission import LidarsegSubmissionWriter

        writer = LidarsegSubmissionWriter(ev.submission_dir, ev.devkit_eval_set or "val", force=True)
    try:
        for token, pred, labels in predict_scans(model, val_ds, progress):
            if labels is not None:
                metric.update(pred.long(), labels)
            if writer is not None:
                writer.add(token, pred.numpy())
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    result: dict[str, Any] = {"protocol": _protocol_record(cfg, train_ds), "fit": fit, **pretrained}
    result["val"] = {"scans": len(val_ds), "info_file": getattr(ev.val, "info_file", None), **metric.to_dict()}
    if writer is not None:
        writer.close()
        result["submission"] = str(ev.submission_dir)
        if ev.devkit_eval_set:
            from xmodal.evaluation.lidarseg_submission import score_with_devkit

            root = val_ds.base.root
            devkit = score_with_devkit(root, val_ds.base.meta["version"], ev.devkit_eval_set, ev.submission_dir,
                                       only_present_scenes=True)
            result["devkit"] = devkit
    info = collect_run_info()
    result.update(
        config=config_to_dict(cfg), seed=cfg.seed, git=info.get("git"), wall_time_s=time.perf_counter() - t0,
    )
    with atomic_write(out / "metrics.json", "w") as f:
        json.dump(result, f, indent=2, default=_json_default)
        f.write("\n")
    return result


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, (torch.Tensor, np.ndarray)):
        return o.tolist()
    return str(o)
