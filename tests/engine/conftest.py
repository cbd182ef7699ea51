"""Engine test helpers: ``engine_toy`` on the import path, one torch thread per test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


@pytest.fixture(autouse=True)
def one_thread():
    """Bitwise comparisons between runs hold at a fixed thread count; 1, as in the subprocesses."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
