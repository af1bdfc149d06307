"""The credible repeated-auction protocol (paper, Algorithm 1), over the signed ledger.

Roles, each with its own Ed25519 key (:class:`~zkauction.protocol.log.SigningKey`):

- :class:`Auctioneer` announces the auction (circuit manifest and vk hashes, T, k, penalty, the
  verification mode, every party's public key), receives bidders' openings privately, checks each
  against its logged commitment, computes the canonical outcome and logs it (L_a, L_p); at audit time
  it proves the selected rounds (zk), publishes their openings (reveal) or hands them to the trusted
  third party (ttp).
- :class:`Bidder` commits to an audit seed before round 1, commits to its bids each round it is
  present (L_theta holds commitments, never bids), sends the opening to the auctioneer only, and
  reveals its audit seed after round T.
- :class:`Auditor` (anyone: a bidder, a regulator) replays the chain, closes the reveal phase,
  derives the audited rounds, checks each and logs verdicts and the penalty due.
- :class:`TrustedThirdParty` is the paper's third verifier: it receives the audited rounds'
  openings privately and logs a signed verdict.

A round r: present bidders log ``bid_commitment`` entries; the auctioneer checks each opening (a bad
or missing opening, or bids outside the support, makes that bidder absent for the round, logged as
``opening_rejected``), computes the outcome with the announced auction on the snapped bids (absent
bidders bid all zeros, salt 0, so their commitment is public) and logs ``outcome`` with the n
commitments the outcome was computed on: exactly the public inputs of a proof of that round. The
auditor checks that list against what the bidders themselves logged, so an outcome computed on
substituted bids fails even when its openings are consistent.

Audit selection (shared/DESIGN.md): every bidder logs SHA3-256(domain, bidder, seed) before round 1
and reveals the seed after round T. Once every committed seed is revealed or declared missing, the k
audited rounds are drawn uniformly without replacement from SHA3 of all reveals and the ledger head
when round T was logged. Until then :func:`audit_selection` refuses. A bidder that never reveals is
declared missing by the auditor (``reveal_missing``) and its seed is left out; the others' seeds
still make the choice unpredictable to the auctioneer. If no seed at all is revealed, there is no
randomness the auctioneer could not have predicted, so every round is audited.

Resuming after a crash: the ledger is the state. Rounds with a logged outcome are final; a round
interrupted before its outcome is completed on restart (bidders re-send the same openings: a
simulated bidder derives its salts and seed from a private secret, so they are reproducible).
The auctioneer keeps received openings in its own private store, never in the ledger (zk mode).

The outcome function is injectable (:data:`OutcomeFunction`): the circuit's canonical outcome in
production (:func:`circuit_outcome_function`), a plain :class:`~zkauction.learn.nets.AuctionNet` for tests
(:func:`net_outcome_function`), or a deliberately dishonest one.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from zkauction.protocol.log import Entry, Ledger
from zkauction.zk import commitments
from zkauction.zk.circuit import Outcome

PROTOCOL_FORMAT = "zkauction-protocol/1"
MODES = ("zk", "reveal", "ttp")
ZERO_SALT = "0" * 64  # an absent bidder's salt: its commitment to all-zero bids is public

SEED_DOMAIN = b"zkauction-audit-seed-v1\x00"
SELECTION_DOMAIN = b"zkauction-audit-selection-v1\x00"
SALT_DOMAIN = b"zkauction-bid-salt-v1\x00"

# Entry kinds and who may sign them.
ANNOUNCEMENT = "announcement"  # auctioneer
SEED_COMMITMENT = "seed_commitment"  # bidder
BID_COMMITMENT = "bid_commitment"  # bidder
OPENING_REJECTED = "opening_rejected"  # auctioneer
OUTCOME = "outcome"  # auctioneer
SEED_REVEAL = "seed_reveal"  # bidder
REVEAL_MISSING = "reveal_missing"  # auditor
AUDIT_SELECTION = "audit_selection"  # auditor
PROOF = "proof"  # auctioneer (zk)
OPENINGS = "openings"  # auctioneer (reveal mode only)
VERDICT = "verdict"  # auditor (zk, reveal) or trusted third party (ttp)
AUDIT_RESULT = "audit_result"  # auditor: valid or penalty due

OutcomeFunction = Callable[[Sequence[Sequence[float]], Sequence[str]], Outcome]
"""(snapped bids [n][m], salts [n]) -> the announced auction's outcome on those bids."""


class ProtocolError(ValueError):
    """A protocol step that cannot be taken (wrong order, wrong party, unknown round), with the reason."""


class AuditError(ProtocolError):
    """The audit cannot proceed yet or at all (e.g. reveals outstanding), with the reason."""



def seed_commitment(bidder: int, seed: str) -> str:
    """SHA3-256(domain, bidder index, seed) as hex; the seed is 32 bytes hex."""
    return hashlib.sha3_256(SEED_DOMAIN + bidder.to_bytes(4, "big") + bytes.fromhex(seed)).hexdigest()


