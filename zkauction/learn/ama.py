"""Affine maximizer auctions (AMA): exactly strategy-proof by construction.

Take a menu of K allocations A_k ([n, m] each, items split between bidders and "nobody"), bidder
weights w_i > 0 and boosts lambda_k. With v_i(k) = sum_j A_k[i, j] * b_ij, the auction picks

    k* = argmax_k  S_k,            S_k = sum_i w_i v_i(k) + lambda_k,

and bidder i pays (1 / w_i) * [max_k S^{-i}_k - S^{-i}_{k*}], where S^{-i}_k leaves bidder i out.
This is a weighted VCG over the menu: dominant-strategy incentive compatible and individually
rational for any menu, weights and boosts (Roberts 1979; AMenuNet, Duan et al. 2023), so training
only moves revenue, never regret.

Two menus:

- ``menu = "full"``: every deterministic assignment of items to bidders or to nobody, (n+1)^m
  entries (9 for 2x2). With one bidder this is a menu of bundle prices, which contains the
  Manelli-Vincent optimum for 1x2 U[0,1].
- ``menu = "learned"``: K lottery allocations, each item split by a softmax over bidders and
  "nobody" (AMenuNet-style), plus the empty allocation as entry 0. For large settings (3x10),
  usually with ``itemwise = true``: the whole deterministic menu with item-additive boosts beside
  it (argmax per item, so (n+1)^m entries at O(nm) cost; it contains item-wise Myerson), and the
  learned entries started as bundles (``menu_init = "bundles"``, mixed bundling).

Stationary participation (paper, section 4): one boost table per participation profile (all 2^n of
them), picked arithmetically from the presence vector, and absent bidders' shares of the chosen
allocation are dropped. For a fixed profile this is again an AMA (over the menu with the absent
rows zeroed), hence DSIC, and by the paper's Lemma 4.5 so is the aggregated auction.

Training uses an entropic (softmax) relaxation of the argmax with an annealed temperature
(:func:`zkauction.learn.ama_train.train_ama`); ``net.eval()`` switches to the hard argmax, which is what is evaluated,
exported and proved. The hard forward is circuit-friendly: one matmul per bidder for the values,
a max, comparisons, and a tie-break that selects exactly one menu entry (the lowest-index entry
among those attaining the maximum) using only comparisons and multiplications, so ties on the
fixed-point grid cannot make the circuit's output ambiguous.
"""

from __future__ import annotations
import itertools
import math
from typing import Any
import torch
from torch import nn
from zkauction.learn.nets import AuctionNet, presence, register_net
from zkauction.learn.setting import AuctionSetting, ParticipationModel


MENU_KINDS = ("full", "learned")
# Above this many entries the full menu is refused: use a learned menu instead.
MAX_FULL_MENU = 4096
# How a learned menu starts: random lotteries, or (with itemwise) bundles; see _init_bundles.
MENU_INITS = ("random", "bundles")
BUNDLE_LOGIT = 12.0
# Eval-mode constants lie on a dyadic grid (see AffineMaximizerAuction.refresh_menu): the default is
# the circuits' param scale (zkauction.zk.circuit.DEFAULT_INPUT_SCALE), so a compiled circuit
# computes the float net's scores exactly. Learned bidder weights become powers of two down to
# 2^-WEIGHT_BITS, lottery shares keep the rest of the grid, so w_i * A_k[i, j] is on it again.
DEFAULT_GRID_SCALE = 10
DEFAULT_FEE_SLOPE = 0.05
WEIGHT_BITS = 4


def full_menu(n: int, m: int) -> torch.Tensor:
    """[(n+1)^m, n, m] every deterministic allocation; entry 0 allocates nothing."""
    entries = []
    # Owner n means "nobody"; itertools.product((n, 0, 1, ...)) puts the empty allocation first.
    owners = (n,) + tuple(range(n))
    for assignment in itertools.product(owners, repeat=m):
        a = torch.zeros(n, m)
        for j, owner in enumerate(assignment):
            if owner < n:
                a[owner, j] = 1.0
        entries.append(a)
    return torch.stack(entries)


