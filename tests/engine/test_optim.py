"""Optimizers, head_lr groups and the warmup + cosine / constant schedule against the formula."""

from __future__ import annotations

import json
import math

import pytest
import torch

from engine_toy import ToyModel, make_config, run_toy
from xmodal.config.schema import ScheduleConfig
from xmodal.engine.optim import build_optimizer, build_scheduler, lr_factor
from xmodal.errors import ConfigError


def reference(i: int, total: int, warmup: int, start: float, floor: float, kind: str) -> float:
    """Written out by hand: linear from start to 1 over the warmup, then half a cosine to floor."""
    if i < warmup:
        return start + (1 - start) * i / warmup
    if kind == "constant":
        return 1.0
    t = (i - warmup) / (total - 1 - warmup)
    return floor + (1 - floor) * (1 + math.cos(math.pi * t)) / 2


@pytest.mark.parametrize("kind", ["cosine", "constant"])
def test_lr_factor_matches_formula(kind):
    sched = ScheduleConfig(type=kind, warmup_steps=4, warmup_start=0.1, min_lr_ratio=0.05)
    total = 20
    for i in range(total):
        assert lr_factor(i, total, sched) == pytest.approx(reference(i, total, 4, 0.1, 0.05, kind), abs=1e-12)
    assert lr_factor(0, total, sched) == pytest.approx(0.1)
    assert lr_factor(4, total, sched) == pytest.approx(1.0)  # first step after warmup: full lr
    if kind == "cosine":
        assert lr_factor(total - 1, total, sched) == pytest.approx(0.05)  # last step: min_lr_ratio
        assert lr_factor(4 + 15 // 2, total, sched) < 0.6


def test_scheduler_steps_the_optimizer_groups():
    model = ToyModel()
    cfg = make_config({"lr": 0.1, "optimizer": {"type": "sgd", "head_lr": 0.4},
                       "schedule": {"warmup_steps": 2, "warmup_start": 0.5, "min_lr_ratio": 0.1}})
    opt = build_optimizer(model, cfg.train)
    sched = build_scheduler(opt, cfg.train.schedule, total_steps=6)
    seen = []
    for _ in range(6):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    for i, (body, head) in enumerate(seen):
        f = reference(i, 6, 2, 0.5, 0.1, "cosine")
        assert body == pytest.approx(0.1 * f) and head == pytest.approx(0.4 * f)


def test_head_lr_groups_by_name_prefix():
    model = ToyModel()
    cfg = make_config({"lr": 0.01, "weight_decay": 1e-4, "optimizer": {"type": "adamw", "head_lr": 2.0, "betas": [0.8, 0.9]}})
    opt = build_optimizer(model, cfg.train)
    assert isinstance(opt, torch.optim.AdamW)
    body, head = opt.param_groups
    assert body["name"] == "body" and body["lr"] == 0.01 and head["name"] == "head" and head["lr"] == 2.0
    assert {id(p) for p in head["params"]} == {id(p) for p in model.head.parameters()}
    assert {id(p) for p in body["params"]} == {id(p) for p in model.body.parameters()}
    assert head["betas"] == (0.8, 0.9) and head["weight_decay"] == 1e-4
    one = build_optimizer(model, make_config({"lr": 0.01}).train)
    assert len(one.param_groups) == 1 and one.defaults["momentum"] == 0.9 and one.defaults["dampening"] == 0.1


def test_sgd_nesterov_and_adam():
    model = ToyModel()
    sgd = build_optimizer(model, make_config({"optimizer": {"type": "sgd", "nesterov": True, "dampening": 0.0}}).train)
    assert sgd.defaults["nesterov"] and sgd.defaults["momentum"] == 0.9
    assert isinstance(build_optimizer(model, make_config({"optimizer": {"type": "adam"}}).train), torch.optim.Adam)


def test_head_lr_without_a_head_is_a_config_error():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with pytest.raises(ConfigError, match=r"no trainable parameter named 'head\.\*' .*top-level modules: 0"):
        build_optimizer(model, make_config({"optimizer": {"head_lr": 1.0}}).train)


def test_logged_lr_follows_the_schedule(tmp_path):
    train = {"batch_size": 4, "max_steps": 10, "lr": 0.05, "optimizer": {"head_lr": 0.2},
             "schedule": {"warmup_steps": 3, "warmup_start": 0.2, "min_lr_ratio": 0.1}, "log": {"interval": 1}}
    run_toy(tmp_path / "run", train)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    for rec in lines:
        f = reference(rec["step"] - 1, 10, 3, 0.2, 0.1, "cosine")
        assert rec["lr"] == pytest.approx(0.05 * f) and rec["lr_groups"]["head"] == pytest.approx(0.2 * f)