@functools.lru_cache(maxsize=64)
def absent_commitment(m: int, scale: int) -> str:
    """The public commitment of an absent bidder: all-zero bids under salt 0."""
    return commitments.commit([0.0] * m, ZERO_SALT, scale)



# --------------------------------------------------------------------------------------------------
# Reading the ledger


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
    auditor: str
    third_party: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"format": PROTOCOL_FORMAT, **self.__dict__}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Announcement":
        if not isinstance(d, dict) or d.get("format") != PROTOCOL_FORMAT:
            raise ProtocolError(f"announcement: format {d.get('format') if isinstance(d, dict) else d!r}, expected {PROTOCOL_FORMAT!r}")
        try:
            a = cls(**{k: d[k] for k in cls.__dataclass_fields__})
        except KeyError as e:
            raise ProtocolError(f"announcement: missing field {e.args[0]!r}") from None
        if a.mode not in MODES:
            raise ProtocolError(f"announcement: mode {a.mode!r}, expected one of {MODES}")
        if len(a.bidders) != a.n:
            raise ProtocolError(f"announcement: {len(a.bidders)} bidder keys for n={a.n}")
        return a


@dataclass
class LedgerState:
    """Everything the protocol has logged, checked for authorship: each kind is signed by the party
    that may write it (else :class:`ProtocolError` names the entry)."""

    announcement: Announcement
    announcement_entry: Entry
    seed_commitments: dict[int, str] = field(default_factory=dict)
    commitments: dict[int, dict[int, str]] = field(default_factory=dict)  # round -> bidder -> commitment
    rejections: dict[int, dict[int, str]] = field(default_factory=dict)
    outcomes: dict[int, Entry] = field(default_factory=dict)
    reveals: dict[int, str] = field(default_factory=dict)
    missing: set[int] = field(default_factory=set)
    selection: Entry | None = None
    proofs: dict[int, Entry] = field(default_factory=dict)
    openings: dict[int, Entry] = field(default_factory=dict)
    verdicts: dict[int, Entry] = field(default_factory=dict)
    result: Entry | None = None
    # Entries that break the protocol (kept out of the state above): (seq, signer role, reason).
    anomalies: list[tuple[int, str, str]] = field(default_factory=list)

    def auctioneer_anomalies(self) -> list[str]:
        return [f"ledger entry {seq}: {reason}" for seq, role, reason in self.anomalies if role == "auctioneer"]

    @property
    def rounds_done(self) -> int:
        """The number of consecutive rounds, from 1, with a logged outcome."""
        r = 0
        while r + 1 in self.outcomes:
            r += 1
        return r

    def outcome_of(self, round: int) -> Outcome:
        if round not in self.outcomes:
            raise ProtocolError(f"round {round} has no logged outcome")
        return Outcome.from_dict(self.outcomes[round].data)

    def commitments_of(self, round: int) -> list[str]:
        if round not in self.outcomes:
            raise ProtocolError(f"round {round} has no logged outcome")
        return list(self.outcomes[round].data["commitments"])

    def check_outcome_inputs(self, round: int) -> None:
        """The outcome of ``round`` must name, for each bidder, the commitment that bidder logged
        (unless the auctioneer logged a rejection of its opening) and the public absent commitment
        otherwise. Raises :class:`ProtocolError` naming the round and the bidder."""
        ann = self.announcement
        if round not in self.outcomes:
            raise ProtocolError(f"round {round}: no outcome was logged")
        d = self.outcomes[round].data
        coms, present = d.get("commitments"), d.get("participants")
        if not isinstance(coms, list) or len(coms) != ann.n or not isinstance(present, list) or len(present) != ann.n:
            raise ProtocolError(f"round {round}: the outcome must list {ann.n} commitments and participants")
        logged, rejected = self.commitments.get(round, {}), self.rejections.get(round, {})
        absent = absent_commitment(ann.m, ann.input_scale)
        for i in range(ann.n):
            if i in logged and i not in rejected:
                if coms[i] != logged[i] or present[i] != 1:
                    raise ProtocolError(f"round {round}: the outcome does not use bidder {i}'s logged commitment")
            elif coms[i] != absent or present[i] != 0:
                why = "its opening was rejected" if i in rejected else "it did not bid"
                raise ProtocolError(f"round {round}: bidder {i} must be absent from the outcome ({why})")


