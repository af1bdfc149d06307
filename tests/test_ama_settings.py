"""The 2x5, 5x10 and 3x10 (256 learned entries) affine maximizer settings: their configs build the intended nets, a few training
steps run, the hard argmax is exactly strategy-proof against random misreports, and the shipped
nets' metrics.json hold the figures the README quotes."""

import json

import pytest
import torch

from zkauction.learn.ama import AffineMaximizerAuction
from zkauction.learn.ama_train import build_ama, hard_revenue
from zkauction.learn.baselines import itemwise_myerson_revenue
from zkauction.learn.checkpoint import load_auction
from zkauction.learn.config import config_from_dict, load_config, read_config_dict
from zkauction.learn.train import train

SETTINGS = {"ama_2x5_uniform": (2, 5, 243), "ama_5x10_uniform": (5, 10, 64), "ama_3x10_menu256": (3, 10, 256),
            "ama_3x10_menu512": (3, 10, 512)}


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_config_builds_the_net(root, name):
    n, m, k = SETTINGS[name]
    cfg = load_config(root / "configs" / f"{name}.toml")
    assert (cfg.setting.n, cfg.setting.m, cfg.name) == (n, m, name)
    net = build_ama(cfg)
    assert net.menu_size == k
    assert net.allocation_menu().shape == (k, n, m)


def test_itemwise_start_is_myerson_for_5x10(root):
    """Before training, with no bundle bonus, the 5x10 AMA is item-wise Myerson (6.71875)."""
    raw = read_config_dict(root / "configs" / "ama_5x10_uniform.toml")
    raw["net"]["bundle_bonus"] = -10.0  # bundles never win
    net = build_ama(config_from_dict(raw))
    exact = itemwise_myerson_revenue(net.setting, "11111")
    rev, se = hard_revenue(net, torch.rand(20000, 5, 10, generator=torch.Generator().manual_seed(3)))
    assert abs(rev - exact) < 4 * se


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_a_few_training_steps(root, tmp_path, name):
    raw = read_config_dict(root / "configs" / f"{name}.toml")
    raw["train"].update(steps=3, batch_size=64, eval_every=3, eval_size=500, time_limit_s=0)
    net = train(config_from_dict(raw), tmp_path / name, progress=False, evaluate_at_end=False)
    assert isinstance(net, AffineMaximizerAuction) and not net.training
    assert json.loads((tmp_path / name / "metrics.json").read_text())["iterations"] == 3


@torch.no_grad()
def _random_misreport_gain(net, bids, tries):
    """Largest utility gain over ``tries`` uniform misreports per bidder (hard argmax)."""
    gen = torch.Generator().manual_seed(11)
    alloc, pay = net(bids)
    truthful = (alloc * bids).sum(-1) - pay
    best = torch.zeros(())
    for i in range(net.setting.n):
        for _ in range(tries):
            lie = bids.clone()
            lie[:, i] = torch.rand(bids.shape[0], net.setting.m, generator=gen)
            a, p = net(lie)
            gain = (a[:, i] * bids[:, i]).sum(-1) - p[:, i] - truthful[:, i]
            best = torch.maximum(best, gain.max())
    return float(best)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_shipped_net_is_strategy_proof_and_as_reported(root, name):
    folder = root / "trained" / name
    if not (folder / "weights.pt").is_file():
        pytest.skip(f"{folder} not shipped")
    net = load_auction(folder)
    n, m, k = SETTINGS[name]
    assert net.kind == "ama" and net.menu_size == k
    bids = torch.rand(200, n, m, generator=torch.Generator().manual_seed(5))
    assert _random_misreport_gain(net, bids, tries=8) <= 1e-5
    metrics = json.loads((folder / "metrics.json").read_text())
    ev = metrics["evaluation"]
    assert ev["regret"] == 0.0 and ev["n_revenue"] >= 100_000
    assert metrics["command"].startswith("zkauction ") and metrics["train_wall_seconds"] > 0
    myerson = itemwise_myerson_revenue(net.setting, "1" * n)
    assert ev["revenue"] > myerson
    rev, se = hard_revenue(net, torch.rand(20000, n, m, generator=torch.Generator().manual_seed(9)))
    assert abs(rev - ev["revenue"]) < 5 * se + 5 * ev["per_profile"][0]["revenue_stderr"]


@pytest.mark.parametrize("name, source", [("ama_2x5_fee", "ama_2x5_uniform"), ("ama_5x10_fee", "ama_5x10_uniform")])
def test_shipped_fee_nets_are_strategy_proof_and_beat_their_source(root, name, source):
    """configs/ama_*_fee.toml: the source AMA's recipe plus an entry fee (2x5: fitted by
    scripts/fit_entry_fee.py and fine-tuned from the source with [train] init; 5x10: trained from
    scratch): the same menu size, more than the source's revenue."""
    folder = root / "trained" / name
    if not (folder / "weights.pt").is_file():
        pytest.skip(f"{folder} not shipped")
    net, src = load_auction(folder), load_auction(root / "trained" / source)
    assert net.entry_fee and not src.entry_fee and net.menu_size == src.menu_size
    n, m = net.setting.n, net.setting.m
    bids = torch.rand(200, n, m, generator=torch.Generator().manual_seed(5))
    assert _random_misreport_gain(net, bids, tries=8) <= 1e-5
    metrics = json.loads((folder / "metrics.json").read_text())
    ev, src_ev = metrics["evaluation"], json.loads((root / "trained" / source / "metrics.json").read_text())["evaluation"]
    assert ev["regret"] == 0.0 and ev["n_revenue"] == src_ev["n_revenue"] and metrics["command"].startswith(f"zkauction train configs/{name}.toml")
    assert ev["revenue"] > src_ev["revenue"] + 3 * ev["per_profile"][0]["revenue_stderr"]
    rev, se = hard_revenue(net, torch.rand(20000, n, m, generator=torch.Generator().manual_seed(9)))
    assert abs(rev - ev["revenue"]) < 5 * se + 5 * ev["per_profile"][0]["revenue_stderr"]


@pytest.mark.parametrize("name, source", [("ama_2x5_fee", "ama_2x5_uniform")])
def test_fee_configs_start_from_their_source(root, name, source):
    cfg = load_config(root / "configs" / f"{name}.toml")
    assert cfg.net["entry_fee"] is True and len(cfg.net["fee_init"]) == 2
    assert cfg.train["init"] == str(root / "trained" / source) and (root / cfg.train["init"] / "weights.pt").is_file()
    net = build_ama(cfg)
    assert net.entry_fee and [net.fee_slope.item(), net.fee_center.item()] == pytest.approx(cfg.net["fee_init"])


def test_the_5x10_fee_config_trains_from_scratch_with_the_default_fee_start(root):
    from zkauction.learn.ama import DEFAULT_FEE_SLOPE

    cfg = load_config(root / "configs" / "ama_5x10_fee.toml")
    src = load_config(root / "configs" / "ama_5x10_uniform.toml")
    assert cfg.net["entry_fee"] is True and "fee_init" not in cfg.net and not cfg.train.get("init")
    assert {k: v for k, v in cfg.net.items() if k != "entry_fee"} == src.net and cfg.train == src.train
    net = build_ama(cfg)
    assert [net.fee_slope.item(), net.fee_center.item()] == pytest.approx([DEFAULT_FEE_SLOPE, 10 * 4 / 5])
