"""The engine on CUDA: fp16 with GradScaler, bf16, and an exact resume with the CUDA RNG state."""

from __future__ import annotations

import pytest
import torch

from engine_toy import run_toy
from xmodal.engine.checkpoint import load_checkpoint

pytestmark = pytest.mark.gpu

TRAIN = {"batch_size": 4, "max_steps": 8, "lr": 0.02, "optimizer": {"type": "adamw"},
         "checkpoint": {"interval": 3, "keep": 5}, "grad_clip": 1.0}


@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_amp_on_cuda(tmp_path, amp):
    run = run_toy(tmp_path / amp, {**TRAIN, "amp": amp}, device="cuda", dropout=0.2)
    assert run.model.last_dtype == (torch.float16 if amp == "fp16" else torch.bfloat16)
    assert all(v == v for v in run.summary["losses"])
    state = load_checkpoint(tmp_path / amp / "checkpoints" / "last.pt")
    assert (state["scaler"] is not None) == (amp == "fp16") and "cuda" in state["rng"][0]
    assert next(run.model.parameters()).device.type == "cuda"


def test_resume_on_cuda_is_exact(tmp_path):
    train = {**TRAIN, "amp": "fp16"}
    full = run_toy(tmp_path / "full", train, device="cuda", dropout=0.2, resume=False)
    again = run_toy(tmp_path / "again", train, device="cuda", dropout=0.2,
                    resume=str(tmp_path / "full" / "checkpoints" / "step_0000003.pt"))
    assert again.summary["losses"] == full.summary["losses"]
    for name, value in full.model.state_dict().items():
        assert torch.equal(again.model.state_dict()[name], value), name
