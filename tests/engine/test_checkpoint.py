"""Init-from-weights (remap + report), atomic checkpoint files, rotation and last.pt."""

from __future__ import annotations

import json

import pytest
import torch

from engine_toy import ToyModel, run_toy
from xmodal.engine import checkpoint as ckpt
from xmodal.engine.checkpoint import load_weights, remap_keys
from xmodal.errors import ConfigError, DataError


def _foreign_weights(path):
    """A 'student.'-prefixed state dict: body matches, head.weight has another shape, head.bias
    is absent, and one extra tensor the model lacks."""
    src = ToyModel(seed=7)
    state = {f"student.{k}": v for k, v in src.state_dict().items() if not k.startswith("head.")}
    state["student.head.weight"] = torch.zeros(3, 16)
    state["student.proj.weight"] = torch.zeros(4, 4)
    torch.save({"state_dict": state, "epoch": 3}, path)
    return src


def test_remap_rules_apply_in_order_and_refuse_collisions():
    t = torch.zeros(1)
    out = remap_keys({"module.backbone.a": t, "module.head.b": t}, [["module.", ""], ["backbone.", "body."]])
    assert set(out) == {"body.a", "head.b"}
    with pytest.raises(ConfigError, match="renames both"):
        remap_keys({"a.x": t, "b.x": t}, [["a.", ""], ["b.", ""]])


def test_strict_init_lists_missing_unexpected_and_mismatched(tmp_path):
    path = tmp_path / "w.pt"
    _foreign_weights(path)
    model = ToyModel(seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ConfigError) as info:
        load_weights(model, path, remap=[["student.", ""]], strict=True)
    message = str(info.value)
    assert "missing in the file (1): head.bias" in message
    assert "unexpected, not in the model (1): proj.weight" in message
    assert "shape mismatch, not loaded (1): head.weight file [3, 16] vs model [1, 16]" in message
    assert "train.init.strict=false" in message
    for k, v in model.state_dict().items():  # strict failure loads nothing
        assert torch.equal(v, before[k])


def test_non_strict_init_loads_what_matches_and_reports(tmp_path):
    path = tmp_path / "w.pt"
    src = _foreign_weights(path)
    model = ToyModel(seed=0)
    head_before = model.head.weight.detach().clone()
    report = load_weights(model, path, remap=[["student.", ""]])
    assert report["loaded"] == 2 and report["model_keys"] == 4
    assert report["missing"] == ["head.bias"] and report["unexpected"] == ["proj.weight"]
    assert report["mismatched"] == [{"key": "head.weight", "checkpoint": [3, 16], "model": [1, 16]}]
    assert torch.equal(model.body[0].weight, src.body[0].weight)
    assert torch.equal(model.head.weight, head_before)
    # without the remap nothing matches: all model keys missing
    assert load_weights(ToyModel(), path)["loaded"] == 0


def test_trainer_init_from_writes_report_and_trains(tmp_path):
    path = tmp_path / "w.pt"
    src = _foreign_weights(path)
    train = {"batch_size": 4, "max_steps": 2, "lr": 1e-9, "init": {"path": str(path), "remap": [["student.", ""]]}}
    run = run_toy(tmp_path / "run", train)
    report = json.loads((tmp_path / "run" / "init_report.json").read_text())
    assert report["missing"] == ["head.bias"] and report["loaded"] == 2
    torch.testing.assert_close(run.model.body[0].weight, src.body[0].weight, atol=1e-6, rtol=0)
    with pytest.raises(ConfigError, match="head.bias"):
        run_toy(tmp_path / "strict", {**train, "init": {**train["init"], "strict": True}})
    # a model_final.pt of a finished run is an init source too (its state dict is under "model")
    again = load_weights(ToyModel(), tmp_path / "run" / "model_final.pt", strict=True)
    assert again["loaded"] == 4 and not again["missing"]


def test_resume_wins_over_init(tmp_path):
    path = tmp_path / "w.pt"
    _foreign_weights(path)
    train = {"batch_size": 4, "max_steps": 2, "init": {"path": str(path), "remap": [["student.", ""]]}}
    run_toy(tmp_path / "run", train)
    (tmp_path / "run" / "init_report.json").unlink()
    resumed = run_toy(tmp_path / "run", {**train, "max_steps": 4})
    assert resumed.summary["start_step"] == 2 and not (tmp_path / "run" / "init_report.json").exists()


def test_missing_or_foreign_files_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="check train.init.path"):
        load_weights(ToyModel(), tmp_path / "nope.pt")
    torch.save({"weights": [1, 2]}, tmp_path / "odd.pt")
    with pytest.raises(DataError, match="holds no model weights"):
        load_weights(ToyModel(), tmp_path / "odd.pt")
    with pytest.raises(DataError, match="not an xmodal training checkpoint"):
        ckpt.load_checkpoint(tmp_path / "odd.pt")


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    """A save that fails half-way leaves neither a partial file nor a changed last.pt."""
    run_toy(tmp_path / "run", {"batch_size": 4, "max_steps": 2, "checkpoint": {"interval": 1}})
    cdir = tmp_path / "run" / "checkpoints"
    good = ckpt.load_checkpoint(cdir / "last.pt")
    real_save = torch.save

    def failing_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip")  # some bytes reach the file, then the disk fills up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="No space"):
        ckpt.save_checkpoint({"format": "x"}, cdir / "step_0000003.pt")
    monkeypatch.setattr(torch, "save", real_save)
    assert sorted(p.name for p in cdir.iterdir()) == ["last.pt", "step_0000001.pt", "step_0000002.pt"]
    assert ckpt.load_checkpoint(cdir / "last.pt")["step"] == good["step"] == 2


def test_rotation_keeps_the_newest_and_last_is_a_whole_checkpoint(tmp_path):
    run_toy(tmp_path / "run", {"batch_size": 4, "max_steps": 7, "checkpoint": {"interval": 2, "keep": 2}})
    cdir = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in cdir.iterdir()) == ["last.pt", "step_0000006.pt", "step_0000007.pt"]
    last = ckpt.load_checkpoint(cdir / "last.pt")
    assert last["step"] == 7 and last["epoch"] == 1 and last["step_in_epoch"] == 1
    final = torch.load(tmp_path / "run" / "model_final.pt", weights_only=True)
    assert set(final) == {"model", "config", "step"} and final["step"] == 7
    for k, v in final["model"].items():
        assert torch.equal(v, last["model"][k])
