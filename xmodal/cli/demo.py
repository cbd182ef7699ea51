"""``xmodal demo`` / ``make demo``: the main job on the embedded default.

For this release: generate a small driving world (nuScenes format) and a small indoor world
(ScanNet format), prepare both, load a sample of each through the config-built datasets, write
the pictures, and print where everything is. Later releases extend it into the full
distillation pipeline.
"""

from __future__ import annotations

import time
from pathlib import Path

DEFAULT_CONFIG = "configs/demo_synth-driving.yaml"
INDOOR_CONFIG = "configs/demo_synth-indoor.yaml"


def _find_config(name: str) -> Path:
    """A config path as given, or relative to the checkout holding the xmodal package."""
    path = Path(name)
    if path.is_file():
        return path
    here = Path(__file__).resolve().parents[2] / name
    return here if here.is_file() else path


def run_demo(out: Path, config: str | None = None, overrides: list[str] | None = None, seed: int = 0) -> dict:
    from xmodal.config import load_config
    from xmodal.data.nuscenes_info import prepare_nuscenes
    from xmodal.data.scannet import prepare_scannet
    from xmodal.data.synth.driving import generate_driving_world
    from xmodal.data.synth.indoor import generate_indoor_world
    from xmodal.registry import DATASETS
    from xmodal.utils.run_info import write_run_info
    from xmodal.visualization.driving import render_driving_sample
    from xmodal.visualization.indoor import render_indoor_sample

    t0 = time.perf_counter()
    out = Path(out)
    driving, indoor = out / "data" / "synth-driving", out / "data" / "synth-indoor"
    # Validate the config before spending time on data: a typo fails here, not at the end.
    infos = {s: driving / "infos" / f"nuscenes_infos_{s}.pkl" for s in ("mini_train", "mini_val")}
    ov = [*(overrides or []), f"dataset.info_file={infos['mini_train']}", f"seed={seed}"]
    cfg = load_config(_find_config(config or DEFAULT_CONFIG), ov)

    print(f"[1/4] synthetic driving world (nuScenes format) -> {driving}")
    generate_driving_world(driving, scenes=2, samples=4, image_scale=0.25, seed=seed, force=True)
    print("[2/4] prepare nuScenes info files (mini_train / mini_val)")
    for split, path in infos.items():
        prepare_nuscenes(driving, "v1.0-mini", path, split=split, max_sweeps=10, progress=False)
    print(f"[3/4] synthetic indoor world (ScanNet format) -> {indoor}")
    generate_indoor_world(indoor, scenes=1, frames=8, seed=seed, force=True)
    indoor_info = indoor / "infos" / "scannet_infos_train.json"
    prepare_scannet(indoor, indoor_info, split=("train", "val"), progress=False)

    print("[4/4] pictures")
    cfg.dataset.load_masks = True
    dataset = DATASETS.build(cfg.dataset)
    paths = render_driving_sample(dataset[0], out / "vis" / "driving")
    paths += render_indoor_sample(indoor_info, 0, out / "vis" / "indoor")
    write_run_info(out, cfg, extra={"demo": True, "indoor_info": str(indoor_info)})
    seconds = time.perf_counter() - t0
    print(f"\ndone in {seconds:.0f} s. Run folder: {out}  (config.yaml, run_info.json)")
    print("pictures:")
    for p in paths:
        print(f"  {p}")
    return {"paths": [str(p) for p in paths], "seconds": seconds}
