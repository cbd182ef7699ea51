"""``xmodal train`` and ``xmodal eval``: a config file plus ``key.sub=value`` overrides."""

from __future__ import annotations

import argparse
import json


def _resume(value: str):
    if value in ("auto", "never"):
        return "auto" if value == "auto" else False
    return value


def cmd_train(a: argparse.Namespace) -> None:
    from xmodal.config import load_config
    from xmodal.experiment import train

    cfg = load_config(a.config, a.overrides)
    summary = train(cfg, run_dir=a.run_dir, resume=_resume(a.resume), progress=not a.quiet)
    print(json.dumps({k: v for k, v in summary.items() if k != "losses"}, indent=2, default=str))


def cmd_eval(a: argparse.Namespace) -> None:
    from xmodal.config import load_config
    from xmodal.evaluation.protocols import evaluate

    overrides = list(a.overrides)
    if a.protocol:
        overrides.append(f"eval.protocol={a.protocol}")
    if a.pretrained:
        overrides.append(f"eval.pretrained={a.pretrained}")
    cfg = load_config(a.config, overrides)
    result = evaluate(cfg, out=a.run_dir, progress=not a.quiet)
    val = result["val"]
    print(f"{result['protocol']['name']}: mIoU {100 * (val['miou'] or 0):.1f} on {val['scans']} scans")
    if "devkit" in result:
        print(f"devkit LidarSegEval mIoU {100 * result['devkit']['miou']:.1f}")


def add_train_parsers(sub) -> None:
    t = sub.add_parser(
        "train", help="train a config (distillation or segmentation); torchrun for several processes",
        description="Train CONFIG with key.sub=value overrides into work_dir/name (or --run-dir). Runs resume from "
        "their last checkpoint by default. Several processes: tools/dist_train.sh or torchrun -m xmodal train.",
    )
    t.add_argument("config", help="YAML config")
    t.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    t.add_argument("--run-dir", default=None, help="run folder (default: work_dir/name of the config)")
    t.add_argument("--resume", default="auto", help="auto (default: the run folder's last checkpoint), never, or a checkpoint path")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)
    e = sub.add_parser(
        "eval", help="evaluate a backbone: linear probe or fine-tune, per-class IoU and mIoU",
        description="Train a segmentation head (linear-probe) or the whole model (finetune) on the config's dataset "
        "(its split_file sets the label fraction), then score eval.val with the last weights; writes metrics.json.",
    )
    e.add_argument("config", help="YAML config with model.type=lidar_segmentation and an eval: section")
    e.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    e.add_argument("--protocol", choices=["linear-probe", "finetune"], default=None, help="overrides eval.protocol")
    e.add_argument("--pretrained", default=None, help="backbone checkpoint (overrides eval.pretrained)")
    e.add_argument("--run-dir", default=None, help="result folder (default: work_dir/name)")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=cmd_eval)
