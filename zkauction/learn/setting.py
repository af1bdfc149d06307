"""Auction settings and the stationary participation model (paper, sections 3.1 and 3.1.1).

An :class:`AuctionSetting` fixes n bidders, m items and, for additive bidders, an independent uniform
value support ``U[low[i][j], high[i][j]]`` for every bidder i and item j. A
:class:`ParticipationModel` is the paper's pair (G, Q): participation profiles (0/1 strings of length
n) and their probabilities. The fixed-bidder model is ``G = {1...1}``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from zkauction.errors import ZkAuctionError

PROBABILITY_TOLERANCE = 1e-6
# Sizes beyond any auction this toolkit can learn, prove or evaluate: refused up front, before a
# support table or a profile list is built (a config of 10^9 bidders would otherwise exhaust memory).
MAX_BIDDER_ITEMS = 100_000  # n * m
MAX_INDEPENDENT_BIDDERS = 16  # independent participation enumerates up to 2^n profiles


class SettingError(ZkAuctionError, ValueError):
    """An auction setting or participation model that cannot be used, with the reason."""


def _as_support(
    support: Any, n: int, m: int
) -> tuple[tuple[tuple[float, float], ...], ...]:
    """Normalise a support spec to an [n][m] table of (low, high) pairs.

    Accepted forms: one pair ``[lo, hi]`` for everything; a list of m pairs (the same for every
    bidder); a list of n lists of m pairs (per bidder and item).
    """

    def pair(x: Any, where: str) -> tuple[float, float]:
        if not isinstance(x, (list, tuple)) or len(x) != 2:
            raise SettingError(f"support {where}: expected a pair [low, high], got {x!r}")
        lo, hi = float(x[0]), float(x[1])
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise SettingError(f"support {where}: bounds must be finite, got [{lo}, {hi}]")
        if lo < 0:
            raise SettingError(f"support {where}: values must be non-negative, got low={lo}")
        if not hi > lo:
            raise SettingError(f"support {where}: empty support [{lo}, {hi}] (need high > low)")
        return lo, hi

    if isinstance(support, (list, tuple)) and len(support) == 2 and all(
        isinstance(x, (int, float)) for x in support
    ):
        p = pair(support, "(all bidders, all items)")
        return tuple(tuple(p for _ in range(m)) for _ in range(n))
    if not isinstance(support, (list, tuple)):
        raise SettingError(f"support: expected a pair or a list of pairs, got {support!r}")
    if len(support) == m and all(
        isinstance(x, (list, tuple)) and len(x) == 2 and all(isinstance(y, (int, float)) for y in x)
        for x in support
    ):
        row = tuple(pair(x, f"item {j}") for j, x in enumerate(support))
        return tuple(row for _ in range(n))
    if len(support) != n:
        raise SettingError(
            f"support: expected one pair, {m} pairs (one per item) or {n} rows of {m} pairs "
            f"(one per bidder), got a list of length {len(support)}"
        )
    rows = []
    for i, row in enumerate(support):
        if not isinstance(row, (list, tuple)) or len(row) != m:
            raise SettingError(f"support of bidder {i}: expected {m} pairs (one per item), got {row!r}")
        rows.append(tuple(pair(x, f"bidder {i}, item {j}") for j, x in enumerate(row)))
    return tuple(rows)


@dataclass(frozen=True)
class AuctionSetting:
    """n additive bidders, m items, independent uniform values U[low, high] per bidder and item."""

    n_bidders: int
    n_items: int
    support: tuple[tuple[tuple[float, float], ...], ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.n_bidders, int) or self.n_bidders < 1:
            raise SettingError(f"n_bidders must be a positive integer, got {self.n_bidders!r}")
        if not isinstance(self.n_items, int) or self.n_items < 1:
            raise SettingError(f"n_items must be a positive integer, got {self.n_items!r}")
        if self.n_bidders * self.n_items > MAX_BIDDER_ITEMS:
            raise SettingError(
                f"n_bidders x n_items = {self.n_bidders:,} x {self.n_items:,} is too large: at most "
                f"{MAX_BIDDER_ITEMS:,} bidder-item values are supported"
            )
        support = self.support if self.support else (0.0, 1.0)
        object.__setattr__(self, "support", _as_support(support, self.n_bidders, self.n_items))

    @property
    def n(self) -> int:
        return self.n_bidders

    @property
    def m(self) -> int:
        return self.n_items

    @property
    def low(self) -> torch.Tensor:
        """[n, m] lower bounds of the value supports."""
        return torch.tensor([[lo for lo, _ in row] for row in self.support], dtype=torch.float32)

    @property
    def high(self) -> torch.Tensor:
        """[n, m] upper bounds of the value supports."""
        return torch.tensor([[hi for _, hi in row] for row in self.support], dtype=torch.float32)

    @property
    def max_value(self) -> float:
        """Largest value any bidder can have for any item."""
        return max(hi for row in self.support for _, hi in row)

    def sample_values(self, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """k untweaked value profiles [k, n, m], every bidder present."""
        u = torch.rand(k, self.n, self.m, generator=generator)
        return self.low + u * (self.high - self.low)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_bidders": self.n_bidders,
            "n_items": self.n_items,
            "support": [[list(p) for p in row] for row in self.support],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "AuctionSetting":
        sizes = []
        for key in ("n_bidders", "n_items"):
            if key not in d:
                raise SettingError(f"setting: missing key {key!r}")
            x = d[key]
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x != int(x):
                raise SettingError(f"setting: {key} must be a positive integer, got {d[key]!r}")
            sizes.append(int(d[key]))
        return cls(sizes[0], sizes[1], d.get("support", (0.0, 1.0)))

    def check_bids(self, bids: torch.Tensor, *, allow_absent: bool = True) -> None:
        """Raise :class:`SettingError` naming the problem if ``bids`` is not a valid [B, n, m] profile.

        A bidder's row may be all zero (absent, the paper's mapping d) when ``allow_absent``;
        otherwise every bid must lie in that bidder's support for that item.
        """
        if not isinstance(bids, torch.Tensor):
            raise SettingError(f"bids must be a tensor, got {type(bids).__name__}")
        if bids.dim() != 3 or tuple(bids.shape[1:]) != (self.n, self.m):
            raise SettingError(
                f"bids must have shape [B, {self.n}, {self.m}] (batch, bidders, items), "
                f"got {list(bids.shape)}"
            )
        if not torch.isfinite(bids).all():
            b, i, j = torch.nonzero(~torch.isfinite(bids))[0].tolist()
            raise SettingError(f"bid of bidder {i} for item {j} (profile {b}) is not finite: {bids[b, i, j].item()}")
        tol = 1e-6
        absent = (bids == 0).all(dim=-1, keepdim=True) if allow_absent else torch.zeros_like(bids[..., :1], dtype=torch.bool)
        bad = ~absent & ((bids < self.low - tol) | (bids > self.high + tol))
        if bad.any():
            b, i, j = torch.nonzero(bad)[0].tolist()
            lo, hi = self.support[i][j]
            raise SettingError(
                f"bid of bidder {i} for item {j} (profile {b}) is {bids[b, i, j].item():.6g}, "
                f"outside its support [{lo:g}, {hi:g}]"
            )


def profile_string(profile: Sequence[int]) -> str:
    """(1, 0) -> "10"."""
    return "".join(str(int(x)) for x in profile)


@dataclass(frozen=True)
class ParticipationModel:
    """The paper's stationary participation model: profiles G (0/1 tuples) with probabilities Q."""

    profiles: tuple[tuple[int, ...], ...]
    probabilities: tuple[float, ...]

    def __post_init__(self) -> None:
        profiles = tuple(tuple(int(x) for x in _parse_profile(p)) for p in self.profiles)
        probs = tuple(float(q) for q in self.probabilities)
        if not profiles:
            raise SettingError("participation: at least one profile is needed")
        if len(profiles) != len(probs):
            raise SettingError(
                f"participation: {len(profiles)} profiles but {len(probs)} probabilities"
            )
        n = len(profiles[0])
        for p in profiles:
            if len(p) != n:
                raise SettingError(
                    f"participation: profile {profile_string(p)!r} has length {len(p)}, expected {n}"
                )
        if len(set(profiles)) != len(profiles):
            raise SettingError("participation: a profile is listed twice")
        for p, q in zip(profiles, probs):
            if not (math.isfinite(q) and 0.0 <= q <= 1.0):
                raise SettingError(f"participation: probability of {profile_string(p)!r} is {q}, not in [0, 1]")
        total = sum(probs)
        if abs(total - 1.0) > PROBABILITY_TOLERANCE:
            raise SettingError(f"participation: probabilities sum to {total:.6g}, not 1")
        object.__setattr__(self, "profiles", profiles)
        object.__setattr__(self, "probabilities", probs)

    @property
    def n(self) -> int:
        return len(self.profiles[0])

    @classmethod
    def fixed(cls, n: int) -> "ParticipationModel":
        """The fixed-bidder model: every bidder always present."""
        return cls(((1,) * n,), (1.0,))

    @classmethod
    def independent(cls, probabilities: Sequence[float]) -> "ParticipationModel":
        """Bidder i shows up with probability p_i, independently. Profiles of probability 0 are dropped.

        Profiles are listed in the paper's order for 2 and 3 bidders (all present first, then by
        number present, descending), i.e. sorted by (-count, reversed lexicographic)."""
        ps = [float(p) for p in probabilities]
        for i, p in enumerate(ps):
            if not (math.isfinite(p) and 0.0 <= p <= 1.0):
                raise SettingError(f"participation: probability of bidder {i} is {p}, not in [0, 1]")
        n = len(ps)
        if n == 0:
            raise SettingError("participation: no bidders")
        if n > MAX_INDEPENDENT_BIDDERS:
            raise SettingError(
                f"participation: independent participation of {n} bidders has up to 2^{n} profiles; at most "
                f"{MAX_INDEPENDENT_BIDDERS} bidders are supported (list 'profiles' and 'probabilities' instead)"
            )
        table = []
        for g in itertools.product((1, 0), repeat=n):
            q = math.prod(p if x else 1 - p for p, x in zip(ps, g))
            if q > 0:
                table.append((g, q))
        table.sort(key=lambda t: (-sum(t[0]), tuple(-x for x in t[0])))
        # Paper order: 2x2 g1=11, g2=10, g3=01, g4=00; 3 bidders g1=111, g2=011, g3=101, g4=110,
        # g5=100, g6=010, g7=001, g8=000.
        if n == 3:
            order = ["111", "011", "101", "110", "100", "010", "001", "000"]
            table.sort(key=lambda t: order.index(profile_string(t[0])))
        return cls(tuple(g for g, _ in table), tuple(q for _, q in table))

    def profile_strings(self) -> list[str]:
        return [profile_string(p) for p in self.profiles]

    def probability_of(self, profile: Sequence[int] | str) -> float:
        key = tuple(_parse_profile(profile))
        for p, q in zip(self.profiles, self.probabilities):
            if p == key:
                return q
        return 0.0

    def mask_tensor(self) -> torch.Tensor:
        """[|G|, n] float 0/1 table of profiles."""
        return torch.tensor(self.profiles, dtype=torch.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"profiles": self.profile_strings(), "probabilities": list(self.probabilities)}

    @classmethod
    def from_dict(cls, d: dict[str, Any], n: int) -> "ParticipationModel":
        """From a config's [participation] table: ``independent = [p_1..p_n]``, or ``profiles`` and
        ``probabilities``, or nothing (fixed bidders)."""
        if not d:
            return cls.fixed(n)
        if "independent" in d:
            if "profiles" in d:
                raise SettingError("participation: give either 'independent' or 'profiles', not both")
            probs = d["independent"]
            if not isinstance(probs, list) or any(isinstance(p, bool) or not isinstance(p, (int, float)) for p in probs):
                raise SettingError(f"participation: independent must be a list of numbers in [0, 1], got {probs!r}")
            model = cls.independent(probs)
        elif "profiles" in d:
            if "probabilities" not in d:
                raise SettingError("participation: 'profiles' given without 'probabilities'")
            model = cls(tuple(d["profiles"]), tuple(d["probabilities"]))
        else:
            raise SettingError(
                "participation: expected 'independent = [...]' or 'profiles' and 'probabilities', "
                f"got keys {sorted(d)}"
            )
        if model.n != n:
            raise SettingError(f"participation: profiles have length {model.n}, but the setting has {n} bidders")
        return model


def _parse_profile(p: Any) -> tuple[int, ...]:
    if isinstance(p, str):
        if not p or any(c not in "01" for c in p):
            raise SettingError(f"participation: profile {p!r} must be a string of 0s and 1s")
        return tuple(int(c) for c in p)
    try:
        t = tuple(int(x) for x in p)
    except (TypeError, ValueError):
        raise SettingError(f"participation: profile {p!r} must be 0/1 values") from None
    if any(x not in (0, 1) for x in t):
        raise SettingError(f"participation: profile {p!r} must be 0/1 values")
    return t
