"""The menu an AMA offers one bidder (zkauction.learn.ama_menu): independent of the bidder's own
bid, and the auction gives the bidder a favourite entry of it at that entry's price."""

from pathlib import Path

import pytest
import torch

from zkauction.learn.ama import AffineMaximizerAuction
from zkauction.learn.ama_menu import bidder_menu
from zkauction.learn.checkpoint import load_auction
from zkauction.learn.setting import AuctionSetting

ROOT = Path(__file__).resolve().parents[1]


def _nets():
    torch.manual_seed(3)
    lottery = AffineMaximizerAuction(AuctionSetting(3, 2), menu="learned", menu_size=12, learn_weights=True, seed=3)
    with torch.no_grad():
        lottery.log_weights.copy_(torch.tensor([0.0, -0.7, 0.4]))
        lottery.boosts.normal_(0, 0.3)
    fee = AffineMaximizerAuction(AuctionSetting(2, 2), menu="full", entry_fee=True, fee_init=[0.6, 1.5])
    with torch.no_grad():
        fee.boosts.normal_(0, 0.2)
    return {"lottery 3x2, weights": lottery.eval(), "full 2x2, fee": fee.eval(),
            "shipped 2x2": load_auction(ROOT / "trained" / "ama_2x2_uniform").eval()}


@pytest.mark.parametrize("name", ["lottery 3x2, weights", "full 2x2, fee", "shipped 2x2"])
def test_the_auction_gives_each_bidder_a_favourite_entry_of_a_menu_its_own_bid_does_not_move(name):
    net = _nets()[name]
    n, m = net.setting.n, net.setting.m
    g = torch.Generator().manual_seed(7)
    bids = torch.rand(400, n, m, generator=g)
    bids[:40, -1] = 0.0  # the last bidder absent: the others face the smaller profile's menu
    x, p = net(bids)
    for i in range(n):
        shares, prices = bidder_menu(net, bids, i)
        moved = bids.clone()
        moved[:, i] = torch.rand(400, m, generator=g) * 2
        assert torch.equal(bidder_menu(net, moved, i)[1], prices), "the menu moved with the bidder's own bid"
        present = bids[:, i].abs().sum(1) > 0
        utilities = bids[:, i] @ shares.T - prices
        got = (x[:, i] * bids[:, i]).sum(1) - p[:, i]
        best = utilities.max(dim=1).values
        assert torch.allclose(got[present], best[present], atol=1e-5), "the outcome is not a favourite entry"
        # the outcome is an entry of the menu at that entry's price
        match = ((shares[None] - x[:, i, None, :]).abs().amax(-1) < 1e-6) & ((prices - p[:, i, None]).abs() < 1e-5)
        assert bool(match.any(dim=1)[present].all())


def test_bidder_menu_names_what_it_cannot_do():
    net = _nets()["shipped 2x2"]
    with pytest.raises(ValueError, match="out of range"):
        bidder_menu(net, torch.rand(2, 2, 2), 2)
    with pytest.raises(ValueError, match=r"bids must be \[B, 2, 2\]"):
        bidder_menu(net, torch.rand(2, 3, 2), 0)
    with pytest.raises(ValueError, match="eval"):
        bidder_menu(net.train(), torch.rand(2, 2, 2), 0)
    itemwise = AffineMaximizerAuction(AuctionSetting(2, 3), menu="learned", menu_size=4, itemwise=True).eval()
    with pytest.raises(ValueError, match="item-wise"):
        bidder_menu(itemwise, torch.rand(2, 2, 3), 0)
