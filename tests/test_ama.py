import json
from pathlib import Path
import numpy as np
import pytest
import torch

from zkauction import load_auction
from zkauction.learn.ama import AffineMaximizerAuction, full_menu
from zkauction.learn.ama_menu import mv_menu_ama
from zkauction.learn.ama_train import hard_revenue, train_ama
from zkauction.learn.config import config_from_dict, load_config
from zkauction.learn.setting import AuctionSetting, ParticipationModel

MV_REVENUE = 0.54920  # Manelli-Vincent, 1x2 U[0,1] (docs/reference.md)


def random_ama(
    n: int, m: int, menu: str = "full", menu_size: int = 0, seed: int = 0, itemwise: bool = False
) -> AffineMaximizerAuction:
    torch.manual_seed(seed)
    participation = ParticipationModel.independent([0.6] * n)
    net = AffineMaximizerAuction(
        AuctionSetting(n, m), participation, menu=menu, menu_size=menu_size, learn_weights=True, itemwise=itemwise,
        seed=seed,
    )
    with torch.no_grad():
        net.boosts.normal_(0.0, 0.3)
        net.log_weights.normal_(0.0, 0.2)
        if itemwise:
            net.boosts.sub_(0.5 * m)
            net.itemwise_boosts.add_(torch.randn_like(net.itemwise_boosts) * 0.1)
    return net.eval()


