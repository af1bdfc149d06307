"""The menu an affine maximizer offers one bidder (the taxation principle).

For fixed bids of the others, an AMA offers bidder i every menu entry k at the price
(1 / w_i) * [max_k' S^{-i}_k' - S^{-i}_k] and gives it an entry of greatest utility: the menu does
not depend on bidder i's own bid, which is why the auction is strategy-proof. :func:`bidder_menu`
computes that menu in eval mode, for tests that check the property directly and for probes that
change it (``benchmarks/frontier_probes.py``); :func:`mv_menu_ama` goes the other way, a menu of
prices (the 1x2 Manelli-Vincent optimum) written as an AMA.
"""

from __future__ import annotations

import math

import torch

from zkauction.learn.ama import AffineMaximizerAuction
from zkauction.learn.nets import presence
from zkauction.learn.setting import AuctionSetting


@torch.no_grad()
def bidder_menu(net: AffineMaximizerAuction, bids: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(shares [K, m], prices [B, K])``: entry k's share of each item for bidder i, and its price
    given the others' bids in ``bids`` [B, n, m] (bidder i's own row is ignored; it is taken as
    present). The eval-mode auction gives bidder i an entry of greatest utility
    ``shares @ v_i - price``; with an entry fee the fee is in every price and a last entry
    "nothing at 0" (declining) is added. Not defined for an item-wise menu (``itemwise = true``),
    whose options are per item."""
    if net.itemwise:
        raise ValueError("bidder_menu: an item-wise AMA's options are per item, not a finite menu")
    if net.training:
        raise ValueError("bidder_menu: the menu is the eval-mode auction's; call .eval() first")
    n = net.setting.n
    if not 0 <= i < n:
        raise ValueError(f"bidder_menu: bidder {i} out of range for {n} bidders")
    if bids.dim() != 3 or tuple(bids.shape[1:]) != (n, net.setting.m):
        raise ValueError(f"bidder_menu: bids must be [B, {n}, {net.setting.m}], got {list(bids.shape)}")
    others = bids.clone()
    others[:, i, :] = 1.0  # any present bid: a profile's boosts depend on presence only
    s_others = net.profile_indicator(presence(others)) @ net._eval_boosts
    for k in range(n):
        if k != i:
            s_others = s_others + others[:, k, :] @ net._eval_values[k]
    prices = net._eval_inv_weights[i] * (s_others.max(dim=1, keepdim=True).values - s_others)
    shares = net._eval_menu.reshape(net.menu_size, n, -1)[:, i, :]
    if net.entry_fee:
        fee = net.entry_fees(others)[:, i]
        prices = torch.cat([prices + fee[:, None], torch.zeros_like(prices[:, :1])], dim=1)
        shares = torch.cat([shares, torch.zeros_like(shares[:1])], dim=0)
    return shares, prices


def mv_menu_ama() -> AffineMaximizerAuction:
    """The 1x2 U[0,1] Manelli-Vincent optimum as a full-menu AMA: boosts are minus the prices.

    Items 1 and 2 at 2/3 each, the bundle at (4 - sqrt 2)/3; revenue 0.54920.
    """
    net = AffineMaximizerAuction(AuctionSetting(1, 2), menu="full")
    prices = {(0, 0): 0.0, (1, 0): 2 / 3, (0, 1): 2 / 3, (1, 1): (4 - math.sqrt(2)) / 3}
    with torch.no_grad():
        for k, a in enumerate(net.fixed_menu):
            key = (int(a[0, 0]), int(a[0, 1]))
            net.boosts[:, k] = -prices[key]
    return net.eval()


__all__ = ["bidder_menu", "mv_menu_ama"]
