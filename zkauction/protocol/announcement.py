"""The auction announcement (entry 0 of the log, whose hash is the log id) and the blocks of rounds.

Rounds run one at a time (``block`` 1, the default) or in blocks of B rounds (the announcement's
``block``): rounds (j-1)B+1 .. jB form block j, and block j's commitments may be closed only once
every round of block j-1 has its outcome. Within a block each round keeps the whole protocol: its
openings are sent only after its own close is covered by a checkpoint, so nobody, shills included,
commits in a round after seeing an opening of it: block j's openings are sent once all of block j's
commitments are closed, and block j+1's commitments come after them, as round r+1's come after
round r's openings when rounds run one at a time.
What blocks change is the cost: every party signs a block's statements of one kind with one
signature (:meth:`~zkauction.protocol.entries.SigningKey.sign_many`), the host writes each step of a
block in one transaction with one checkpoint, and outcomes are computed in one batched evaluation.
An announcement with ``block`` 1 omits the field, so its bytes (and its log id) are unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from zkauction.errors import ZkAuctionError

PROTOCOL_FORMAT = "zkauction-protocol/3"
MODES = ("zk", "reveal", "ttp")
# What leaving a committed bidder out of a round (rejected, not cured by a dispute) does to the round:
# "void": the round sells nothing (every bidder absent); "drop": the round goes on without it (logs
# announced before "void" existed; bidders refuse it: a shill of the auctioneer that has seen the
# honest openings withdraws exactly when the honest bidders alone pay more).
EXCLUSIONS = ("void", "drop")


# The deadlines an announcement states, in seconds, and the service's defaults: each phase of an
# honest run ends within its own; answer_s is per audited round (proving included), from the close
# of the reveal phase. A verifier takes a run that stands still longer for the auctioneer's silence.
DEFAULT_DEADLINES = {"commit_s": 10.0, "open_s": 10.0, "dispute_s": 30.0, "reveal_s": 60.0, "answer_s": 600.0}
MAX_DEADLINE_S = 86400.0  # a day: a bidder refuses an announcement with a longer deadline (or a malformed one)
LIVENESS_GRACE_S = 60.0  # beyond the deadlines: a restart of the honest server


def deadlines_problem(deadlines: Any) -> str | None:
    """Why a bidder refuses these announced deadlines (None: it accepts them): an object of known
    names, each a number of seconds in (0, MAX_DEADLINE_S]. A host that announced none, a string or
    a century would otherwise have switched every verifier's silence clock off."""
    if not isinstance(deadlines, dict):
        return f"the announced deadlines must be an object of seconds, got {type(deadlines).__name__}"
    if not deadlines:
        return "the announcement states no deadlines"
    for k, v in deadlines.items():
        if k not in DEFAULT_DEADLINES:
            return f"the announced deadlines name {str(k)[:40]!r}, which is none of {', '.join(DEFAULT_DEADLINES)}"
        if not _positive_seconds(v) or v > MAX_DEADLINE_S:
            return f"the announced deadline {k} must be a number of seconds in (0, {MAX_DEADLINE_S:g}], got {str(v)[:40]}"
    return None