def random_bids(n: int, m: int, k: int, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    bids = torch.rand(k, n, m, generator=gen)
    absent = torch.rand(k, n, generator=gen) < 0.3
    return bids * (~absent)[:, :, None]


@pytest.mark.parametrize(
    "n, m, menu, size, itemwise",
    [(1, 2, "full", 0, False), (2, 2, "full", 0, False), (3, 2, "full", 0, False), (3, 5, "learned", 32, False),
     (3, 5, "learned", 32, True)],
)
def test_contract_feasible_ir_absent(n, m, menu, size, itemwise):
    net = random_ama(n, m, menu, size, itemwise=itemwise)
    bids = random_bids(n, m, 4000)
    allocation, payment = net(bids)
    assert allocation.shape == (4000, n, m) and payment.shape == (4000, n)
    assert (allocation >= 0).all()
    assert (allocation.sum(dim=1) <= 1 + 1e-6).all(), "an item is allocated more than once"
    value = (allocation * bids).sum(dim=-1)
    assert (payment >= -1e-6).all()
    assert (payment <= value + 1e-5).all(), "individual rationality violated"
    absent = (bids == 0).all(dim=-1)
    assert absent.any()
    assert (allocation[absent] == 0).all() and (payment[absent] == 0).all()


@pytest.mark.parametrize("n, m, menu, size", [(2, 2, "full", 0), (3, 5, "learned", 32)])
def test_exactly_one_menu_entry_is_chosen(n, m, menu, size):
    net = random_ama(n, m, menu, size)
    bids = random_bids(n, m, 2000)
    allocation, _ = net(bids)
    present = (bids != 0).any(dim=-1).float()
    # The eval-mode menu: the learned lotteries on the constants' grid (AffineMaximizerAuction.refresh_menu).
    entries = net._eval_menu.reshape(-1, n, m)[None] * present[:, None, :, None]  # [B, K, n, m]
    distance = (entries - allocation[:, None]).abs().amax(dim=(2, 3))
    assert (distance.min(dim=1).values < 1e-6).all(), "the allocation is not one menu entry"
    # select() returns exactly one entry per row, one that attains the maximum score.
    score = torch.randn(2000, size or (n + 1) ** m).round(decimals=1)  # many ties
    chosen = net.select(score)
    assert torch.equal(chosen.sum(dim=1), torch.ones(2000))
    assert set(chosen.unique().tolist()) <= {0.0, 1.0}
    k = chosen.argmax(dim=1)
    assert torch.equal(score.gather(1, k[:, None])[:, 0], score.max(dim=1).values)
    first = (score == score.max(dim=1, keepdim=True).values).float().argmax(dim=1)
    assert torch.equal(k, first)


def test_itemwise_part_contains_itemwise_myerson():
    # itemwise = true starts at beta = -reserve and learned entries that never win: item-wise Myerson.
    setting = AuctionSetting(3, 4)
    net = AffineMaximizerAuction(setting, menu="learned", menu_size=8, itemwise=True, menu_boost_init=-100.0).eval()
    bids = setting.sample_values(20000, generator=torch.Generator().manual_seed(5))
    allocation, payment = net(bids)
    top2 = bids.topk(2, dim=1).values  # [B, 2, m]
    sold = top2[:, 0] >= 0.5
    expected = (sold * torch.clamp(top2[:, 1], min=0.5)).sum(dim=1)
    assert torch.allclose(payment.sum(dim=1), expected, atol=1e-5)
    winner = bids.argmax(dim=1)
    assert torch.equal(allocation.argmax(dim=1)[sold], winner[sold])
    assert (allocation.sum(dim=1)[~sold] == 0).all()


def test_ties_pick_the_lowest_index():
    net = random_ama(2, 2)
    score = torch.tensor([[0.5, 1.0, 1.0, 0.2, 1.0, 0.0, 0.0, 0.0, 0.0], [0.0] * 9, [2.0] + [0.0] * 8])
    chosen = net.select(score)
    assert chosen.argmax(dim=1).tolist() == [1, 0, 0]
    assert torch.equal(chosen.sum(dim=1), torch.ones(3))
    # Identical bids and zero boosts make many entries tie; still exactly one entry is chosen.
    with torch.no_grad():
        net.boosts.zero_()
        net.log_weights.zero_()
    net.eval()
    allocation, payment = net(torch.full((5, 2, 2), 0.5))
    assert torch.equal(allocation.sum(dim=1), torch.ones(5, 2))


def test_full_menu_lists_every_deterministic_allocation():
    menu = full_menu(2, 2)
    assert menu.shape == (9, 2, 2)
    assert len({tuple(a.flatten().tolist()) for a in menu}) == 9
    assert (menu[0] == 0).all()
    assert ((menu.sum(dim=1) <= 1)).all()


def test_payment_is_independent_of_own_bid_for_the_same_entry():
    # Why regret is exactly zero in floating point: S^{-i} never involves bidder i's bid.
    net = random_ama(2, 2)
    bids = torch.tensor([[[0.9, 0.8], [0.3, 0.2]]])
    alloc, pay = net(bids)
    for scale in (1.0001, 1.01):
        alloc2, pay2 = net(bids * torch.tensor([[[scale], [1.0]]]))
        if torch.equal(alloc, alloc2):
            assert pay2[0, 0] == pay[0, 0]


def test_mv_menu_revenue_by_grid_and_monte_carlo():
    net = mv_menu_ama()
    # Midpoint rule on a 2000 x 2000 grid: the 1-bidder expected revenue is a plain 2-d integral.
    N = 2000
    x = (torch.arange(N) + 0.5) / N
    grid = torch.stack(torch.meshgrid(x, x, indexing="ij"), dim=-1).reshape(-1, 1, 2)
    revenue_grid, _ = hard_revenue(net, grid, chunk=500_000)
    assert abs(revenue_grid - MV_REVENUE) < 5e-4
    bids = AuctionSetting(1, 2).sample_values(400_000, generator=torch.Generator().manual_seed(3))
    mean, se = hard_revenue(net, bids)
    assert abs(mean - MV_REVENUE) < 4 * se


@pytest.mark.parametrize("itemwise", [False, True])
def test_soft_relaxation_is_individually_rational(itemwise):
    # The entropic relaxation is itself a truthful IR mechanism, so training cannot exploit it.
    net = random_ama(3, 5, "learned", 32, itemwise=itemwise).train()
    net.temperature = 0.05
    bids = random_bids(3, 5, 2000)
    allocation, payment = net(bids)
    value = (allocation * bids).sum(dim=-1)
    assert (payment <= value + 1e-5).all()
    assert (allocation.sum(dim=1) <= 1 + 1e-6).all()


def test_train_save_load_roundtrip(tmp_path):
    config = config_from_dict(
        {
            "name": "tiny",
            "setting": {"n_bidders": 2, "n_items": 2},
            "participation": {"independent": [0.5, 0.7]},
            "net": {"kind": "ama", "menu": "full"},
            "train": {"steps": 20, "batch_size": 128, "eval_every": 10, "eval_size": 500},
        }
    )
    net = train_ama(config, tmp_path / "ama", progress=False, evaluate_at_end=False)
    loaded = load_auction(tmp_path / "ama")
    assert isinstance(loaded, AffineMaximizerAuction) and not loaded.training
    bids = random_bids(2, 2, 500)
    for a, b in zip(net(bids), loaded(bids)):
        assert torch.equal(a, b)
    assert not (tmp_path / "ama" / "train_state.pt").exists()
    metrics = json.loads((tmp_path / "ama" / "metrics.json").read_text())
    assert metrics["train_cpu_seconds"] >= 0 and metrics["train_wall_seconds"] >= 0  # as a regret net's do
    assert metrics["machine"]["cpu_count"] >= 1 and "torch" in metrics["machine"]


def test_learned_menu_roundtrip_keeps_eval_constants(tmp_path):
    from zkauction.learn.checkpoint import save_checkpoint

    net = random_ama(3, 4, "learned", 16)
    with torch.no_grad():
        net.menu_logits.normal_()
    net.eval()
    save_checkpoint(net, tmp_path / "m")
    loaded = load_auction(tmp_path / "m")
    bids = random_bids(3, 4, 300)
    for a, b in zip(net(bids), loaded(bids)):
        assert torch.equal(a, b)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="full menu"):
        AffineMaximizerAuction(AuctionSetting(3, 10), menu="full")
    with pytest.raises(ValueError, match="menu must be"):
        AffineMaximizerAuction(AuctionSetting(2, 2), menu="weird")


