"""``xmodal teacher fit-tiny-clip``: train the tiny CLIP on crops and captions of a driving world.

Data: every keyframe camera image of a nuScenes-format dataroot written by ``xmodal synth
driving`` (``samples/CAM_*/*.jpg``) and its GT mask (``semantic/CAM_*/*.png``, general lidarseg
ids, mapped to the 16 evaluation classes with ``NUSCENES_GENERAL_TO_EVAL``; 0 = ignore, e.g.
sky). The last scene (by name) is held out; with a single scene, every 4th keyframe is.

Model: open_clip ``CLIP`` with a ModifiedResNet image tower of base width 16 (layers 1-1-1-1,
layer4 512 channels, attention pool to ``embed_dim`` 128) and a 2-layer, 64-wide text
transformer with open_clip's BPE tokenizer (its random token table is kept fixed). Measured
against a ViT with 8-pixel patches at equal steps, and against stride 32 / 16, this gave the best
dense zero-shot scores in the time budget; its dense map is the attention-pool value path of the
network dilated to stride 8 (``output_stride: 8``, the default stored in the file).

Training: each step draws ``batch`` crops: a class (probability ~ pixel share ** 0.5, so rare
classes are seen), a random pixel of that class, a square box of log-uniform side
``crop_min..crop_max`` pixels around it (jittered), resized to ``input`` x ``input``, flipped at
random, brightness / contrast / saturation jittered. A crop's caption class is the majority class
of the box's central half; each step embeds ``captions`` random ``template.format(synonym)``
sentences per class. Loss, with ``s`` CLIP's learnable logit scale and every same-class pair a
positive (``NCE(q, k) = -log sum_{j: y_j = y_q} softmax_j(s <q, k_j>)``):

    L = 1/2 [NCE(crop, captions) + NCE(caption, crops)]            (CLIP, global embedding)
      + dense_weight * NCE(cell, captions)                          (dense value-path cells)

where the cells are the ``input/32 x input/32`` cells of the crop's dense (value-path) map, each
labelled with its majority class (LSeg-style dense text alignment, which is what makes the
dense map a zero-shot segmenter at this size). AdamW, linear warm-up, cosine decay over the
steps -- or over ``time_limit`` seconds when that comes first (busy machines: the fit then ends
on time, with fewer steps; ``time_limit=0`` trains every step, deterministically).

Evaluation on the held-out images:

- crop zero-shot: the global embedding (attention pool) of ``eval_crops`` held-out crops (drawn
  as in training, without colour jitter) against ``class_embeddings(NUSCENES_CLASS_PROMPTS,
  TEMPLATES)``: top-1 accuracy (argmax over the 16 classes) over all crops, and the mean of the
  per-class top-1 over the classes present among the crops;
- dense zero-shot: per-pixel argmax of ``normalize(teacher(images)) . class_embeddings``
  (bilinear upsampling of the map to the image) against the GT masks: pixel accuracy and mIoU
  over the classes present in the held-out GT (ignore pixels excluded), for the stored teacher
  defaults (``output_stride`` 8, native resolution), and for comparison output strides 32 / 16.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from xmodal.data.labels import NUSCENES_EVAL_CLASSES, NUSCENES_GENERAL_TO_EVAL, map_labels
from xmodal.errors import DataError, where

__all__ = ["FitConfig", "WorldImages", "load_world", "fit_tiny_clip", "dense_zero_shot", "crop_zero_shot"]

NUM_CLASSES = len(NUSCENES_EVAL_CLASSES) - 1  # 16, eval ids 1..16


@dataclass
class FitConfig:
    """Hyper-parameters of :func:`fit_tiny_clip` (the CLI sets ``steps`` and ``seed``)."""

    steps: int = 420
    seed: int = 0
    batch: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup: int = 30
    input: int = 64  # crop resolution fed to the network (pixels)
    crop_min: float = 32.0  # crop side in image pixels (log-uniform)
    crop_max: float = 128.0
    class_power: float = 0.5  # class sampling probability ~ share ** power
    width: int = 16  # ModifiedResNet base width (layer4: 32 * width channels)
    embed_dim: int = 128
    output_stride: int = 8  # dense default stored in the file (dilated layer3 + layer4)
    dense_weight: float = 2.0  # weight of the per-cell caption loss on the dense (value) path
    jitter: float = 0.2  # brightness / contrast / saturation jitter amplitude
    freeze_token_embedding: bool = True  # keep the (random) 49408 x width token table fixed
    captions: int = 4  # captions per class and step
    eval_crops: int = 1024
    time_limit: float | None = 120.0  # seconds of training; None / 0 = run every step (deterministic)


@dataclass
class WorldImages:
    """Camera images of a world with their GT masks, split into train / held-out.

    ``images`` [N, H, W, 3] uint8 RGB; ``masks`` [N, H, W] uint8 eval ids (0 = ignore);
    ``relpaths`` [N] image paths relative to the root; ``scenes`` [N] scene names;
    ``heldout`` [N] bool.
    """

    root: Path
    images: np.ndarray
    masks: np.ndarray
    relpaths: list[str]
    scenes: list[str]
    heldout: np.ndarray


def _version_dir(root: Path) -> Path:
    found = sorted(p for p in root.glob("v1.0-*") if (p / "sample_data.json").is_file())
    if not found:
        raise DataError(
            f"--data {where(root)} holds no nuScenes tables (v1.0-*/sample_data.json); write a world "
            f"with `xmodal synth driving --out {root}`."
        )
    return found[0]


def load_world(root: str | os.PathLike) -> WorldImages:
    """Keyframe camera images + GT masks of a synthetic nuScenes-format world; the last scene
    (sorted names) is held out, or every 4th keyframe when the world has one scene."""
    from xmodal.data.image_io import read_index_image, read_rgb
    from xmodal.data.nuscenes_info import semantic_mask_path

    root = Path(root)
    vdir = _version_dir(root)
    tables = {t: json.loads((vdir / f"{t}.json").read_text()) for t in ("scene", "sample", "sample_data")}
    scene_of_sample = {s["token"]: s["scene_token"] for s in tables["sample"]}
    scene_name = {s["token"]: s["name"] for s in tables["scene"]}
    rows = sorted(
        (scene_name[scene_of_sample[sd["sample_token"]]], sd["timestamp"], sd["filename"])
        for sd in tables["sample_data"]
        if sd["is_key_frame"] and sd["filename"].startswith("samples/CAM_")
    )
    if not rows:
        raise DataError(f"--data {where(root)} has no keyframe camera images in {vdir.name}/sample_data.json.")
    fix = f"regenerate the world with `xmodal synth driving --out {root} --force`"
    images, masks, rels, scenes = [], [], [], []
    for scene, _, rel in rows:
        mask_rel = semantic_mask_path(rel)
        if not (root / mask_rel).is_file():
            raise DataError(
                f"GT mask {where(root / mask_rel)} of '{rel}' is missing: fit-tiny-clip needs the per-camera "
                f"masks that `xmodal synth driving` writes (real nuScenes has none); {fix}."
            )
        images.append(read_rgb(root / rel, "camera image", fix))
        masks.append(map_labels(read_index_image(root / mask_rel, "GT mask", fix), NUSCENES_GENERAL_TO_EVAL, str(root / mask_rel)))
        rels.append(rel)
        scenes.append(scene)
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise DataError(f"--data {where(root)}: camera images have several sizes {sorted(shapes)}; fit-tiny-clip expects one.")
    names = sorted(set(scenes))
    if len(names) > 1:
        heldout = np.array([s == names[-1] for s in scenes])
    else:
        heldout = np.arange(len(scenes)) % 4 == 3
    return WorldImages(root, np.stack(images), np.stack(masks), rels, scenes, heldout)


# ----------------------------------------------------------------------------- crops
class CropSampler:
    """Class-aware random crops of a set of images (see the module docstring)."""

    def __init__(self, images: np.ndarray, masks: np.ndarray, cfg: FitConfig, rng: np.random.Generator):
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2)  # [N, 3, H, W] uint8 (a view)
        self.masks = masks
        self.cfg, self.rng = cfg, rng
        self.cell = 32  # input pixels per cell of the dense map (the tower's stride)
        step = 3  # pixel subsampling of the per-class coordinate lists
        sub = masks[:, ::step, ::step]
        self.coords: dict[int, np.ndarray] = {}
        for c in range(1, NUM_CLASSES + 1):
            idx = np.argwhere(sub == c)
            if len(idx):
                self.coords[c] = idx * np.array([1, step, step])
        if not self.coords:
            raise DataError("fit-tiny-clip: the training images have no labelled pixel (all masks are ignore).")
        self.classes = np.array(sorted(self.coords))
        share = np.array([len(self.coords[c]) for c in self.classes], dtype=np.float64)
        p = share ** cfg.class_power
        self.p = p / p.sum()

    def sample(self, batch: int) -> tuple[torch.Tensor, np.ndarray]:
        """``(crops [B, 3, S, S] float 0..1, labels [B] eval ids 1..16)``."""
        crops, labels, _ = self.sample_cells(batch)
        return crops, labels

    def sample_cells(self, batch: int) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """``(crops [B, 3, S, S], labels [B], cells [B, g, g])``: ``cells`` holds the majority eval
        id of each of the ``g x g`` stride-32 cells of the crop (g = S // 32; 0 = all ignore)."""
        cfg, rng = self.cfg, self.rng
        _, H, W = self.masks.shape
        S = cfg.input
        cls = rng.choice(self.classes, size=batch, p=self.p)
        sides = np.exp(rng.uniform(math.log(cfg.crop_min), math.log(cfg.crop_max), size=batch))
        sides = np.minimum(np.round(sides).astype(int), min(H, W))
        jitter = rng.uniform(-0.25, 0.25, size=(batch, 2))
        flips = rng.random(batch) < 0.5
        crops = torch.empty(batch, 3, S, S)
        labels = np.zeros(batch, np.int64)
        g = max(1, S // self.cell)
        cells = np.zeros((batch, g, g), np.int64)
        for b, c in enumerate(cls):
            i, y, x = self.coords[c][rng.integers(len(self.coords[c]))]
            s = int(sides[b])
            y0 = int(np.clip(round(y + jitter[b, 0] * s - s / 2), 0, H - s))
            x0 = int(np.clip(round(x + jitter[b, 1] * s - s / 2), 0, W - s))
            q = s // 4  # central half of the box decides the caption
            win = self.masks[i, y0 + q: y0 + s - q, x0 + q: x0 + s - q]
            counts = np.bincount(win.ravel(), minlength=NUM_CLASSES + 1)[1:]
            labels[b] = int(counts.argmax()) + 1 if counts.any() else c
            crop = self.images[i, :, y0: y0 + s, x0: x0 + s].unsqueeze(0).float()
            crop = F.interpolate(crop, size=(S, S), mode="bilinear", align_corners=False, antialias=s > S)
            crops[b] = crop[0].flip(-1) if flips[b] else crop[0]
            m = self.masks[i, y0: y0 + s, x0: x0 + s]
            m = m[:, ::-1] if flips[b] else m
            e = np.linspace(0, s, g + 1).astype(int)
            for r in range(g):
                for c_ in range(g):
                    cnt = np.bincount(m[e[r]: e[r + 1], e[c_]: e[c_ + 1]].ravel(), minlength=NUM_CLASSES + 1)[1:]
                    cells[b, r, c_] = int(cnt.argmax()) + 1 if cnt.any() else 0
        crops.div_(255.0)
        if cfg.jitter > 0:
            j = cfg.jitter
            bright = torch.from_numpy(rng.uniform(1 - j, 1 + j, (batch, 1, 1, 1))).float()
            contrast = torch.from_numpy(rng.uniform(1 - j, 1 + j, (batch, 1, 1, 1))).float()
            sat = torch.from_numpy(rng.uniform(1 - j, 1 + j, (batch, 1, 1, 1))).float()
            grey = crops.mean(1, keepdim=True)
            crops = grey + sat * (crops - grey)
            mu = crops.mean((1, 2, 3), keepdim=True)
            crops = ((crops - mu) * contrast + mu) * bright
            crops = crops.clamp_(0, 1)
        return crops, labels, cells


# ----------------------------------------------------------------------------- training
def _caption_tokens(labels: np.ndarray, tokenizer: Any, rng: random.Random) -> torch.Tensor:
    from xmodal.models.teachers.prompts import NUSCENES_CLASS_PROMPTS, TEMPLATES

    names = list(NUSCENES_CLASS_PROMPTS)
    texts = [rng.choice(TEMPLATES).format(rng.choice(NUSCENES_CLASS_PROMPTS[names[c - 1]])) for c in labels]
    return tokenizer(texts)


def _multi_positive_nce(q: torch.Tensor, q_labels: torch.Tensor, k: torch.Tensor, k_labels: torch.Tensor,
                        scale: torch.Tensor) -> torch.Tensor:
    """``-mean_i log sum_{j: label_j = label_i} softmax_j(scale * <q_i, k_j>)`` (rows whose label
    has no key are skipped): InfoNCE where every same-class key is a positive."""
    logits = scale * q @ k.T
    pos = q_labels[:, None] == k_labels[None, :]
    has = pos.any(1)
    lse_pos = torch.logsumexp(logits.masked_fill(~pos, torch.finfo(logits.dtype).min), dim=1)
    return (torch.logsumexp(logits, dim=1) - lse_pos)[has].mean()


def _clip_loss(img: torch.Tensor, labels: torch.Tensor, txt: torch.Tensor, txt_labels: torch.Tensor,
               scale: torch.Tensor) -> torch.Tensor:
    """Symmetric CLIP loss between crops and captions with same-class pairs as positives."""
    return 0.5 * (_multi_positive_nce(img, labels, txt, txt_labels, scale) + _multi_positive_nce(txt, txt_labels, img, labels, scale))


def _lr(step: int, cfg: FitConfig, progress: float) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay over ``progress`` in [0, 1]."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _progress(step: int, elapsed: float, cfg: FitConfig) -> float:
    """Training progress: the step fraction, or the time fraction when ``time_limit`` is nearer
    (the schedule then completes within the time limit on a slow or busy machine)."""
    p = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup) if step >= cfg.warmup else 0.0
    if cfg.time_limit:
        p = max(p, elapsed / cfg.time_limit)
    return p


def train_clip(model: torch.nn.Module, sampler: CropSampler, cfg: FitConfig, progress: bool = True) -> dict[str, Any]:
    """Train ``model`` (an open_clip CLIP, CPU) in place; returns loss history and timings."""
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
    from open_clip.tokenizer import SimpleTokenizer
    from tqdm import tqdm

    from xmodal.models.teachers.openclip import _is_resnet, resnet_forward, vit_forward

    is_rn = _is_resnet(model.visual)
    sampler.cell = 32 if is_rn else int(model.visual.patch_size[0])

    tokenizer = SimpleTokenizer(context_length=model.context_length)
    mean = torch.tensor(OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_DATASET_STD).view(1, 3, 1, 1)
    if cfg.freeze_token_embedding:
        model.token_embedding.weight.requires_grad_(False)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n) and p.requires_grad]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6,
    )
    rng = random.Random(cfg.seed)
    if is_rn:  # oneDNN convolutions are ~25 % faster in NHWC on the CPU
        model.visual.to(memory_format=torch.channels_last)
    model.train()
    losses, t0 = [], time.perf_counter()
    bar = tqdm(range(cfg.steps), desc="fit-tiny-clip", disable=not progress)
    steps_done, stopped = 0, "steps"
    for step in bar:
        p = _progress(step, time.perf_counter() - t0, cfg)
        if p >= 1.0 and step > cfg.warmup:
            stopped = "time_limit"
            break
        for g in opt.param_groups:
            g["lr"] = _lr(step, cfg, p)
        crops, labels, cells = sampler.sample_cells(cfg.batch)
        # captions of this step: `captions` random template x synonym sentences per class
        txt_labels = np.repeat(np.arange(1, NUM_CLASSES + 1), cfg.captions)
        tokens = _caption_tokens(txt_labels, tokenizer, rng)
        x = ((crops - mean) / std).contiguous(memory_format=torch.channels_last) if is_rn else (crops - mean) / std
        pooled, dense = resnet_forward(model.visual, x) if is_rn else vit_forward(model.visual, x)
        img = F.normalize(pooled, dim=-1)
        txt = F.normalize(model.encode_text(tokens), dim=-1)
        scale = model.logit_scale.exp()
        tl = torch.from_numpy(txt_labels)
        loss = _clip_loss(img, torch.from_numpy(labels), txt, tl, scale)
        if cfg.dense_weight > 0:  # every labelled cell of the dense (value) map against the captions
            d = F.normalize(dense, dim=1).permute(0, 2, 3, 1).reshape(-1, dense.shape[1])
            y = torch.from_numpy(cells).reshape(-1)
            loss = loss + cfg.dense_weight * _multi_positive_nce(d[y > 0], y[y > 0], txt, tl, scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        losses.append(float(loss.detach()))
        steps_done = step + 1
        if step % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    bar.close()
    model.visual.to(memory_format=torch.contiguous_format)
    model.eval()
    return {
        "seconds": time.perf_counter() - t0, "steps_done": steps_done, "stopped_by": stopped,
        "loss_first": float(np.mean(losses[:20])), "loss_last": float(np.mean(losses[-20:])),
    }


# ----------------------------------------------------------------------------- evaluation
def crop_zero_shot(teacher: Any, sampler: CropSampler, class_emb: torch.Tensor, n: int) -> dict[str, float]:
    """Top-1 zero-shot accuracy of the global embedding on ``n`` random crops of ``sampler``'s
    images: over all crops, and the mean of per-class accuracies (classes present)."""
    crops, labels = sampler.sample(n)
    preds = []
    for i in range(0, n, 256):
        emb = teacher.encode_image(crops[i: i + 256])
        preds.append((emb @ class_emb.T).argmax(1).numpy() + 1)
    pred = np.concatenate(preds)
    per_class = [float((pred[labels == c] == c).mean()) for c in np.unique(labels)]
    return {"top1": float((pred == labels).mean()), "mean_class_top1": float(np.mean(per_class)), "crops": int(n)}


def dense_zero_shot(teacher: Any, images: np.ndarray, masks: np.ndarray, class_emb: torch.Tensor, batch: int = 2) -> dict[str, Any]:
    """Per-pixel zero-shot segmentation ``argmax_k normalize(F) . class_emb_k`` of ``images``
    [N, H, W, 3] (uint8) against ``masks`` [N, H, W] eval ids: pixel accuracy and mIoU over the
    classes present in the GT (0 = ignore excluded), with per-class IoU."""
    K = class_emb.shape[0]
    conf = np.zeros((K + 1, K + 1), np.int64)
    map_size = None
    for i in range(0, len(images), batch):
        x = torch.from_numpy(images[i: i + batch]).permute(0, 3, 1, 2)
        feats = teacher(x)
        map_size = tuple(feats.shape[-2:])
        feats = F.interpolate(feats, size=x.shape[-2:], mode="bilinear", align_corners=False)
        logits = torch.einsum("bdhw,kd->bkhw", F.normalize(feats, dim=1), class_emb)
        pred = logits.argmax(1).numpy() + 1
        gt = masks[i: i + batch]
        keep = gt > 0
        conf += np.bincount(gt[keep].astype(np.int64) * (K + 1) + pred[keep], minlength=(K + 1) ** 2).reshape(K + 1, K + 1)
    present = np.flatnonzero(conf.sum(1) > 0)
    tp = np.diag(conf)
    iou = {NUSCENES_EVAL_CLASSES[c]: float(tp[c] / (conf[c].sum() + conf[:, c].sum() - tp[c])) for c in present}
    return {
        "pixel_acc": float(tp.sum() / max(1, conf.sum())),
        "miou": float(np.mean(list(iou.values()))) if iou else 0.0,
        "classes_present": len(present),
        "map_size": list(map_size or ()),
        "iou": iou,
    }


# ----------------------------------------------------------------------------- the command
def fit_tiny_clip(
    data: str | os.PathLike, out: str | os.PathLike, cfg: FitConfig | None = None, *,
    threads: int | None = None, progress: bool = True, compare_strides: bool = True,
) -> dict[str, Any]:
    """Fit the tiny CLIP on the world at ``data`` and write it to ``out`` (+ ``.json`` sidecar,
    see :mod:`xmodal.models.teachers.tiny_clip`). Returns the summary also stored in the file."""
    from xmodal import __version__
    from xmodal.models.teachers.openclip import build_clip
    from xmodal.models.teachers.prompts import NUSCENES_CLASS_PROMPTS, TEMPLATES
    from xmodal.models.teachers.tiny_clip import TinyClipTeacher, TinyClipTeacherConfig, save_tiny_clip, tiny_clip_model_config
    from xmodal.utils.atomic import writable_parent

    cfg = cfg or FitConfig()
    t_start = time.perf_counter()
    if threads:
        torch.set_num_threads(threads)
    writable_parent(out, "--out")
    torch.manual_seed(cfg.seed)
    world = load_world(data)
    train_idx, held_idx = np.flatnonzero(~world.heldout), np.flatnonzero(world.heldout)
    if len(train_idx) == 0 or len(held_idx) == 0:
        raise DataError(f"--data {where(world.root)}: need images both to train on and to hold out (have {len(world.relpaths)}).")
    rng = np.random.default_rng(cfg.seed)
    sampler = CropSampler(world.images[train_idx], world.masks[train_idx], cfg, rng)
    model_cfg = tiny_clip_model_config(width=cfg.width, embed_dim=cfg.embed_dim, image_size=cfg.input)
    model = build_clip(model_cfg, "tiny_clip")
    t_load = time.perf_counter() - t_start
    history = train_clip(model, sampler, cfg, progress)

    record: dict[str, Any] = {
        "model_cfg": model_cfg,
        "preprocess_cfg": {},  # OpenAI mean / std (open_clip's default)
        "teacher": {"output_stride": cfg.output_stride, "image_size": None},
        "train": {**asdict(cfg), "threads": torch.get_num_threads(), **history},
        "world": {"root": str(Path(data).resolve()), "images": len(world.relpaths), "train_images": int(len(train_idx)),
                  "heldout_images": int(len(held_idx)), "heldout_scenes": sorted({world.scenes[i] for i in held_idx}),
                  "image_size": list(world.images.shape[1:3])},
        "xmodal_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    out = Path(out)
    save_tiny_clip(out, model, record)  # weights first, metrics added below

    t_eval = time.perf_counter()
    teacher = TinyClipTeacher(TinyClipTeacherConfig(weights=str(out)))
    class_emb = teacher.class_embeddings(NUSCENES_CLASS_PROMPTS, TEMPLATES)
    held_sampler = CropSampler(world.images[held_idx], world.masks[held_idx], replace(cfg, jitter=0.0),
                               np.random.default_rng(cfg.seed + 1))  # no colour jitter on evaluation crops
    metrics: dict[str, Any] = {"crop_zero_shot": crop_zero_shot(teacher, held_sampler, class_emb, cfg.eval_crops)}
    himg, hmask = world.images[held_idx], world.masks[held_idx]
    metrics["dense_zero_shot"] = dense_zero_shot(teacher, himg, hmask, class_emb)
    metrics["dense_zero_shot"]["output_stride"] = teacher.output_stride
    if compare_strides:
        metrics["dense_by_stride"] = {}
        for s in (32, 16):
            t = TinyClipTeacher(TinyClipTeacherConfig(weights=str(out), output_stride=s))
            r = dense_zero_shot(t, himg, hmask, class_emb)
            metrics["dense_by_stride"][str(s)] = {k: r[k] for k in ("pixel_acc", "miou", "map_size")}
    metrics["eval_seconds"] = time.perf_counter() - t_eval
    record["metrics"] = metrics
    record["train"]["load_seconds"] = t_load
    record["train"]["total_seconds"] = time.perf_counter() - t_start
    save_tiny_clip(out, model, record)
    return {"out": str(out), "sidecar": str(out.with_suffix(".json")), "metrics": metrics, "train": record["train"], "world": record["world"]}
