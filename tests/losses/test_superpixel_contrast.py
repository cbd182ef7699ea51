"""SLidR's superpixel InfoNCE: pooling against the one-hot reference, the loss against a
hand-written loop, properties, and cross-process negatives with two gloo processes."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

from xmodal.losses.superpixel_contrast import superpixel_info_nce, superpixel_pool, superpixel_pool_reference
from xmodal.structures import PixelPairs


def _inputs(seed=0, images=2, H=6, W=7, K=9, C=5, N=40, M=60, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    sp = torch.randint(-1, K, (images, H, W), generator=g)  # -1: pixels outside any superpixel
    sp[sp == 3] = 4  # superpixel 3 is empty
    pairs = PixelPairs(
        torch.randint(0, N, (M,), generator=g), torch.randint(0, images, (M,), generator=g),
        torch.randint(0, H, (M,), generator=g), torch.randint(0, W, (M,), generator=g),
    )
    f = torch.randn(N, C, generator=g, dtype=dtype)
    pix = torch.randn(images, C, H, W, generator=g, dtype=dtype)
    return f, pix, pairs, sp, K


def _hand_written(f, pix, pairs, sp, K, tau, symmetric=False):
    ks, qs = [], []
    for s in range(K):
        rows = [pairs.point[m] for m in range(len(pairs)) if sp[pairs.camera[m], pairs.row[m], pairs.col[m]] == s]
        if not rows:
            continue
        ks.append(torch.stack([f[r] for r in rows]).mean(0))
        pixels = (sp == s).nonzero()
        qs.append(torch.stack([pix[i, :, y, x] for i, y, x in pixels]).mean(0))
    total = 0.0
    for i in range(len(ks)):
        num = math.exp(float(ks[i] @ qs[i]) / tau)
        den = sum(math.exp(float(ks[i] @ q) / tau) for q in qs)
        total += -math.log(num / den)
    loss = total / len(ks)
    if symmetric:
        back = sum(-math.log(math.exp(float(qs[i] @ ks[i]) / tau) / sum(math.exp(float(qs[i] @ k) / tau) for k in ks)) for i in range(len(ks)))
        loss = 0.5 * (loss + back / len(ks))
    return loss


def test_pool_matches_one_hot_reference_forward_and_backward():
    f, pix, pairs, sp, K = _inputs()
    a = [f.clone().requires_grad_(True), pix.clone().requires_grad_(True)]
    b = [f.clone().requires_grad_(True), pix.clone().requires_grad_(True)]
    ka, qa, na = superpixel_pool(a[0], a[1], pairs, sp, K)
    kb, qb, nb = superpixel_pool_reference(b[0], b[1], pairs, sp, K)
    torch.testing.assert_close(ka, kb)
    torch.testing.assert_close(qa, qb)
    assert torch.equal(na, nb) and na[3] == 0 and (ka[3] == 0).all()
    w = torch.randn(K, f.shape[1], dtype=f.dtype)
    ((ka * w).sum() + (qa * w).sum()).backward()
    ((kb * w).sum() + (qb * w).sum()).backward()
    torch.testing.assert_close(a[0].grad, b[0].grad)
    torch.testing.assert_close(a[1].grad, b[1].grad)


@pytest.mark.parametrize("symmetric", [False, True])
def test_loss_equals_hand_written_formula(symmetric):
    f, pix, pairs, sp, K = _inputs(seed=1)
    loss, logs = superpixel_info_nce(f, pix, pairs, sp, K, temperature=0.07, symmetric=symmetric)
    assert loss.item() == pytest.approx(_hand_written(f, pix, pairs, sp, K, 0.07, symmetric), rel=1e-9)
    assert logs["num_superpixels"] == 8  # the empty superpixel is masked out


def test_properties():
    f, pix, pairs, sp, K = _inputs(seed=2)
    base, _ = superpixel_info_nce(f, pix, pairs, sp, K)
    perm = torch.randperm(K)  # relabelling superpixels changes nothing
    relabelled = torch.where(sp >= 0, perm[sp.clamp(min=0)], sp)
    again, _ = superpixel_info_nce(f, pix, pairs, relabelled, K)
    assert again.item() == pytest.approx(base.item(), rel=1e-9)
    # gradient only on points that are paired inside a superpixel
    x = f.clone().requires_grad_(True)
    superpixel_info_nce(x, pix, pairs, sp, K)[0].backward()
    inside = sp[pairs.camera, pairs.row, pairs.col] >= 0
    used = torch.zeros(len(f), dtype=torch.bool)
    used[pairs.point[inside]] = True
    assert (x.grad[~used] == 0).all() and (x.grad[used].abs().sum(1) > 0).any()
    # no usable superpixel: zero loss, still differentiable
    empty = torch.full_like(sp, -1)
    z, logs = superpixel_info_nce(x, pix, pairs, empty, K)
    assert z.item() == 0 and z.requires_grad and logs["num_superpixels"] == 0


WORKER = textwrap.dedent(
    """
    import json, os, sys, torch, torch.distributed as dist
    sys.path.insert(0, os.environ["XMODAL_ROOT"])
    from xmodal.losses.superpixel_contrast import superpixel_info_nce
    from xmodal.structures import PixelPairs
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    data = torch.load(os.environ["DATA"])
    d = data[rank]
    f = d["f"].clone().requires_grad_(True)
    pix = d["pix"].clone().requires_grad_(True)
    loss, _ = superpixel_info_nce(f, pix, PixelPairs(*d["pairs"]), d["sp"], d["K"], symmetric=d["sym"], gather_negatives=True)
    loss.backward()
    torch.save({"loss": loss.detach(), "gf": f.grad, "gpix": pix.grad}, os.environ["OUT"] + f".{rank}")
    dist.destroy_process_group()
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("symmetric", [False, True])
def test_negatives_gathered_across_two_gloo_processes(tmp_path, symmetric):
    """Each process holds one sample; with gathered negatives the mean of the per-process losses
    and the DDP-averaged gradients equal one process holding both samples."""
    parts = [_inputs(seed=10 + r, N=30, M=50, K=7) for r in range(2)]
    data = []
    for f, pix, pairs, sp, K in parts:
        data.append({"f": f, "pix": pix, "pairs": (pairs.point, pairs.camera, pairs.row, pairs.col), "sp": sp, "K": K, "sym": symmetric})
    torch.save(data, tmp_path / "data.pt")
    port = _free_port()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    (tmp_path / "worker.py").write_text(WORKER)
    procs = []
    for r in range(2):
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(r), "WORLD_SIZE": "2",
               "OMP_NUM_THREADS": "1", "DATA": str(tmp_path / "data.pt"), "OUT": str(tmp_path / "out"), "XMODAL_ROOT": root}
        procs.append(subprocess.Popen([sys.executable, str(tmp_path / "worker.py")], env=env, stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    out = [torch.load(tmp_path / f"out.{r}") for r in range(2)]
    # one process with both samples: concatenate points, images and batch-global superpixel ids
    (f0, p0, pr0, s0, K0), (f1, p1, pr1, s1, K1) = parts
    pairs = PixelPairs(torch.cat([pr0.point, pr1.point + len(f0)]), torch.cat([pr0.camera, pr1.camera + p0.shape[0]]),
                       torch.cat([pr0.row, pr1.row]), torch.cat([pr0.col, pr1.col]))
    sp = torch.cat([s0, torch.where(s1 >= 0, s1 + K0, s1)])
    f = torch.cat([f0, f1]).requires_grad_(True)
    pix = torch.cat([p0, p1]).requires_grad_(True)
    loss, _ = superpixel_info_nce(f, pix, pairs, sp, K0 + K1, symmetric=symmetric)
    loss.backward()
    assert (out[0]["loss"] + out[1]["loss"]).item() / 2 == pytest.approx(loss.item(), rel=1e-9)
    torch.testing.assert_close(torch.cat([out[0]["gf"], out[1]["gf"]]) / 2, f.grad)
    torch.testing.assert_close(torch.cat([out[0]["gpix"], out[1]["gpix"]]) / 2, pix.grad)
