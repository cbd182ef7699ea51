"""Resume after a real SIGKILL continues exactly; a NaN loss stops with the last good checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from engine_toy import ToyDataset, ToyModel, collate, make_config, prepare_batch, run_toy
from xmodal.engine import NonFiniteLossError, Trainer
from xmodal.engine.checkpoint import load_checkpoint

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

# 20 samples / global batch 4 = 5 steps per epoch: the checkpoint at step 6 is mid-epoch 1.
# adamw (moment buffers), warmup + cosine, dropout (the torch RNG), augmentation per epoch.
TRAIN = {"batch_size": 4, "max_steps": 13, "lr": 0.02, "optimizer": {"type": "adamw"}, "weight_decay": 0.01,
         "schedule": {"warmup_steps": 3, "warmup_start": 0.1, "min_lr_ratio": 0.05}, "checkpoint": {"interval": 3, "keep": 2},
         "log": {"interval": 1}}
OPTS = {"n": 20, "dropout": 0.3}


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    run_dir = tmp_path / "killed"
    spec = {"runs": [{"run_dir": str(run_dir), "train": TRAIN, "opts": {**OPTS, "sleep": 0.3, "sleep_after": 5}}]}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, str(HERE / "toy_train.py"), json.dumps(spec)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    target = run_dir / "checkpoints" / "step_0000006.pt"
    deadline = time.monotonic() + 120
    while not target.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    child.send_signal(signal.SIGKILL)
    _, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, f"the child ended before it was killed:\n{err.decode()[-3000:]}"
    assert not (run_dir / "model_final.pt").exists()
    killed_at = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert 3 <= killed_at["step"] < TRAIN["max_steps"]
    lines_before = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x.strip()]

    resumed = run_toy(run_dir, TRAIN, **OPTS)  # resume="auto": from checkpoints/last.pt
    full = run_toy(tmp_path / "full", TRAIN, resume=False, **OPTS)

    k = killed_at["step"]
    assert resumed.summary["resumed_from"].endswith("last.pt") and resumed.summary["start_step"] == k
    assert resumed.summary["losses"] == full.summary["losses"]  # bitwise, before and after the resume point
    for name, value in full.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), name
    final_opt, full_opt = resumed.trainer.optimizer.state_dict(), full.trainer.optimizer.state_dict()
    for pid, st in full_opt["state"].items():
        assert torch.equal(final_opt["state"][pid]["exp_avg_sq"], st["exp_avg_sq"])
    assert resumed.trainer.scheduler.state_dict()["last_epoch"] == TRAIN["max_steps"]
    # metrics.jsonl: the killed run's lines after the resume point were replaced, one line per step
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == list(range(1, TRAIN["max_steps"] + 1))
    assert [r["loss"] for r in lines] == full.summary["losses"]
    assert len(lines_before) >= k
    assert not list((run_dir / "checkpoints").glob(".*")), "temp files of the killed run are cleaned up"


def test_mid_epoch_checkpoint_resumes_exactly(tmp_path):
    """In one process: a new run folder resumes from the step-6 checkpoint (mid-epoch 1) of a
    finished run, by path, and repeats its steps 7..13 bitwise."""
    train = {**TRAIN, "checkpoint": {"interval": 3, "keep": 5}}
    full = run_toy(tmp_path / "full", train, resume=False, **OPTS)
    middle = tmp_path / "full" / "checkpoints" / "step_0000006.pt"
    state = load_checkpoint(middle)
    assert (state["epoch"], state["step_in_epoch"], state["step"]) == (1, 1, 6)
    assert set(state["rng"][0]) >= {"python", "numpy", "torch"} and state["scheduler"]["last_epoch"] == 6
    assert state["config"]["train"]["batch_size"] == 4 and state["losses"].tolist() == full.summary["losses"][:6]
    resumed = run_toy(tmp_path / "again", train, resume=str(middle), **OPTS)
    assert resumed.summary["start_step"] == 6
    assert resumed.summary["losses"] == full.summary["losses"]
    for name, value in full.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), name


def test_resume_with_another_global_batch_is_refused(tmp_path):
    from xmodal.errors import ConfigError

    run_toy(tmp_path / "run", {**TRAIN, "max_steps": 3}, **OPTS)
    with pytest.raises(ConfigError, match="global_batch 4, this run has 2"):
        run_toy(tmp_path / "run", {**TRAIN, "batch_size": 2}, **OPTS)


def test_nan_loss_stops_with_the_last_good_checkpoint(tmp_path):
    run_dir = tmp_path / "nan"
    train = {**TRAIN, "max_steps": 12, "checkpoint": {"interval": 2, "keep": 2}}
    model = ToyModel(dropout=OPTS["dropout"], nan_at_call=5)
    trainer = Trainer(make_config(train), model, ToyDataset(OPTS["n"]), collate, run_dir, prepare_batch=prepare_batch,
                      progress=False, device=torch.device("cpu"))
    with pytest.raises(NonFiniteLossError) as info:
        trainer.fit()
    message = str(info.value)
    good = run_dir / "checkpoints" / "step_0000004.pt"
    assert "non-finite loss (nan) at step 5 (epoch 0, step 5 of 5" in message
    assert str(good) in message and "train.lr" in message and "train.grad_clip" in message and "train.amp=off" in message
    state = load_checkpoint(good)  # intact and loadable
    assert state["step"] == 4 and len(state["losses"]) == 4 and torch.isfinite(state["losses"]).all()
    for name, value in model.state_dict().items():  # no optimizer step on the NaN step
        assert torch.equal(state["model"][name], value), name
    assert trainer.step == 4 and trainer.scheduler.last_epoch == 4
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"] == 4
    assert not (run_dir / "checkpoints" / "step_0000005.pt").exists() and not (run_dir / "model_final.pt").exists()
    # a resume from it starts at step 4 with the good weights (the NaN step changed nothing)
    resumed = run_toy(run_dir, {**TRAIN, "max_steps": 6, "checkpoint": {"interval": 2, "keep": 2}}, **OPTS)
    assert resumed.summary["start_step"] == 4 and all(map(lambda v: v == v, resumed.summary["losses"]))


def test_nan_before_any_checkpoint_says_so(tmp_path):
    with pytest.raises(NonFiniteLossError, match="at step 2 .*No checkpoint was written before it"):
        run_toy(tmp_path / "nan", {**TRAIN, "checkpoint": {"interval": 0}}, nan_at_call=2, **OPTS)
    assert not (tmp_path / "nan" / "checkpoints").exists()