def all_profiles(n: int) -> torch.Tensor:
    """[2^n, n] every participation profile, in ``itertools.product((1, 0))`` order (all present first)."""
    return torch.tensor(list(itertools.product((1, 0), repeat=n)), dtype=torch.float32)


@register_net("ama")
class AffineMaximizerAuction(AuctionNet):
    """An affine maximizer auction with per-profile boosts (see the module docstring).

    ``itemwise`` adds the whole deterministic menu with *item-additive* boosts,
    lambda(k) = sum_j beta_j(owner of item j in k): its argmax splits into one max per item, so all
    (n+1)^m entries cost O(n m). It contains item-wise Myerson (beta = minus the reserve prices,
    which is how it is initialised), so a learned menu on top starts from that baseline. The AMA is
    then over the union of both menus, still exactly strategy-proof.

    ``temperature`` only matters in training mode (softmax relaxation); in eval mode the argmax
    is hard and the auction exactly strategy-proof.
    """

    def __init__(
        self,
        setting: AuctionSetting,
        participation: ParticipationModel | None = None,
        menu: str = "full",
        menu_size: int = 0,
        learn_weights: bool = False,
        menu_init_scale: float = 1.0,
        itemwise: bool = False,
        menu_boost_init: float = 0.0,
        menu_init: str = "random",
        bundle_bonus: float = 0.16,
        seed: int = 0,
        grid_scale: int = DEFAULT_GRID_SCALE,
        entry_fee: bool = False,
        fee_init: Any = None,
    ):
        super().__init__(setting, participation)
        n, m = setting.n, setting.m
        if menu not in MENU_KINDS:
            raise ValueError(f"ama: menu must be one of {MENU_KINDS}, got {menu!r}")
        self.menu_kind = menu
        self.learn_weights = bool(learn_weights)
        self.menu_init_scale = float(menu_init_scale)
        self.itemwise = bool(itemwise)
        self.menu_boost_init = float(menu_boost_init)
        if menu_init not in MENU_INITS:
            raise ValueError(f"ama: menu_init must be one of {MENU_INITS}, got {menu_init!r}")
        self.menu_init = menu_init
        self.bundle_bonus = float(bundle_bonus)
        self.seed = int(seed)
        if isinstance(grid_scale, bool) or not isinstance(grid_scale, int) or not WEIGHT_BITS + 2 <= grid_scale <= 20:
            raise ValueError(f"ama: grid_scale must be an integer from {WEIGHT_BITS + 2} to 20, got {grid_scale!r}")
        self.grid_scale = grid_scale
        self.entry_fee = bool(entry_fee)
        if fee_init is not None and not self.entry_fee:
            raise ValueError("ama: fee_init needs entry_fee = true")
        try:
            init = [float(x) for x in (fee_init if fee_init is not None else default_fee_init(setting))]
        except (TypeError, ValueError):
            init = []
        if len(init) != 2 or not all(math.isfinite(x) for x in init):
            raise ValueError(f"ama: fee_init must be [slope, center], two finite numbers, got {fee_init!r}")
        self.fee_init = init
        if menu == "full":
            size = (n + 1) ** m
            if size > MAX_FULL_MENU:
                raise ValueError(
                    f"ama: the full menu of a {n}x{m} setting has (n+1)^m = {size} entries "
                    f"(more than {MAX_FULL_MENU}); use menu = \"learned\" with a menu_size"
                )
            if menu_size not in (0, size):
                raise ValueError(f"ama: the full menu has {size} entries; menu_size={menu_size} does not match")
            if self.itemwise:
                raise ValueError("ama: itemwise = true already spans the full menu; use it with menu = \"learned\"")
            self.menu_size = size
            self.register_buffer("fixed_menu", full_menu(n, m), persistent=False)
            self.menu_logits = None
        else:
            if menu_size < 2:
                raise ValueError(f"ama: a learned menu needs menu_size >= 2, got {menu_size}")
            self.menu_size = int(menu_size)
            gen = torch.Generator().manual_seed(self.seed)
            # Entry 0 is the empty allocation (no sale); the others are learned lotteries.
            self.menu_logits = nn.Parameter(
                torch.randn(self.menu_size - 1, n + 1, m, generator=gen) * self.menu_init_scale
            )
        self.log_weights = nn.Parameter(torch.zeros(n), requires_grad=self.learn_weights)
        # One boost table per participation profile (all 2^n of them).
        P = 2**n
        self.register_buffer("profiles", all_profiles(n), persistent=False)
        self.boosts = nn.Parameter(torch.full((P, self.menu_size), self.menu_boost_init))
        if self.itemwise:
            # beta[g, o, j]: boost of giving item j to owner o (o = n: nobody), per profile g.
            # Initialised at minus Myerson's reserve for U[lo, hi] (max(lo, hi / 2)).
            reserve = torch.maximum(setting.low, setting.high / 2)
            beta = torch.cat([-reserve, torch.zeros(1, m)], dim=0)
            self.itemwise_boosts = nn.Parameter(beta[None].repeat(P, 1, 1).contiguous())
        else:
            self.itemwise_boosts = None
        if menu_init == "bundles":
            if not (self.itemwise and menu == "learned" and self.menu_size > n):
                raise ValueError('ama: menu_init = "bundles" needs itemwise = true and a learned menu of more than n entries')
            self._init_bundles()
        self.temperature = 0.01
        # Eval mode uses constants computed once from the parameters (menu, value matrix with the
        # weights folded in, 1/w), so an export sees plain numbers, not a softmax or an exp.
        K = self.menu_size
        self.register_buffer("_eval_menu", torch.zeros(K, n * m), persistent=False)
        self.register_buffer("_eval_values", torch.zeros(n, m, K), persistent=False)
        self.register_buffer("_eval_weights", torch.ones(n, 1), persistent=False)
        self.register_buffer("_eval_inv_weights", torch.ones(n), persistent=False)
        self.register_buffer("_eval_boosts", torch.zeros(P, K), persistent=False)
        if self.entry_fee:
            # Entry fee e_i = relu(slope * (center - sum_j max_{k != i} b_kj)): see _with_fee.
            self.fee_slope = nn.Parameter(torch.tensor(self.fee_init[0]))
            self.fee_center = nn.Parameter(torch.tensor(self.fee_init[1]))
            self.register_buffer("_eval_fee", torch.zeros(2), persistent=False)
        if self.itemwise:
            self.register_buffer("_eval_itemwise_boosts", torch.zeros(P, n + 1, m), persistent=False)
        self.register_buffer("_priority", torch.arange(K, 0, -1, dtype=torch.float32), persistent=False)
        self.register_buffer("_owner_priority", torch.arange(n + 1, 0, -1, dtype=torch.float32)[:, None], persistent=False)
        # _leave_out[i] zeroes owner row i: S^{-i} of the item-wise part, bidder i's values removed.
        self.register_buffer("_leave_out", 1.0 - torch.eye(n + 1)[:n, :, None], persistent=False)
        self.refresh_menu()
        self.register_load_state_dict_post_hook(lambda module, keys: module.refresh_menu())

    @torch.no_grad()
    def _init_bundles(self) -> None:
        """Mixed bundling (Jehiel, Meyer-ter-Vehn and Moldovanu 2007) on top of item-wise Myerson.

        Entries 1..n give the grand bundle to bidder i; the others a random bundle (each item with
        probability 1/2) to a random bidder. A bundle S to bidder i gets the boost
        sum_{j in S} (beta_j(i) + bundle_bonus): it beats selling S item by item with reserves once
        the bidder's values exceed the reserves by more than -bundle_bonus per item, which favours
        bundles a little (bundle_bonus > 0). For 3x10 U[0,1] a bonus of 0.16 per item already gives
        about 5.47, against item-wise Myerson's 5.3125; training then adjusts menu and boosts."""
        n, m = self.setting.n, self.setting.m
        gen = torch.Generator().manual_seed(self.seed + 1)
        logits = torch.full((self.menu_size - 1, n + 1, m), -BUNDLE_LOGIT)
        boosts = torch.zeros(self.menu_size - 1)
        beta = self.itemwise_boosts[0]  # [n+1, m]
        for k in range(self.menu_size - 1):
            if k < n:
                bidder, items = k, torch.ones(m, dtype=torch.bool)
            else:
                bidder = int(torch.randint(n, (1,), generator=gen))
                items = torch.rand(m, generator=gen) < 0.5
            logits[k, bidder, items] = BUNDLE_LOGIT
            logits[k, n, ~items] = BUNDLE_LOGIT
            boosts[k] = float((beta[bidder, items] + self.bundle_bonus).sum())
        self.menu_logits.copy_(logits)
        self.boosts[:, 1:] = boosts
        self.boosts[:, 0] = 0.0

    # -- parameters -------------------------------------------------------------------------------

    def hyperparameters(self) -> dict[str, Any]:
        hp: dict[str, Any] = {"menu": self.menu_kind, "learn_weights": self.learn_weights, "grid_scale": self.grid_scale}
        if self.entry_fee:
            hp.update(entry_fee=True, fee_init=list(self.fee_init))
        if self.menu_kind == "learned":
            hp.update(
                menu_size=self.menu_size,
                menu_init_scale=self.menu_init_scale,
                itemwise=self.itemwise,
                menu_boost_init=self.menu_boost_init,
                menu_init=self.menu_init,
                bundle_bonus=self.bundle_bonus,
                seed=self.seed,
            )
        return hp

    def allocation_menu(self) -> torch.Tensor:
        """[K, n, m] the explicit menu of allocations (each item's shares sum to at most 1)."""
        if self.menu_logits is None:
            return self.fixed_menu
        n, m = self.setting.n, self.setting.m
        lotteries = torch.softmax(self.menu_logits, dim=1)[:, :n, :]
        empty = torch.zeros(1, n, m, dtype=lotteries.dtype, device=lotteries.device)
        return torch.cat([empty, lotteries], dim=0)

    def weights(self) -> torch.Tensor:
        """[n] bidder weights w_i > 0."""
        return torch.exp(self.log_weights)

    @torch.no_grad()
    def eval_weights(self) -> tuple[torch.Tensor, float]:
        """(w, c): the eval-mode weights, powers of two from 1 down to 2^-WEIGHT_BITS (the learned
        weights divided by the largest, rounded in log2), and the common factor c (the largest
        learned weight) by which the boosts are divided. Dividing every weight and boost by one
        constant changes neither the argmax nor the payments; the rounding changes the auction a
        little (for the shipped nets, within a standard error of revenue). With powers of two both
        w_i and 1/w_i are exact on a dyadic grid: the scores and the payments' 1/w_i in a circuit."""
        if not self.learn_weights:
            return torch.ones_like(self.log_weights), 1.0
        w = self.weights().double()
        c = w.max()
        e = torch.clamp(torch.round(torch.log2(w / c)), min=-WEIGHT_BITS)
        return (2.0**e).float(), float(c)

    @torch.no_grad()
    def refresh_menu(self) -> None:
        """Recompute the eval-mode constants from the parameters (after training or loading).

        The constants are put on dyadic grids so that a fixed-point circuit at param scale
        ``grid_scale`` or finer computes every score exactly (zkauction.zk.compile): weights are
        powers of two (:meth:`eval_weights`), boosts on the 2^-g grid, lottery shares on
        2^-(g-b) with 2^-b the smallest weight, by largest remainders (each item's shares, "nobody"
        included, still sum to 1, so a deterministic entry stays deterministic); hence
        w_i * A_k[i, j] lies on 2^-g. The eval-mode auction is the affine maximizer with these
        constants: exactly strategy-proof like any other, and the one that is evaluated, exported
        and proved."""
        g = self.grid_scale
        w, c = self.eval_weights()
        b = int(round(-math.log2(float(w.min()))))
        menu = self.allocation_menu()
        if self.menu_logits is not None:
            menu = self._snapped_lotteries(2 ** (g - b))
        self._eval_menu.copy_(menu.reshape(self.menu_size, -1))
        self._eval_values.copy_(menu.permute(1, 2, 0) * w[:, None, None])
        self._eval_weights.copy_(w[:, None])
        self._eval_inv_weights.copy_(1.0 / w)
        self._eval_boosts.copy_(_snap(self.boosts / c, g))
        if self.itemwise:
            self._eval_itemwise_boosts.copy_(_snap(self.itemwise_boosts / c, g))
        if self.entry_fee:  # money units: not divided by c
            self._eval_fee.copy_(_snap(torch.stack([self.fee_slope, self.fee_center]), g))

    def profile_indicator(self, present: torch.Tensor) -> torch.Tensor:
        """[B, 2^n] one-hot of each row's participation profile, by products of bits (circuit-friendly)."""
        indicator = None
        for i in range(self.setting.n):
            g, bit = present[:, i : i + 1], self.profiles[:, i][None, :]
            factor = bit * g + (1.0 - bit) * (1.0 - g)
            indicator = factor if indicator is None else indicator * factor
        return indicator

    def integer_scores(self) -> bool:
        """Whether every eval-mode w_i * A_k[i, j] is an integer (0/1 menus, unit weights) and no fee:
        then a circuit's scores need no extra scale to be exact (zk.compile.exact_score_multiplier)."""
        values = self._eval_values
        return bool((values == values.round()).all()) and bool((self._eval_weights == 1).all()) and not self.entry_fee

    def _snapped_lotteries(self, units: int) -> torch.Tensor:
        """[K, n, m] the learned menu with every item's n+1 shares in multiples of 1/units summing
        to exactly 1 (largest remainders; ties to the lower owner index)."""
        n = self.setting.n
        shares = torch.softmax(self.menu_logits.double(), dim=1) * units  # [K-1, n+1, m]
        base = torch.floor(shares)
        missing = (units - base.sum(dim=1, keepdim=True)).round()  # [K-1, 1, m], 0..n
        order = torch.argsort(-(shares - base), dim=1, stable=True)
        rank = torch.argsort(order, dim=1)
        lotteries = ((base + (rank < missing).double()) / units)[:, :n, :].float()
        empty = torch.zeros(1, n, self.setting.m)
        return torch.cat([empty, lotteries], dim=0)

    def train(self, mode: bool = True) -> "AffineMaximizerAuction":
        super().train(mode)
        if not mode:
            self.refresh_menu()
        return self

    # -- the mechanism ----------------------------------------------------------------------------

    def forward(self, bids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B = bids.shape[0]
        n, m, K = self.setting.n, self.setting.m, self.menu_size
        present = presence(bids)
        if self.training:
            menu3 = self.allocation_menu()
            menu = menu3.reshape(K, n * m)
            w = self.weights()
            weighted = torch.einsum("bim,kim->bik", bids, menu3) * w[None, :, None]
            inv_w, w_col = 1.0 / w, w[:, None]
            boosts, beta_table = self.boosts, self.itemwise_boosts
        else:
            menu, inv_w, w_col = self._eval_menu, self._eval_inv_weights, self._eval_weights
            boosts, beta_table = self._eval_boosts, getattr(self, "_eval_itemwise_boosts", None)
            # One small matmul per bidder with a constant [m, K]: w_i v_i(k) for every entry k.
            weighted = torch.stack([bids[:, i, :] @ self._eval_values[i] for i in range(n)], dim=1)
        indicator = self.profile_indicator(present)
        boost = indicator @ boosts  # [B, K]: the profile's boosts
        terms = [weighted[:, i, :] for i in range(n)]
        score = _sum(terms) + boost
        # S^{-i} from the other bidders' terms directly (not S minus bidder i's term), so a bidder's
        # payment for a given entry is bit-for-bit independent of its own bid.
        others = torch.stack([_sum(terms[:i] + terms[i + 1 :]) + boost if n > 1 else boost for i in range(n)], dim=1)
        if self.itemwise:
            beta = (indicator @ beta_table.reshape(indicator.shape[1], -1)).reshape(B, n + 1, m)
            owner_values = torch.cat([bids * w_col, torch.zeros_like(bids[:, :1, :])], dim=1)  # [B, n+1, m]
            item_score = owner_values + beta  # [B, n+1, m]: owner o gets item j
            item_others = owner_values[:, None] * self._leave_out + beta[:, None]  # [B, n, n+1, m]
        if self.training:
            allocation, payment = self._soft(score, others, weighted, menu, inv_w, item_score if self.itemwise else None,
                                             item_others if self.itemwise else None, bids, w_col)
        else:
            allocation, payment = self._hard(score, others, menu, inv_w, item_score if self.itemwise else None,
                                             item_others if self.itemwise else None)
        allocation = allocation.reshape(B, n, m)
        if self.entry_fee:
            allocation, payment = self._with_fee(bids, allocation, payment)
        allocation = allocation * present[:, :, None]
        return allocation, payment * present

    def _with_fee(self, bids: torch.Tensor, allocation: torch.Tensor, payment: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The entry fee (``entry_fee = true``): bidder i takes its share of the AMA's outcome at its
        AMA price plus e_i = relu(slope * (center - sum_j max_{k != i} b_kj)), or declines and gets
        nothing, pays nothing, its items unsold. e_i depends on the others' bids only, and the AMA
        already gives bidder i its favourite option of a menu that depends on the others' bids only;
        adding e_i to every option but "nothing" keeps that favourite or makes "nothing" the
        favourite, which is what the accept rule picks: exactly strategy-proof, and feasible (items
        are only dropped). Trained with a sigmoid accept at the softmax temperature."""
        fee = self.entry_fees(bids)
        utility = (allocation * bids).sum(dim=2) - payment
        accept = torch.sigmoid((utility - fee) / self.temperature) if self.training else (utility >= fee).to(bids.dtype)
        return allocation * accept[:, :, None], (payment + fee) * accept

    def entry_fees(self, bids: torch.Tensor) -> torch.Tensor:
        """[B, n] e_i = relu(slope * (center - sum_j max_{k != i} b_kj)), from the others' bids only."""
        strongest = strongest_others(bids)
        slope, center = (self.fee_slope, self.fee_center) if self.training else (self._eval_fee[0], self._eval_fee[1])
        return torch.relu(slope * (center - strongest))

    def _hard(self, score, others, menu, inv_w, item_score, item_others):
        n = self.setting.n
        chosen = self.select(score)  # [B, K]
        best = score.max(dim=1, keepdim=True).values
        best_others = others.max(dim=2).values  # [B, n]
        at_chosen = (chosen[:, None, :] * others).sum(dim=2)  # S^{-i} at the chosen entry
        allocation = chosen @ menu
        if item_score is not None:
            B, _, m = item_score.shape
            owner = self.select_owner(item_score)  # [B, n+1, m] one-hot per item
            item_best = item_score.max(dim=1).values.sum(dim=1, keepdim=True)  # [B, 1]
            item_best_others = item_others.max(dim=2).values.sum(dim=2)  # [B, n]
            item_at_chosen = (owner[:, None] * item_others).sum(dim=(2, 3))  # [B, n]
            use = (item_best >= best).to(score.dtype)  # ties go to the item-wise part
            allocation = use * owner[:, :n, :].reshape(B, -1) + (1.0 - use) * allocation
            best_others = torch.maximum(item_best_others, best_others)
            at_chosen = use * item_at_chosen + (1.0 - use) * at_chosen
        return allocation, inv_w * (best_others - at_chosen)

    def _soft(self, score, others, weighted, menu, inv_w, item_score, item_others, bids, w_col):
        # Entropic relaxation: a Gibbs distribution over the menu instead of the argmax. With max
        # replaced by tau * logsumexp(. / tau) on both sides it is itself a truthful, IR mechanism,
        # so training cannot exploit the relaxation; it tends to the AMA as tau -> 0.
        n = self.setting.n
        tau = self.temperature
        logits = [score / tau]
        logits_others = [others / tau]
        if item_score is not None:
            # The item-wise part's log-partition function factorises over items.
            logits.append((tau * torch.logsumexp(item_score / tau, dim=1)).sum(dim=1, keepdim=True) / tau)
            logits_others.append((tau * torch.logsumexp(item_others / tau, dim=2)).sum(dim=2, keepdim=True) / tau)
        all_logits = torch.cat(logits, dim=1)  # [B, K (+1)]
        total = tau * torch.logsumexp(all_logits, dim=1, keepdim=True)  # [B, 1]
        best_others = tau * torch.logsumexp(torch.cat(logits_others, dim=2), dim=2)  # [B, n]
        prob = torch.softmax(all_logits, dim=1)
        K = score.shape[1]
        chosen = prob[:, :K]
        allocation = chosen @ menu
        own = (chosen[:, None, :] * weighted).sum(dim=2)  # expected w_i v_i, [B, n]
        if item_score is not None:
            B, _, m = item_score.shape
            share = torch.softmax(item_score / tau, dim=1)[:, :n, :] * prob[:, K:, None]  # [B, n, m]
            allocation = allocation + share.reshape(B, -1)
            own = own + (share * bids * w_col).sum(dim=2)
        return allocation, inv_w * (best_others - (total - own))

    def select(self, score: torch.Tensor) -> torch.Tensor:
        """[B, K] one-hot of the chosen entry: the lowest index among those attaining the maximum.

        Only max, >= and products of exact small integers, so the choice is unique and fully
        determined on ezkl's fixed-point grid too.
        """
        best = score.max(dim=1, keepdim=True).values
        attains = (score >= best).to(score.dtype)
        ranked = attains * self._priority  # K, K-1, ..., 1 where attained, else 0
        top = ranked.max(dim=1, keepdim=True).values
        return (ranked >= top).to(score.dtype)

    def select_owner(self, item_score: torch.Tensor) -> torch.Tensor:
        """[B, n+1, m] one-hot owner of each item (lowest owner index among the maxima)."""
        best = item_score.max(dim=1, keepdim=True).values
        ranked = (item_score >= best).to(item_score.dtype) * self._owner_priority
        top = ranked.max(dim=1, keepdim=True).values
        return (ranked >= top).to(item_score.dtype)


def default_fee_init(setting: AuctionSetting) -> tuple[float, float]:
    """[slope, center] where an entry fee starts without ``fee_init``: a small slope (at slope 0 the
    fee gets no gradient) and the center at the mean of what it is a function of, the sum over items
    of the others' highest value (of one value alone), for uniform values. From this start training
    finds the fee (from scratch, README "Entry fees": 5x10 slope 0.129, center 8.09; 2x5 0.374, 2.43)."""
    lo, hi = setting.low.mean(dim=0), setting.high.mean(dim=0)  # [m]
    share = (setting.n - 1) / setting.n if setting.n > 1 else 0.5
    return DEFAULT_FEE_SLOPE, float((lo + (hi - lo) * share).sum())


def strongest_others(bids: torch.Tensor) -> torch.Tensor:
    """[B, n]: for each bidder, the sum over items of the others' highest bid (0 alone); what the
    entry fee of ``entry_fee = true`` is a function of."""
    n = bids.shape[1]
    if n == 1:
        return torch.zeros_like(bids[:, :, 0])
    return torch.stack([
        torch.stack([bids[:, k, :] for k in range(n) if k != i], dim=1).max(dim=1).values.sum(dim=1)
        for i in range(n)], dim=1)


def _snap(x: torch.Tensor, bits: int) -> torch.Tensor:
    """``x`` on the 2^-bits grid, halves away from zero (as ezkl quantises constants)."""
    y = x.detach().double() * 2.0**bits
    return (torch.sign(y) * torch.floor(y.abs() + 0.5) / 2.0**bits).float()


def _sum(terms: list[torch.Tensor]) -> torch.Tensor:
    """Left-to-right sum (a fixed order, so adding an absent bidder's exact zero changes nothing)."""
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total


__all__ = ["AffineMaximizerAuction", "all_profiles", "default_fee_init", "full_menu", "strongest_others"]
