"""Penalty and deviation simulation (paper, section 4.1 and appendix A.2)."""

import math

import pytest

from zkauction.protocol.credibility import (
    CredibilityError,
    argt_bound,
    catch_probability,
    constant_gain,
    expected_profit,
    keep_threshold,
    minimal_penalty,
    penalty_needed,
    plot_profit,
    simulate,
    uniform_gain,
)
from zkauction.learn.setting import AuctionSetting

# The simulation reports a 95% interval; with a dozen comparisons, one would miss it by chance every
# few runs, so each is checked against the 99.9% interval (3.29 standard errors).
CI999 = 3.29 / 1.96


def test_argt_bound_is_sum_over_items_of_highest_value():
    assert argt_bound(AuctionSetting(2, 2)) == 2.0
    assert argt_bound(AuctionSetting(3, 10)) == 10.0
    s = AuctionSetting(2, 2, [[[0, 1], [0, 3]], [[0, 2], [1, 2]]])
    assert argt_bound(s) == 2.0 + 3.0


@pytest.mark.parametrize("T", [1, 2, 10, 100, 1000])
def test_threshold_matches_section_4_1_for_one_audit(T):
    a = 2.0
    keep = minimal_penalty(T, 1, a, "keep")
    assert keep.minimal_penalty == T * a == keep.section_4_1_threshold
    # Section 4.1's own algebra (gains lost when caught): break-even (T - w) aRgt*, worst at w = 1.
    forfeit = minimal_penalty(T, 1, a, "forfeit")
    assert forfeit.minimal_penalty == pytest.approx((T - 1) * a)
    assert forfeit.minimal_penalty <= T * a
    # Every deviation is unprofitable just above the threshold and some is profitable just below.
    for w in range(1, T + 1):
        assert expected_profit("rounds", T, 1, T * a * 1.0001, a, deviations=w) < 0
    assert expected_profit("rounds", T, 1, T * a * 0.999, a, deviations=1) > 0


@pytest.mark.parametrize("T,k", [(1, 1), (7, 3), (40, 1), (40, 5), (40, 40), (300, 17)])
def test_the_keep_threshold_is_the_enumerated_minimal_penalty_for_every_k(T, k):
    """What a bidder checks an announced penalty against, in O(1): T * aRgt* whatever k."""
    assert keep_threshold(T, 2.5) == pytest.approx(minimal_penalty(T, k, 2.5, "keep").minimal_penalty, rel=1e-12)


def test_catch_probability_is_hypergeometric():
    assert catch_probability(10, 1, 3) == pytest.approx(0.3)
    # k = 2 of T = 5, w = 2: miss = C(3,2)/C(5,2) = 3/10
    assert catch_probability(5, 2, 2) == pytest.approx(0.7)
    assert catch_probability(5, 5, 1) == 1.0
    assert catch_probability(5, 2, 0) == 0.0
    # brute force over all audited subsets
    import itertools

    T, k, dev = 7, 3, {1, 4}
    subsets = list(itertools.combinations(range(T), k))
    caught = sum(1 for s in subsets if dev & set(s)) / len(subsets)
    assert catch_probability(T, k, len(dev)) == pytest.approx(caught)


def test_more_audits_lower_the_forfeit_penalty():
    T, a = 200, 2.0
    values = [minimal_penalty(T, k, a, "forfeit").minimal_penalty for k in (1, 2, 5, 20)]
    assert values == sorted(values, reverse=True)
    assert values[1] == pytest.approx(a * (T - 2) / 2)  # w = 1: a (T - k) / k
    # With the auctioneer keeping its gains, always deviating is caught surely and gains T aRgt*.
    assert minimal_penalty(T, 5, a, "keep").minimal_penalty == T * a
    assert penalty_needed(T, 5, T, a) == T * a


