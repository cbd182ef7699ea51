"""The command line: help texts, info, config printing and error exits."""

import json
from pathlib import Path

import pytest

from xmodal.cli.main import main

DEMO_CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "demo_synth-driving.yaml")


@pytest.mark.parametrize(
    "argv",
    [[], ["synth"], ["synth", "driving"], ["synth", "indoor"], ["prepare", "nuscenes"],
     ["prepare", "scannet"], ["vis", "sample"], ["config"], ["info"], ["demo"]],
)
def test_help_reads(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main([*argv, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage: xmodal" in out and len(out) > 100


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"xmodal", "packages", "devices", "backends"}
    assert report["packages"]["torch"][0].isdigit()
    assert "cuda available" in report["devices"]


def test_config_prints_resolved_yaml(capsys):
    assert main(["config", DEMO_CONFIG, "train.lr=0.01", "dataset.sweeps=2"]) == 0
    out = capsys.readouterr().out
    assert "lr: 0.01" in out and "sweeps: 2" in out and "type: nuscenes" in out


def test_config_errors_exit_2_with_the_key(capsys):
    assert main(["config", DEMO_CONFIG, "train.bach_size=3"]) == 2
    err = capsys.readouterr().err
    assert "train.bach_size" in err and "batch_size" in err and "Traceback" not in err


def test_bad_numbers_are_rejected_by_argparse(capsys):
    with pytest.raises(SystemExit) as e:
        main(["synth", "driving", "--out", "x", "--scenes", "0"])
    assert e.value.code == 2
    assert "--scenes" in capsys.readouterr().err


def test_printed_config_loads_back(tmp_path, capsys):
    from xmodal.config import load_config

    assert main(["config", DEMO_CONFIG, "name='1e-3'", "train.lr=0.5"]) == 0
    (tmp_path / "r.yaml").write_text(capsys.readouterr().out)
    assert load_config(tmp_path / "r.yaml") == load_config(DEMO_CONFIG, ["name='1e-3'", "train.lr=0.5"])
