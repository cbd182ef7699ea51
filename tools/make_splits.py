#!/usr/bin/env python
"""Write the named split files of data/splits (see data/splits/README.md).

    # the shipped nuScenes scene lists, from the installed devkit's split lists
    python tools/make_splits.py nuscenes --out-dir data/splits
    # check the committed files are what this script writes (exit 1 and a diff otherwise)
    python tools/make_splits.py nuscenes --check
    # with real nuScenes: SLidR's fractions in the order of your scene.json (what SLidR walks);
    # with --check, only compares the scenes chosen against the committed files
    python tools/make_splits.py nuscenes --scene-table /data/nuscenes/v1.0-trainval/scene.json --check
    # a frame list: every k-th keyframe of an info file in (scene, timestamp) order
    python tools/make_splits.py frames --info data/nuscenes/infos/nuscenes_infos_train.pkl \
        --every 100 --out data/splits/my_nuscenes_train_frames_every100th.txt
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from xmodal.errors import XmodalError  # noqa: E402
from xmodal.evaluation.splits import (  # noqa: E402
    SPLITS_DIR,
    load_split,
    ordinal,
    slidr_skip_scenes,
    write_frame_split,
    write_split,
)

#: SLidR's label fractions: dataset_skip_step -> percent of the train scenes.
SLIDR_STEPS = {100: 1, 20: 5, 10: 10, 4: 25}
GENERATOR = "tools/make_splits.py nuscenes"


def nuscenes_files(out_dir: Path, scene_table: Path | None = None) -> list[Path]:
    """Write the nuScenes scene splits into ``out_dir``; returns the paths written."""
    from nuscenes.utils.splits import create_splits_scenes

    splits = create_splits_scenes(verbose=False)
    dk = f"nuscenes-devkit {version('nuscenes-devkit')}"
    written = []
    for split in ("train", "val", "mini_train", "mini_val"):
        scenes = list(splits[split])
        written.append(
            write_split(
                out_dir / f"nuscenes_{split}_scenes.txt",
                "scenes",
                scenes,
                rule=f"all scenes of the devkit's '{split}' split"
                + (" (= SLidR dataset_skip_step 1, 100 %)" if split == "train" else ""),
                source=f"{dk} nuscenes.utils.splits.create_splits_scenes()['{split}'] ({len(scenes)} scenes)",
                fraction=1.0,
                extra={"dataset": "nuscenes " + ("v1.0-mini" if split.startswith("mini") else "v1.0-trainval"),
                       "generator": GENERATOR},
            )
        )  # fmt: skip
    train = list(splits["train"])
    if scene_table is None:
        table, order = None, "the devkit's train list (sorted by name); SLidR walks v1.0-trainval/scene.json, taken to be in name order (see data/splits/README.md)"
    else:
        table = [s["name"] for s in json.loads(Path(scene_table).read_text())]
        order = f"the scene table {scene_table} ({len(table)} scenes)"
    for step, pct in SLIDR_STEPS.items():
        kept = slidr_skip_scenes(train, step, table)
        written.append(
            write_split(
                out_dir / f"nuscenes_train_scenes_every{step}th_slidr-{pct}pct.txt",
                "scenes",
                kept,
                rule=f"SLidR dataset_skip_step={step}: walk the scene table, count the train scenes "
                f"1, 2, ... and keep those whose count is a multiple of {step} (the {ordinal(step)}, "
                f"{ordinal(2 * step)}, ...; 0-based positions {step - 1}, {2 * step - 1}, ...)",
                source=f"{dk} nuscenes.utils.splits.create_splits_scenes()['train'] ({len(train)} scenes)",
                fraction=len(kept) / len(train),
                extra={"order": order, "dataset": "nuscenes v1.0-trainval", "anchor": "SLidR (valeoai/SLidR "
                       "downstream/dataloader_nuscenes.py)", "generator": GENERATOR},
            )
        )  # fmt: skip
    return written


def check(out_dir: Path, scene_table: Path | None) -> int:
    """Regenerate into a temporary folder and compare with ``out_dir``; 0 when equal."""
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for new in nuscenes_files(Path(tmp), scene_table):
            old = out_dir / new.name
            if not old.is_file():
                print(f"missing: {old} (run: python {GENERATOR} --out-dir {out_dir})")
                bad += 1
            elif scene_table is not None:  # compare the scenes only: the header names the table
                a, b = load_split(old).items, load_split(new).items
                if a != b:
                    print(f"{old.name}: your scene table gives other scenes: -{sorted(set(a) - set(b))} +{sorted(set(b) - set(a))}")
                    bad += 1
            elif old.read_text() != new.read_text():
                diff = difflib.unified_diff(old.read_text().splitlines(), new.read_text().splitlines(), str(old), "regenerated", lineterm="")
                print("\n".join(list(diff)[:40]))
                bad += 1
    print("splits up to date" if not bad else f"{bad} split file(s) differ")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    nu = sub.add_parser("nuscenes", help="the nuScenes scene splits (full lists and SLidR fractions)")
    nu.add_argument("--out-dir", type=Path, default=SPLITS_DIR)
    nu.add_argument("--scene-table", type=Path, default=None, help="v1.0-trainval/scene.json: SLidR's walk order")
    nu.add_argument("--check", action="store_true", help="compare with --out-dir instead of writing")
    fr = sub.add_parser("frames", help="every k-th keyframe of an info file")
    fr.add_argument("--info", type=Path, required=True, help="info file of xmodal prepare nuscenes")
    fr.add_argument("--every", type=int, required=True, help="k: keep one keyframe in k")
    fr.add_argument("--start", type=int, default=0, help="0-based position of the first kept keyframe")
    fr.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "nuscenes":
            if args.check:
                return check(args.out_dir, args.scene_table)
            for p in nuscenes_files(args.out_dir, args.scene_table):
                print(p)
            return 0
        from xmodal.data.nuscenes_info import load_infos

        infos = load_infos(args.info)
        meta = infos["metainfo"]
        source = f"info file {args.info.name} ({meta['version']} split '{meta['split']}', {len(infos['data_list'])} keyframes)"
        print(write_frame_split(args.out, infos["data_list"], args.every, source, args.start))
        return 0
    except (XmodalError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
