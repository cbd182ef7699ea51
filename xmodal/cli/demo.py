"""``xmodal demo`` / ``make demo``: image-to-LiDAR distillation end to end on the embedded default.

1. synthesize a small driving world in the nuScenes format (mini_train / mini_val scenes);
2. index it, cache SLIC superpixels of its camera images;
3. fit the tiny CLIP teacher on crops and captions of the world (``xmodal teacher fit-tiny-clip``)
   and cache its dense features for the training images;
4. distill it into the LiDAR student twice: superpixel InfoNCE (SLidR) and point-wise L2 (ScaLR);
5. linear-probe random init and both distilled backbones, and train the supervised row (all
   labels, same step budget), all scored on mini_val with the devkit's mIoU definition; the
   distilled probe's predictions are also exported in the lidarseg format and scored by the
   devkit itself;
6. write ``report.md`` and ``metrics.json`` (and the runs, configs and pictures) into the run folder.

The configs are ``configs/demo/*.yaml``; the demo fills in the paths of the generated world.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

DEMO_DIR = "configs/demo"
PRETRAIN = {
    "slidr": "pretrain-minkunet14-tinyclip-slidr_synth-driving.yaml",
    "pointwise": "pretrain-minkunet14-tinyclip-pointwise_synth-driving.yaml",
}
PROBE = "linear-probe-minkunet14_synth-driving.yaml"
SUPERVISED = "supervised-minkunet14_synth-driving.yaml"


def _find_config(name: str) -> Path:
    """``configs/demo/<name>`` in the current folder, else in the checkout holding the package."""
    path = Path(DEMO_DIR) / name
    if path.is_file():
        return path
    return Path(__file__).resolve().parents[2] / DEMO_DIR / name


def run_demo(
    out: Path,
    seed: int = 0,
    scenes: int = 6,
    samples: int = 10,
    steps: int | None = None,
    fit_steps: int | None = None,
    overrides: list[str] | None = None,
    progress: bool = True,
) -> dict:
    """Run the demo into ``out``; returns the summary written to ``out/metrics.json``.

    ``steps`` overrides the configs' optimizer steps (pretraining and the supervised row, one
    budget); ``fit_steps`` the tiny CLIP's; ``overrides`` apply to every config (e.g.
    ``train.batch_size=1``)."""
    from xmodal.config import load_config
    from xmodal.data.lidar_camera import NuScenesPairsConfig, NuScenesPairsDataset
    from xmodal.data.nuscenes_info import prepare_nuscenes
    from xmodal.data.superpixels import prepare_superpixels
    from xmodal.data.synth.driving import generate_driving_world
    from xmodal.data.teacher_cache import build_teacher_cache
    from xmodal.evaluation.protocols import evaluate
    from xmodal.evaluation.report import comparison_table
    from xmodal.experiment import train
    from xmodal.models.teachers.tiny_clip import TinyClipTeacher, TinyClipTeacherConfig
    from xmodal.models.teachers.tiny_clip_fit import FitConfig, fit_tiny_clip
    from xmodal.utils.atomic import atomic_write

    t0 = time.perf_counter()
    times: dict[str, float] = {}
    out = Path(out).absolute()
    world = out / "data" / "synth-driving"
    infos = {s: world / "infos" / f"nuscenes_infos_{s}.pkl" for s in ("mini_train", "mini_val")}
    weights = out / "teacher" / "tiny_clip.pt"
    cache = world / "teacher_cache" / "tiny_clip"
    runs = out / "runs"
    common = [f"work_dir={runs}", f"seed={seed}", *(overrides or [])]
    budget = [f"train.max_steps={steps}"] if steps else []
    # validate every config before spending time on data: a typo fails here, not at the end
    for name in (*PRETRAIN.values(), PROBE, SUPERVISED):
        load_config(_find_config(name), common)

    def step(label: str) -> None:
        times[label] = time.perf_counter() - t_step[0]
        t_step[0] = time.perf_counter()

    t_step = [time.perf_counter()]
    print(f"[1/6] synthetic driving world (nuScenes format, {scenes} scenes x {samples} keyframes) -> {world}")
    generate_driving_world(world, scenes=scenes, samples=samples, image_scale=0.25, seed=seed, force=True, progress=progress)
    for split, path in infos.items():
        prepare_nuscenes(world, "v1.0-mini", path, split=split, max_sweeps=0, progress=False)
    step("world")
    print("[2/6] SLIC superpixels of the camera images")
    prepare_superpixels(world, method="fast", progress=progress)
    step("superpixels")
    print(f"[3/6] fit the tiny CLIP teacher -> {weights}")
    # every step, no time limit: the same seed gives the same teacher on any machine
    fit_cfg = FitConfig(seed=seed, time_limit=None, **({"steps": fit_steps} if fit_steps else {}))
    teacher_summary = fit_tiny_clip(world, weights, fit_cfg, progress=progress)
    teacher = TinyClipTeacher(TinyClipTeacherConfig(weights=str(weights)))
    train_set = NuScenesPairsDataset(NuScenesPairsConfig(info_file=str(infos["mini_train"]), load_images=False, imu_window=0.0))
    relpaths = sorted({p for i in range(len(train_set)) for p in train_set.image_relpaths(i)})
    cache_summary = build_teacher_cache(teacher, world, relpaths, cache, progress=progress, force=True)
    dim = teacher.feature_dim
    step("teacher")

    results: dict[str, dict] = {}
    finals: dict[str, Path] = {}
    for i, (key, name) in enumerate(PRETRAIN.items()):
        print(f"[4/6] distill the tiny CLIP into the LiDAR student: {key} ({i + 1}/2)")
        cfg = load_config(_find_config(name), common + budget + [
            f"name=pretrain-{key}", f"dataset.info_file={infos['mini_train']}", f"dataset.teacher_cache={cache}",
            f"model.teacher_dim={dim}",
        ])
        summary = train(cfg, resume=False, progress=progress)
        finals[key] = runs / cfg.name / "model_final.pt"
        results[f"pretrain-{key}"] = {k: summary.get(k) for k in ("steps", "last_loss", "wall_time_s", "skipped_samples")}
        step(f"pretrain-{key}")
    lidar = [f"dataset.info_file={infos['mini_train']}", f"eval.val.info_file={infos['mini_val']}"]
    evals: dict[str, dict] = {}
    rows = [("random init (linear probe)", "lp-random", None), ("SLidR superpixel InfoNCE (linear probe)", "lp-slidr", finals["slidr"]),
            ("ScaLR point-wise L2 (linear probe)", "lp-pointwise", finals["pointwise"])]
    for label, run, pretrained in rows:
        print(f"[5/6] {label}")
        extra = [f"name={run}", f"eval.pretrained={pretrained if pretrained else 'null'}"]
        if run == "lp-slidr":  # also export this one and let the devkit score it
            extra += [f"eval.submission_dir={out / 'submission'}", "eval.devkit_eval_set=mini_val"]
        evals[run] = evaluate(load_config(_find_config(PROBE), common + lidar + extra), progress=progress)
        step(run)
    print("[5/6] supervised, all labels, same step budget")
    evals["supervised"] = evaluate(load_config(_find_config(SUPERVISED), common + lidar + budget + ["name=supervised"]), progress=progress)
    step("supervised")

    print("[6/6] report and pictures")
    pictures = _pictures(out / "vis", infos["mini_val"], teacher, {"random init": None, **{f"distilled ({k})": v for k, v in finals.items()}}, common)
    table_rows = [(label, evals[run]) for label, run, _ in rows] + [("supervised, same budget (all labels)", evals["supervised"])]
    table = comparison_table(table_rows)
    miou = {run: evals[run]["val"]["miou"] for run in evals}
    devkit = evals["lp-slidr"].get("devkit", {})
    gain = {k: (miou[f"lp-{k}"] - miou["lp-random"]) * 100 for k in PRETRAIN}
    seconds = time.perf_counter() - t0
    summary = {
        "miou": miou, "gain_over_random_miou_points": gain, "devkit_miou_lp_slidr": devkit.get("miou"),
        "teacher": {
            "crop_zero_shot": teacher_summary["metrics"].get("crop_zero_shot"),
            "dense_zero_shot": {k: v for k, v in teacher_summary["metrics"].get("dense_zero_shot", {}).items() if k != "iou"},
            "train_seconds": teacher_summary["train"].get("seconds"), "steps": teacher_summary["train"].get("steps_done"),
            "heldout_scenes": teacher_summary["world"].get("heldout_scenes"),
        },
        "teacher_cache": {k: cache_summary.get(k) for k in ("raw_fp32_bytes", "stored_bytes", "compression", "images") if k in cache_summary},
        "pretrain": results, "seconds": seconds, "stage_seconds": times, "world": {"scenes": scenes, "samples": samples},
        "runs": {run: str(runs / run / "metrics.json") for run in evals},
        "pictures": [str(p) for p in pictures],
    }
    report = _report(table, summary, evals)
    with atomic_write(out / "report.md", "w") as f:
        f.write(report)
    with atomic_write(out / "metrics.json", "w") as f:
        json.dump(summary, f, indent=2, default=str)
        f.write("\n")
    print("\n" + table + "\n")
    print(f"done in {seconds:.0f} s. Report: {out / 'report.md'}; metrics: {out / 'metrics.json'}")
    for p in pictures:
        print(f"  picture: {p}")
    return summary


def _pictures(out: Path, val_info: Path, teacher, backbones: dict, common: list[str]) -> list[Path]:
    """The first val scan on CAM_FRONT: teacher map and each backbone's point features (PCA)."""
    import torch

    from xmodal.config import load_config
    from xmodal.data.lidar_camera import NuScenesPairsConfig, NuScenesPairsDataset
    from xmodal.evaluation.protocols import load_backbone
    from xmodal.experiment import build_model
    from xmodal.visualization.driving import render_driving_sample
    from xmodal.visualization.features import pca_colors, render_distillation_panels, teacher_map_image

    ds = NuScenesPairsDataset(NuScenesPairsConfig(info_file=str(val_info), imu_window=0.0))
    raw = ds.base[0]
    points = ds.point_columns(raw)  # the student's input, scaled as in training
    paths = render_driving_sample(raw, out / "data")
    ci = raw.cameras.index("CAM_FRONT")
    uv, depth, _, visible = raw.project(ci)
    image = torch.from_numpy(raw.images[ci].transpose(2, 0, 1).copy())[None]
    tmap = teacher_map_image(teacher(image)[0], tuple(raw.images[ci].shape[:2]))
    panels = []
    probe = load_config(_find_config(PROBE), common)
    for title, path in backbones.items():
        model = build_model(probe)
        load_backbone(model, str(path) if path else None)
        model.eval()
        with torch.no_grad():
            feats = model.backbone(points, torch.tensor([0, len(points)]))
        panels.append((f"{title}: point features (PCA)", pca_colors(feats[torch.from_numpy(visible)])))
    paths.append(render_distillation_panels(
        raw.images[ci], uv[visible], depth[visible], panels, out / "distillation_features.png", teacher=tmap,
        labels=raw.labels[visible],
    ))
    return paths


