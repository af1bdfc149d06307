import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
# ezkl writes a cache under ~/.ezkl unless EZKL_REPO_PATH is set: keep it in the project.
os.environ.setdefault("EZKL_REPO_PATH", str(ROOT / ".ezkl"))
# Two cores on CI: keep each test process to one torch thread so xdist-free runs stay predictable.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def root() -> Path:
    return ROOT