def _positive_seconds(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and 0 < v < math.inf


def liveness_limit_s(ann: "Announcement | None", answers: int = 1) -> float:
    """How long a verifier may see the run stand still before the auctioneer is silent: every
    announced deadline together (``answers`` audited rounds to answer), each missing one at its
    default and each beyond MAX_DEADLINE_S at that, plus LIVENESS_GRACE_S for a restart. Fails
    closed: missing or malformed deadlines count as the defaults (bidders refuse such an
    announcement anyway, :func:`deadlines_problem`)."""
    d = ann.deadlines if ann is not None and isinstance(ann.deadlines, dict) else {}  # (None: the defaults)
    got = {}
    for k, default in DEFAULT_DEADLINES.items():
        v = d.get(k, default)
        got[k] = min(float(v), MAX_DEADLINE_S) if _positive_seconds(v) else default
    return sum(v for k, v in got.items() if k != "answer_s") + got["answer_s"] * max(1, answers) + LIVENESS_GRACE_S


class ProtocolError(ZkAuctionError, ValueError):
    """A protocol step that cannot be taken (wrong order, wrong party, unknown round), with the reason."""


@dataclass
class Announcement:
    rounds: int
    audits: int
    penalty: float
    mode: str
    n: int
    m: int
    input_scale: int
    support: list[list[list[float]]]
    auction: dict[str, Any]
    auctioneer: str
    bidders: list[str]
    third_party: str | None
    deadlines: dict[str, Any]
    block: int = 1
    exclusion: str = "drop"  # absent from a logged announcement: one from before "void" (EXCLUSIONS)
    nonce: str | None = None  # fresh per announcement (Auctioneer.announce): the same auction announced again is
    # another log id, so a checkpoint of an abandoned attempt is no evidence against it (absent: logs from before)

    def term(self, key: str) -> Any:
        """One announced term: a field of the announcement (``input_scale``, ``support``, ``rounds``...)
        or else an entry of its ``auction`` (``manifest_sha256``, ``vk_sha256``, ``output_scale``...).
        A field is never read from ``auction``: an auctioneer writing ``"input_scale"`` there as well
        would otherwise show a checker one value and the protocol another."""
        return getattr(self, key) if key in self.__dataclass_fields__ else self.auction.get(key)

    def to_dict(self) -> dict[str, Any]:
        d = {"format": PROTOCOL_FORMAT, **self.__dict__}
        if self.block == 1:  # rounds one at a time: the announcement is byte for byte what it always was
            del d["block"]
        if self.exclusion == "drop":  # (so is one announced before "void" existed)
            del d["exclusion"]
        if self.nonce is None:  # (and one announced before nonces)
            del d["nonce"]
        return d

    @classmethod
    def from_dict(cls, d: Any) -> "Announcement":
        if not isinstance(d, dict) or d.get("format") != PROTOCOL_FORMAT:
            raise ProtocolError(f"announcement: format {d.get('format') if isinstance(d, dict) else d!r}, expected {PROTOCOL_FORMAT!r}")
        try:
            a = cls(**{k: d[k] for k in cls.__dataclass_fields__ if k not in ("block", "exclusion", "nonce")},
                    block=d.get("block", 1), exclusion=d.get("exclusion", "drop"), nonce=d.get("nonce"))
        except KeyError as e:
            raise ProtocolError(f"announcement: missing field {e.args[0]!r}") from None
        if a.mode not in MODES:
            raise ProtocolError(f"announcement: mode {a.mode!r}, expected one of {MODES}")
        if not isinstance(a.bidders, list) or len(a.bidders) != a.n or len(set(a.bidders)) != a.n:
            raise ProtocolError(f"announcement: expected {a.n} distinct bidder keys")
        if not isinstance(a.rounds, int) or a.rounds < 1 or not isinstance(a.audits, int) or not 1 <= a.audits <= a.rounds:
            raise ProtocolError(f"announcement: T = {a.rounds!r}, k = {a.audits!r} (need 1 <= k <= T)")
        if type(a.block) is not int or not 1 <= a.block <= a.rounds:
            raise ProtocolError(f"announcement: block = {a.block!r} rounds (need an integer in 1..T)")
        problem = support_problem(a.n, a.m, a.support)
        if problem:
            raise ProtocolError(f"announcement: {problem}")
        if a.nonce is not None and not (isinstance(a.nonce, str) and len(a.nonce) == 32
                                        and all(c in "0123456789abcdef" for c in a.nonce)):
            raise ProtocolError(f"announcement: nonce {str(a.nonce)[:40]!r} (need 32 lower-case hex digits)")
        if a.exclusion not in EXCLUSIONS:
            raise ProtocolError(f"announcement: exclusion {a.exclusion!r}, expected one of {EXCLUSIONS}")
        if isinstance(a.penalty, bool) or not isinstance(a.penalty, (int, float)) or not 0 <= a.penalty < 1e300:
            # (an integer no float holds, 10**400, crashed every report of the penalty due: the twenty-first review)
            raise ProtocolError(f"announcement: penalty {str(a.penalty)[:40]!r} (need a finite non-negative number below 1e300)")
        if a.mode == "ttp" and not a.third_party:
            raise ProtocolError("announcement: mode 'ttp' without the trusted third party's key")
        return a


def support_problem(n: Any, m: Any, support: Any) -> str | None:
    """What is wrong with an announced support table (None if nothing): n rows of m pairs [low,
    high] of finite numbers with 0 <= low <= high. Every check reads it by bidder and item (a short
    table made verifiers raise IndexError; the penalty check read only the rows present)."""
    if type(n) is not int or type(m) is not int or n < 1 or m < 1:
        return f"n = {n!r}, m = {m!r} (need positive integers)"
    if not isinstance(support, list) or len(support) != n or not all(isinstance(row, list) and len(row) == m for row in support):
        return f"support must be {n} rows of {m} [low, high] pairs"
    for i, row in enumerate(support):
        for j, pair in enumerate(row):
            ok = isinstance(pair, list) and len(pair) == 2 and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and abs(x) < 1e300 for x in pair)
            if not ok or not 0 <= pair[0] <= pair[1]:
                return f"support of bidder {i}, item {j} is {str(pair)[:60]}: need [low, high] finite with 0 <= low <= high"
    return None