def _reading(gain: dict) -> str:
    """The report's verdict on the issue's target (each distilled probe >= random init + 10)."""
    short = [k for k, v in gain.items() if v < 10]
    if not short:
        return "Target: each distilled probe at least 10 mIoU points above random init — met."
    return (
        f"Target: each distilled probe at least 10 mIoU points above random init — NOT met by {', '.join(short)} in "
        "this run. Every row is one run: the distilled probes move by about ±2 mIoU with the seed "
        "(docs/benchmarks.md, 'Distillation demo'), and they grow with the step budget (`--steps`)."
    )


def _report(table: str, s: dict, evals: dict) -> str:
    t = s["teacher"]
    lines = [
        "# xmodal demo: image-to-LiDAR distillation on the synthetic driving world", "",
        f"World: {s['world']['scenes']} scenes x {s['world']['samples']} keyframes (nuScenes format, v1.0-mini names); "
        "train on mini_train scenes, score on mini_val scenes. mIoU over the 16 nuScenes classes, devkit definition "
        "(classes absent from ground truth and predictions are left out).", "",
        table, "",
        f"Distilled minus random init (linear probe, mIoU points): "
        + ", ".join(f"{k} {v:+.1f}" for k, v in s["gain_over_random_miou_points"].items()), "",
        f"The devkit's own LidarSegEval on the exported SLidR-probe predictions: mIoU "
        f"{100 * (s['devkit_miou_lp_slidr'] or float('nan')):.1f} (xmodal: {100 * evals['lp-slidr']['val']['miou']:.1f}).", "",
        "## Teacher", "", f"tiny CLIP: {json.dumps(t, default=str)}", "",
        f"cache: {json.dumps(s['teacher_cache'])}", "",
        "## Budget", "", f"total {s['seconds']:.0f} s; stages: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in s["stage_seconds"].items()), "",
        "Every row is one seed; the probe uses frozen features without augmentation (xmodal's in-memory protocol).",
        "", "## Reading", "",
        _reading(s["gain_over_random_miou_points"]),
        "Classes with few points (bicycle, motorcycle, cone, barrier) are near 0 for every row, the teacher included.",
    ]
    return "\n".join(lines) + "\n"
