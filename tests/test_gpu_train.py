"""benchmarks/gpu_train.py: the phase scaling that fits a schedule into a GPU time budget."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def gpu_train():
    spec = importlib.util.spec_from_file_location("gpu_train", ROOT / "benchmarks" / "gpu_train.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_train"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_phases_scale_to_the_budget_and_never_grow(gpu_train, tmp_path):
    from zkauction.learn.config import load_config
    from zkauction.learn.train import Phase, TrainConfig

    schedule = [Phase(1000, 1e-3, 1.0, 18), Phase(500, 1e-4, 50.0, 38)]
    # 20 ms per first-phase iteration: cost units of 1 ms per (steps + 2) -> 20 s + 20 s = 40 s.
    phases, scale = gpu_train.scaled_phases(schedule, 0.020, 10.0)
    assert scale == pytest.approx(0.25)
    assert [p["iterations"] for p in phases] == [250, 125]
    assert phases[1]["regret_weight"] == 50.0 and phases[1]["misreport_steps"] == 38
    same, one = gpu_train.scaled_phases(schedule, 0.020, 1e6)
    assert one == 1.0 and [p["iterations"] for p in same] == [1000, 500]
    # The written config inherits the original and loads with the scaled phases.
    src = tmp_path / "exp.toml"
    src.write_text((ROOT / "configs" / "tiny.toml").read_text().replace('base = "base.toml"', f'base = "{ROOT / "configs" / "base.toml"}"'))
    out = gpu_train.write_scaled(src, phases, scale, 0.020, "test GPU")
    cfg = load_config(out)
    assert cfg.name == load_config(src).name
    assert [p.iterations for p in TrainConfig.from_dict(cfg.train).schedule()] == [250, 125]
