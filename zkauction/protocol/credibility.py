"""Credibility (paper, section 4.1 and appendix A.2): how large a penalty makes deviating unprofitable.

- :func:`argt_bound`: aRgt*, an upper bound on what an auctioneer can gain in one round by running
  some other feasible auction: the sum over items of the highest value in the support (no reported
  bid can exceed it, so no individually rational deviation can charge more).
- :func:`catch_probability`: an auctioneer deviating in w of T rounds, k of which are audited
  uniformly without replacement, is caught with probability 1 - C(T-w, k) / C(T, k) (hypergeometric;
  w / T for k = 1, as in section 4.1).
- :func:`minimal_penalty`: the smallest penalty above which every deviation loses money in
  expectation, exact for T rounds and k audits.
- :func:`simulate`: Monte-Carlo of deviating auctioneers (always, w random rounds, and appendix
  A.2's threshold strategy) with a 95% confidence interval, and :func:`expected_profit`, the closed
  form it is checked against.

Two accountings of a caught deviation, both exact:

- ``"keep"`` (default, conservative): nothing in Algorithm 1 claws back what the auctioneer took; a
  caught auctioneer keeps its extra revenue and pays the penalty. Profit of deviating in w rounds:
  w * g - P(caught) * penalty. For k = 1 the minimal penalty is exactly T * aRgt*, section 4.1's
  threshold; since always deviating is caught for sure, it stays T * aRgt* for any k.
- ``"forfeit"`` (section 4.1's own algebra): a caught auctioneer loses the extra revenue as well:
  profit (1 - P(caught)) * w * g - P(caught) * penalty. For k = 1 the minimum is (T - 1) * aRgt*,
  below section 4.1's T * aRgt*, which is therefore sufficient; more audits lower it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Literal, Sequence

from zkauction.errors import ZkAuctionError
import numpy as np

if TYPE_CHECKING:  # annotations only: a bidder checks the announced penalty without importing torch
    from zkauction.learn.setting import AuctionSetting

Accounting = Literal["keep", "forfeit"]
ACCOUNTINGS = ("keep", "forfeit")
STRATEGIES = ("always", "rounds", "threshold")
MAX_SIMULATED_GAINS = 25_000_000  # trials x T per simulation: about 40 bytes each at the peak, so about 1 GB


class CredibilityError(ZkAuctionError, ValueError):
    """Parameters of a penalty computation or simulation that do not make sense, with the reason."""


def argt_bound(setting: AuctionSetting) -> float:
    """aRgt*: sum over items of the highest value any bidder can have for it (section 4.1)."""
    return support_argt(setting.support)


def support_argt(support: Sequence[Sequence[Sequence[float]]]) -> float:
    """aRgt* from a support table [n][m] of (low, high): what an announcement states."""
    return float(sum(max(float(row[j][1]) for row in support) for j in range(len(support[0]))))


DEFAULT_TOLERANCE = 1e-6  # float outcomes (a plain net in tests); circuit outcomes give their own grid


def output_step(output_scale: object) -> float | None:
    """The outcome grid's step 2^-output_scale for a sane announced scale (an integer in [1, 52]);
    None otherwise (float outcomes). The auctioneer writes the scale: a negative one never loosens
    a check, and every verifier holding the circuit checks it is the circuit's own."""
    if isinstance(output_scale, bool) or not isinstance(output_scale, int) or not 1 <= output_scale <= 52:
        return None
    return 2.0 ** -output_scale


def public_tolerance(n: int, output_scale: object) -> float:
    """How far the public checks let rounding carry an outcome: one grid step per bidder, or
    :data:`DEFAULT_TOLERANCE` for float outcomes."""
    step = output_step(output_scale)
    return DEFAULT_TOLERANCE if step is None else n * step


def round_gain_bound(support: Sequence[Sequence[Sequence[float]]], output_scale: object) -> float:
    """The most one round's outcome can charge all bidders together and still pass every public
    check (:func:`zkauction.protocol.audit.check_round`), hence the most a deviating auctioneer gains
    in a round: aRgt* (1 + n tol) + n tol with tol = :func:`public_tolerance`. Each payment may reach
    its allocation at the top of the support plus tol; an item's allocations may sum to 1 + tol, with
    cells down to -tol, so the positive ones sum to at most 1 + n tol. Above aRgt* by about
    (aRgt* + 1) n tol: 0.6% for the shipped 2x2 circuit (output scale 10); a penalty above T aRgt*
    alone would let an always-deviating auctioneer keep T times that."""
    n = len(support)
    tol = public_tolerance(n, output_scale)
    return support_argt(support) * (1.0 + n * tol) + n * tol


