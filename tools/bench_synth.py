"""Benchmark: generation rate of the synthetic worlds, against reading the same data back.

    OMP_NUM_THREADS=1 .venv/bin/python tools/bench_synth.py [--threads 1] [--quick]

Absolute times on a shared 2-core machine are noisy, so each generation rate is reported next to
a peer measured in the same run on the same data: loading it back through xmodal's dataset
(nuScenes: points + 6 images + labels per keyframe; ScanNet: mesh + every frame). The ratio says
how many times slower generating is than reading.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def _set_threads(n: int) -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    import torch

    torch.set_num_threads(n)


def bench_driving(tmp: Path, scale: float, scenes: int, samples: int, threads: int) -> dict:
    from xmodal.data.nuscenes import NuScenesDataset, NuScenesDatasetConfig
    from xmodal.data.nuscenes_info import prepare_nuscenes
    from xmodal.data.synth.driving import generate_driving_world

    root = tmp / f"driving-{scale}"
    t0 = time.perf_counter()
    generate_driving_world(root, scenes=scenes, samples=samples, image_scale=scale, seed=0, progress=False,
                           threads=threads)
    gen = time.perf_counter() - t0
    info = tmp / f"infos-{scale}.pkl"
    prepare_nuscenes(root, "v1.0-mini", info, progress=False)
    ds = NuScenesDataset(NuScenesDatasetConfig(info_file=str(info)))
    t0 = time.perf_counter()
    for i in range(len(ds)):
        ds[i]
    load = time.perf_counter() - t0
    n = scenes * samples
    return {"what": f"synth driving, image scale {scale}", "items": f"{n} keyframes (+9 LiDAR sweeps each)",
            "gen_rate": n / gen, "load_rate": len(ds) / load, "unit": "keyframes/s"}


def bench_indoor(tmp: Path, scenes: int, frames: int, threads: int) -> dict:
    from xmodal.data.scannet import ScanNetDataset
    from xmodal.data.synth.indoor import IndoorConfig, generate_indoor_world

    root = tmp / "indoor"
    t0 = time.perf_counter()
    generate_indoor_world(root, scenes=scenes, frames=frames, seed=0, progress=False,
                          config=IndoorConfig(threads=threads))
    gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    n_frames = 0
    for split in ("train", "val"):
        ds = ScanNetDataset(root, split=split)
        for i in range(len(ds)):
            scene = ds[i]
            for fr in scene.frames:
                n_frames += 1
    load = time.perf_counter() - t0
    total = scenes * frames
    return {"what": "synth indoor", "items": f"{scenes} rooms x {frames} frames",
            "gen_rate": total / gen, "load_rate": n_frames / load, "unit": "frames/s"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="smaller worlds (smoke test)")
    a = ap.parse_args()
    _set_threads(a.threads)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        k = 1 if a.quick else 5
        rows.append(bench_driving(tmp, 0.25, scenes=2, samples=2 * k, threads=a.threads))
        rows.append(bench_driving(tmp, 1.0, scenes=1, samples=k, threads=a.threads))
        rows.append(bench_indoor(tmp, scenes=2, frames=4 * k, threads=a.threads))
    print(f"\nthreads={a.threads}")
    print("| world | items | generate | load back (peer) | generate / load |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['what']} | {r['items']} | {r['gen_rate']:.2f} {r['unit']} | "
              f"{r['load_rate']:.1f} {r['unit']} | {r['load_rate'] / r['gen_rate']:.1f}x slower |")


if __name__ == "__main__":
    main()
