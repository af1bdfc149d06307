import math

import pytest
import torch

from zkauction.learn.baselines import (
    VCG,
    FirstPrice,
    GrandBundle,
    ItemwiseMyerson,
    MenuAuction,
    itemwise_myerson_revenue,
    known_optima,
    known_optimum,
    make_baseline,
    manelli_vincent_revenue,
    optimal_bundle_reserve,
)
from zkauction.learn.data import sample_profile, sample_tweaked
from zkauction.learn.setting import AuctionSetting, ParticipationModel, SettingError


def mc_revenue(net, profile, k=200_000, seed=0):
    v = sample_profile(net.setting, profile, k, seed)
    with torch.no_grad():
        pay = net(v)[1].sum(-1)
    return pay.mean().item(), pay.std().item() / math.sqrt(k)


def test_known_answers_to_three_decimals():
    # docs/reference.md: Myerson 1/4, 5/12, 17/32; Manelli-Vincent 0.54920; item-wise Myerson 2x2 0.83333.
    assert round(itemwise_myerson_revenue(AuctionSetting(1, 1)), 3) == 0.250
    assert round(itemwise_myerson_revenue(AuctionSetting(2, 1)), 3) == round(5 / 12, 3)
    assert round(itemwise_myerson_revenue(AuctionSetting(3, 1)), 3) == round(17 / 32, 3)
    assert round(manelli_vincent_revenue(), 3) == 0.549
    assert abs(manelli_vincent_revenue() - 0.54920) < 1e-5
    assert round(itemwise_myerson_revenue(AuctionSetting(2, 2)), 4) == 0.8333
    assert abs(itemwise_myerson_revenue(AuctionSetting(3, 10)) - 5.3125) < 1e-9


@pytest.mark.parametrize(
    "net, exact",
    [
        (ItemwiseMyerson(AuctionSetting(2, 1)), 5 / 12),
        (ItemwiseMyerson(AuctionSetting(2, 2)), 5 / 6),
        (MenuAuction.manelli_vincent(AuctionSetting(1, 2)), 0.54920),
        (ItemwiseMyerson(AuctionSetting(1, 2, [[4, 16], [4, 7]])), 8 * 8 / 12 + 4),
        # Asymmetric bidders: virtual values 2v - 1 and 2v - 3 (U[1, 3]); exact by integration.
        (ItemwiseMyerson(AuctionSetting(2, 1, [[[0, 1]], [[1, 3]]])), None),
    ],
)
def test_mechanism_revenue_matches_exact(net, exact):
    if exact is None:
        exact = itemwise_myerson_revenue(net.setting)
    rev, se = mc_revenue(net, (1,) * net.setting.n)
    assert abs(rev - exact) < 4 * se + 1e-4


def test_optimal_bundle_price_one_bidder():
    s = AuctionSetting(1, 2)
    r = optimal_bundle_reserve(s, samples=400_000)
    assert abs(r - math.sqrt(2 / 3)) < 0.02
    rev, se = mc_revenue(GrandBundle(s, None, math.sqrt(2 / 3)), (1,))
    assert abs(rev - math.sqrt(2 / 3) * (2 / 3)) < 4 * se  # 0.54433


@pytest.mark.parametrize("kind", ["myerson", "vcg", "first_price", "bundle"])
def test_baselines_contract_with_absent_bidders(kind):
    s = AuctionSetting(3, 2, [[0, 1], [0, 2]])
    p = ParticipationModel.independent([0.5, 0.6, 0.7])
    net = make_baseline(kind, s, p)
    data = sample_tweaked(s, p, 5000, seed=3)
    alloc, pay = net(data.values)
    assert torch.all(alloc >= 0) and torch.all(alloc.sum(1) <= 1 + 1e-6)
    assert torch.all(pay >= -1e-7) and torch.all(pay <= (alloc * data.values).sum(-1) + 1e-5)
    absent = data.values.abs().sum(-1) == 0
    assert torch.all(alloc[absent] == 0) and torch.all(pay[absent] == 0)


def test_vcg_second_price_and_lone_bidder_pays_nothing():
    s = AuctionSetting(2, 1)
    alloc, pay = VCG(s)(torch.tensor([[[0.7], [0.4]], [[0.0], [0.4]]]))
    assert alloc[0, 0, 0] == 1 and abs(pay[0, 0].item() - 0.4) < 1e-7
    assert alloc[1, 1, 0] == 1 and pay[1, 1] == 0  # bidder 0 absent: no competition
    alloc, pay = ItemwiseMyerson(s)(torch.tensor([[[0.7], [0.4]], [[0.0], [0.4]]]))
    assert abs(pay[0, 0].item() - 0.5) < 1e-7  # reserve 1/2
    assert alloc[1].sum() == 0  # 0.4 is below the reserve
    alloc, pay = FirstPrice(s)(torch.tensor([[[0.7], [0.4]]]))
    assert abs(pay[0, 0].item() - 0.7) < 1e-7


def test_known_optima_per_profile():
    s = AuctionSetting(2, 2)
    opt = known_optima(s, ParticipationModel.independent([0.7, 0.9]))
    assert opt["11"] is None and opt["00"] == 0.0
    assert abs(opt["10"] - 0.54920) < 1e-5 and abs(opt["01"] - 0.54920) < 1e-5
    assert abs(known_optimum(AuctionSetting(3, 1), "101") - 5 / 12) < 1e-9
    assert known_optimum(AuctionSetting(1, 2, [[4, 16], [4, 7]])) is None


def test_menu_needs_one_bidder():
    with pytest.raises(SettingError, match="1 bidder, 2 items"):
        MenuAuction.manelli_vincent(AuctionSetting(2, 2))
    with pytest.raises(ValueError, match="unknown baseline"):
        make_baseline("nope", AuctionSetting(1, 1))