def keep_threshold(rounds: int, argt: float) -> float:
    """The minimal penalty in the "keep" accounting, in closed form: T * aRgt*, whatever k. Deviating
    in w rounds gains at most w aRgt* and is caught with P_w = 1 - C(T-w, k) / C(T, k) >= 1 - (1 -
    w/T)^k >= w/T, so w aRgt* / P_w <= T aRgt*, with equality at w = T. :func:`minimal_penalty`
    reports the same with the worst w (a bidder checks this one)."""
    return float(rounds) * float(argt)


def _check_tk(rounds: int, audits: int) -> None:
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise CredibilityError(f"rounds T must be a positive integer, got {rounds!r}")
    if isinstance(audits, bool) or not isinstance(audits, int) or not 1 <= audits <= rounds:
        raise CredibilityError(f"audits k must be an integer in [1, T={rounds}], got {audits!r}")


def _check_accounting(accounting: str) -> None:
    if accounting not in ACCOUNTINGS:
        raise CredibilityError(f"accounting must be one of {ACCOUNTINGS}, got {accounting!r}")


def catch_probability(rounds: int, audits: int, deviations: int) -> float:
    """P(at least one of ``deviations`` deviating rounds is among ``audits`` audited of ``rounds``)."""
    _check_tk(rounds, audits)
    if not 0 <= deviations <= rounds:
        raise CredibilityError(f"deviating rounds w must be in [0, T={rounds}], got {deviations}")
    return 1.0 - math.comb(rounds - deviations, audits) / math.comb(rounds, audits)


def _catch_table(rounds: int, audits: int) -> np.ndarray:
    """P(caught | w deviations) for w = 0..T: 1 - m_w, with the miss probability m_w = C(T-w, k) /
    C(T, k) by the recurrence m_{w+1} = m_w (T-w-k) / (T-w) in floats: O(T), relative error about
    T * 1e-16."""
    w = np.arange(rounds, dtype=np.float64)
    return 1.0 - np.concatenate([[1.0], np.cumprod(np.clip((rounds - w - audits) / (rounds - w), 0.0, None))])


def penalty_needed(rounds: int, audits: int, deviations: int, gain: float, accounting: Accounting = "keep") -> float:
    """The penalty at which deviating in exactly w rounds, gaining ``gain`` in each, breaks even."""
    _check_accounting(accounting)
    p = catch_probability(rounds, audits, deviations)
    if deviations == 0:
        return 0.0
    extra = deviations * gain
    return extra / p if accounting == "keep" else extra * (1.0 - p) / p


@dataclass(frozen=True)
class PenaltyReport:
    """The minimal penalty and where it comes from."""

    rounds: int
    audits: int
    argt_bound: float
    accounting: str
    minimal_penalty: float  # any penalty strictly above this makes every deviation unprofitable
    worst_deviations: int  # the w that needs the largest penalty
    section_4_1_threshold: float  # T * aRgt*

    def to_dict(self) -> dict[str, float | int | str]:
        return dict(self.__dict__)


def minimal_penalty(rounds: int, audits: int, argt: float, accounting: Accounting = "keep") -> PenaltyReport:
    """Exact minimal penalty for T rounds and k audits: the max over w = 1..T of the break-even
    penalty of deviating in w rounds with the largest per-round gain aRgt* (a smaller gain needs a
    smaller penalty, since both accountings are linear in the gain), and the first w reaching it.
    Both maxima are in closed form, so this takes microseconds at any T and k:

    - "keep": T aRgt* (:func:`keep_threshold`), reached at w = T; with k = 1 every w ties and the
      first, w = 1, is reported.
    - "forfeit": aRgt* (T - k) / k at w = 1 alone. With x = k / (T - k) and the miss probability
      m_w = C(T-w, k) / C(T, k) = prod_{i<w} (T-k-i)/(T-i) <= (1 + x)^-w, the break-even penalty
      w aRgt* m_w / (1 - m_w) is at most w = 1's, aRgt* / x, exactly when m_w <= 1 / (1 + w x),
      which Bernoulli's inequality (1 + x)^w >= 1 + w x gives, strictly for w >= 2. With k = T
      every deviation is caught and the minimum is 0.

    ``tests/test_credibility.py`` checks both against the definition enumerated in exact fractions."""
    _check_tk(rounds, audits)
    _check_accounting(accounting)
    if not (math.isfinite(argt) and argt >= 0):
        raise CredibilityError(f"aRgt* must be a finite non-negative number, got {argt}")
    a = Fraction(argt)
    if accounting == "keep":
        best, worst = rounds * a, rounds if audits > 1 and argt > 0 else 1
    else:
        best, worst = a * (rounds - audits) / audits, 1
    return PenaltyReport(rounds, audits, float(argt), accounting, float(best), worst, rounds * float(argt))


