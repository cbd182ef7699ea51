"""Shared pytest options and markers.

- ``--full``: run ``slow`` tests at full size (CI runs them reduced; see ``full_size`` fixture).
- ``gpu`` tests are skipped when CUDA is not available.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--full", action="store_true", help="run slow tests at full size")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (no GPU on this machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def full_size(request: pytest.FixtureRequest) -> bool:
    """True with ``--full``: slow tests use their full problem size."""
    return bool(request.config.getoption("--full"))


@pytest.fixture(scope="session")
def driving_world(tmp_path_factory: pytest.TempPathFactory):
    """A tiny synthetic nuScenes world (2 scenes x 3 keyframes, 400x225 cameras), made once."""
    from xmodal.data.synth.driving import generate_driving_world

    out = tmp_path_factory.mktemp("driving") / "nuscenes"
    generate_driving_world(out, scenes=2, samples=3, image_scale=0.25, seed=0, progress=False)
    return out


@pytest.fixture(scope="session")
def indoor_world(tmp_path_factory: pytest.TempPathFactory):
    """A tiny synthetic ScanNet world (1 room x 4 frames) and its info file, made once."""
    from xmodal.data.scannet import prepare_scannet
    from xmodal.data.synth.indoor import generate_indoor_world

    out = tmp_path_factory.mktemp("indoor")
    generate_indoor_world(out / "scannet", scenes=1, frames=4, seed=0, progress=False)
    prepare_scannet(out / "scannet", out / "info.json", progress=False)
    return out / "scannet", out / "info.json"
