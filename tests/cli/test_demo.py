"""The main job end to end on a tiny world: world, superpixels, tiny CLIP, teacher cache, both
distillation recipes, three linear probes, the supervised row, the devkit-scored export, the
report and the pictures (the figures themselves are measured by `make demo`, docs/benchmarks.md)."""

import json

from xmodal.cli.demo import run_demo


def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    res = run_demo(out, scenes=2, samples=2, steps=2, fit_steps=4, progress=False)
    assert set(res["miou"]) == {"lp-random", "lp-slidr", "lp-pointwise", "supervised"}
    assert all(v is not None and 0 <= v <= 1 for v in res["miou"].values())
    assert abs(res["devkit_miou_lp_slidr"] - res["miou"]["lp-slidr"]) < 1e-6  # the devkit agrees with xmodal
    report = (out / "report.md").read_text()
    assert "| method | mIoU |" in report and "supervised" in report
    assert json.loads((out / "metrics.json").read_text())["miou"] == res["miou"]
    for run in ("pretrain-slidr", "pretrain-pointwise"):
        assert (out / "runs" / run / "model_final.pt").is_file() and (out / "runs" / run / "metrics.jsonl").is_file()
    metrics = json.loads((out / "runs" / "lp-slidr" / "metrics.json").read_text())
    assert metrics["protocol"]["checkpoint_choice"] == "last" and "tiny_clip" in metrics["teacher"]["name"]
    assert metrics["seed"] == 0 and metrics["git"] and metrics["wall_time_s"] > 0
    assert all((out / "vis" / p).exists() for p in ("distillation_features.png",))


def test_reading_names_the_rows_short_of_the_target():
    from xmodal.cli.demo import _reading

    assert _reading({"slidr": 13.4, "pointwise": 10.0}).endswith("— met.")
    text = _reading({"slidr": 13.4, "pointwise": 9.0})
    assert "NOT met by pointwise" in text and "slidr" not in text.split("NOT met by")[1].split(" in this run")[0]