# --------------------------------------------------------------------------------------------------
# Deviating auctioneers


GainSampler = Callable[[np.random.Generator, int, int], np.ndarray]
"""(rng, trials, rounds) -> per-round gains [trials, rounds] an auctioneer could take by deviating."""


def constant_gain(value: float) -> GainSampler:
    """Every round offers the same gain (e.g. aRgt*, the worst case)."""
    return lambda rng, trials, rounds: np.full((trials, rounds), float(value))


def uniform_gain(high: float) -> GainSampler:
    """Gains U[0, high] per round, i.i.d. (a simple stand-in for a setting's gain distribution)."""
    return lambda rng, trials, rounds: rng.uniform(0.0, float(high), size=(trials, rounds))


def auction_gain(setting: AuctionSetting, participation=None, net=None, *, pool: int = 200_000, seed: int = 0) -> GainSampler:
    """Gains of a deviating auctioneer on bids drawn from the setting (tweaked: absent bidders bid 0).

    The most a feasible, individually rational deviation can collect in a round is the first-price
    revenue sum_j max_i bid_ij; the gain is that minus the announced auction's revenue on the same
    bids (``net``, an :class:`~zkauction.learn.nets.AuctionNet`; without one the honest revenue is taken as
    0, an upper bound). Gains are computed once on ``pool`` profiles and resampled from there.
    """
    import torch

    from zkauction.learn.data import sample_tweaked
    from zkauction.learn.setting import ParticipationModel

    part = participation or (net.participation if net is not None else ParticipationModel.fixed(setting.n))
    cache: list[np.ndarray] = []

    def values() -> np.ndarray:
        if not cache:
            bids = sample_tweaked(setting, part, pool, seed).values
            best = bids.max(dim=1).values.sum(dim=-1)
            if net is not None:
                with torch.no_grad():
                    pay = torch.cat([net(bids[i : i + 50_000])[1].sum(dim=-1) for i in range(0, pool, 50_000)])
                best = best - pay
            cache.append(best.clamp_min(0.0).double().numpy())
        return cache[0]

    def sample(rng: np.random.Generator, trials: int, rounds: int) -> np.ndarray:
        return rng.choice(values(), size=(trials, rounds), replace=True)

    sample.values = values  # type: ignore[attr-defined]  (the pool, for closed forms)
    return sample


@dataclass(frozen=True)
class SimulationResult:
    strategy: str
    rounds: int
    audits: int
    penalty: float
    accounting: str
    trials: int
    mean_profit: float  # expected extra revenue minus expected penalty, over the whole run
    ci95: float  # half-width of the 95% confidence interval of mean_profit
    catch_rate: float
    mean_deviations: float

    def to_dict(self) -> dict[str, float | int | str]:
        return dict(self.__dict__)


def _deviation_mask(
    strategy: str, gains: np.ndarray, rng: np.random.Generator, penalty: float, deviations: int | None, threshold: float | None
) -> np.ndarray:
    trials, rounds = gains.shape
    if strategy == "always":
        return np.ones_like(gains, dtype=bool)
    if strategy == "rounds":
        if deviations is None or not 0 <= deviations <= rounds:
            raise CredibilityError(f"strategy 'rounds' needs deviations w in [0, T={rounds}], got {deviations}")
        # w rounds chosen uniformly (the auctioneer cannot know which rounds will be audited)
        order = np.argsort(rng.random((trials, rounds)), axis=1)
        mask = np.zeros_like(gains, dtype=bool)
        np.put_along_axis(mask, order[:, :deviations], True, axis=1)
        return mask
    if strategy == "threshold":
        # Appendix A.2: deviate exactly in the rounds whose available gain is at least penalty / T.
        tau = penalty / rounds if threshold is None else threshold
        return gains >= tau
    raise CredibilityError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")