@pytest.mark.parametrize("name", ["ama_1x2_uniform", "ama_2x2_uniform", "ama_2x2_scenario1", "ama_3x10_uniform"])
def test_shipped_configs_build(root, name):
    from zkauction.learn.ama_train import build_ama

    net = build_ama(load_config(root / "configs" / f"{name}.toml"))
    assert net.kind == "ama"


@pytest.mark.parametrize("n, m, menu, size, itemwise", [(2, 2, "full", 0, False), (3, 4, "learned", 16, True)])
def test_onnx_export_agrees_with_torch(tmp_path, n, m, menu, size, itemwise):
    # The project's export (per-bidder inputs [1, m + 1], salt sliced off) of the hard-argmax AMA.
    onnxruntime = pytest.importorskip("onnxruntime")
    from zkauction.zk.export import export_onnx

    net = random_ama(n, m, menu, size, itemwise=itemwise)
    export_onnx(net, tmp_path / "ama.onnx")
    assert not net.training
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(tmp_path / "ama.onnx"), options, providers=["CPUExecutionProvider"])
    bids = random_bids(n, m, 100)  # with absent bidders
    salt = torch.rand(100, n, 1)
    for b in range(100):
        feeds = {f"bidder_{i}": torch.cat([bids[b, i], salt[b, i]])[None].numpy() for i in range(n)}
        allocation, payment = session.run(["allocation", "payment"], feeds)
        a, p = net(bids[b : b + 1])
        np.testing.assert_allclose(allocation, a.detach().numpy(), atol=1e-5)
        np.testing.assert_allclose(payment, p.detach().numpy(), atol=1e-5)


def test_zero_regret_by_the_evaluation_attack(root):
    # "Zero regret checked, not assumed": the evaluation-grade attack (grid for m <= 2, random
    # starts and projected gradient steps) on the shipped 2x2 AMA and a random item-wise AMA.
    from zkauction.learn.data import sample_profile, sample_tweaked
    from zkauction.learn.regret import AttackConfig, evaluation_attack

    net = load_auction(root / "trained" / "ama_2x2_uniform")
    values = sample_profile(net.setting, (1, 1), 16, seed=11)
    regret = evaluation_attack(net, values, AttackConfig(starts=8, steps=5), seed=0)
    assert regret.max().item() < 1e-6
    wild = random_ama(3, 4, "learned", 16, itemwise=True)
    values = sample_tweaked(wild.setting, wild.participation, 40, seed=12).values
    regret = evaluation_attack(wild, values, AttackConfig(starts=32, steps=5), seed=0)
    assert regret.max().item() < 1e-6