@pytest.mark.parametrize("accounting", ["keep", "forfeit"])
@pytest.mark.parametrize("strategy,w", [("always", None), ("rounds", 1), ("rounds", 7)])
def test_simulation_agrees_with_closed_form(strategy, w, accounting):
    T, k, penalty, a = 40, 2, 35.0, 2.0
    res = simulate(strategy, T, k, penalty, uniform_gain(a), deviations=w, accounting=accounting, trials=40000, seed=1)
    closed = expected_profit(strategy, T, k, penalty, a / 2, deviations=w, accounting=accounting)
    assert abs(res.mean_profit - closed) <= res.ci95 * CI999, (res, closed)
    if strategy == "rounds":
        assert res.catch_rate == pytest.approx(catch_probability(T, k, w), abs=0.01)


@pytest.mark.parametrize("accounting", ["keep", "forfeit"])
def test_threshold_strategy_simulation_and_appendix_a2(accounting):
    T, k, a = 50, 1, 2.0
    penalty = 0.75 * T * a  # below the threshold: tau = penalty / T = 1.5
    res = simulate("threshold", T, k, penalty, uniform_gain(a), accounting=accounting, trials=40000, seed=2)
    q, mean_dev = 0.25, 1.75  # P(U[0,2] >= 1.5), E[g | g >= 1.5]
    closed = expected_profit("threshold", T, k, penalty, a / 2, deviate_probability=q,
                             gain_mean_when_deviating=mean_dev, accounting=accounting)
    assert abs(res.mean_profit - closed) <= res.ci95 * CI999, (res, closed)
    if accounting == "keep":
        # Appendix A.2: with penalty <= T aRgt*, deviating above penalty/T beats always being truthful.
        assert closed > 0 and res.mean_profit > 0
    # Above the threshold nothing is ever worth deviating for (gains never reach aRgt*).
    res_hi = simulate("threshold", T, k, T * a * 1.01, uniform_gain(a), trials=2000, seed=3)
    assert res_hi.mean_deviations == 0 and res_hi.mean_profit == 0


def test_always_deviating_at_the_bound_is_caught_surely():
    res = simulate("always", 10, 1, 25.0, constant_gain(2.0), trials=100)
    assert res.catch_rate == 1.0 and res.mean_profit == pytest.approx(20.0 - 25.0)


def test_bad_parameters_are_named():
    with pytest.raises(CredibilityError, match="audits k"):
        minimal_penalty(10, 11, 1.0)
    with pytest.raises(CredibilityError, match="rounds T"):
        minimal_penalty(0, 1, 1.0)
    with pytest.raises(CredibilityError, match="strategy"):
        simulate("sometimes", 10, 1, 1.0, uniform_gain(1.0))
    with pytest.raises(CredibilityError, match="accounting"):
        minimal_penalty(10, 1, 1.0, "refund")


def test_plot_is_written(tmp_path):
    out = plot_profit(20, 1, 2.0, uniform_gain(2.0), tmp_path / "p.png", trials=200, points=5)
    assert out.is_file() and out.stat().st_size > 1000
    assert math.isfinite(minimal_penalty(20, 1, 2.0).minimal_penalty)


def test_penalty_command(root):
    from typer.testing import CliRunner

    from zkauction.cli import app

    res = CliRunner().invoke(app, ["penalty", str(root / "configs" / "ama_2x2_uniform.toml"), "--rounds", "50",
                                   "--audits", "1", "--trials", "500", "--json"])
    assert res.exit_code == 0, res.output
    import json

    d = json.loads(res.output)
    assert d["argt_bound"] == 2.0
    assert d["minimal_penalty"]["keep"]["minimal_penalty"] == 100.0
    assert d["minimal_penalty"]["forfeit"]["minimal_penalty"] == 98.0
    assert [s["strategy"] for s in d["simulations"]] == ["always", "rounds", "rounds", "threshold"]
    assert d["bidders_accept_above"] is None  # a config: no outcome grid to speak of
    bad = CliRunner().invoke(app, ["penalty", str(root / "configs" / "ama_2x2_uniform.toml"), "--rounds", "5", "--audits", "6"])
    assert bad.exit_code == 2 and "audits k" in bad.output
    # a circuit: what its run's bidders accept, with the public checks' rounding on its grid 2^-10
    res = CliRunner().invoke(app, ["penalty", str(root / "circuits" / "ama_2x2_uniform"), "--rounds", "50", "--trials", "50"])
    assert res.exit_code == 0 and "bidders accept a penalty above 100.586 (T x aRgt* widened" in res.output, res.output


