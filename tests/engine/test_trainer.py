"""The loop around the step: AMP, logs, run folder, skipped samples, workers, hooks."""

from __future__ import annotations

import json

import pytest
import torch

from engine_toy import ToyDataset, ToyModel, collate, make_config, prepare_batch, run_toy
from xmodal.config import load_config
from xmodal.engine import Hook, Trainer
from xmodal.errors import ConfigError


def test_bf16_autocast_on_cpu(tmp_path):
    run = run_toy(tmp_path / "bf16", {"batch_size": 4, "max_steps": 3, "amp": "bf16"})
    assert run.model.last_dtype == torch.bfloat16  # the body ran under autocast
    assert all(v == v for v in run.summary["losses"]) and run.model.body[0].weight.dtype == torch.float32
    fp32 = run_toy(tmp_path / "fp32", {"batch_size": 4, "max_steps": 3})
    assert fp32.model.last_dtype == torch.float32
    torch.testing.assert_close(torch.tensor(run.summary["losses"]), torch.tensor(fp32.summary["losses"]), atol=0.05, rtol=0.05)


def test_fp16_on_cpu_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="train.amp=fp16 needs a CUDA device.*bf16"):
        run_toy(tmp_path / "fp16", {"batch_size": 4, "max_steps": 1, "amp": "fp16"})


def test_run_folder_and_metrics(tmp_path):
    run = run_toy(tmp_path / "run", {"batch_size": 4, "max_steps": 7, "grad_clip": 0.5,
                                     "log": {"interval": 3, "tensorboard": True}})
    rd = tmp_path / "run"
    lines = [json.loads(x) for x in (rd / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 3, 6, 7]  # step 1, every 3rd, the last
    first = lines[0]
    assert set(first) >= {"step", "epoch", "loss", "lr", "grad_norm", "logs", "samples_per_s", "skipped"}
    assert first["loss"] == run.summary["losses"][0] and "mae" in first["logs"] and first["grad_norm"] > 0.5
    assert lines[-1]["epoch"] == 1  # 6 steps per epoch: step 7 is in epoch 1
    assert list((rd / "tb").glob("events.out.tfevents.*"))
    assert load_config(rd / "config.yaml") == make_config({"batch_size": 4, "max_steps": 7, "grad_clip": 0.5,
                                                           "log": {"interval": 3, "tensorboard": True}})
    info = json.loads((rd / "run_info.json").read_text())
    assert "git" in info and info["extra"]["world_size"] == 1 and info["extra"]["global_batch"] == 4
    s = run.summary
    assert (s["steps"], s["steps_per_epoch"], s["last_loss"], len(s["losses"])) == (7, 6, s["losses"][-1], 7)
    assert s["epochs"] == pytest.approx(7 / 6) and s["wall_time_s"] > 0 and s["skipped_samples"] == 0


def test_skipped_samples_are_counted_and_warned(tmp_path):
    with pytest.warns(UserWarning) as caught:
        run = run_toy(tmp_path / "run", {"batch_size": 4, "epochs": 1, "log": {"interval": 1}}, drop=(0, 5))
    messages = [str(w.message) for w in caught]
    assert any("the collate dropped 1 sample of the global batch of 4" in m for m in messages)  # first one
    assert any("epoch 0: the collate dropped 2 samples (2 in the run so far)" in m for m in messages)
    assert run.summary["skipped_samples"] == 2
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert sum(r["skipped"] for r in lines) == 2 and lines[-1]["skipped_total"] == 2


def test_set_epoch_reaches_dataloader_workers(tmp_path):
    """Workers are re-created each epoch, so they see set_epoch: 2 workers = in-process loading."""
    train = {"batch_size": 4, "max_steps": 10}
    inproc = run_toy(tmp_path / "w0", {**train, "num_workers": 0})
    workers = run_toy(tmp_path / "w2", {**train, "num_workers": 2})
    assert workers.summary["losses"] == inproc.summary["losses"]
    data = ToyDataset()  # and the epoch matters: a worker stuck at epoch 0 would differ
    first = data[3][0]
    data.set_epoch(1)
    assert not torch.equal(first, data[3][0])


class Recorder(Hook):
    def __init__(self):
        self.events = []
        self.count = 0

    def on_train_start(self, trainer):
        self.events.append(("start", trainer.step))

    def on_step_end(self, trainer, step, outputs):
        self.count += 1
        self.events.append(("step", step, round(outputs["loss"], 6) == round(trainer.losses[-1], 6)))

    def on_epoch_end(self, trainer, epoch):
        self.events.append(("epoch", epoch))

    def on_train_end(self, trainer):
        self.events.append(("end", trainer.step))

    def state_dict(self):
        return {"count": self.count}

    def load_state_dict(self, state):
        self.count = state["count"]


def test_hooks_order_and_state(tmp_path):
    rec = Recorder()
    run_toy(tmp_path / "run", {"batch_size": 4, "max_steps": 7}, hooks=[rec])
    assert rec.events[0] == ("start", 0) and rec.events[-1] == ("end", 7)
    assert rec.events[1:8] == [("step", s, True) for s in range(1, 7)] + [("epoch", 0)]
    again = Recorder()
    run_toy(tmp_path / "run", {"batch_size": 4, "max_steps": 9}, hooks=[again])  # resumes at 7
    assert again.count == 9  # 7 from the checkpoint + 2 new


def test_bad_model_output_and_tiny_dataset(tmp_path):
    class NoLoss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, batch):
            return {"loss": torch.zeros(3) + self.w}

    trainer = Trainer(make_config({"batch_size": 4, "max_steps": 1}), NoLoss(), ToyDataset(), collate,
                      tmp_path / "bad", prepare_batch=prepare_batch, progress=False, device=torch.device("cpu"))
    with pytest.raises(TypeError, match=r"scalar tensor.*loss Tensor\(3,\)"):
        trainer.fit()
    with pytest.raises(ConfigError, match="3 samples, fewer than one global batch of 4"):
        Trainer(make_config({"batch_size": 4}), ToyModel(), ToyDataset(n=3), collate, tmp_path / "tiny")
