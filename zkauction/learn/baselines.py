"""Baseline mechanisms and known optimal revenues (sources in docs/reference.md).

Every baseline is an :class:`~zkauction.learn.nets.AuctionNet`, so it goes through the same
:func:`zkauction.learn.evaluate.evaluate` and the same evaluation-grade attack as a learned net, and it
honours absent bidders (an all-zero bid row gets nothing and pays nothing).

- :class:`ItemwiseMyerson`: Myerson's optimal single-item auction run separately on every item. With
  U[lo, hi] values the virtual value is 2v - hi; the item goes to the highest non-negative virtual
  value, which pays its threshold bid. For symmetric bidders this is a second-price auction with
  reserve max(lo, hi/2). Exactly strategy-proof.
- :class:`VCG`: item-wise second price (VCG for additive bidders). Strategy-proof, no reserve.
- :class:`FirstPrice`: item-wise first price: NOT strategy-proof (for tests and as a warning).
- :class:`GrandBundle`: all items sold together by a second-price auction on the bundle value with
  reserve r; with one bidder, a posted bundle price. :func:`optimal_bundle_reserve` picks r.
- :class:`MenuAuction`: one bidder picks the utility-maximising entry of a posted menu of lotteries;
  :meth:`MenuAuction.manelli_vincent` is the optimal 1-bidder, 2-item U[0, c] mechanism.

:func:`known_optimum` / :func:`known_optima` give the optimal revenue of a participation profile where
it is known in closed form (one item: Myerson; one bidder with 2 items U[0, c]: Manelli-Vincent), and
:func:`itemwise_myerson_revenue` the exact item-wise Myerson revenue of any profile: inputs for the
bounds of appendix A.3 in :func:`zkauction.learn.evaluate.evaluate`.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from scipy import integrate

from zkauction.learn.nets import AuctionNet, presence, register_net
from zkauction.learn.setting import AuctionSetting, ParticipationModel, SettingError, profile_string

# Manelli & Vincent (2006), 1 bidder, 2 items, U[0,1]: items at 2/3 each, the bundle at (4 - sqrt 2)/3.
MV_ITEM_PRICE = 2.0 / 3.0
MV_BUNDLE_PRICE = (4.0 - math.sqrt(2.0)) / 3.0


def manelli_vincent_revenue() -> float:
    """Exact revenue of the Manelli-Vincent menu for U[0,1]^2 (about 0.54920).

    Buys item 1 alone iff v1 >= 2/3 and v2 < p - 2/3 (area (1/3)(p - 2/3)), nothing iff v1, v2 < 2/3
    and v1 + v2 < p (area p^2/2 - (p - 2/3)^2), the bundle otherwise."""
    p, a = MV_BUNDLE_PRICE, MV_ITEM_PRICE
    single = (1.0 - a) * (p - a)
    nothing = p * p / 2.0 - (p - a) ** 2
    return 2.0 * a * single + p * (1.0 - nothing - 2.0 * single)


def _itemwise(
    bids: torch.Tensor, score: torch.Tensor, threshold_bid: Any, reserve_score: float | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per item: the highest ``score`` among present bidders wins (if >= reserve_score); the winner
    pays ``threshold_bid(winner_index, score_to_beat)`` per item."""
    B, n, m = bids.shape
    present = presence(bids).bool()[:, :, None].expand(B, n, m)
    s = torch.where(present, score, torch.full_like(score, -math.inf))
    if n > 1:
        top2 = s.topk(2, dim=1)
        best, winner, second = top2.values[:, 0], top2.indices[:, 0], top2.values[:, 1]
    else:
        best, winner, second = s[:, 0], torch.zeros(B, m, dtype=torch.long), torch.full_like(s[:, 0], -math.inf)
    sold = torch.isfinite(best)
    if reserve_score is not None:
        sold = sold & (best >= reserve_score)
        to_beat = torch.clamp(second, min=reserve_score)
    else:
        to_beat = torch.where(torch.isfinite(second), second, torch.zeros_like(second))
    allocation = torch.zeros_like(bids)
    allocation.scatter_(1, winner[:, None, :], sold[:, None, :].to(bids.dtype))
    price = threshold_bid(winner, to_beat) * sold  # [B, m]
    payment = torch.zeros(B, n, dtype=bids.dtype)
    payment.scatter_add_(1, winner, price.to(bids.dtype))
    return allocation, payment