def test_stop_and_resume_gives_the_uninterrupted_net(tmp_path):
    config = config_from_dict(
        {
            "name": "tiny",
            "setting": {"n_bidders": 2, "n_items": 2},
            "net": {"kind": "ama", "menu": "full"},
            "train": {"steps": 20, "batch_size": 128, "eval_every": 5, "eval_size": 500},
        }
    )
    whole = train_ama(config, tmp_path / "whole", progress=False, evaluate_at_end=False)
    train_ama(config, tmp_path / "split", progress=False, evaluate_at_end=False, stop_after=10)
    assert (tmp_path / "split" / "train_state.pt").is_file()
    split = train_ama(config, tmp_path / "split", resume=True, progress=False, evaluate_at_end=False)
    for name, tensor in whole.state_dict().items():
        assert torch.equal(tensor, split.state_dict()[name]), name


def test_resume_needs_a_state_and_ctrl_c_leaves_one(tmp_path):
    import json
    import os
    import signal
    import threading
    import time

    from zkauction.learn.checkpoint import CheckpointError, TrainingInterrupted

    config = config_from_dict(
        {
            "name": "tiny",
            "setting": {"n_bidders": 2, "n_items": 2},
            "net": {"kind": "ama", "menu": "full"},
            "train": {"steps": 300, "batch_size": 128, "eval_every": 5, "eval_size": 500},
        }
    )
    with pytest.raises(CheckpointError, match="no train_state.pt"):
        train_ama(config, tmp_path / "none", resume=True, progress=False)
    whole = train_ama(config, tmp_path / "whole", progress=False, evaluate_at_end=False)
    log = tmp_path / "split" / "train_log.jsonl"

    def ctrl_c_once_logging() -> None:
        while not (log.is_file() and log.read_text().strip()):
            time.sleep(0.002)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=ctrl_c_once_logging, daemon=True).start()
    with pytest.raises(TrainingInterrupted, match="step"):
        train_ama(config, tmp_path / "split", progress=False, evaluate_at_end=False)
    assert (tmp_path / "split" / "train_state.pt").is_file()
    split = train_ama(config, tmp_path / "split", resume=True, progress=False, evaluate_at_end=False)
    for name, tensor in whole.state_dict().items():
        assert torch.equal(tensor, split.state_dict()[name]), name
    steps = [json.loads(x)["step"] for x in log.read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 300


def test_eval_constants_lie_on_the_grid_so_a_circuit_computes_the_scores_exactly():
    """Eval mode snaps the constants (AffineMaximizerAuction.refresh_menu): boosts on 2^-g, weights
    powers of two (the largest 1, the boosts divided by the same factor), lottery shares such that
    w_i * A_k[i, j] is on 2^-g, each item's shares still at most 1, deterministic entries still 0/1."""
    net = AffineMaximizerAuction(AuctionSetting(3, 4), menu="learned", menu_size=24, learn_weights=True,
                                 itemwise=True, menu_init="bundles", bundle_bonus=0.1, seed=3)
    with torch.no_grad():
        net.log_weights.copy_(torch.tensor([0.02, -0.05, -0.8]))  # w = 1.02, 0.95, 0.45
        net.boosts.add_(torch.randn_like(net.boosts) * 0.01)
        net.menu_logits[5:].normal_(0.0, 1.0)  # a few genuine lotteries beside the bundles
    net.eval()
    g = net.grid_scale
    assert g == 10

    def on_grid(x: torch.Tensor, bits: int) -> bool:
        return bool((x * 2.0**bits == (x * 2.0**bits).round()).all())

    w = net._eval_weights.flatten()
    assert w.tolist() == [1.0, 1.0, 0.5]  # 1.02/1.02, 0.95/1.02 -> 1, 0.45/1.02 -> 1/2
    assert torch.equal(net._eval_inv_weights, 1.0 / w)
    assert on_grid(net._eval_boosts, g) and on_grid(net._eval_itemwise_boosts, g)
    assert torch.allclose(net._eval_boosts, net.boosts / 1.02 ** 1, atol=2.0**-g)
    assert on_grid(net._eval_values, g)
    menu = net._eval_menu.reshape(-1, 3, 4)
    assert on_grid(menu, g - 1)  # the smallest weight is 2^-1
    assert (menu.sum(dim=1) <= 1.0).all() and (menu >= 0).all()
    # Entries 1..n are grand bundles (logits +-12): still exactly deterministic after snapping.
    assert torch.equal(menu[1:4], torch.eye(3)[:, :, None].expand(3, 3, 4))
    # The snapped auction is a small move: the same menu entry (its shares within a grid step) on
    # nearly every profile.
    bids = torch.rand(4000, 3, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a_eval, p_eval = net(bids)
        net.grid_scale = 20
        net.refresh_menu()
        a_fine, _ = net(bids)
    assert ((a_eval - a_fine).abs().amax(dim=(1, 2)) <= 2.0 ** -(g - 1)).float().mean() > 0.97


def test_grid_scale_is_checked_and_recorded():
    with pytest.raises(ValueError, match="grid_scale"):
        AffineMaximizerAuction(AuctionSetting(2, 2), grid_scale=3)
    with pytest.raises(ValueError, match="grid_scale"):
        AffineMaximizerAuction(AuctionSetting(2, 2), grid_scale=10.5)
    net = AffineMaximizerAuction(AuctionSetting(2, 2), grid_scale=12)
    assert net.hyperparameters()["grid_scale"] == 12
    assert AffineMaximizerAuction.from_hyperparameters(net.setting, net.participation, net.hyperparameters()).grid_scale == 12


def test_grid_scale_from_a_config_and_a_bad_one_named():
    from zkauction.errors import ZkAuctionError
    from zkauction.learn.ama_train import build_ama

    def cfg(net: dict) -> object:
        return config_from_dict({"name": "g", "setting": {"n_bidders": 2, "n_items": 2}, "net": {"kind": "ama", **net}})

    assert build_ama(cfg({"menu": "full", "grid_scale": 12})).grid_scale == 12
    with pytest.raises(ZkAuctionError, match="grid_scale"):
        build_ama(cfg({"menu": "full", "grid_scale": 2}))


def _without_fee(hp: dict) -> dict:
    return {k: v for k, v in hp.items() if k not in ("entry_fee", "fee_init")}


def _fee_ama(slope: float = 0.3, center: float = 3.0) -> AffineMaximizerAuction:
    net = AffineMaximizerAuction(AuctionSetting(3, 4), ParticipationModel.independent([0.8, 0.7, 0.9]), menu="learned",
                                 menu_size=12, learn_weights=True, itemwise=True, seed=2, entry_fee=True)
    with torch.no_grad():
        net.boosts.normal_(-1.5, 0.3, generator=torch.Generator().manual_seed(3))
        net.log_weights.copy_(torch.tensor([0.0, -0.7, 0.1]))
        net.fee_slope.fill_(slope)
        net.fee_center.fill_(center)
    return net.eval()


def test_an_entry_fee_keeps_the_auction_exactly_strategy_proof_feasible_and_ir():
    """A bidder facing weak competition pays e_i(b_-i) to take its AMA share, or declines. Play the
    bidder who shades, inflates or drops bids to dodge or game the fee: no misreport gains."""
    net = _fee_ama()
    bids = random_bids(3, 4, 3000, seed=4)
    allocation, payment = net(bids)
    assert (allocation >= 0).all() and (allocation.sum(dim=1) <= 1 + 1e-6).all()
    value = (allocation * bids).sum(dim=-1)
    assert (payment >= -1e-6).all() and (payment <= value + 1e-5).all()
    absent = (bids == 0).all(dim=-1)
    assert (allocation[absent] == 0).all() and (payment[absent] == 0).all()
    # The fee bites: some bidders decline (their AMA share is unsold), others pay more than the AMA.
    plain = AffineMaximizerAuction(net.setting, net.participation, **_without_fee(net.hyperparameters()))
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("fee_")})
    a0, p0 = plain.eval()(bids)
    declined = (a0.sum(dim=2) > 0) & (allocation.sum(dim=2) == 0)
    assert declined.sum() > 20 and (payment > p0 + 1e-6).sum() > 20
    gen = torch.Generator().manual_seed(5)
    truthful = value - payment
    for i in range(3):
        for lie in (torch.rand(3000, 4, generator=gen), bids[:, i] * 0.5, torch.clamp(bids[:, i] * 1.5, 0, 1),
                    torch.zeros(3000, 4)):
            report = bids.clone()
            report[:, i] = lie * (~absent[:, i])[:, None]
            a, p = net(report)
            gain = (a[:, i] * bids[:, i]).sum(-1) - p[:, i] - truthful[:, i]
            assert gain.max() <= 1e-5, (i, float(gain.max()))


