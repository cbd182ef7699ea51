"""``xmodal demo`` / ``make demo``: the main job on the embedded default.

For this release: generate a small driving world (nuScenes format) and a small indoor world
(ScanNet format), prepare both, build both datasets from their configs
(``configs/demo_synth-driving.yaml``, ``configs/demo_synth-indoor.yaml``), write pictures of a
sample of each, and print where everything is. Later releases extend it into the full
distillation pipeline.
"""

from __future__ import annotations

import time
from pathlib import Path

DRIVING_CONFIG = "configs/demo_synth-driving.yaml"
INDOOR_CONFIG = "configs/demo_synth-indoor.yaml"


def _find_config(name: str) -> Path:
    """A config path as given, or relative to the checkout holding the xmodal package."""
    path = Path(name)
    if path.is_file():
        return path
    here = Path(__file__).resolve().parents[2] / name
    return here if here.is_file() else path


def run_demo(
    out: Path,
    config: str | None = None,
    overrides: list[str] | None = None,
    seed: int = 0,
    scenes: int = 2,
    samples: int = 4,
    rooms: int = 1,
    frames: int = 8,
) -> dict:
    """Run the demo into the run folder ``out``; return ``{"paths": [...], "seconds": s}``."""
    from xmodal.config import config_to_dict, load_config
    from xmodal.data.nuscenes_info import prepare_nuscenes
    from xmodal.data.scannet import prepare_scannet
    from xmodal.data.synth.driving import generate_driving_world
    from xmodal.data.synth.indoor import generate_indoor_world
    from xmodal.registry import DATASETS
    from xmodal.utils.run_info import write_run_info
    from xmodal.visualization.driving import render_driving_sample
    from xmodal.visualization.indoor import render_indoor_frame

    t0 = time.perf_counter()
    out = Path(out).absolute()
    driving, indoor = out / "data" / "synth-driving", out / "data" / "synth-indoor"
    infos = {s: driving / "infos" / f"nuscenes_infos_{s}.pkl" for s in ("mini_train", "mini_val")}
    indoor_info = indoor / "infos" / "scannet_infos.json"
    run = [f"work_dir={out.parent}", f"name={out.name}", f"seed={seed}"]
    # Validate both configs before spending time on data: a typo fails here, not at the end.
    cfg = load_config(_find_config(config or DRIVING_CONFIG),
                      [*(overrides or []), *run, f"dataset.info_file={infos['mini_train']}", "dataset.load_masks=true"])
    indoor_cfg = load_config(_find_config(INDOOR_CONFIG), [*run, f"dataset.info_file={indoor_info}"])

    print(f"[1/4] synthetic driving world (nuScenes format) -> {driving}")
    generate_driving_world(driving, scenes=scenes, samples=samples, image_scale=0.25, seed=seed, force=True)
    print("[2/4] prepare nuScenes info files (mini_train / mini_val)")
    for split, path in infos.items():
        prepare_nuscenes(driving, "v1.0-mini", path, split=split, max_sweeps=10, progress=False)
    print(f"[3/4] synthetic indoor world (ScanNet format) -> {indoor}, and its info file")
    generate_indoor_world(indoor, scenes=rooms, frames=frames, seed=seed, force=True)
    prepare_scannet(indoor, indoor_info, split=("train", "val"), progress=False)

    print("[4/4] pictures")
    driving_ds = DATASETS.build(cfg.dataset)
    paths = render_driving_sample(driving_ds[0], out / "vis" / "driving")
    indoor_ds = DATASETS.build(indoor_cfg.dataset)
    paths += render_indoor_frame(indoor_ds[0], min(3, frames - 1), out / "vis" / "indoor")
    write_run_info(out, cfg, extra={"demo": True, "indoor_config": config_to_dict(indoor_cfg)})
    seconds = time.perf_counter() - t0
    print(f"\ndone in {seconds:.0f} s. Run folder: {out}  (config.yaml, run_info.json)")
    print("pictures:")
    for p in paths:
        print(f"  {p}")
    return {"paths": [str(p) for p in paths], "seconds": seconds}
