"""Frozen image teachers: OpenCLIP dense / global paths against hand-written computations, the
teacher contract (frozen, shapes for odd sizes, device-free), text embeddings, image nets."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn.functional as F

from xmodal.errors import ConfigError
from xmodal.models.teachers.base import network_size, shift_cells
from xmodal.models.teachers.openclip import build_clip, dilate_modified_resnet, resnet_forward
from xmodal.registry import TEACHERS

TEXT = {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}
VIT = {"embed_dim": 24, "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
       "text_cfg": TEXT}
RN = {"embed_dim": 24, "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 8, "head_width": 16},
      "text_cfg": TEXT}


def _randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial values everywhere (open_clip zero-inits some norms / biases)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 or "bias" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1 + (1.0 if name.endswith("weight") else 0.0))
        for name, b in model.named_buffers():
            if name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
            elif name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g) * 0.1)
    return model


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory):
    """{'vit' | 'rn': (config json, weights file, the model)} of tiny random OpenCLIP models."""
    root = tmp_path_factory.mktemp("clip")
    out = {}
    for key, cfg in (("vit", VIT), ("rn", RN)):
        torch.manual_seed(0)
        model = _randomize(build_clip(copy.deepcopy(cfg))).eval()
        (root / f"{key}.json").write_text(json.dumps(cfg))
        torch.save(model.state_dict(), root / f"{key}.pt")
        out[key] = (str(root / f"{key}.json"), str(root / f"{key}.pt"), model)
    return out


def _teacher(clip_files, key, **kw):
    cfg, weights, _ = clip_files[key]
    return TEACHERS.build({"type": "open_clip", "model": cfg, "weights": weights, **kw})


def _normalized(teacher, images_float):
    return (images_float - teacher.mean) / teacher.std


# ----------------------------------------------------------------------------- dense paths
def test_vit_dense_value_path_matches_hand_computation(clip_files):
    t = _teacher(clip_files, "vit")
    v = clip_files["vit"][2].visual
    img = torch.rand(2, 3, 32, 32)
    x = _normalized(t, img)
    # hand-written MaskCLIP value path: tokens into the last block -> v -> out_proj -> ln_post -> proj
    tok = v.conv1(x).flatten(2).transpose(1, 2)  # [B, 16, C]
    tok = torch.cat([v.class_embedding.expand(2, 1, -1), tok], 1) + v.positional_embedding
    tok = v.ln_pre(tok)
    for blk in v.transformer.resblocks[:-1]:
        tok = blk(tok)
    last = v.transformer.resblocks[-1]
    C = tok.shape[-1]
    y = last.ln_1(tok[:, 1:])
    val = y @ last.attn.in_proj_weight[2 * C:].T + last.attn.in_proj_bias[2 * C:]
    out = val @ last.attn.out_proj.weight.T + last.attn.out_proj.bias
    ref = (v.ln_post(out) @ v.proj).transpose(1, 2).reshape(2, 24, 4, 4)
    got = t(img)
    assert got.shape == (2, 24, 4, 4) and got.dtype == torch.float32
    torch.testing.assert_close(got, ref.detach(), rtol=1e-5, atol=1e-5)
    # "tokens": the ordinary last-block patch tokens
    t2 = _teacher(clip_files, "vit", dense="tokens")
    ref2 = (v.ln_post(last(tok)[:, 1:]) @ v.proj).transpose(1, 2).reshape(2, 24, 4, 4)
    torch.testing.assert_close(t2(img), ref2.detach(), rtol=1e-5, atol=1e-5)


def test_resnet_dense_attnpool_trick_matches_hand_computation(clip_files):
    t = _teacher(clip_files, "rn")
    v = clip_files["rn"][2].visual
    img = torch.rand(2, 3, 64, 96)
    x = _normalized(t, img)
    f = v.layer4(v.layer3(v.layer2(v.layer1(v.stem(x)))))  # [B, 256, 2, 3]
    pool = v.attnpool
    val = torch.einsum("oc,bchw->bohw", pool.v_proj.weight, f) + pool.v_proj.bias.view(1, -1, 1, 1)
    ref = torch.einsum("oc,bchw->bohw", pool.c_proj.weight, val) + pool.c_proj.bias.view(1, -1, 1, 1)
    got = t(img)
    assert got.shape == (2, 24, 2, 3)
    torch.testing.assert_close(got, ref.detach(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("key", ["vit", "rn"])
def test_global_path_equals_open_clip_encode_image(clip_files, key):
    t = _teacher(clip_files, key)
    model = clip_files[key][2]
    size = RN["vision_cfg"]["image_size"] if key == "rn" else VIT["vision_cfg"]["image_size"]
    img = torch.rand(3, 3, size, size)
    ref = model.encode_image(_normalized(t, img)).detach()
    torch.testing.assert_close(t.encode_image(img, normalize=False), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(t.encode_image(img), F.normalize(ref, dim=-1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("stride", [16, 8])
def test_dilated_resnet_is_the_stride32_network_evaluated_densely(clip_files, stride):
    visual = clip_files["rn"][2].visual
    dil = copy.deepcopy(visual)
    k = dilate_modified_resnet(dil, stride)
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        a = visual.layer4(visual.layer3(visual.layer2(visual.layer1(visual.stem(x)))))
        b = dil.layer4(dil.layer3(dil.layer2(dil.layer1(dil.stem(x)))))
        assert b.shape[-2:] == (a.shape[-2] * k, a.shape[-1] * k)
        torch.testing.assert_close(b[..., ::k, ::k], a, rtol=1e-4, atol=1e-5)
        g_ref, _ = resnet_forward(visual, x)
        g, d = resnet_forward(dil, x, k)
        torch.testing.assert_close(g, g_ref, rtol=1e-4, atol=1e-5)  # global path unchanged
    t = _teacher(clip_files, "rn", output_stride=stride)
    assert t(torch.rand(1, 3, 96, 128)).shape[-2:] == (96 // stride, 128 // stride)


def test_shift_cells():
    x = torch.arange(20.0).reshape(1, 1, 4, 5)
    torch.testing.assert_close(shift_cells(x, 0.0), x)
    one = shift_cells(x, 1.0)  # out[p] = x[p + 1], last row / column replicated
    torch.testing.assert_close(one[..., :-1, :-1], x[..., 1:, 1:])
    half = shift_cells(x, -0.5)  # out[p] = mean of x[p - 1], x[p] (rows and columns)
    rows = 0.5 * (x + F.pad(x, (0, 0, 1, 0), mode="replicate")[..., :-1, :])
    ref = 0.5 * (rows + F.pad(rows, (1, 0, 0, 0), mode="replicate")[..., :, :-1])
    torch.testing.assert_close(half, ref)


# ----------------------------------------------------------------------------- contract
def test_missing_weights_file_says_key_path_and_how(clip_files, tmp_path):
    missing = tmp_path / "nope" / "RN50.pt"
    with pytest.raises(ConfigError) as e:
        TEACHERS.build({"type": "open_clip", "model": clip_files["rn"][0], "weights": str(missing)})
    msg = str(e.value)
    assert "teacher.weights" in msg and str(missing) in msg and "torch.save" in msg and "fit-tiny-clip" in msg
    with pytest.raises(ConfigError, match="teacher.weights is required"):
        TEACHERS.build({"type": "open_clip", "model": "RN50"})
    with pytest.raises(ConfigError, match="teacher.weights"):
        TEACHERS.build({"type": "tiny_clip", "weights": str(missing)})
    with pytest.raises(ConfigError, match="random_init"):
        TEACHERS.build({"type": "image_net", "name": "torchvision:resnet18", "weights": str(missing)})


def test_unknown_model_and_mismatched_weights(clip_files):
    with pytest.raises(ConfigError, match="not an open_clip model name"):
        TEACHERS.build({"type": "open_clip", "model": "RN5O", "weights": clip_files["rn"][1]})
    with pytest.raises(ConfigError, match="does not fit"):
        TEACHERS.build({"type": "open_clip", "model": clip_files["vit"][0], "weights": clip_files["rn"][1]})


@pytest.mark.parametrize("key", ["vit", "rn"])
def test_frozen_and_usable_in_a_loss(clip_files, key):
    t = _teacher(clip_files, key)
    assert all(not p.requires_grad for p in t.parameters())
    t.train()
    assert not t.training and not any(m.training for m in t.modules())
    feats = t(torch.randint(0, 256, (1, 3, 40, 72), dtype=torch.uint8))
    assert not feats.requires_grad and not feats.is_inference()
    w = torch.ones(1, requires_grad=True)
    (w * feats).square().mean().backward()  # a normal tensor: can be saved for backward
    assert w.grad is not None


@pytest.mark.parametrize("key,kw", [("vit", {}), ("rn", {}), ("rn", {"output_stride": 8}), ("vit", {"image_size": 64})])
def test_contract_shapes_for_odd_sizes(clip_files, key, kw):
    t = _teacher(clip_files, key, **kw)
    img = torch.randint(0, 256, (2, 3, 225, 400), dtype=torch.uint8)
    feats = t(img)
    mult = t.multiple
    h, w = network_size(225, 400, kw.get("image_size"), mult)
    s = t.output_stride
    assert feats.shape == (2, t.feature_dim, h // s, w // s) and t.feature_dim == 24
    torch.testing.assert_close(t(img.float() / 255.0), feats)  # uint8 and float inputs agree
    up = F.interpolate(feats, (225, 400), mode="bilinear", align_corners=False)
    assert up.shape == (2, 24, 225, 400)


def test_encode_text_and_class_embeddings(clip_files):
    t = _teacher(clip_files, "rn")
    emb = t.encode_text(["a photo of a car.", "a tree", "road"])
    assert emb.shape == (3, 24)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3))
    ce = t.class_embeddings({"car": ["car", "sedan"], "road": ["road"]}, ["a photo of a {}.", "{} on a street"])
    assert ce.shape == (2, 24)
    torch.testing.assert_close(ce.norm(dim=-1), torch.ones(2))
    ref = F.normalize(t.encode_text(["a photo of a road.", "road on a street"]).mean(0), dim=-1)
    torch.testing.assert_close(ce[1], ref)


# ----------------------------------------------------------------------------- image nets
def test_image_net_torchvision_weights_random_control_and_no_text(tmp_path):
    rnd = TEACHERS.build({"type": "image_net", "name": "torchvision:resnet18", "random_init": True, "seed": 3})
    img = torch.randint(0, 256, (1, 3, 225, 400), dtype=torch.uint8)
    f = rnd(img)
    assert f.shape == (1, 512, 7, 13) and rnd.feature_dim == 512 and not rnd.training
    assert torch.equal(f, TEACHERS.build({"type": "image_net", "name": "torchvision:resnet18", "random_init": True, "seed": 3})(img))
    path = tmp_path / "r18.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in rnd.trunk.body.state_dict().items()}}, path)
    loaded = TEACHERS.build({"type": "image_net", "name": "torchvision:resnet18", "weights": str(path)})
    torch.testing.assert_close(loaded(img), f)
    assert loaded.identity()["weights_fingerprint"].startswith("sha256:")
    with pytest.raises(TypeError, match="image-only"):
        rnd.encode_text(["a car"])
    l3 = TEACHERS.build({"type": "image_net", "name": "torchvision:resnet18", "random_init": True, "layer": "layer3"})
    assert l3(img).shape == (1, 256, 14, 26)
    with pytest.raises(ConfigError, match="not a node"):
        TEACHERS.build({"type": "image_net", "name": "torchvision:resnet18", "random_init": True, "layer": "layer9"})
    with pytest.raises(ConfigError, match="torchvision:<model>"):
        TEACHERS.build({"type": "image_net", "name": "resnet18", "random_init": True})


def test_image_net_timm_vit_patch_grid():
    t = TEACHERS.build({"type": "image_net", "name": "timm:vit_tiny_patch16_224", "random_init": True,
                        "kwargs": {"depth": 2}})
    f = t(torch.rand(1, 3, 225, 400))
    assert f.shape == (1, 192, 14, 25)
