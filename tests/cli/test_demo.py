"""`xmodal demo` (what `make demo` runs), end to end on tiny worlds."""

import json

from xmodal.cli.demo import run_demo
from xmodal.config import load_config


def test_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    res = run_demo(out, scenes=2, samples=2, rooms=1, frames=4)
    names = sorted(p.rsplit("/", 2)[-2] + "/" + p.rsplit("/", 1)[-1] for p in res["paths"])
    assert names == ["driving/bev.png", "driving/projection_class.png", "driving/projection_depth.png",
                     "driving/projection_mask.png", "indoor/frame_projection.png"]
    assert all((out / "vis").rglob("*.png"))
    cfg = load_config(out / "config.yaml")  # the resolved config loads back
    assert cfg.name == "demo" and cfg.dataset.info_file == str(out / "data" / "synth-driving" / "infos" / "nuscenes_infos_mini_train.pkl")
    info = json.loads((out / "run_info.json").read_text())
    assert info["git"]["sha"] and info["packages"]["torch"] and info["extra"]["demo"] is True
    printed = capsys.readouterr().out
    assert "pictures:" in printed and str(out / "vis" / "driving" / "bev.png") in printed
