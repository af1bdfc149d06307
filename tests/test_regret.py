import torch

from zkauction.learn.baselines import VCG, FirstPrice, GrandBundle, ItemwiseMyerson, MenuAuction
from zkauction.learn.data import sample_profile, sample_tweaked
from zkauction.learn.nets import RegretNet
from zkauction.learn.regret import (
    AttackConfig,
    GradientAttacker,
    GridAttacker,
    MisreportNetAttacker,
    evaluation_attack,
    regret_of,
)
from zkauction.learn.setting import AuctionSetting, ParticipationModel

FAST = AttackConfig(starts=4, steps=60, grid=41)


def test_attack_finds_no_regret_in_truthful_mechanisms():
    s = AuctionSetting(2, 2)
    p = ParticipationModel.independent([0.7, 0.9])
    values = sample_tweaked(s, p, 120, seed=0).values
    for net in (VCG(s, p), ItemwiseMyerson(s, p)):
        r = evaluation_attack(net, values, FAST)
        assert r.max().item() < 1e-4, type(net).__name__
    s1 = AuctionSetting(1, 2)
    v1 = sample_profile(s1, (1,), 120, 0)
    for net in (MenuAuction.manelli_vincent(s1), GrandBundle(s1, None, 0.8165)):
        assert evaluation_attack(net, v1, FAST).max().item() < 1e-4


def test_attack_finds_first_price_regret():
    # First price, others truthful: bidding just above the best other bid w gains v - w when v > w,
    # so bidder i's regret is sum_j max(0, v_ij - max_k!=i v_kj); E = 1/6 per bidder and item.
    s = AuctionSetting(2, 2)
    values = sample_profile(s, (1, 1), 150, 1)
    r = evaluation_attack(FirstPrice(s), values, FAST)
    exact = (values - values.flip(1)).clamp_min(0).sum(-1)
    assert torch.all(r <= exact + 1e-6)
    assert (exact - r).mean().item() < 5e-3  # grid spacing 1/40, refined to 1/200 per item
    assert abs(r.sum(-1).mean().item() - 4 / 6) < 0.1  # and close to the population figure


def test_absent_bidders_have_zero_regret():
    s = AuctionSetting(2, 2)
    values = sample_profile(s, (1, 0), 50, 2)
    net = RegretNet(s, None, depth=2, width=16)
    r = evaluation_attack(net, values, AttackConfig(starts=2, steps=20, grid=11))
    assert torch.all(r[:, 1] == 0)
    assert torch.all(regret_of(net, values, torch.rand_like(values))[:, 1] == 0)
    # A lone bidder facing first price pays its own bid: it gains by bidding the support's bottom.
    r = evaluation_attack(FirstPrice(s), values, AttackConfig(starts=2, steps=20, grid=11))
    assert torch.allclose(r[:, 0], values[:, 0].sum(-1), atol=1e-4)


def test_misreports_stay_in_asymmetric_support():
    # U[4,16] x U[4,7]: the best first-price misreport alone is the support's bottom (4, 4), never 0.
    s = AuctionSetting(1, 2, [[4, 16], [4, 7]])
    values = sample_profile(s, (1,), 40, 3)
    r = evaluation_attack(FirstPrice(s), values, AttackConfig(starts=2, steps=30, grid=11))
    assert torch.allclose(r[:, 0], (values[:, 0] - 4).sum(-1), atol=1e-3)


def test_regret_of_truthful_misreport_is_zero():
    s = AuctionSetting(2, 2)
    net = RegretNet(s, None, depth=2, width=16)
    v = sample_profile(s, (1, 1), 64, 0)
    assert torch.allclose(regret_of(net, v, v), torch.zeros(64, 2), atol=1e-6)


def test_evaluation_attack_beats_training_attackers():
    torch.manual_seed(0)
    s = AuctionSetting(2, 2)
    net = RegretNet(s, None, depth=2, width=32)
    v = sample_profile(s, (1, 1), 100, 4)
    ga = GradientAttacker(net, v, steps=20, lr=0.05)
    r_train = regret_of(net, v, ga.misreports(v, torch.arange(100))).detach()
    mn = MisreportNetAttacker(net, depth=2, width=16, lr=1e-3, steps=30, patience=10)
    mis = mn.misreports(v)
    assert torch.all(mis >= 0) and torch.all(mis <= 1)
    r_net = regret_of(net, v, mis).detach()
    r_eval = evaluation_attack(net, v, FAST)
    assert r_train.sum(-1).mean() > 0
    assert r_eval.sum(-1).mean() >= r_train.sum(-1).mean() - 1e-6
    assert r_eval.sum(-1).mean() >= r_net.sum(-1).mean() - 1e-6
    # Training leaves the net's parameters trainable.
    assert all(p.requires_grad for p in net.parameters())


def test_grid_attacker_sees_what_the_evaluation_attack_sees():
    # First price: the best lie (bid just above the other's value) is far from a random start and
    # from the truth. The grid attacker's restart finds most of it without any gradient step; the
    # warm-started gradient attacker with no steps keeps its random start.
    s = AuctionSetting(2, 2)
    net = FirstPrice(s)
    v = sample_profile(s, (1, 1), 200, 5)
    exact = (v - v.flip(1)).clamp_min(0).sum(-1).sum(-1).mean().item()
    grid = GridAttacker(net, v, steps=0, points=21, seed=1)
    r_grid = regret_of(net, v, grid.misreports(v, torch.arange(200))).sum(-1).mean().item()
    lazy = GradientAttacker(net, v, steps=0, seed=1)
    r_lazy = regret_of(net, v, lazy.misreports(v, torch.arange(200))).sum(-1).mean().item()
    assert exact - 0.05 < r_grid <= exact + 1e-6  # grid spacing 1/20 per item
    assert r_lazy < 0.8 * r_grid
    # The restart keeps the frame's previous misreport as a candidate: a second visit never loses.
    again = regret_of(net, v, grid.misreports(v, torch.arange(200))).sum(-1).mean().item()
    assert again >= r_grid - 1e-6


def test_grid_attacker_refuses_a_grid_it_cannot_afford():
    s = AuctionSetting(3, 10)
    net = RegretNet(s, None, depth=1, width=8)
    v = sample_profile(s, (1, 1, 1), 4, 0)
    try:
        GridAttacker(net, v, points=11)
    except ValueError as e:
        assert "11^10" in str(e) and "starts" in str(e)
    else:
        raise AssertionError("a 11^10-point grid was accepted")
    r = regret_of(net, v, GridAttacker(net, v, points=0, starts=16, steps=2).misreports(v, torch.arange(4)))
    assert r.shape == (4, 3) and torch.all(r >= 0)


def test_attack_stops_at_once_when_no_start_can_move():
    # Item-wise Myerson's utility is piecewise constant in the misreport: every gradient is zero,
    # so Adam could never move a start. The attack stops after the first step instead of running
    # all of them (same result, exactly: the zero-regret test above still holds).
    s = AuctionSetting(3, 10)
    net = ItemwiseMyerson(s)
    calls = []
    net.register_forward_hook(lambda mod, inp, out: calls.append(1))
    v = sample_profile(s, (1, 1, 1), 32, 0)
    r = evaluation_attack(net, v, AttackConfig(steps=300, starts=4))
    assert r.max().item() < 1e-6
    assert len(calls) <= 1 + 3 * 2  # truthful utilities, then one step per bidder (and its check)
