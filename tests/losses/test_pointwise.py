"""ScaLR / OpenScene point-wise distillation against hand-written formulas, with properties."""

import math

import pytest
import torch

from xmodal.losses.pointwise import pointwise_distill


def _hand(s, t, kind):
    total = 0.0
    for a, b in zip(s.tolist(), t.tolist()):
        na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(x * x for x in b))
        if kind == "l2":
            total += math.sqrt(sum((x / na - y / nb) ** 2 for x, y in zip(a, b)))
        else:
            total += 1 - sum(x * y for x, y in zip(a, b)) / (na * nb)
    return total / len(s)


@pytest.mark.parametrize("kind", ["l2", "cosine"])
def test_matches_hand_written(kind):
    torch.manual_seed(0)
    s, t = torch.randn(13, 6, dtype=torch.float64), torch.randn(13, 6, dtype=torch.float64)
    assert pointwise_distill(s, t, kind).item() == pytest.approx(_hand(s, t, kind), rel=1e-9)


@pytest.mark.parametrize("kind", ["l2", "cosine"])
def test_properties(kind):
    torch.manual_seed(1)
    s = torch.randn(20, 4, dtype=torch.float64, requires_grad=True)
    # zero at identity (up to scale), invariant to positive scaling of either side
    assert pointwise_distill(s, 3.0 * s.detach(), kind).item() == pytest.approx(0.0, abs=1e-5)
    t = torch.randn(20, 4, dtype=torch.float64)
    a = pointwise_distill(s, t, kind)
    assert pointwise_distill(2.5 * s, 0.1 * t, kind).item() == pytest.approx(a.item(), rel=1e-9)
    a.backward()
    assert torch.isfinite(s.grad).all()
    # the gradient is finite at identity too (l2: sqrt at 0)
    x = t.clone().requires_grad_(True)
    pointwise_distill(x, t, kind).backward()
    assert torch.isfinite(x.grad).all()
    # no pairs: zero, differentiable
    e = torch.zeros(0, 4, requires_grad=True)
    z = pointwise_distill(e, torch.zeros(0, 4), kind)
    assert z.item() == 0 and z.requires_grad
    with pytest.raises(ValueError, match="kind"):
        pointwise_distill(s, t, "l1")