def read_state(ledger: Ledger) -> LedgerState:
    """Parse the ledger into a :class:`LedgerState`.

    Each kind must be signed by the party that may write it. Entries that break the protocol (wrong
    signer, a second outcome for a round, a bid after the round's outcome, a seed revealed early)
    are left out of the state and listed in ``anomalies``, so a misbehaving party cannot stop the
    others from reading the ledger; the audit fails on any anomaly signed by the auctioneer.
    """
    entries = iter(ledger)
    first = next(entries, None)
    if first is None:
        raise ProtocolError("the ledger is empty: no auction has been announced")
    if first.kind != ANNOUNCEMENT:
        raise ProtocolError(f"ledger entry 0 is a {first.kind!r}, expected the auction announcement")
    ann = Announcement.from_dict(first.data)
    if first.signer != ann.auctioneer:
        raise ProtocolError("ledger entry 0: the announcement is not signed by the auctioneer it names")
    st = LedgerState(ann, first)
    roles = {ann.auctioneer: "auctioneer", ann.auditor: "auditor"}
    if ann.third_party:
        roles[ann.third_party] = "trusted third party"
    bidder_of = {k: i for i, k in enumerate(ann.bidders)}
    for k, i in bidder_of.items():
        roles.setdefault(k, f"bidder {i}")
    verdict_role = "trusted third party" if ann.mode == "ttp" else "auditor"
    writers = {
        ANNOUNCEMENT: "auctioneer", OPENING_REJECTED: "auctioneer", OUTCOME: "auctioneer", PROOF: "auctioneer",
        OPENINGS: "auctioneer", REVEAL_MISSING: "auditor", AUDIT_SELECTION: "auditor", AUDIT_RESULT: "auditor",
        VERDICT: verdict_role, SEED_COMMITMENT: "bidder", BID_COMMITMENT: "bidder", SEED_REVEAL: "bidder",
    }
    started = False

    class Skip(Exception):
        pass

    for e in entries:
        role = roles.get(e.signer, "unknown signer")

        def bad(reason: str) -> None:
            st.anomalies.append((e.seq, role, reason))
            raise Skip

        try:
            k = e.kind
            if k not in writers:
                bad(f"unknown entry kind {k!r}")
            want = writers[k]
            try:
                d = e.data
            except json.JSONDecodeError:
                bad("payload is not JSON")
            if not isinstance(d, dict):
                bad("payload is not an object")
            if want == "bidder":
                i = d.get("bidder")
                if bidder_of.get(e.signer) != i:
                    bad(f"{k} for bidder {i} not signed by that bidder's key")
            elif role != want:
                bad(f"{k} not signed by the {want}")
            r = e.round
            if k in (BID_COMMITMENT, OPENING_REJECTED, OUTCOME, PROOF, OPENINGS, VERDICT):
                if r is None or not 1 <= r <= ann.rounds:
                    bad(f"{k} for round {r}, outside 1..{ann.rounds}")
            if k == ANNOUNCEMENT:
                bad("a second announcement")
            elif k == SEED_COMMITMENT:
                if started:
                    bad(f"bidder {i}'s seed commitment came after round 1 began (not counted)")
                if i in st.seed_commitments:
                    bad(f"bidder {i} committed a second audit seed (not counted)")
                st.seed_commitments[i] = str(d["commitment"])
            elif k == BID_COMMITMENT:
                started = True
                if r in st.outcomes:
                    bad(f"bidder {i}'s commitment for round {r} came after the round's outcome")
                if i in st.commitments.setdefault(r, {}):
                    bad(f"bidder {i} committed twice in round {r} (the first counts)")
                st.commitments[r][i] = str(d["commitment"])
            elif k == OPENING_REJECTED:
                st.rejections.setdefault(r, {})[int(d["bidder"])] = str(d["reason"])
            elif k == OUTCOME:
                if r in st.outcomes:
                    bad(f"a second outcome for round {r}")
                st.outcomes[r] = e
            elif k == SEED_REVEAL:
                if ann.rounds not in st.outcomes:
                    bad(f"bidder {i} revealed its audit seed before round {ann.rounds} was logged (not counted)")
                if i not in st.seed_commitments:
                    bad(f"bidder {i} revealed a seed it never committed to in time (not counted)")
                if i in st.reveals or i in st.missing:
                    bad(f"bidder {i}'s reveal came after it was revealed or declared missing (not counted)")
                if seed_commitment(i, str(d["seed"])) != st.seed_commitments[i]:
                    bad(f"bidder {i}'s revealed seed does not match its seed commitment (not counted)")
                st.reveals[i] = str(d["seed"])
            elif k == REVEAL_MISSING:
                st.missing.add(int(d["bidder"]))
            elif k == AUDIT_SELECTION:
                if st.selection is not None:
                    bad("a second audit selection")
                st.selection = e
            elif k == PROOF:
                st.proofs.setdefault(r, e)
            elif k == OPENINGS:
                st.openings.setdefault(r, e)
            elif k == VERDICT:
                st.verdicts.setdefault(r, e)
            elif k == AUDIT_RESULT:
                st.result = st.result or e
        except Skip:
            continue
        except (KeyError, TypeError, ValueError) as err:
            st.anomalies.append((e.seq, role, f"malformed {e.kind} payload ({err})"))
    return st