def test_the_fee_is_charged_as_defined_and_lies_on_the_grid():
    """Accepted: AMA price plus relu(slope * (center - sum of the others' highest bids)); declined
    exactly where the AMA utility is below that fee; the fee's constants on the 2^-g grid."""
    net = _fee_ama(slope=0.1234567, center=2.7654321)
    g = net.grid_scale
    slope, center = net._eval_fee.tolist()
    assert slope * 2**g == round(slope * 2**g) and center * 2**g == round(center * 2**g)
    assert abs(slope - 0.1234567) <= 2.0**-g and net.hyperparameters()["entry_fee"] is True
    plain = AffineMaximizerAuction(net.setting, net.participation, **_without_fee(net.hyperparameters()))
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("fee_")})
    bids = random_bids(3, 4, 2000, seed=6)
    a, p = net(bids)
    a0, p0 = plain.eval()(bids)
    for i in range(3):
        others = torch.stack([bids[:, k] for k in range(3) if k != i], 1).max(1).values.sum(-1)
        fee = torch.relu(slope * (center - others))
        utility = (a0[:, i] * bids[:, i]).sum(-1) - p0[:, i]
        present = (bids[:, i] > 0).any(-1)
        accept = (utility >= fee) & present
        assert torch.equal(a[:, i], a0[:, i] * accept[:, None])
        assert torch.allclose(p[:, i], (p0[:, i] + fee) * accept, atol=1e-6)
        assert (~accept & present).sum() > 10