@register_net("myerson")
class ItemwiseMyerson(AuctionNet):
    """Myerson's optimal auction per item, virtual value 2v - hi for U[lo, hi]."""

    def forward(self, bids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lo = self.setting.low.to(bids.dtype)
        hi = self.setting.high.to(bids.dtype)
        virtual = 2.0 * bids - hi

        def threshold(winner: torch.Tensor, to_beat: torch.Tensor) -> torch.Tensor:
            # Lowest bid whose virtual value still beats max(0, best other virtual value).
            hw = hi.gather(0, winner)  # [B, m]: the winner's upper bound for each item
            lw = lo.gather(0, winner)
            return torch.maximum(lw, (to_beat + hw) / 2.0)

        return _itemwise(bids, virtual, threshold, 0.0)


@register_net("vcg")
class VCG(AuctionNet):
    """Item-wise second price (VCG for additive bidders), no reserve."""

    def forward(self, bids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _itemwise(bids, bids, lambda winner, to_beat: to_beat, None)


@register_net("first_price")
class FirstPrice(AuctionNet):
    """Item-wise first price: the highest bid wins and pays itself. Not strategy-proof."""

    def forward(self, bids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, n, m = bids.shape

        def own_bid(winner: torch.Tensor, to_beat: torch.Tensor) -> torch.Tensor:
            return bids.gather(1, winner[:, None, :])[:, 0]

        return _itemwise(bids, bids, own_bid, None)


@register_net("bundle")
class GrandBundle(AuctionNet):
    """All items as one bundle: second price on bundle values sum_j b_ij with reserve ``reserve``."""

    def __init__(self, setting: AuctionSetting, participation: ParticipationModel | None = None, reserve: float = 0.0):
        super().__init__(setting, participation)
        self.reserve = float(reserve)

    def hyperparameters(self) -> dict[str, Any]:
        return {"reserve": self.reserve}

    def forward(self, bids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, n, m = bids.shape
        value = bids.sum(-1, keepdim=True)  # [B, n, 1]: one "item", the bundle
        alloc1, payment = _itemwise(value, value, lambda winner, to_beat: to_beat, self.reserve)
        return alloc1.expand(B, n, m).contiguous(), payment


def optimal_bundle_reserve(
    setting: AuctionSetting,
    participation: ParticipationModel | None = None,
    *,
    samples: int = 200_000,
    seed: int = 0,
) -> float:
    """Reserve of :class:`GrandBundle` maximising Monte-Carlo revenue on the participation model's
    tweaked distribution (for one bidder: the optimal posted bundle price; sqrt(2/3) for U[0,1]^2)."""
    from zkauction.learn.data import sample_tweaked

    participation = participation or ParticipationModel.fixed(setting.n)
    values = sample_tweaked(setting, participation, samples, seed).values.sum(-1).double()  # [K, n]
    top = values.topk(min(2, setting.n), dim=1).values
    s1 = top[:, 0]
    s2 = top[:, 1] if setting.n > 1 else torch.zeros_like(s1)

    def revenue(r: torch.Tensor) -> torch.Tensor:  # r: [R]
        return ((s1[None] >= r[:, None]) * torch.maximum(s2[None], r[:, None])).mean(1)

    lo, hi = 0.0, float(setting.high.sum(-1).max())
    for _ in range(3):  # coarse grid, then zoom twice
        r = torch.linspace(lo, hi, 201, dtype=torch.float64)
        rev = torch.cat([revenue(c) for c in r.split(20)])
        k = int(rev.argmax())
        step = (hi - lo) / 200
        lo, hi = max(0.0, float(r[k]) - step), float(r[k]) + step
    return float(r[k])


@register_net("menu")
class MenuAuction(AuctionNet):
    """One bidder, a posted menu of (allocation [m], price) entries plus the null entry; the bidder
    gets the entry that maximises its reported utility (first one on ties). Strategy-proof."""

    def __init__(
        self,
        setting: AuctionSetting,
        participation: ParticipationModel | None = None,
        menu: Sequence[tuple[Sequence[float], float]] = (),
    ):
        if setting.n != 1:
            raise SettingError(f"a menu auction has one bidder, the setting has {setting.n}")
        super().__init__(setting, participation)
        entries = [([0.0] * setting.m, 0.0)] + [(list(map(float, a)), float(p)) for a, p in menu]
        for a, p in entries:
            if len(a) != setting.m or any(not 0.0 <= x <= 1.0 for x in a) or p < 0:
                raise SettingError(f"menu entry {a} at price {p}: need {setting.m} probabilities and a price >= 0")
        self.menu = [(a, p) for a, p in entries[1:]]
        self.register_buffer("menu_allocation", torch.tensor([a for a, _ in entries]), persistent=False)
        self.register_buffer("menu_price", torch.tensor([p for _, p in entries]), persistent=False)

    def hyperparameters(self) -> dict[str, Any]:
        return {"menu": [[a, p] for a, p in self.menu]}

    @classmethod
    def manelli_vincent(cls, setting: AuctionSetting, participation: ParticipationModel | None = None) -> "MenuAuction":
        """The optimal mechanism for one bidder, two items, values U[0, c] (prices scale with c)."""
        c = setting.support[0][0][1]
        if setting.n != 1 or setting.m != 2 or any(p != (0.0, c) for p in setting.support[0]):
            raise SettingError("Manelli-Vincent is the optimum for 1 bidder, 2 items, both U[0, c]")
        a = MV_ITEM_PRICE * c
        return cls(setting, participation, [([1, 0], a), ([0, 1], a), ([1, 1], MV_BUNDLE_PRICE * c)])

    def forward(self, bids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        menu_a = self.menu_allocation.to(bids.dtype)
        u = bids[:, 0, :] @ menu_a.T - self.menu_price.to(bids.dtype)  # [B, entries]
        k = u.argmax(dim=1)
        present = presence(bids)  # [B, 1]
        allocation = menu_a[k][:, None, :] * present[:, :, None]
        payment = self.menu_price.to(bids.dtype)[k][:, None] * present
        return allocation, payment


# ----------------------------------------------------------------------------------------------
# Known revenues.


def _myerson_item_revenue(supports: Sequence[tuple[float, float]]) -> float:
    """E[max(0, max_i phi_i(v_i))] for independent U[lo_i, hi_i], phi = 2v - hi: Myerson's optimal
    revenue for one item, exactly (a 1-D integral of a piecewise polynomial)."""
    if not supports:
        return 0.0

    def cdf_phi(t: float) -> float:
        out = 1.0
        for lo, hi in supports:
            out *= min(1.0, max(0.0, ((t + hi) / 2.0 - lo) / (hi - lo)))
        return out

    top = max(hi for _, hi in supports)
    kinks = sorted({x for lo, hi in supports for x in (2 * lo - hi, hi) if 0 < x < top})
    value, _ = integrate.quad(lambda t: 1.0 - cdf_phi(t), 0.0, top, points=kinks or None, limit=200, epsabs=1e-12)
    return float(value)


def itemwise_myerson_revenue(setting: AuctionSetting, profile: Sequence[int] | str | None = None) -> float:
    """Exact expected revenue of :class:`ItemwiseMyerson` at a participation profile (default: all
    present): 5/12 for 2 bidders, 1 item U[0,1]; 0.8333 for 2x2 U[0,1]."""
    present = _present(setting, profile)
    return sum(_myerson_item_revenue([setting.support[i][j] for i in present]) for j in range(setting.m))


def known_optimum(setting: AuctionSetting, profile: Sequence[int] | str | None = None) -> float | None:
    """Optimal revenue at a participation profile where it is known exactly, else None.

    Known: nobody present (0); one item (Myerson 1981, any independent uniform supports); one bidder
    with two items both U[0, c] (Manelli & Vincent 2006: 0.54920 c)."""
    present = _present(setting, profile)
    if not present:
        return 0.0
    if setting.m == 1:
        return itemwise_myerson_revenue(setting, profile)
    if len(present) == 1 and setting.m == 2:
        (i,) = present
        (lo0, hi0), (lo1, hi1) = setting.support[i]
        if lo0 == 0.0 and lo1 == 0.0 and hi0 == hi1:
            return manelli_vincent_revenue() * hi0
    return None


def known_optima(setting: AuctionSetting, participation: ParticipationModel) -> dict[str, float | None]:
    """{profile string: known optimal revenue or None} for every profile of ``participation``."""
    return {profile_string(g): known_optimum(setting, g) for g in participation.profiles}


def _present(setting: AuctionSetting, profile: Sequence[int] | str | None) -> list[int]:
    if profile is None:
        return list(range(setting.n))
    g = [int(c) for c in profile]
    if len(g) != setting.n or any(x not in (0, 1) for x in g):
        raise SettingError(f"profile {profile!r}: expected {setting.n} zeros and ones")
    return [i for i, x in enumerate(g) if x]


BASELINES = ("myerson", "vcg", "bundle", "menu")


def make_baseline(
    kind: str, setting: AuctionSetting, participation: ParticipationModel | None = None, *, seed: int = 0
) -> AuctionNet:
    """A baseline by name: "myerson", "vcg", "first_price", "bundle" (reserve optimised on the
    participation model) or "menu" (Manelli-Vincent; 1 bidder, 2 items U[0, c] only)."""
    participation = participation or ParticipationModel.fixed(setting.n)
    if kind == "myerson":
        return ItemwiseMyerson(setting, participation)
    if kind == "vcg":
        return VCG(setting, participation)
    if kind == "first_price":
        return FirstPrice(setting, participation)
    if kind == "bundle":
        return GrandBundle(setting, participation, optimal_bundle_reserve(setting, participation, seed=seed))
    if kind in ("menu", "manelli_vincent"):
        return MenuAuction.manelli_vincent(setting, participation)
    raise ValueError(f"unknown baseline {kind!r}; choose one of myerson, vcg, first_price, bundle, menu")
