"""InfoNCE: the chunked, memory-lean loss against SLidR's mm + cross-entropy and a hand-written
formula, forward and backward."""

from __future__ import annotations

import math

import pytest
import torch

from xmodal.losses import info_nce, info_nce_reference


def _by_hand(k, q, tau, symmetric):
    s = k.shape[0]

    def one_way(a, b):
        total = 0.0
        for i in range(s):
            sims = [sum(a[i, c].item() * b[j, c].item() for c in range(a.shape[1])) / tau for j in range(s)]
            total += -(sims[i] - math.log(sum(math.exp(v) for v in sims)))
        return total / s

    return 0.5 * (one_way(k, q) + one_way(q, k)) if symmetric else one_way(k, q)


@pytest.mark.parametrize("symmetric", [False, True])
def test_matches_formula(symmetric):
    torch.manual_seed(0)
    k, q = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    want = _by_hand(k, q, 0.5, symmetric)
    assert info_nce_reference(k, q, 0.5, symmetric).item() == pytest.approx(want, rel=1e-12)
    assert info_nce(k, q, 0.5, symmetric, chunk_size=4).item() == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("chunk", [1, 7, 64, 5000])
@pytest.mark.parametrize("symmetric", [False, True])
def test_chunked_equals_reference_with_grads(chunk, symmetric):
    torch.manual_seed(1)
    k = torch.nn.functional.normalize(torch.randn(300, 16), dim=1).requires_grad_(True)
    q = torch.nn.functional.normalize(torch.randn(300, 16), dim=1).requires_grad_(True)
    a = info_nce(k, q, 0.07, symmetric, chunk_size=chunk)
    ga = torch.autograd.grad(a, (k, q))
    b = info_nce_reference(k, q, 0.07, symmetric)
    gb = torch.autograd.grad(b, (k, q))
    torch.testing.assert_close(a, b)
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-7)


def test_gradcheck_and_half():
    torch.manual_seed(2)
    k = torch.randn(9, 3, dtype=torch.float64, requires_grad=True)
    q = torch.randn(9, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: info_nce(a, b, 0.3, True, chunk_size=4), (k, q))
    kb, qb = k.detach().bfloat16().requires_grad_(True), q.detach().bfloat16().requires_grad_(True)
    loss = info_nce(kb, qb, 0.3)
    loss.backward()
    assert loss.dtype == torch.bfloat16 and kb.grad.dtype == torch.bfloat16
    assert loss.float().item() == pytest.approx(info_nce_reference(k, q, 0.3).item(), rel=2e-2)


def test_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        info_nce(torch.randn(3, 2), torch.randn(4, 2))
    with pytest.raises(ValueError, match="temperature"):
        info_nce(torch.randn(3, 2), torch.randn(3, 2), temperature=0)


def test_fp16_gradients_do_not_underflow():
    torch.manual_seed(3)
    # inputs exactly representable in fp16, so the only differences are the computation's
    k = torch.nn.functional.normalize(torch.randn(2000, 8), dim=1).half().double()
    q = torch.nn.functional.normalize(torch.randn(2000, 8), dim=1).half().double()
    want = torch.autograd.grad(info_nce_reference(k.requires_grad_(True), q), k)[0]
    kh = k.detach().half().requires_grad_(True)
    got = torch.autograd.grad(info_nce(kh, q.half()), kh)[0]
    torch.testing.assert_close(got.double(), want, rtol=1e-3, atol=1e-7)


def test_mixed_dtypes_rejected():
    with pytest.raises(ValueError, match="one dtype"):
        info_nce(torch.randn(3, 2), torch.randn(3, 2, dtype=torch.float64))


def test_rectangular_with_offset_matches_reference():
    """Rows of k scored against more q rows (negatives gathered from other processes)."""
    torch.manual_seed(5)
    k = torch.randn(7, 4, dtype=torch.float64, requires_grad=True)
    q = torch.randn(19, 4, dtype=torch.float64, requires_grad=True)
    a = info_nce(k, q, 0.1, offset=5, chunk_size=3)
    b = info_nce_reference(k, q, 0.1, offset=5)
    assert a.item() == pytest.approx(b.item(), rel=1e-10)
    ga = torch.autograd.grad(a, (k, q))
    gb = torch.autograd.grad(b, (k, q))
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y)
    with pytest.raises(ValueError, match="positives"):
        info_nce(k, q, offset=15)