def test_fee_init_and_training_from_a_trained_ama(tmp_path):
    """[train] init starts from a trained AMA (its menu, weights and boosts; the fee from fee_init),
    so the first validation is the source plus that fee; training the fee (sigmoid accept) runs and
    keeps the best hard-argmax net; a bad init or fee_init is named."""
    from zkauction.errors import ZkAuctionError
    from zkauction.learn.ama_train import build_ama

    def cfg(net: dict, train: dict) -> object:
        return config_from_dict({"name": "fee", "setting": {"n_bidders": 2, "n_items": 3},
                                 "net": {"kind": "ama", "menu": "full", **net},
                                 "train": {"steps": 20, "batch_size": 256, "eval_every": 10, "eval_size": 2000,
                                           "lr": 0.003, "temperature_start": 0.01, "temperature_end": 0.01, **train}})

    src = train_ama(cfg({}, {}), tmp_path / "src", progress=False, evaluate_at_end=False)
    fee = {"entry_fee": True, "fee_init": [0.5, 1.2]}
    net = train_ama(cfg(fee, {"init": str(tmp_path / "src")}), tmp_path / "fee", progress=False, evaluate_at_end=False)
    assert net.entry_fee and net.hyperparameters()["fee_init"] == [0.5, 1.2]
    log = [json.loads(x) for x in (tmp_path / "fee" / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 2 and all(np.isfinite(r["soft_revenue"]) for r in log)
    start = AffineMaximizerAuction(src.setting, src.participation, **{**src.hyperparameters(), **fee})
    start.load_state_dict(src.state_dict(), strict=False)
    val = torch.rand(3000, 2, 3, generator=torch.Generator().manual_seed(1))
    assert hard_revenue(net, val)[0] >= hard_revenue(start.eval(), val)[0] - 0.02
    from zkauction.learn.ama_train import start_from

    fresh = build_ama(cfg(fee, {}))
    start_from(fresh, tmp_path / "src", "fee")
    assert torch.equal(fresh.boosts, src.boosts) and fresh.fee_slope.item() == 0.5
    with pytest.raises(ZkAuctionError, match="init"):
        train_ama(cfg(fee, {"init": str(tmp_path / "missing")}), tmp_path / "x", progress=False, evaluate_at_end=False)
    with pytest.raises(ZkAuctionError, match="fee_init"):
        build_ama(cfg({"fee_init": [0.5, 1.2]}, {}))
    with pytest.raises(ZkAuctionError, match="fee_init"):
        build_ama(cfg({"entry_fee": True, "fee_init": [0.5]}, {}))


def test_train_init_is_relative_to_the_config_file_not_the_current_directory(tmp_path, monkeypatch):
    """A config trains the same from any directory (and on Ray workers that run elsewhere): a
    relative [train] init names a folder beside the file that sets it, in a base chain too."""
    from zkauction.learn.config import load_config

    (tmp_path / "configs" / "more").mkdir(parents=True)
    (tmp_path / "configs" / "base.toml").write_text(
        '[setting]\nn_bidders = 2\nn_items = 2\n[net]\nkind = "ama"\n[train]\ninit = "../trained/src"\n')
    (tmp_path / "configs" / "more" / "child.toml").write_text('base = "../base.toml"\nname = "child"\n')
    (tmp_path / "configs" / "more" / "own.toml").write_text('base = "../base.toml"\n[train]\ninit = "here"\n')
    (tmp_path / "configs" / "abs.toml").write_text(f'base = "base.toml"\n[train]\ninit = "{tmp_path / "x"}"\n')
    monkeypatch.chdir(tmp_path / "configs" / "more")
    assert load_config("child.toml").train["init"] == str(tmp_path / "trained" / "src")
    assert load_config("own.toml").train["init"] == str(tmp_path / "configs" / "more" / "here")
    assert load_config(tmp_path / "configs" / "abs.toml").train["init"] == str(tmp_path / "x")
    monkeypatch.chdir("/")
    root = Path(__file__).resolve().parents[1]
    assert load_config(root / "configs" / "ama_2x5_fee.toml").train["init"] == str(root / "trained" / "ama_2x5_uniform")


def test_a_fee_without_fee_init_starts_where_training_can_move_it():
    """At slope 0 the fee relu(slope * (center - s)) has no gradient; without fee_init it starts at a
    small slope and the center at the mean of the others' strongest bids, where it has one."""
    from zkauction.learn.ama import DEFAULT_FEE_SLOPE

    def grads(net):
        bids = torch.rand(2048, net.setting.n, net.setting.m, generator=torch.Generator().manual_seed(4))
        net.train()
        net.temperature = 0.05
        net(bids)[1].sum().backward()
        return net.fee_slope.grad.item(), net.fee_center.grad.item()

    net = AffineMaximizerAuction(AuctionSetting(2, 3), menu="full", entry_fee=True)
    assert net.fee_init == [DEFAULT_FEE_SLOPE, pytest.approx(1.5)] and net.hyperparameters()["fee_init"] == net.fee_init
    assert all(abs(g) > 1e-3 for g in grads(net))
    assert grads(AffineMaximizerAuction(AuctionSetting(2, 3), menu="full", entry_fee=True, fee_init=[0.0, 1.5])) == (0.0, 0.0)
    shifted = AffineMaximizerAuction(AuctionSetting(3, 2, support=[1.0, 3.0]), menu="full", entry_fee=True)
    assert shifted.fee_init[1] == pytest.approx(2 * (1.0 + 2.0 * 2 / 3))
    assert AffineMaximizerAuction(AuctionSetting(1, 2), menu="full", entry_fee=True).fee_init[1] == pytest.approx(1.0)
