"""The data split across ranks, and two gloo processes against one process (same global batch)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine_toy import run_toy
from xmodal.engine.distributed import GlobalBatchSampler, steps_per_epoch
from xmodal.errors import ConfigError

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SCRIPT = HERE / "toy_train.py"

# clipping that bites (grad norms are ~2-3), warmup + cosine, sgd with momentum
TRAIN = {"max_steps": 9, "grad_clip": 1.0, "lr": 0.05, "schedule": {"warmup_steps": 2, "warmup_start": 0.1},
         "checkpoint": {"interval": 4}}


def _steps(sampler: GlobalBatchSampler) -> list[list[int]]:
    """The indices of each optimizer step (micro-batches of the step joined)."""
    batches = list(sampler)
    a = sampler.grad_accum
    return [sum(batches[i:i + a], []) for i in range(0, len(batches), a)]


def test_sampler_same_samples_per_step_for_any_split():
    one = _steps(GlobalBatchSampler(22, 4, seed=3, epoch=1))
    accum = _steps(GlobalBatchSampler(22, 2, grad_accum=2, seed=3, epoch=1))
    ranks = [_steps(GlobalBatchSampler(22, 1, world_size=2, rank=r, grad_accum=2, seed=3, epoch=1)) for r in range(2)]
    assert len(one) == 5  # 22 // 4, the incomplete last global batch dropped
    assert accum == one
    for step, indices in enumerate(one):
        merged = [ranks[0][step][0], ranks[1][step][0], ranks[0][step][1], ranks[1][step][1]]
        assert merged == indices  # micro-batch m of rank r: slot m * world + r
    flat = sum(one, [])
    assert len(set(flat)) == len(flat)  # no sample twice in an epoch
    assert _steps(GlobalBatchSampler(22, 4, seed=3, epoch=2)) != one  # a new order per epoch
    assert _steps(GlobalBatchSampler(22, 4, seed=3, epoch=1, start_step=2, stop_step=4)) == one[2:4]


def test_dataset_smaller_than_global_batch_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"3 samples, fewer than one global batch of 8 .*batch_size 2 x 2 processes"):
        steps_per_epoch(3, 2, 2, 2)


def test_grad_accum_equals_big_batch(tmp_path):
    big = run_toy(tmp_path / "big", {**TRAIN, "batch_size": 4}, resume=False)
    accum = run_toy(tmp_path / "accum", {**TRAIN, "batch_size": 2, "grad_accum": 2}, resume=False)
    torch.testing.assert_close(torch.tensor(accum.summary["losses"]), torch.tensor(big.summary["losses"]), rtol=0, atol=1e-6)
    for (name, a), (_, b) in zip(accum.model.state_dict().items(), big.model.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(spec: dict, nproc: int = 2, timeout: float = 180) -> None:
    """torchrun with a static rendezvous on a free port (faster to start than --standalone)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", f"--nproc_per_node={nproc}",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}", str(SCRIPT), json.dumps(spec)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"torchrun failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"


def test_two_gloo_processes_match_one_process(tmp_path):
    """batch 2 x 2 processes, and batch 1 x 2 processes x grad_accum 2 (no_sync), against batch 4
    x 1 process: the same global loss per step and the same final weights."""
    runs = [{"run_dir": str(tmp_path / "ddp"), "train": {**TRAIN, "batch_size": 2}},
            {"run_dir": str(tmp_path / "ddp_accum"), "train": {**TRAIN, "batch_size": 1, "grad_accum": 2}}]
    _torchrun({"runs": runs, "result": str(tmp_path / "result.json")})
    ddp, ddp_accum = json.loads((tmp_path / "result.json").read_text())
    one = run_toy(tmp_path / "one", {**TRAIN, "batch_size": 4}, resume=False)
    want = torch.tensor(one.summary["losses"], dtype=torch.float64)
    for summary, run_dir in ((ddp, "ddp"), (ddp_accum, "ddp_accum")):
        assert summary["global_batch"] == 4 and summary["steps"] == TRAIN["max_steps"]
        torch.testing.assert_close(torch.tensor(summary["losses"], dtype=torch.float64), want, rtol=0, atol=1e-6)
        final = torch.load(tmp_path / run_dir / "model_final.pt", weights_only=True)["model"]
        for name, value in one.model.state_dict().items():
            torch.testing.assert_close(final[name], value, rtol=0, atol=1e-6, msg=f"{run_dir}: {name}")
        # one checkpoint holds the RNG states of both ranks, and the unwrapped (no "module.") keys
        state = torch.load(tmp_path / run_dir / "checkpoints" / "last.pt", weights_only=True)
        assert len(state["rng"]) == 2 and state["world_size"] == 2
        assert set(state["model"]) == set(one.model.state_dict())


def test_dist_train_script():
    script = REPO / "tools" / "dist_train.sh"
    assert os.access(script, os.X_OK)
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    usage = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert usage.returncode == 2 and "NGPUS CONFIG" in usage.stderr
    dry = subprocess.run(["bash", str(script), "2", "configs/x.yaml", "train.lr=0.1"], capture_output=True,
                         text=True, env={**os.environ, "DRY_RUN": "1", "NNODES": "2", "NODE_RANK": "1",
                                         "MASTER_ADDR": "10.0.0.1"})
    assert dry.returncode == 0, dry.stderr
    for part in ("--nnodes=2", "--node_rank=1", "--master_addr=10.0.0.1", "--master_port=29500",
                 "--nproc_per_node=2", "-m xmodal train configs/x.yaml train.lr=0.1"):
        assert part in dry.stdout