def simulate(
    strategy: str,
    rounds: int,
    audits: int,
    penalty: float,
    gains: GainSampler,
    *,
    trials: int = 20000,
    deviations: int | None = None,
    threshold: float | None = None,
    accounting: Accounting = "keep",
    seed: int = 0,
) -> SimulationResult:
    """Monte-Carlo of an auctioneer following ``strategy`` against k uniform audits out of T rounds.

    Each trial draws per-round gains, decides where to deviate, draws the k audited rounds (uniform
    without replacement, as :func:`zkauction.protocol.select_audit_rounds` does) and books the
    extra revenue and the penalty if any audited round deviated.
    """
    _check_tk(rounds, audits)
    _check_accounting(accounting)
    if trials < 2:
        raise CredibilityError(f"trials must be at least 2, got {trials}")
    if trials * rounds > MAX_SIMULATED_GAINS:
        raise CredibilityError(f"trials x T = {trials} x {rounds} gains to simulate, above the cap of {MAX_SIMULATED_GAINS:,}")
    rng = np.random.default_rng(seed)
    g = np.asarray(gains(rng, trials, rounds), dtype=float)
    if g.shape != (trials, rounds):
        raise CredibilityError(f"gain sampler returned shape {g.shape}, expected {(trials, rounds)}")
    dev = _deviation_mask(strategy, g, rng, penalty, deviations, threshold)
    audited = np.argsort(rng.random((trials, rounds)), axis=1)[:, :audits]
    caught = np.take_along_axis(dev, audited, axis=1).any(axis=1)
    extra = (g * dev).sum(axis=1)
    if accounting == "keep":
        profit = extra - caught * penalty
    else:
        profit = np.where(caught, -penalty, extra)
    return SimulationResult(
        strategy, rounds, audits, float(penalty), accounting, trials,
        float(profit.mean()), float(1.96 * profit.std(ddof=1) / math.sqrt(trials)),
        float(caught.mean()), float(dev.sum(axis=1).mean()),
    )


def expected_profit(
    strategy: str,
    rounds: int,
    audits: int,
    penalty: float,
    gain_mean: float,
    *,
    deviations: int | None = None,
    deviate_probability: float | None = None,
    gain_mean_when_deviating: float | None = None,
    accounting: Accounting = "keep",
) -> float:
    """Closed-form expected profit, for i.i.d. gains.

    ``always`` and ``rounds`` (w fixed): w * E[g] - P(caught | w) * penalty ("keep"), or
    (1 - P) * w * E[g] - P * penalty ("forfeit"). ``threshold``: the number of deviating rounds W is
    Binomial(T, q) with q = P(g >= tau), each deviating round gaining E[g | g >= tau]; the profit is
    averaged over W exactly.
    """
    _check_tk(rounds, audits)
    _check_accounting(accounting)
    catch = _catch_table(rounds, audits)
    if strategy in ("always", "rounds"):
        w = rounds if strategy == "always" else deviations
        if w is None or not 0 <= w <= rounds:
            raise CredibilityError(f"deviations w must be in [0, T={rounds}], got {w}")
        p = catch[w]
        return w * gain_mean - p * penalty if accounting == "keep" else (1 - p) * w * gain_mean - p * penalty
    if strategy == "threshold":
        if deviate_probability is None or gain_mean_when_deviating is None:
            raise CredibilityError("threshold strategy needs deviate_probability and gain_mean_when_deviating")
        from scipy.stats import binom

        q, gd = deviate_probability, gain_mean_when_deviating
        w = np.arange(rounds + 1)
        pw = binom.pmf(w, rounds, q)
        if accounting == "keep":
            return float((pw * (w * gd - catch * penalty)).sum())
        return float((pw * ((1 - catch) * w * gd - catch * penalty)).sum())
    raise CredibilityError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")


def plot_profit(
    rounds: int,
    audits: int,
    argt: float,
    gains: GainSampler,
    path: str | Path,
    *,
    accounting: Accounting = "keep",
    trials: int = 4000,
    points: int = 21,
    seed: int = 0,
) -> Path:
    """Simulated expected profit of deviating auctioneers against the penalty, with the minimal
    penalty marked. Strategies: always, one round, T/4 rounds, threshold (appendix A.2)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report = minimal_penalty(rounds, audits, argt, accounting)
    top = max(report.minimal_penalty, report.section_4_1_threshold) * 1.5 or 1.0
    penalties = np.linspace(0.0, top, points)
    curves = {
        "always deviate": dict(strategy="always"),
        "deviate in 1 round": dict(strategy="rounds", deviations=1),
        f"deviate in {max(1, rounds // 4)} rounds": dict(strategy="rounds", deviations=max(1, rounds // 4)),
        "threshold (A.2)": dict(strategy="threshold"),
    }
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, kw in curves.items():
        res = [simulate(penalty=float(p), rounds=rounds, audits=audits, gains=gains, trials=trials,
                        accounting=accounting, seed=seed, **kw) for p in penalties]
        mean = np.array([r.mean_profit for r in res])
        ci = np.array([r.ci95 for r in res])
        ax.plot(penalties, mean, label=label)
        ax.fill_between(penalties, mean - ci, mean + ci, alpha=0.2)
    ax.axhline(0.0, color="black", lw=0.8)
    ax.axvline(report.minimal_penalty, color="red", ls="--", label=f"minimal penalty {report.minimal_penalty:.4g}")
    ax.set_xlabel("penalty")
    ax.set_ylabel("expected extra revenue - expected penalty")
    ax.set_title(f"Deviating auctioneers: T={rounds}, k={audits}, aRgt*={argt:g}, accounting '{accounting}'")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