def test_auction_gain_subtracts_the_auctions_revenue():
    import numpy as np
    import torch

    from zkauction.protocol.credibility import auction_gain
    from zkauction.learn.nets import RegretNet
    from zkauction.learn.setting import ParticipationModel

    s = AuctionSetting(2, 2)
    torch.manual_seed(0)
    net = RegretNet(s, ParticipationModel.fixed(2), depth=2, width=8).eval()
    upper = auction_gain(s, pool=2000)(np.random.default_rng(0), 10, 5)
    lower = auction_gain(s, net=net, pool=2000)(np.random.default_rng(0), 10, 5)
    assert upper.shape == (10, 5) and (upper <= 2.0).all() and (upper >= 0).all()
    assert lower.mean() < upper.mean()


def _enumerated_minimal_penalty(T, k, a, accounting):
    """The definition, enumerated in exact rational arithmetic (what minimal_penalty computed before
    it took a closed form for "keep" and floats with an exact re-check for "forfeit")."""
    from fractions import Fraction

    total, best, worst = math.comb(T, k), Fraction(0), 1
    for w in range(1, T + 1):
        miss = Fraction(math.comb(T - w, k), total)
        need = w * Fraction(a) / (1 - miss) if accounting == "keep" else w * Fraction(a) * miss / (1 - miss)
        if need > best:
            best, worst = need, w
    return float(best), worst


@pytest.mark.parametrize("accounting", ["keep", "forfeit"])
def test_minimal_penalty_equals_the_enumerated_definition(accounting):
    for T in (1, 2, 3, 7, 12, 40, 61):
        for k in sorted({1, 2, 3, T // 2 or 1, T - 1 or 1, T} & set(range(1, T + 1))):
            for a in (0.0, 1e-300, 1 / 3, 2.5, 3e5):
                r = minimal_penalty(T, k, a, accounting)
                assert (r.minimal_penalty, r.worst_deviations) == _enumerated_minimal_penalty(T, k, a, accounting), (T, k, a)


def test_minimal_penalty_for_a_million_rounds_is_in_closed_form():
    # O(T) floats plus an exact re-check of the worst w (enumerating the binomials exactly took minutes)
    keep, forfeit = minimal_penalty(10**6, 1000, 2.0, "keep"), minimal_penalty(10**6, 1000, 2.0, "forfeit")
    assert (keep.minimal_penalty, keep.worst_deviations) == (2e6, 10**6)
    assert forfeit.minimal_penalty == pytest.approx(2.0 * (10**6 - 1000) / 1000, rel=1e-12) and forfeit.worst_deviations == 1


def test_a_simulation_above_the_memory_cap_is_refused():
    from zkauction.protocol.credibility import MAX_SIMULATED_GAINS, CredibilityError

    with pytest.raises(CredibilityError, match="above the cap"):
        simulate("always", MAX_SIMULATED_GAINS // 2 + 1, 1, 1.0, constant_gain(1.0), trials=2)


def test_the_penalty_command_keeps_every_simulation_within_the_cap(root, tmp_path, monkeypatch):
    """--trials defaults to what fits under the cap, and --plot (a tenth of the trials, at least 200)
    stays within it too: with the cap at 2,000 gains and T = 100, 200 plot trials would exceed it."""
    from typer.testing import CliRunner

    import zkauction.protocol.credibility as cr
    from zkauction.cli import app

    monkeypatch.setattr(cr, "MAX_SIMULATED_GAINS", 2000)
    res = CliRunner().invoke(app, ["penalty", str(root / "configs" / "ama_2x2_uniform.toml"), "--rounds", "100",
                                   "--plot", str(tmp_path / "p.png")])
    assert res.exit_code == 0, res.output
    assert "(20 trials, accounting 'keep'" in res.output and "rare catches are seldom sampled" in res.output
    assert (tmp_path / "p.png").stat().st_size > 0
    big = CliRunner().invoke(app, ["penalty", str(root / "configs" / "ama_2x2_uniform.toml"), "--rounds", "100", "--trials", "21"])
    assert big.exit_code == 2 and "give --trials 20 or fewer" in big.output
