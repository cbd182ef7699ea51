"""``xmodal`` command line: ``xmodal <command> [<subcommand>] [options]``.

Heavy imports (torch, open3d, the devkit) happen inside the commands so ``--help`` is instant.
Errors caused by input (:class:`xmodal.errors.XmodalError`) are printed without a traceback and
exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from xmodal import __version__
from xmodal.cli.argtypes import non_negative, positive
from xmodal.errors import XmodalError

EPILOG = """\
examples:
  xmodal synth driving --out data/synth-driving --scenes 2 --samples 10
  xmodal prepare nuscenes --root data/synth-driving --version v1.0-mini --split mini_train \\
      --out data/synth-driving/infos/nuscenes_infos_mini_train.pkl
  xmodal vis sample --dataset nuscenes --info data/synth-driving/infos/nuscenes_infos_mini_train.pkl
  xmodal synth indoor --out data/synth-indoor && xmodal prepare scannet --root data/synth-indoor \\
      --out data/synth-indoor/infos/scannet_infos.json
  xmodal prepare superpixels --root data/synth-driving --threads 1
  xmodal config configs/demo_synth-driving.yaml train.lr=1e-3
  xmodal demo --out runs/demo
  xmodal bench ops --threads 1,2 --json runs/bench_ops.json
"""


def _print_summary(summary: dict) -> None:
    print(json.dumps(summary, indent=2, default=str))


# ----------------------------------------------------------------------------- commands
def cmd_synth_driving(a: argparse.Namespace) -> None:
    from xmodal.data.synth.driving import generate_driving_world

    _print_summary(
        generate_driving_world(
            a.out, scenes=a.scenes, samples=a.samples, image_scale=a.image_scale, seed=a.seed,
            force=a.force, camera_sweeps=a.camera_sweeps, progress=not a.quiet, threads=a.threads,
        )
    )


def cmd_synth_indoor(a: argparse.Namespace) -> None:
    from xmodal.data.synth.indoor import generate_indoor_world

    _print_summary(
        generate_indoor_world(a.out, scenes=a.scenes, frames=a.frames, seed=a.seed, force=a.force, progress=not a.quiet)
    )


def cmd_prepare_nuscenes(a: argparse.Namespace) -> None:
    from xmodal.data.nuscenes_info import prepare_nuscenes

    _print_summary(prepare_nuscenes(a.root, a.version, a.out, split=a.split, max_sweeps=a.max_sweeps, progress=not a.quiet))


def cmd_prepare_scannet(a: argparse.Namespace) -> None:
    from xmodal.data.scannet import prepare_scannet

    splits = [x.strip() for x in a.split.split(",") if x.strip()]
    _print_summary(prepare_scannet(a.root, a.out, split=splits, frames_root=a.frames_root, progress=not a.quiet))


def cmd_vis_sample(a: argparse.Namespace) -> None:
    out = Path(a.out)
    dataset = a.dataset or ("scannet" if a.info.endswith(".json") else "nuscenes")
    if dataset == "nuscenes":
        from xmodal.data.nuscenes import NuScenesDataset, NuScenesDatasetConfig
        from xmodal.visualization.driving import render_driving_sample

        cfg = NuScenesDatasetConfig(info_file=a.info, root=a.root, load_masks=True, sweeps=0, imu_window=0)
        ds = NuScenesDataset(cfg)
        _check_index(a.index, len(ds))
        paths = render_driving_sample(ds[a.index], out)
    else:
        from xmodal.visualization.indoor import render_indoor_sample

        paths = render_indoor_sample(a.info, a.index, out, frame=a.frame, root=a.root)
    for p in paths:
        print(p)


def _check_index(index: int, n: int) -> None:
    if not 0 <= index < n:
        raise XmodalError(f"--index {index} is out of range: the info file has {n} samples (0..{n - 1}).")


def cmd_config(a: argparse.Namespace) -> None:
    from xmodal.config import config_to_dict, load_config
    from xmodal.config.yaml_io import dump_yaml

    cfg = load_config(a.config, a.overrides)
    print(dump_yaml(config_to_dict(cfg)), end="")


def cmd_info(a: argparse.Namespace) -> None:
    from xmodal.utils.environment import environment_report

    report = environment_report()
    if a.json:
        _print_summary(report)
        return
    for section, items in report.items():
        print(f"{section}:")
        for k, v in items.items():
            print(f"  {k:<22} {v}")


def cmd_demo(a: argparse.Namespace) -> None:
    from xmodal.cli.demo import run_demo

    run_demo(Path(a.out), seed=a.seed, scenes=a.scenes, samples=a.samples, steps=a.steps, fit_steps=a.fit_steps,
             overrides=a.overrides, progress=not a.quiet)


# ----------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xmodal",
        description="Cross-sensor distillation: synthetic worlds, dataset preparation, teachers, "
        "training, evaluation and visualization.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"xmodal {__version__}")
    sub = p.add_subparsers(dest="command", metavar="<command>", required=True)

    # synth
    synth = sub.add_parser("synth", help="write a synthetic world in a real dataset's format")
    ssub = synth.add_subparsers(dest="world", metavar="<world>", required=True)
    d = ssub.add_parser(
        "driving",
        help="a driving world in the nuScenes format (LiDAR, 6 cameras, lidarseg, boxes, CAN bus)",
        description="Ray-cast a driving world with the nuScenes rig and write it in the nuScenes "
        "v1.0 format (v1.0-mini scene names up to 10 scenes, v1.0-trainval beyond).",
    )
    d.add_argument("--out", required=True, help="output dataroot (must be empty unless --force)")
    d.add_argument("--scenes", type=positive(int), default=2,
                   help="number of scenes (default 2); up to 10 use v1.0-mini names, more use v1.0-trainval")
    d.add_argument("--samples", type=positive(int), default=10,
                   help="keyframes (2 Hz) per scene, 1..100 (default 10; real nuScenes has ~40)")
    d.add_argument("--image-scale", type=positive(float), default=0.25,
                   help="camera resolution relative to 1600x900, 0.05..1 (default 0.25 = 400x225)")
    d.add_argument("--threads", type=non_negative(int), default=0, help="ray-casting threads (default 0 = all cores)")
    d.add_argument("--camera-sweeps", action="store_true", help="also write 12 Hz camera sweeps")
    d.add_argument("--seed", type=int, default=0, help="random seed; same seed, same bytes (default 0)")
    d.add_argument("--force", action="store_true", help="replace a non-empty --out")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=cmd_synth_driving)
    i = ssub.add_parser(
        "indoor",
        help="rooms in the ScanNet format (meshes, NYU40 labels, posed RGB-D frames)",
        description="Build furnished rooms and write them in the ScanNet layout with exported frames.",
    )
    i.add_argument("--out", required=True, help="output root (must be empty unless --force)")
    i.add_argument("--scenes", type=positive(int), default=2, help="number of rooms (default 2)")
    i.add_argument("--frames", type=positive(int), default=20, help="RGB-D frames per room (default 20)")
    i.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    i.add_argument("--force", action="store_true", help="replace a non-empty --out")
    i.add_argument("--quiet", action="store_true", help="no progress bar")
    i.set_defaults(func=cmd_synth_indoor)

    # prepare
    prep = sub.add_parser("prepare", help="index a dataset into a versioned info file, cache superpixels")
    psub = prep.add_subparsers(dest="dataset", metavar="<dataset>", required=True)
    n = psub.add_parser("nuscenes", help="write a nuScenes info file (calibration chain, sweeps, boxes)")
    n.add_argument("--root", required=True, help="nuScenes dataroot (holds v1.0-*/, samples/, sweeps/)")
    n.add_argument("--version", required=True, help="v1.0-mini, v1.0-trainval or v1.0-test")
    n.add_argument("--split", default="all",
                   help="devkit split: mini_train, mini_val, train, val, test, or all (default)")
    n.add_argument("--max-sweeps", type=non_negative(int), default=10, help="previous LiDAR sweeps to index (default 10)")
    n.add_argument("--out", required=True, help="info file to write (.pkl)")
    n.add_argument("--quiet", action="store_true", help="no progress bar")
    n.set_defaults(func=cmd_prepare_nuscenes)
    s = psub.add_parser("scannet", help="write a ScanNet info file (scenes, frames, splits)")
    s.add_argument("--root", required=True, help="ScanNet root (holds scans/ and the split lists)")
    s.add_argument("--split", default="train,val",
                   help="comma-separated splits to index: train, val, test (default train,val)")
    s.add_argument("--frames-root", default=None,
                   help="where exported frames live as <frames-root>/<scene>/color/... (default: in scans/<scene>/)")
    s.add_argument("--out", required=True, help="info file to write (.json)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_prepare_scannet)
    from xmodal.cli.superpixels import add_prepare_superpixels_parser

    add_prepare_superpixels_parser(psub)

    # vis
    vis = sub.add_parser("vis", help="write pictures (PNG) of the data")
    vsub = vis.add_subparsers(dest="what", metavar="<what>", required=True)
    v = vsub.add_parser(
        "sample",
        help="projections on the cameras and a bird's-eye view of one sample",
        description="nuScenes: LiDAR projected on all six cameras coloured by depth and by class, "
        "GT masks, and a BEV with boxes. ScanNet: a frame with projected vertices coloured by class.",
    )
    v.add_argument("--dataset", choices=["nuscenes", "scannet"], default=None,
                   help="default: from the info file (.pkl nuScenes, .json ScanNet)")
    v.add_argument("--info", required=True, help="info file written by 'xmodal prepare'")
    v.add_argument("--root", default=None, help="dataroot, if it moved since 'prepare'")
    v.add_argument("--index", type=int, default=0, help="sample (nuScenes) or scene (ScanNet) index")
    v.add_argument("--frame", type=int, default=0, help="ScanNet: frame index within the scene")
    v.add_argument("--out", default="runs/vis", help="output folder (default runs/vis)")
    v.set_defaults(func=cmd_vis_sample)

    # train, eval
    from xmodal.cli.train import add_train_parsers

    add_train_parsers(sub)

    # config
    c = sub.add_parser("config", help="print a resolved config (with _base_ and overrides applied)")
    c.add_argument("config", help="YAML config file")
    c.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    c.set_defaults(func=cmd_config)

    # info
    inf = sub.add_parser("info", help="versions, devices and available backends")
    inf.add_argument("--json", action="store_true", help="print JSON")
    inf.set_defaults(func=cmd_info)

    # demo
    dm = sub.add_parser("demo", help="the main job on the embedded default (what `make demo` runs)")
    dm.add_argument("--out", default="runs/demo", help="run folder (default runs/demo)")
    dm.add_argument("--seed", type=int, default=0)
    dm.add_argument("--scenes", type=positive(int), default=6, help="scenes of the world (default 6: 4 mini_train, 2 mini_val)")
    dm.add_argument("--samples", type=positive(int), default=10, help="keyframes per scene (default 10)")
    dm.add_argument("--steps", type=positive(int), default=None, help="optimizer steps of pretraining and supervised (default: the configs')")
    dm.add_argument("--fit-steps", type=positive(int), default=None, help="tiny CLIP training steps (default: fit-tiny-clip's)")
    dm.add_argument("--quiet", action="store_true", help="no progress bars")
    dm.add_argument("overrides", nargs="*", help="key.sub=value overrides applied to every demo config")
    dm.set_defaults(func=cmd_demo)

    # bench
    from xmodal.cli.bench import add_bench_parser

    add_bench_parser(sub)
    from xmodal.cli.teacher import add_teacher_parser
    add_teacher_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except XmodalError as exc:
        print(f"xmodal: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("xmodal: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
