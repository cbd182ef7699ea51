"""normalize_channels against F.normalize, forward and backward, with zero vectors."""

import pytest
import torch

from xmodal.ops import normalize_channels, normalize_channels_reference


@pytest.mark.parametrize("shape", [(2, 5, 3, 4), (1, 3, 7), (3, 1, 2, 2)])
def test_matches_reference(shape):
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64)
    x[0, :, 0] = 0.0  # zero vectors: clamped norm
    g = torch.randn(shape, dtype=torch.float64)
    a = x.clone().requires_grad_(True)
    b = x.clone().requires_grad_(True)
    ya, yb = normalize_channels(a), normalize_channels_reference(b)
    torch.testing.assert_close(ya, yb)
    (ya * g).sum().backward()
    (yb * g).sum().backward()
    torch.testing.assert_close(a.grad, b.grad)


def test_gradcheck_and_float32():
    torch.manual_seed(1)
    x = torch.randn(2, 4, 3, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(normalize_channels, (x,))
    x32 = torch.randn(2, 8, 6, 6)
    torch.testing.assert_close(normalize_channels(x32), normalize_channels_reference(x32))
    with pytest.raises(ValueError, match="float tensor"):
        normalize_channels(torch.zeros(3, dtype=torch.long))
