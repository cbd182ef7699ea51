"""spconv on the CPU: the backward fix, and sparse convolutions against dense nn.Conv3d
(outputs and gradients) on a tiny grid."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from xmodal.models.encoders.spconv_compat import import_spconv

spconv = import_spconv()


def _sparse_input(seed: int = 0, shape=(5, 6, 7), c: int = 4, n: int = 40, batch: int = 2):
    g = torch.Generator().manual_seed(seed)
    sites = set()
    while len(sites) < n:
        sites.add((int(torch.randint(0, batch, (1,), generator=g)),) + tuple(int(torch.randint(0, s, (1,), generator=g)) for s in shape))
    idx = torch.tensor(sorted(sites), dtype=torch.int32)
    feats = torch.randn(n, c, generator=g)  # spconv's CPU kernels are fp32
    return idx, feats


def _dense(idx, feats, shape, batch):
    out = torch.zeros(batch, feats.shape[1], *shape, dtype=feats.dtype)
    b, z, y, x = idx.long().unbind(1)
    out[b, :, z, y, x] = feats
    return out


@pytest.mark.parametrize("kind", ["subm3", "subm1", "down2"])
def test_sparse_conv_equals_dense_conv3d_forward_and_backward(kind):
    shape, batch = (5, 6, 7), 2
    idx, feats = _sparse_input(shape=shape, batch=batch)
    feats.requires_grad_(True)
    if kind == "subm3":
        conv = spconv.SubMConv3d(4, 8, 3, bias=False, indice_key="t")
        dense_kw = dict(padding=1)
    elif kind == "subm1":
        conv = spconv.SubMConv3d(4, 8, 1, bias=False, indice_key="t")
        dense_kw = {}
    else:
        conv = spconv.SparseConv3d(4, 8, 2, stride=2, bias=False)
        dense_kw = dict(stride=2)
    out = conv(spconv.SparseConvTensor(feats, idx, list(shape), batch))
    # dense twin: spconv stores weights as [out, kD, kH, kW, in] ...
    w = conv.weight.detach().permute(0, 4, 1, 2, 3).clone()
    if kind == "subm1":  # ... except that its 1x1x1 path multiplies by weight.view(in, out)
        w = conv.weight.detach().reshape(4, 8).t().reshape(8, 4, 1, 1, 1).clone()
    w.requires_grad_(True)
    x_dense = _dense(idx, feats.detach(), shape, batch).requires_grad_(True)
    ref = F.conv3d(x_dense, w, **dense_kw)
    ob, oz, oy, ox = out.indices.long().unbind(1)
    ref_at_sites = ref[ob, :, oz, oy, ox]
    torch.testing.assert_close(out.features, ref_at_sites, rtol=1e-5, atol=1e-5)
    r = torch.randn_like(ref_at_sites)
    (out.features * r).sum().backward()
    (ref_at_sites * r).sum().backward()
    b, z, y, x = idx.long().unbind(1)
    torch.testing.assert_close(feats.grad, x_dense.grad[b, :, z, y, x], rtol=1e-5, atol=1e-5)
    wgrad = w.grad.reshape(8, 4).t().reshape(conv.weight.shape) if kind == "subm1" else w.grad.permute(0, 2, 3, 4, 1)
    torch.testing.assert_close(conv.weight.grad, wgrad, rtol=1e-5, atol=1e-5)


def test_patch_is_idempotent_and_only_for_cpu():
    from spconv.pytorch import ops

    assert import_spconv() is spconv
    for fn in (ops.get_current_stream, ops.indice_conv, ops.indice_conv_backward):
        assert hasattr(fn, "__wrapped__") and not hasattr(fn.__wrapped__, "__wrapped__")
    stream_fn = ops.get_current_stream
    if not torch.cuda.is_available():
        assert stream_fn() == 0


def test_training_path_is_right_with_two_threads():
    """spconv's CPU training path (features requiring grad) returned wrong rows in ~1-5 % of
    calls at 2 threads before import_spconv ran it single-threaded."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for seed in range(80):
            idx, feats = _sparse_input(seed=seed)
            conv = spconv.SubMConv3d(4, 8, 3, bias=False, indice_key="t")
            out = conv(spconv.SparseConvTensor(feats.requires_grad_(True), idx, [5, 6, 7], 2))
            ref = F.conv3d(_dense(idx, feats.detach(), (5, 6, 7), 2), conv.weight.detach().permute(0, 4, 1, 2, 3), padding=1)
            ob, oz, oy, ox = out.indices.long().unbind(1)
            torch.testing.assert_close(out.features, ref[ob, :, oz, oy, ox], rtol=1e-5, atol=1e-5, msg=f"seed {seed}")
    finally:
        torch.set_num_threads(threads)
