import json
import math

import pytest
import torch

from zkauction.learn.baselines import FirstPrice, ItemwiseMyerson, itemwise_myerson_revenue, known_optima
from zkauction.learn.evaluate import evaluate, score
from zkauction.learn.nets import RegretNet
from zkauction.learn.regret import AttackConfig
from zkauction.learn.setting import AuctionSetting, ParticipationModel

FAST = AttackConfig(starts=2, steps=20, grid=11)


def test_score():
    assert abs(score(0.9, 0.0) - 0.9) < 1e-12
    assert abs(score(0.9, 0.0016) - (math.sqrt(0.9) - 0.04) ** 2) < 1e-12
    assert score(0.1, 0.2) == 0.0


def test_per_profile_and_aggregate_for_myerson():
    s = AuctionSetting(2, 2)
    p = ParticipationModel.independent([0.7, 0.9])
    ev = evaluate(ItemwiseMyerson(s, p), n_revenue=50_000, n_regret=40, attack=FAST)
    assert [x.profile for x in ev.per_profile] == ["11", "10", "01", "00"]
    for x in ev.per_profile:
        exact = itemwise_myerson_revenue(s, x.profile)
        assert abs(x.revenue - exact) < 4 * x.revenue_stderr + 1e-9
        assert x.regret < 1e-4
    assert abs(ev.revenue - sum(x.probability * x.revenue for x in ev.per_profile)) < 1e-12
    assert ev.profile("00").revenue == 0.0


def test_regret_per_bidder_and_json_keys():
    s = AuctionSetting(2, 1)
    p = ParticipationModel.independent([0.5, 1.0])  # profiles 11 and 01
    ev = evaluate(FirstPrice(s, p), n_revenue=1000, n_regret=60, attack=FAST, optima=known_optima(s, p))
    d = json.loads(ev.to_json())
    for key in ("revenue", "regret", "score", "per_profile", "attack", "regret_mean_present", "regret_per_bidder"):
        assert key in d
    assert d["attack"]["grid"] == 11 and d["attack"]["steps"] == 20
    prof = {x["profile"]: x for x in d["per_profile"]}
    assert set(prof) == {"11", "01"}
    for x in prof.values():
        assert {"profile", "probability", "revenue", "regret", "score"} <= set(x)
    # Alone, bidder 1 pays its own bid under first price and would rather bid 0: regret = its value.
    assert prof["01"]["regret_per_bidder"][0] == 0.0
    assert abs(prof["01"]["regret"] - 0.5) < 0.15
    assert abs(prof["11"]["regret"] - 2 / 6) < 0.1
    assert abs(prof["11"]["regret_mean_present"] - prof["11"]["regret"] / 2) < 1e-12


def test_appendix_a3_bounds():
    # One item: every profile's optimum is Myerson's, so every bound is computable.
    torch.manual_seed(0)
    s = AuctionSetting(2, 1)
    p = ParticipationModel.independent([0.6, 0.8])
    net = RegretNet(s, p, depth=2, width=16)
    opt = known_optima(s, p)
    ev = evaluate(net, n_revenue=20_000, n_regret=60, attack=FAST, optima=opt)
    assert abs(ev.optimum - sum(q * opt[g] for g, q in zip(p.profile_strings(), p.probabilities))) < 1e-12
    for x in ev.per_profile:
        b = x.bounds
        assert b["lemma_a1_regret_upper"] >= x.regret - 1e-9  # Lemma A.1 holds by construction
        assert b["lemma_a2_revenue_upper"] >= x.revenue - 1e-3
        # Proposition A.4 is the tighter lower bound; both are lower bounds on the revenue.
        assert b["proposition_a4_revenue_lower"] >= b["theorem_a3_revenue_lower"] - 1e-9
        assert b["proposition_a4_revenue_lower"] <= x.revenue + 1e-3
        assert b["corollary_a01_score_at_most_optimum"] in (True, False)


def test_a4_closed_form_matches_brute_force_maximisation():
    # The paper states A.4 with a max over the simplex; evaluate() uses its closed form.
    from zkauction.learn.evaluate import Evaluation, ProfileEvaluation, add_bounds

    qs, opts = [0.5, 0.2, 0.3], [0.9, 0.55, 0.55]
    per = [ProfileEvaluation(g, q, 0.5, 0.0, 0.0, [], 0.0, 0.0, 0.0, 1, 1, o) for g, q, o in zip(["11", "10", "01"], qs, opts)]
    ev = Evaluation(0.7, 0.01, 0.0, [], 0.0, per, {}, 1, 1, 0)
    add_bounds(ev)
    u = torch.distributions.Dirichlet(torch.ones(2)).sample((200_000,)).double()
    j = [1, 2]
    val = sum(qs[k] * (math.sqrt(opts[k]) + torch.sqrt(u[:, c] * 0.01 / qs[k])) ** 2 for c, k in enumerate(j))
    brute = (0.7 - val.max().item()) / qs[0]
    assert abs(per[0].bounds["proposition_a4_revenue_lower"] - brute) < 1e-4


def test_progress_counts_every_misreport_search():
    """The bar advances with the attack, one unit per attacked profile and present bidder."""
    from zkauction.learn.regret import evaluation_attack

    s = AuctionSetting(2, 1)
    p = ParticipationModel.independent([0.5, 1.0])  # profiles 11 and 01
    net = FirstPrice(s, p)
    calls: list[int] = []
    values = torch.tensor([[[0.5], [0.7]], [[0.0], [0.2]], [[0.3], [0.9]]])
    evaluation_attack(net, values, AttackConfig(starts=1, steps=2, grid=3, batch_size=2), on_progress=calls.append)
    assert sum(calls) == 5 and len(calls) > 1  # 3 rows for bidder 1, 2 for bidder 0 (absent once); in blocks
    ev = evaluate(net, n_revenue=100, n_regret=10, attack=FAST, progress=True)
    assert ev.n_regret == 10
