"""Honest measurement of any auction: revenue, regret, score, per participation profile and
aggregated with Q; the bounds of the paper's appendix A.3 when per-profile optima are known.

``evaluate(net)`` works for every :class:`~zkauction.learn.nets.AuctionNet` (learned nets, affine
maximizers, baselines): it uses only ``net(bids)``, ``net.setting`` and ``net.participation``.

Per profile g of the participation model (probability q_g), on fresh seeded samples of g:

- revenue: mean total payment over ``n_revenue`` profiles;
- regret: mean over the first ``n_regret`` of them of the total regret (sum over bidders), each
  bidder's regret from :func:`zkauction.learn.regret.evaluation_attack`; also per bidder and the mean per
  present bidder;
- score: (sqrt(rev) - sqrt(rgt))^2 (Rahme et al.; the paper's Lemma 5.1).

Aggregates are q-weighted sums (the paper's rev'_agg, rgt'_agg); the aggregate score is computed from
the aggregate revenue and regret. With ``optima`` ({profile string: rev*_g}) the result carries, per
profile, Lemma A.1 (rgt_g <= rgt_agg / q_g), Lemma A.2 (rev_g <= (sqrt(rev*_g) + sqrt(rgt_agg /
q_g))^2), Theorem A.3 and Proposition A.4 (lower bounds on rev_g from the aggregates). For A.4 the
paper's maximisation over u has a closed form: with S = sum_{j != g} q_j rev*_j the maximum is
(sqrt(S) + sqrt(rgt_agg))^2 (at u_j proportional to q_j rev*_j), so rev_g >= (rev_agg - (sqrt(S) +
sqrt(rgt_agg))^2) / q_g.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import torch

from zkauction.learn.data import check_sample_size, sample_profile
from zkauction.learn.nets import AuctionNet
from zkauction.learn.regret import AttackConfig, evaluation_attack
from zkauction.learn.setting import SettingError, profile_string


def score(revenue: float, regret: float) -> float:
    """(sqrt(rev) - sqrt(rgt))^2, the revenue a zero-regret auction is guaranteed (Lemma 5.1);
    0 when the regret exceeds the revenue."""
    r = math.sqrt(max(revenue, 0.0)) - math.sqrt(max(regret, 0.0))
    return r * r if r > 0 else 0.0


@dataclass
class ProfileEvaluation:
    """One participation profile's individual auction A'_g."""

    profile: str
    probability: float
    revenue: float
    regret: float  # mean total regret (sum over bidders)
    score: float
    regret_per_bidder: list[float]  # mean regret of each bidder (0 for absent bidders)
    regret_mean_present: float  # mean total regret / number of present bidders
    revenue_stderr: float
    regret_stderr: float
    n_revenue: int
    n_regret: int
    optimum: float | None = None
    bounds: dict[str, float | None] | None = None


@dataclass
class Evaluation:
    """Aggregated auction: q-weighted revenue and regret over the profiles, and each profile's."""

    revenue: float
    regret: float
    score: float
    regret_per_bidder: list[float]
    regret_mean_present: float  # E[total regret / number present | someone present]
    per_profile: list[ProfileEvaluation]
    attack: dict[str, Any]
    n_revenue: int
    n_regret: int
    seed: int
    optimum: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def profile(self, g: str) -> ProfileEvaluation:
        for p in self.per_profile:
            if p.profile == g:
                return p
        raise KeyError(f"no profile {g!r}; profiles: {[p.profile for p in self.per_profile]}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(d.pop("extra"))
        return d

    def to_json(self, indent: int | None = 2) -> str:
        """The ``zkauction evaluate --json`` object: revenue, regret, score, per_profile (profile as a
        0/1 string, probability, revenue, regret, score, ...), attack parameters, sample sizes."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    def summary(self) -> str:
        lines = [
            f"revenue {self.revenue:.4f}  regret {self.regret:.2e} (per present bidder "
            f"{self.regret_mean_present:.2e})  score {self.score:.4f}"
        ]
        for p in self.per_profile:
            opt = "" if p.optimum is None else f"  rev* {p.optimum:.4f}"
            lines.append(
                f"  profile {p.profile} (q={p.probability:.3f}): revenue {p.revenue:.4f} ± {p.revenue_stderr:.4f}  "
                f"regret {p.regret:.2e} ± {p.regret_stderr:.1e}  score {p.score:.4f}{opt}"
            )
        return "\n".join(lines)


def _profile_seed(seed: int, g: str) -> int:
    return (int(seed) * 1_000_003 + zlib.crc32(g.encode())) % (2**31)


@torch.no_grad()
def revenue_of(net: AuctionNet, values: torch.Tensor, batch: int = 50_000) -> torch.Tensor:
    """Total payment [B] at each profile."""
    return torch.cat([net(v)[1].sum(-1) for v in values.split(batch)])


def evaluate(
    net: AuctionNet,
    *,
    n_revenue: int = 100_000,
    n_regret: int = 1_000,
    seed: int = 12345,
    attack: AttackConfig | None = None,
    optima: Mapping[str, float | None] | None = None,
    progress: bool = False,
) -> Evaluation:
    """Revenue, regret (evaluation-grade attack) and score of ``net``, per profile of
    ``net.participation`` and aggregated. ``n_revenue`` and ``n_regret`` are per profile.

    With ``progress`` a bar (on stderr) counts the misreport searches, one per attacked profile and
    present bidder, so it advances with the attack, which is nearly all of the time."""
    if n_revenue < 1 or n_regret < 1:
        raise SettingError(f"evaluation: n_revenue and n_regret must be positive, got {n_revenue} and {n_regret}")
    attack = attack or AttackConfig()
    setting, participation = net.setting, net.participation
    check_sample_size(setting, max(n_revenue, n_regret), "evaluation (n_revenue, n_regret)")
    was_training = net.training
    net.eval()
    per: list[ProfileEvaluation] = []
    profiles = list(zip(participation.profiles, participation.probabilities))
    bar = None
    if progress:
        from tqdm import tqdm

        total = sum(n_regret * sum(g) for g, _ in profiles)
        bar = tqdm(total=total, desc="evaluate", unit="search", dynamic_ncols=True)
    for g, q in profiles:
        key = profile_string(g)
        k_present = sum(g)
        if bar is not None:
            bar.set_postfix(profile=key)
        if k_present == 0:  # nobody bids: nothing is sold, nobody can deviate
            pe = ProfileEvaluation(key, q, 0.0, 0.0, 0.0, [0.0] * setting.n, 0.0, 0.0, 0.0, 0, 0)
        else:
            values = sample_profile(setting, g, max(n_revenue, n_regret), _profile_seed(seed, key))
            values = values.to(net.value_scale.device)  # evaluate where the net lives (CPU or GPU)
            rev = revenue_of(net, values[:n_revenue])
            rg = evaluation_attack(net, values[:n_regret], attack, seed=_profile_seed(seed + 1, key),
                                   on_progress=None if bar is None else bar.update)
            total = rg.sum(-1)
            r_mean, t_mean = rev.mean().item(), total.mean().item()
            pe = ProfileEvaluation(
                profile=key,
                probability=q,
                revenue=r_mean,
                regret=t_mean,
                score=score(r_mean, t_mean),
                regret_per_bidder=rg.mean(0).tolist(),
                regret_mean_present=t_mean / k_present,
                revenue_stderr=(rev.std().item() / math.sqrt(len(rev))) if len(rev) > 1 else 0.0,
                regret_stderr=(total.std().item() / math.sqrt(len(total))) if len(total) > 1 else 0.0,
                n_revenue=n_revenue,
                n_regret=n_regret,
            )
        if optima is not None:
            pe.optimum = optima.get(key)
        per.append(pe)
    if bar is not None:
        bar.close()
    net.train(was_training)
    return aggregate(
        per, setting.n, attack=attack.to_dict(setting.m), n_revenue=n_revenue, n_regret=n_regret, seed=seed,
        with_bounds=optima is not None,
    )


def aggregate(
    per: list[ProfileEvaluation],
    n: int,
    *,
    attack: dict[str, Any],
    n_revenue: int,
    n_regret: int,
    seed: int,
    with_bounds: bool,
) -> Evaluation:
    """The Q-weighted aggregate of per-profile results (the paper's rev'_agg and rgt'_agg), with
    the appendix A.3 bounds when ``with_bounds`` (from each profile's ``optimum``)."""
    rev_agg = sum(p.probability * p.revenue for p in per)
    rgt_agg = sum(p.probability * p.regret for p in per)
    someone = sum(p.probability for p in per if "1" in p.profile)
    ev = Evaluation(
        revenue=rev_agg,
        regret=rgt_agg,
        score=score(rev_agg, rgt_agg),
        regret_per_bidder=[sum(p.probability * p.regret_per_bidder[i] for p in per) for i in range(n)],
        regret_mean_present=(sum(p.probability * p.regret_mean_present for p in per) / someone) if someone else 0.0,
        per_profile=per,
        attack=attack,
        n_revenue=n_revenue,
        n_regret=n_regret,
        seed=seed,
    )
    if with_bounds:
        add_bounds(ev)
    return ev


def add_bounds(ev: Evaluation) -> None:
    """Fill ``optimum`` (rev*_agg) and each profile's ``bounds`` (appendix A.3) from the profiles'
    ``optimum`` fields. Bounds needing an unknown optimum are None."""
    per = [p for p in ev.per_profile if p.probability > 0]
    G = len(per)
    known = all(p.optimum is not None for p in per)
    ev.optimum = sum(p.probability * p.optimum for p in per) if known else None  # type: ignore[operator]
    rev_agg, rgt_agg = ev.revenue, ev.regret
    for p in ev.per_profile:
        q = p.probability
        if q <= 0:
            continue
        b: dict[str, float | None] = {"lemma_a1_regret_upper": rgt_agg / q}
        b["lemma_a2_revenue_upper"] = (
            None if p.optimum is None else (math.sqrt(p.optimum) + math.sqrt(rgt_agg / q)) ** 2
        )
        b["corollary_a01_score_at_most_optimum"] = None if p.optimum is None else bool(p.score <= p.optimum + 1e-9)
        if known:
            others = [o for o in per if o.profile != p.profile]
            s_other = sum(o.probability * o.optimum for o in others)  # type: ignore[operator]
            b["theorem_a3_revenue_lower"] = (
                p.optimum
                + (rev_agg - ev.optimum) / q
                - (G - 1) / q * rgt_agg
                - 2 * math.sqrt(rgt_agg) / q * sum(math.sqrt(o.probability * o.optimum) for o in others)  # type: ignore[operator]
            )
            b["proposition_a4_revenue_lower"] = (rev_agg - (math.sqrt(s_other) + math.sqrt(rgt_agg)) ** 2) / q
        else:
            b["theorem_a3_revenue_lower"] = None
            b["proposition_a4_revenue_lower"] = None
        p.bounds = b
