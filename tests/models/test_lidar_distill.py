"""The distillation and segmentation models: the pixel sampler against full upsampling, both
recipes forward/backward on real synthetic samples, clear errors for mismatched dimensions."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
import torch
import torch.nn.functional as F

from xmodal.config import config_from_dict
from xmodal.errors import ConfigError
from xmodal.models.lidar_distill import sample_feature_map, teacher_prepare_batch
from xmodal.registry import LOSSES, MODELS

BACKBONE = {"type": "minkunet", "depth": 14, "width": 0.25, "coords": "cubic", "voxel_size": [0.4, 0.4, 0.4], "out_channels": 16}


def test_sample_feature_map_equals_bilinear_upsampling():
    torch.manual_seed(0)
    maps = torch.randn(3, 5, 7, 11, dtype=torch.float64)
    H, W = 45, 80
    cam, row, col = torch.randint(0, 3, (500,)), torch.randint(0, H, (500,)), torch.randint(0, W, (500,))
    row[:4], col[:4] = torch.tensor([0, H - 1, 0, H - 1]), torch.tensor([0, 0, W - 1, W - 1])  # corners
    full = F.interpolate(maps, (H, W), mode="bilinear", align_corners=False)
    torch.testing.assert_close(sample_feature_map(maps, cam, row, col, (H, W)), full[cam, :, row, col])


class _ConvTeacher(torch.nn.Module):
    feature_dim = 8

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 8, stride=8)

    @torch.inference_mode()
    def forward(self, images):
        return self.conv(images.float() / 255)


def _build(loss: dict, **model):
    lc = config_from_dict(loss, Annotated[Any, LOSSES])
    mc = config_from_dict({"type": "lidar_distill", "backbone": BACKBONE, **model}, Annotated[Any, MODELS])
    return MODELS.build(mc, lc)


@pytest.fixture(scope="module")
def batch(driving_world, tmp_path_factory):
    from xmodal.data.lidar_camera import NuScenesPairsConfig, NuScenesPairsDataset
    from xmodal.data.nuscenes_info import prepare_nuscenes
    from xmodal.data.superpixels import prepare_superpixels
    from xmodal.structures import collate_lidar_camera

    info = tmp_path_factory.mktemp("distill") / "info.pkl"
    prepare_nuscenes(driving_world, "v1.0-mini", info, split="all", max_sweeps=0, progress=False)
    prepare_superpixels(driving_world, method="fast", progress=False)
    ds = NuScenesPairsDataset(NuScenesPairsConfig(info_file=str(info), superpixels="slic_n150_c6_s3_fast", require_pairs=True))
    b = collate_lidar_camera([ds[0], ds[1]], require_pairs=True)
    torch.manual_seed(0)
    return teacher_prepare_batch(_ConvTeacher())(b, torch.device("cpu"))


@pytest.mark.parametrize("recipe", ["superpixel", "pointwise"])
def test_recipes_train(batch, recipe):
    torch.manual_seed(0)
    if recipe == "superpixel":
        model = _build({"type": "superpixel_infonce"}, teacher_dim=8, image_head=True)
    else:
        model = _build({"type": "pointwise", "kind": "cosine"}, teacher_dim=8, point_head=True, image_head=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    losses = []
    for _ in range(2):
        out = model(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"]))
    assert all(torch.isfinite(torch.tensor(losses)))
    grads = [p.grad for n, p in model.named_parameters() if n.startswith("backbone.")]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    if recipe == "superpixel":
        assert model.image_head.weight.grad.abs().sum() > 0 and out["logs"]["num_superpixels"] > 100


def test_dimension_errors(batch):
    with pytest.raises(ConfigError, match="point_head"):
        _build({"type": "pointwise"}, teacher_dim=8, point_head=False, image_head=False)
    model = _build({"type": "pointwise"}, teacher_dim=32, point_head=True, image_head=False)
    with pytest.raises(ConfigError, match="teacher_dim=8"):
        model(batch)


def test_segmentation_frozen_backbone_keeps_bn_and_weights(batch):
    mc = config_from_dict({"type": "lidar_segmentation", "backbone": BACKBONE, "freeze_backbone": True, "head": "bn_linear"},
                          Annotated[Any, MODELS])
    model = MODELS.build(mc).train()
    assert not model.backbone.training and model.head.training
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    out = model(batch)
    out["loss"].backward()
    assert out["logits"].shape == (batch.points.shape[0], 16)
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.backbone.state_dict().items())  # BN stats too


def test_a_batch_whose_scans_were_all_skipped_gives_a_zero_loss_on_every_parameter():
    from xmodal.structures import collate_lidar_camera

    model = _build({"type": "pointwise"}, teacher_dim=16, point_head=False, image_head=False)
    empty = collate_lidar_camera([None, None], require_pairs=True)
    out = model(empty)
    out["loss"].backward()
    assert out["loss"].item() == 0 and empty.skipped == 2
    assert all(p.grad is not None for p in model.parameters())