def circuit_terms(circuit: Any) -> dict[str, Any]:
    """What an announcement of ``circuit`` (a :class:`~zkauction.zk.circuit.Circuit`) must say, taken
    from the circuit's manifest and verifying key, never from the announcement: the hashes that name
    the circuit, n and m, the grid bids are committed on (Poseidon commits to round(b * 2^scale),
    which the circuit reads at its own scale), the supports (what an opening may be rejected for)
    and the outcome grid (how far the public checks tolerate rounding)."""
    return {
        "manifest_sha256": circuit.manifest_sha256(),
        "vk_sha256": circuit.vk_sha256(),
        "n": circuit.n,
        "m": circuit.m,
        "input_scale": int(circuit.input_scale),
        "support": [[[float(x) for x in item] for item in row] for row in circuit.support],
        "output_scale": min(int(s) for s in circuit.output_scales.values()),
    }


def penalty_problem(penalty: float | None, rounds: int, support: Any, output_scale: Any) -> str | None:
    """Why bidders would refuse ``penalty`` for T = ``rounds`` on ``support`` with outcomes on the
    grid 2^-``output_scale`` (None: they would not; None for no penalty given, then
    :func:`default_penalty` is used): it must be above T times the most a round can take within the
    public checks, the least that makes every deviation unprofitable
    (:func:`~zkauction.protocol.credibility.keep_threshold`, :func:`~zkauction.protocol.credibility.round_gain_bound`)."""
    from zkauction.protocol.credibility import keep_threshold, round_gain_bound

    if penalty is None:
        return None
    if not 0 <= penalty < math.inf:  # (the reader refuses such an announcement: the log would be stuck)
        return f"--penalty {penalty}: must be a finite non-negative number"
    needed = keep_threshold(rounds, round_gain_bound(support, output_scale))
    if not penalty > needed:
        return (f"--penalty {penalty:g} is not above {needed:g} (T x aRgt*, with the public checks' rounding), the least "
                "that makes every deviation unprofitable: every bidder would refuse the auction")
    return None


def default_penalty(rounds: int, support: Any, output_scale: Any) -> float:
    """(T + 1) times the most a round can take within the public checks: just above the least
    credible penalty (section 4.1's (T + 1) aRgt*, with the checks' rounding)."""
    from zkauction.protocol.credibility import round_gain_bound

    return (rounds + 1) * round_gain_bound(support, output_scale)


def misstated_terms(ann: Announcement, circuit: Any) -> list[str]:
    """The terms an announcement naming ``circuit`` (its manifest and verifying key hashes) states
    otherwise than the circuit's own files: verifying key hash, input scale, supports, outcome grid,
    n, m; empty if it states them all, or if it names another manifest (another circuit: the proof
    check refuses the proofs). A wrong or missing vk hash is itself misstated and hides nothing:
    the proofs are checked with the verifier's own vk, so they verify (the fourteenth review).
    With another input scale the bidders commit to bids the circuit reads as other bids, and the
    proofs of those verify; another output scale loosens the public checks' tolerance; another
    support makes an honest bid "outside the support"."""
    bad = {}
    for key, want in circuit_terms(circuit).items():
        got = ann.term(key)
        if got != want:
            bad[key] = f"the announcement's {key} is {got!r}, but the circuit's is {want!r}"
    if "manifest_sha256" in bad:  # another circuit: its proofs do not verify with this one's files
        return []
    return list(bad.values())  # (another vk hash with this manifest: proofs verify, so every term counts)


def block_of(ann: Announcement, round: int) -> range:
    """The rounds of ``round``'s block (the last block may be shorter)."""
    first = (round - 1) // ann.block * ann.block + 1
    return range(first, min(first + ann.block, ann.rounds + 1))


def previous_block(ann: Announcement, round: int) -> range:
    """The rounds of the block before ``round``'s (empty for the first block): each must have its
    outcome before ``round``'s commitments are closed."""
    first = (round - 1) // ann.block * ann.block + 1
    return range(max(1, first - ann.block), first)
