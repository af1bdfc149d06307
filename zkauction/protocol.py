"""The credible repeated-auction protocol (paper, Algorithm 1), over the signed ledger.

Roles, each with its own Ed25519 key (:class:`~zkauction.ledger.SigningKey`):

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
production (:func:`circuit_outcome_function`), a plain :class:`~zkauction.nets.AuctionNet` for tests
(:func:`net_outcome_function`), or a deliberately dishonest one.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from zkauction import commitments
from zkauction.circuit import Outcome
from zkauction.commitments import CommitmentError, Opening
from zkauction.ledger import ChainCheck, ChainError, Entry, Ledger, SigningKey

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


# --------------------------------------------------------------------------------------------------
# Outcome functions


def circuit_outcome_function(circuit: Any) -> OutcomeFunction:
    """The circuit's canonical (fixed-point) outcome: what a proof of the round will show."""
    from zkauction.circuit import canonical_outcome

    return lambda bids, salts: canonical_outcome(circuit, bids, salts)


def net_outcome_function(net: Any) -> OutcomeFunction:
    """A plain :class:`~zkauction.nets.AuctionNet` forward pass (float32), for reveal/ttp tests."""
    import torch

    def fn(bids: Sequence[Sequence[float]], salts: Sequence[str]) -> Outcome:
        with torch.no_grad():
            a, p = net(torch.tensor([list(map(float, r)) for r in bids], dtype=torch.float32)[None])
        return Outcome(tuple(tuple(float(x) for x in row) for row in a[0].tolist()), tuple(float(x) for x in p[0].tolist()))

    return fn


@functools.lru_cache(maxsize=64)
def absent_commitment(m: int, scale: int) -> str:
    """The public commitment of an absent bidder: all-zero bids under salt 0."""
    return commitments.commit([0.0] * m, ZERO_SALT, scale)


# --------------------------------------------------------------------------------------------------
# Audit seeds and selection


def seed_commitment(bidder: int, seed: str) -> str:
    """SHA3-256(domain, bidder index, seed) as hex; the seed is 32 bytes hex."""
    return hashlib.sha3_256(SEED_DOMAIN + bidder.to_bytes(4, "big") + bytes.fromhex(seed)).hexdigest()


def selection_digest(reveals: dict[int, str], head: str) -> bytes:
    """SHA3-256 over the ledger head and every revealed seed, in bidder order."""
    h = hashlib.sha3_256(SELECTION_DOMAIN + bytes.fromhex(head))
    for i in sorted(reveals):
        h.update(i.to_bytes(4, "big") + bytes.fromhex(reveals[i]))
    return h.digest()


def select_audit_rounds(digest: bytes, rounds: int, audits: int) -> list[int]:
    """k distinct rounds in 1..T, uniform without replacement, from a SHA3 counter stream
    (rejection sampling, so no modulo bias). Sorted."""
    if not 1 <= audits <= rounds:
        raise AuditError(f"audits k must be in [1, T={rounds}], got {audits}")
    limit = (2**256 // rounds) * rounds
    chosen: list[int] = []
    counter = 0
    while len(chosen) < audits:
        x = int.from_bytes(hashlib.sha3_256(digest + counter.to_bytes(8, "big")).digest(), "big")
        counter += 1
        if x >= limit:
            continue
        r = x % rounds + 1
        if r not in chosen:
            chosen.append(r)
    return sorted(chosen)


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


@dataclass(frozen=True)
class AuditSelection:
    rounds: list[int]
    head: str
    revealed: list[int]
    missing: list[int]
    fallback: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def audit_selection(ledger: Ledger, state: LedgerState | None = None) -> AuditSelection:
    """The audited rounds, derived from every revealed seed and the ledger head at round T.

    Raises :class:`AuditError` while any round is unlogged or any committed seed is neither
    revealed nor declared missing: before that, nobody (the auctioneer included) can compute it.
    """
    st = state or read_state(ledger)
    ann = st.announcement
    if st.rounds_done < ann.rounds:
        raise AuditError(f"only {st.rounds_done} of {ann.rounds} rounds are logged: the audit starts after round {ann.rounds}")
    pending = sorted(set(st.seed_commitments) - set(st.reveals) - st.missing)
    if pending:
        raise AuditError(f"waiting for audit-seed reveals from bidder(s) {', '.join(map(str, pending))}")
    head = st.outcomes[ann.rounds].hash
    if not st.reveals:
        return AuditSelection(list(range(1, ann.rounds + 1)), head, [], sorted(st.missing),
                              "no audit seed was revealed: every round is audited")
    rounds = select_audit_rounds(selection_digest(st.reveals, head), ann.rounds, ann.audits)
    return AuditSelection(rounds, head, sorted(st.reveals), sorted(st.missing), None)


# --------------------------------------------------------------------------------------------------
# The auctioneer's private store of openings (never in the ledger in zk mode)


class OpeningStore:
    """Openings the auctioneer received, by (round, bidder). In memory, or SQLite at ``path``."""

    def __init__(self, path: str | Path | None = None, *, durable: bool = True):
        self._db = sqlite3.connect(":memory:" if path is None else str(path), isolation_level=None, check_same_thread=False)
        if path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS openings (round INTEGER, bidder INTEGER, opening TEXT, PRIMARY KEY (round, bidder))"
        )

    def put(self, round: int, bidder: int, opening: Opening) -> None:
        self.put_round(round, {bidder: opening})

    def put_round(self, round: int, openings: dict[int, Opening]) -> None:
        """Store a round's openings in one transaction (one fsync per round, not per bidder)."""
        self._db.execute("BEGIN")
        try:
            self._db.executemany(
                "INSERT OR REPLACE INTO openings VALUES (?, ?, ?)",
                [(round, i, json.dumps(o.to_dict())) for i, o in openings.items()],
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def get(self, round: int) -> dict[int, Opening]:
        rows = self._db.execute("SELECT bidder, opening FROM openings WHERE round = ?", (round,)).fetchall()
        return {int(b): Opening.from_dict(json.loads(o)) for b, o in rows}

    def close(self) -> None:
        self._db.close()


# --------------------------------------------------------------------------------------------------
# Roles


def _derive_hex(secret: bytes, label: bytes, nbytes: int = 32) -> bytes:
    return hashlib.shake_256(SALT_DOMAIN + secret + label).digest(nbytes)


class Bidder:
    """A bidder: signs its seed commitment, bid commitments and seed reveal.

    With ``secret`` (bytes) the salts and audit seed are derived from it (reproducible after a
    crash); without, they are fresh random values kept in memory.
    """

    def __init__(self, index: int, key: SigningKey, ledger: Ledger, *, secret: bytes | None = None):
        self.index = index
        self.key = key
        self.ledger = ledger
        import secrets as _secrets

        self._secret = secret if secret is not None else _secrets.token_bytes(32)
        self._openings: dict[int, Opening] = {}

    @property
    def seed(self) -> str:
        return _derive_hex(self._secret, b"audit-seed").hex()

    def _salt(self, round: int) -> str:
        x = int.from_bytes(_derive_hex(self._secret, b"salt" + round.to_bytes(8, "big"), 64), "big")
        return commitments.int_to_felt(x % commitments.FIELD_MODULUS)

    def commit_audit_seed(self) -> Entry | None:
        st = read_state(self.ledger)
        if self.index in st.seed_commitments:
            return None
        if st.commitments:
            raise ProtocolError(f"bidder {self.index}: too late to commit an audit seed (round 1 has begun)")
        return self.ledger.append(SEED_COMMITMENT, {"bidder": self.index, "commitment": seed_commitment(self.index, self.seed)}, self.key)

    def bid(self, round: int, bids: Sequence[float], scale: int) -> Opening:
        """Commit to ``bids`` for ``round`` (snapped to the grid) and return the opening, to be sent
        to the auctioneer only. Idempotent after a crash: the same bids give the same commitment."""
        commitment, opening = commitments.make_commitment(bids, scale, salt=self._salt(round))
        logged = [
            e for e in self.ledger.entries(kind=BID_COMMITMENT, round=round)
            if e.signer == self.key.public_hex and e.data.get("bidder") == self.index
        ]
        if logged:
            if logged[0].data["commitment"] != commitment:
                raise ProtocolError(f"bidder {self.index} already committed to other bids in round {round}")
        else:
            self.ledger.append(BID_COMMITMENT, {"bidder": self.index, "commitment": commitment}, self.key, round=round)
        self._openings[round] = opening
        return opening

    def reveal_audit_seed(self) -> Entry | None:
        st = read_state(self.ledger)
        if st.rounds_done < st.announcement.rounds:
            raise ProtocolError(f"bidder {self.index}: not revealing the audit seed before round {st.announcement.rounds} is logged")
        if self.index in st.reveals:
            return None
        return self.ledger.append(SEED_REVEAL, {"bidder": self.index, "seed": self.seed}, self.key)

    def check_own_commitment(self, round: int, state: LedgerState | None = None) -> None:
        """A bidder checks that the outcome of ``round`` was computed on its commitment."""
        st = state or read_state(self.ledger)
        if round not in self._openings:
            raise ProtocolError(f"bidder {self.index} did not bid in round {round}")
        com = commitments.commit(self._openings[round].bids, self._openings[round].salt, st.announcement.input_scale)
        if st.commitments_of(round)[self.index] != com:
            raise ProtocolError(f"round {round}: the outcome was not computed on bidder {self.index}'s commitment")


class Auctioneer:
    """Runs the rounds and answers the audit. ``outcome`` computes what it publishes (honest: the
    announced auction's canonical outcome; a test can inject a dishonest one)."""

    def __init__(self, key: SigningKey, ledger: Ledger, outcome: OutcomeFunction, *, store: OpeningStore | None = None):
        self.key = key
        self.ledger = ledger
        self.outcome = outcome
        self.store = store or OpeningStore()
        self._pending: dict[int, dict[int, Opening]] = {}
        self._announcement: Announcement | None = None

    def announce(
        self,
        *,
        n: int,
        m: int,
        support: Sequence[Sequence[Sequence[float]]],
        input_scale: int,
        auction: dict[str, Any],
        rounds: int,
        audits: int,
        penalty: float,
        mode: str,
        bidders: Sequence[str],
        auditor: str,
        third_party: str | None = None,
    ) -> Entry:
        if len(self.ledger):
            raise ProtocolError("the ledger already holds an auction: announce on an empty ledger")
        if mode not in MODES:
            raise ProtocolError(f"mode must be one of {MODES}, got {mode!r}")
        if mode == "ttp" and third_party is None:
            raise ProtocolError("mode 'ttp' needs the trusted third party's public key")
        if not isinstance(rounds, int) or rounds < 1:
            raise ProtocolError(f"rounds T must be a positive integer, got {rounds!r}")
        if not isinstance(audits, int) or not 1 <= audits <= rounds:
            raise ProtocolError(f"audits k must be in [1, T={rounds}], got {audits!r}")
        ann = Announcement(
            rounds=rounds, audits=audits, penalty=float(penalty), mode=mode, n=n, m=m, input_scale=input_scale,
            support=[[list(map(float, p)) for p in row] for row in support], auction=dict(auction),
            auctioneer=self.key.public_hex, bidders=list(bidders), auditor=auditor, third_party=third_party,
        )
        Announcement.from_dict(ann.to_dict())
        return self.ledger.append(ANNOUNCEMENT, ann.to_dict(), self.key)

    def receive_opening(self, round: int, bidder: int, opening: Opening) -> None:
        """The private channel: a bidder's opening for ``round``, checked at once against the
        commitment that bidder logged and against the support. A bad opening raises
        :class:`~zkauction.commitments.CommitmentError` naming the round and bidder, is logged as
        ``opening_rejected``, and the bidder is absent from the round."""
        ann = self.announcement()
        logged = [
            e for e in self.ledger.entries(kind=BID_COMMITMENT, round=round)
            if e.data.get("bidder") == bidder and 0 <= bidder < ann.n and e.signer == ann.bidders[bidder]
        ]
        already = any(
            r.data.get("bidder") == bidder and r.signer == self.key.public_hex
            for r in self.ledger.entries(kind=OPENING_REJECTED, round=round)
        )
        try:
            if not logged:
                raise CommitmentError("no commitment of this bidder is logged for the round")
            if already:  # final: the ledger already says this bidder is absent from the round
                raise CommitmentError("an earlier opening was rejected; the bidder is absent from this round")
            commitments.check_opening(logged[0].data["commitment"], opening, ann.input_scale)
            self._check_bids(ann, bidder, opening.bids)
        except CommitmentError as e:
            if logged and not already:
                self.ledger.append(OPENING_REJECTED, {"bidder": bidder, "reason": str(e)}, self.key, round=round)
            raise CommitmentError(f"round {round}: bidder {bidder}'s opening is rejected: {e}") from None
        self._pending.setdefault(round, {})[bidder] = opening

    def _check_bids(self, ann: Announcement, bidder: int, bids: Sequence[float]) -> None:
        if len(bids) != ann.m:
            raise CommitmentError(f"expected {ann.m} bids, got {len(bids)}")
        if all(b == 0 for b in bids):
            raise CommitmentError("all-zero bids (an absent bidder does not commit)")
        for j, b in enumerate(bids):
            lo, hi = ann.support[bidder][j]
            if not lo <= b <= hi:
                raise CommitmentError(f"bid for item {j} is {b:g}, outside the support [{lo:g}, {hi:g}]")

    def announcement(self) -> Announcement:
        if self._announcement is None:
            first = next(iter(self.ledger), None)
            if first is None or first.kind != ANNOUNCEMENT:
                raise ProtocolError("no auction has been announced on this ledger")
            self._announcement = Announcement.from_dict(first.data)
        return self._announcement

    def close_round(self, round: int) -> Entry:
        """Close the round: bidders who committed but sent no valid opening are logged as rejected
        and absent; compute the outcome on the others' bids and log it.

        Reads only this round's entries (and the previous round's outcome), so a round costs the
        same at round 1 and round 10^5."""
        ann = self.announcement()
        if not isinstance(round, int) or not 1 <= round <= ann.rounds:
            raise ProtocolError(f"round must be in 1..{ann.rounds}, got {round!r}")
        if round > 1 and not self.ledger.entries(kind=OUTCOME, round=round - 1):
            raise ProtocolError(f"round {round} cannot close before round {round - 1}")
        this_round = self.ledger.entries(round=round)
        if any(e.kind == OUTCOME and e.signer == self.key.public_hex for e in this_round):
            raise ProtocolError(f"round {round} already has an outcome")
        logged: dict[int, str] = {}
        rejected: set[int] = set()
        for e in this_round:
            d = e.data
            if e.kind == BID_COMMITMENT and 0 <= d.get("bidder", -1) < ann.n and e.signer == ann.bidders[d["bidder"]]:
                logged.setdefault(d["bidder"], d["commitment"])
            elif e.kind == OPENING_REJECTED and e.signer == self.key.public_hex:
                rejected.add(d["bidder"])
        received = self._pending.pop(round, {})
        bids = [[0.0] * ann.m for _ in range(ann.n)]
        salts = [ZERO_SALT] * ann.n
        coms = [absent_commitment(ann.m, ann.input_scale)] * ann.n
        present = [0] * ann.n
        accepted: dict[int, Opening] = {}
        for i in sorted(logged):
            if i in rejected:
                continue
            opening = received.get(i)  # only openings that passed receive_opening's checks
            if opening is None:
                self.ledger.append(OPENING_REJECTED, {"bidder": i, "reason": "no opening was received"}, self.key, round=round)
                continue
            accepted[i] = opening
            bids[i], salts[i], coms[i], present[i] = list(opening.bids), opening.salt, logged[i], 1
        # Stored before the outcome is logged: an outcome whose openings are lost could not be proven.
        if accepted:
            self.store.put_round(round, accepted)
        out = self.outcome(bids, salts)
        payload = {"participants": present, "commitments": coms, **out.to_dict()}
        return self.ledger.append(OUTCOME, payload, self.key, round=round)

    def round_inputs(self, round: int, state: LedgerState | None = None) -> tuple[list[list[float]], list[str]]:
        """The bids and salts the outcome of ``round`` was computed on (from the private store)."""
        st = state or read_state(self.ledger)
        ann = st.announcement
        present = st.outcomes[round].data["participants"] if round in st.outcomes else None
        if present is None:
            raise ProtocolError(f"round {round} has no logged outcome")
        got = self.store.get(round)
        bids, salts = [[0.0] * ann.m for _ in range(ann.n)], [ZERO_SALT] * ann.n
        for i, p in enumerate(present):
            if p:
                if i not in got:
                    raise ProtocolError(f"round {round}: the auctioneer's store lacks bidder {i}'s opening")
                bids[i], salts[i] = list(got[i].bids), got[i].salt
        return bids, salts

    def prove(self, round: int, circuit: Any, *, progress: bool = False) -> Any:
        """zk mode: prove ``round`` with the circuit, log the bundle, return it."""
        from zkauction.circuit import prove_round

        st = read_state(self.ledger)
        bids, salts = self.round_inputs(round, st)
        bundle = prove_round(circuit, bids, salts, round_id=round, progress=progress)
        if round not in st.proofs:
            self.ledger.append(PROOF, bundle.to_dict(), self.key, round=round)
        return bundle

    def publish_openings(self, round: int) -> Entry:
        """reveal mode: log the round's openings (bids and salts) for everyone to check."""
        bids, salts = self.round_inputs(round)
        return self.ledger.append(OPENINGS, {"bids": bids, "salts": salts}, self.key, round=round)


@dataclass(frozen=True)
class Verdict:
    round: int
    mode: str
    valid: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def check_round_openings(
    state: LedgerState, round: int, bids: Sequence[Sequence[float]], salts: Sequence[str], outcome: OutcomeFunction
) -> None:
    """Reveal / third-party check: the openings open the logged commitments and the announced
    auction on them gives the logged outcome exactly. Raises :class:`ProtocolError` naming the round."""
    ann = state.announcement
    logged = state.commitments_of(round)
    if len(bids) != ann.n or len(salts) != ann.n:
        raise ProtocolError(f"round {round}: expected openings of {ann.n} bidders")
    for i in range(ann.n):
        try:
            got = commitments.commit(list(map(float, bids[i])), salts[i], ann.input_scale)
        except CommitmentError as e:
            raise ProtocolError(f"round {round}: bidder {i}'s opening is malformed: {e}") from None
        if got != logged[i]:
            raise ProtocolError(f"round {round}: bidder {i}'s opening does not match the commitment the outcome names")
    expected = outcome(bids, salts)
    published = state.outcome_of(round)
    _compare_outcomes(round, published, expected, "the announced auction gives")


def _compare_outcomes(round: int, published: Outcome, expected: Outcome, what: str) -> None:
    if published.payment != expected.payment:
        raise ProtocolError(
            f"round {round}: published payment {list(published.payment)} but {what} {list(expected.payment)}"
        )
    if published.allocation != expected.allocation:
        raise ProtocolError(
            f"round {round}: published allocation {[list(r) for r in published.allocation]} but {what} "
            f"{[list(r) for r in expected.allocation]}"
        )


def check_bundle_against_ledger(bundle: Any, ledger: Ledger, round: int | None = None) -> int:
    """Check a proof bundle against the ledger: the chain verifies, the bundle is for the announced
    circuit (manifest and vk hashes), its commitments are the ones the round's outcome was computed
    on and its outcome is the logged one. Returns the round; raises
    :class:`~zkauction.bundle.VerificationError` with ``check == "ledger"`` naming the round.

    The proof itself is checked by :func:`zkauction.bundle.verify_bundle`; call both.
    """
    from zkauction.bundle import ProofBundle, VerificationError

    if not isinstance(bundle, ProofBundle):
        bundle = ProofBundle.load(bundle)
    try:
        ledger.verify_chain()
        st = read_state(ledger)
    except (ChainError, ProtocolError) as e:
        raise VerificationError("ledger", str(e)) from None
    r = round if round is not None else bundle.round_id
    if not isinstance(r, int):
        raise VerificationError("ledger", f"the bundle names no round (round_id {bundle.round_id!r}); pass the round")
    if bundle.round_id is not None and bundle.round_id != r:
        raise VerificationError("ledger", f"the bundle is for round {bundle.round_id}, not round {r}")
    if r not in st.outcomes:
        raise VerificationError("ledger", f"round {r}: no outcome is logged for this round")
    auction = st.announcement.auction
    if bundle.manifest_sha256 != auction.get("manifest_sha256"):
        raise VerificationError("ledger", f"round {r}: the bundle's circuit manifest is not the announced one")
    if bundle.vk_sha256 != auction.get("vk_sha256"):
        raise VerificationError("ledger", f"round {r}: the bundle's verifying key is not the announced one")
    try:
        st.check_outcome_inputs(r)
    except ProtocolError as e:
        raise VerificationError("ledger", str(e)) from None
    logged = st.commitments_of(r)
    for i, (got, want) in enumerate(zip(bundle.commitments, logged)):
        if got.lower() != want.lower():
            raise VerificationError("ledger", f"round {r}: bidder {i}'s commitment in the proof is not the logged one")
    if len(bundle.commitments) != len(logged):
        raise VerificationError("ledger", f"round {r}: the bundle has {len(bundle.commitments)} commitments, the ledger {len(logged)}")
    try:
        _compare_outcomes(r, st.outcome_of(r), bundle.outcome, "the proof shows")
    except ProtocolError as e:
        raise VerificationError("ledger", str(e)) from None
    return r


class Auditor:
    """Replays the chain, closes the reveal phase, selects and checks the audited rounds.

    ``circuit`` (public artefacts suffice) verifies zk proofs; ``outcome`` recomputes outcomes in
    reveal mode.
    """

    def __init__(self, key: SigningKey, ledger: Ledger, *, circuit: Any = None, outcome: OutcomeFunction | None = None,
                 verify_bundle: Callable[..., Any] | None = None):
        self.key = key
        self.ledger = ledger
        self.circuit = circuit
        self.outcome = outcome
        self._verify_bundle = verify_bundle

    def verify_chain(self) -> ChainCheck:
        return self.ledger.verify_chain()

    def close_reveals(self) -> list[int]:
        """End the reveal phase: every bidder that committed a seed and has not revealed is logged
        as missing. Returns those bidders."""
        st = read_state(self.ledger)
        if st.rounds_done < st.announcement.rounds:
            raise AuditError(f"the reveal phase opens after round {st.announcement.rounds}; {st.rounds_done} rounds are logged")
        missing = sorted(set(st.seed_commitments) - set(st.reveals) - st.missing)
        for i in missing:
            self.ledger.append(REVEAL_MISSING, {"bidder": i}, self.key)
        return missing

    def select(self) -> AuditSelection:
        st = read_state(self.ledger)
        sel = audit_selection(self.ledger, st)
        if st.selection is None:
            self.ledger.append(AUDIT_SELECTION, sel.to_dict(), self.key)
        elif st.selection.data["rounds"] != sel.rounds:
            raise AuditError(f"ledger entry {st.selection.seq}: the logged audit selection is not the one the reveals give")
        return sel

    def check_round(self, round: int, state: LedgerState | None = None) -> Verdict:
        """Check one audited round in the announced mode; never raises for a failed check (the
        verdict says why), only for a round that cannot be checked by this auditor."""
        st = state or read_state(self.ledger)
        mode = st.announcement.mode
        if round not in st.outcomes:
            return Verdict(round, mode, False, f"round {round}: no outcome was logged")
        try:
            st.check_outcome_inputs(round)
            if mode == "zk":
                self._check_zk(st, round)
            elif mode == "reveal":
                self._check_reveal(st, round)
            else:
                self._check_ttp(st, round)
        except ProtocolError as e:
            return Verdict(round, mode, False, str(e))
        return Verdict(round, mode, True, f"round {round}: outcome verified ({mode})")

    def _check_zk(self, st: LedgerState, round: int) -> None:
        from zkauction.bundle import BundleError, ProofBundle, VerificationError

        if round not in st.proofs:
            raise ProtocolError(f"round {round}: the auctioneer logged no proof")
        try:
            bundle = ProofBundle.from_dict(st.proofs[round].data)
            check_bundle_against_ledger(bundle, self.ledger, round)
            verify = self._verify_bundle
            if verify is None:
                from zkauction.bundle import verify_bundle as verify
            if self.circuit is None:
                raise ProtocolError(f"round {round}: no circuit given to verify the proof")
            verify(bundle, self.circuit, expected_commitments=st.commitments_of(round), expected_outcome=st.outcome_of(round))
        except VerificationError as e:
            reason = e.reason if e.reason.startswith(f"round {round}") else f"round {round}: {e}"
            raise ProtocolError(reason) from None
        except BundleError as e:
            raise ProtocolError(f"round {round}: unreadable proof bundle: {e}") from None

    def _check_reveal(self, st: LedgerState, round: int) -> None:
        if round not in st.openings:
            raise ProtocolError(f"round {round}: the auctioneer published no openings")
        if self.outcome is None:
            raise ProtocolError(f"round {round}: no auction given to recompute the outcome")
        d = st.openings[round].data
        check_round_openings(st, round, d["bids"], d["salts"], self.outcome)

    def _check_ttp(self, st: LedgerState, round: int) -> None:
        if round not in st.verdicts:
            raise ProtocolError(f"round {round}: the trusted third party logged no verdict")
        v = st.verdicts[round].data
        if not v.get("valid"):
            raise ProtocolError(v.get("reason", f"round {round}: the trusted third party rejected the outcome"))

    def audit(self) -> "AuditReport":
        """Check every selected round, log verdicts (zk, reveal) and the audit result with the
        penalty due. Requires the selection (:meth:`select`)."""
        st = read_state(self.ledger)
        if st.selection is None:
            raise AuditError("no audit selection is logged yet (close the reveals and select first)")
        rounds = list(st.selection.data["rounds"])
        verdicts = []
        for r in rounds:
            v = self.check_round(r, st)
            if st.announcement.mode != "ttp" and r not in st.verdicts:
                self.ledger.append(VERDICT, v.to_dict(), self.key, round=r)
            verdicts.append(v)
        failed = [v.round for v in verdicts if not v.valid]
        anomalies = st.auctioneer_anomalies()
        valid = not failed and not anomalies
        penalty = st.announcement.penalty if not valid else 0.0
        if st.result is None:
            self.ledger.append(AUDIT_RESULT, {"rounds": rounds, "failed": failed, "anomalies": anomalies,
                                              "valid": valid, "penalty_due": penalty}, self.key)
        return AuditReport(rounds, verdicts, failed, anomalies, penalty, self.ledger.verify_chain())


@dataclass(frozen=True)
class AuditReport:
    rounds: list[int]
    verdicts: list[Verdict]
    failed: list[int]
    anomalies: list[str]  # protocol breaches signed by the auctioneer (e.g. two outcomes for a round)
    penalty_due: float
    chain: ChainCheck

    @property
    def valid(self) -> bool:
        return not self.failed and not self.anomalies


class TrustedThirdParty:
    """The paper's third verifier: receives openings privately, recomputes, logs a signed verdict."""

    def __init__(self, key: SigningKey, ledger: Ledger, outcome: OutcomeFunction):
        self.key = key
        self.ledger = ledger
        self.outcome = outcome

    def audit_round(self, round: int, bids: Sequence[Sequence[float]], salts: Sequence[str]) -> Verdict:
        st = read_state(self.ledger)
        try:
            st.check_outcome_inputs(round)
            check_round_openings(st, round, bids, salts, self.outcome)
            v = Verdict(round, "ttp", True, f"round {round}: outcome verified (ttp)")
        except ProtocolError as e:
            v = Verdict(round, "ttp", False, str(e))
        if round not in st.verdicts:
            self.ledger.append(VERDICT, v.to_dict(), self.key, round=round)
        return v


# --------------------------------------------------------------------------------------------------
# Driving a run (simulated bidders)


def run_rounds(
    auctioneer: Auctioneer,
    bidders: Sequence[Bidder],
    bids_of_round: Callable[[int], Sequence[Sequence[float]]],
    rounds: Iterable[int] | None = None,
    *,
    on_round: Callable[[int], None] | None = None,
) -> int:
    """Play rounds (default: every round not yet logged, in order; resumes after a crash).

    ``bids_of_round(r)`` gives the [n][m] bids of round r; an all-zero row is an absent bidder.
    Returns the number of rounds played now.
    """
    ann = auctioneer.announcement()
    if rounds is None:
        st = read_state(auctioneer.ledger)
        todo = [r for r in range(st.rounds_done + 1, ann.rounds + 1) if r not in st.outcomes]
    else:  # cheap per-round queries, so playing one round at a time stays O(1) per round
        todo = [r for r in rounds if not any(e.signer == ann.auctioneer for e in auctioneer.ledger.entries(kind=OUTCOME, round=r))]
    played = 0
    for r in todo:
        profile = bids_of_round(r)
        for b in bidders:
            row = [float(x) for x in profile[b.index]]
            if any(x != 0 for x in row):
                opening = b.bid(r, row, ann.input_scale)
                try:
                    auctioneer.receive_opening(r, b.index, opening)
                except CommitmentError:
                    pass  # logged as opening_rejected; the bidder is absent from this round
        auctioneer.close_round(r)
        played += 1
        if on_round is not None:
            on_round(r)
    return played


# --------------------------------------------------------------------------------------------------
# A whole run in one process: what `zkauction run`, `audit`, `prove` and `demo` drive.

RUN_FILE = "run.json"
OPENINGS_FILE = "openings.db"


def private_dir(db: str | Path) -> Path:
    """Where a local run keeps every party's secrets: ``<db>.private/`` (git-ignored). In a real
    deployment each party holds its own key; here all parties are simulated in one process."""
    db = Path(db)
    return db.with_name(db.name + ".private")


def simulated_bids(setting: Any, participation: Any, seed: int, round: int) -> list[list[float]]:
    """Round ``round``'s bids of truthful simulated bidders: a participation profile from Q and
    values from the setting (tweaked data, absent rows zero); reproducible from (seed, round)."""
    from zkauction.data import sample_tweaked

    frame_seed = int.from_bytes(hashlib.sha3_256(f"zkauction-sim/{seed}/{round}".encode()).digest()[:7], "big")
    return sample_tweaked(setting, participation, 1, frame_seed).values[0].tolist()


class LocalRun:
    """The auctioneer, n simulated truthful bidders, the auditor and (ttp mode) the trusted third
    party over one ledger file, with their keys and secrets in :func:`private_dir`."""

    def __init__(self, db: str | Path, outcome: OutcomeFunction, *, circuit: Any = None, durable: bool = True):
        """``durable=False`` skips the fsync per append (SQLite synchronous=NORMAL): still safe
        against a killed process, not against a power cut."""
        from zkauction.setting import AuctionSetting, ParticipationModel

        self.db = Path(db)
        self.dir = private_dir(db)
        cfg_file = self.dir / RUN_FILE
        if not self.db.is_file() or not cfg_file.is_file():
            raise ProtocolError(f"{self.db}: no local run here (start one with `zkauction run`)")
        self.config = json.loads(cfg_file.read_text())
        self.setting = AuctionSetting.from_dict(self.config["setting"])
        self.participation = ParticipationModel.from_dict(self.config["participation"], self.setting.n)
        self.seed = int(self.config["seed"])
        self.circuit = circuit
        self.ledger = Ledger.open(self.db, durable=durable)
        self.state = read_state(self.ledger)
        ann = self.state.announcement
        keys = {name: SigningKey.load(self.dir / f"{name}.pem") for name in self._key_names(ann.n)}
        self.outcome = outcome
        self.auctioneer = Auctioneer(keys["auctioneer"], self.ledger, outcome,
                                     store=OpeningStore(self.dir / OPENINGS_FILE, durable=durable))
        self.bidders = [
            Bidder(i, keys[f"bidder_{i}"], self.ledger, secret=bytes.fromhex((self.dir / f"bidder_{i}.secret").read_text().strip()))
            for i in range(ann.n)
        ]
        self.auditor = Auditor(keys["auditor"], self.ledger, circuit=circuit, outcome=outcome)
        self.third_party = TrustedThirdParty(keys["third_party"], self.ledger, outcome)
        if ann.auctioneer != keys["auctioneer"].public_hex or [b.key.public_hex for b in self.bidders] != ann.bidders:
            raise ProtocolError(f"{self.dir}: the keys there are not the ones {self.db} announces")

    @staticmethod
    def _key_names(n: int) -> list[str]:
        return ["auctioneer", "auditor", "third_party"] + [f"bidder_{i}" for i in range(n)]

    @classmethod
    def create(
        cls,
        db: str | Path,
        outcome: OutcomeFunction,
        *,
        setting: Any,
        participation: Any,
        input_scale: int,
        auction: dict[str, Any],
        rounds: int,
        audits: int = 1,
        penalty: float | None = None,
        mode: str = "zk",
        seed: int = 0,
        circuit: Any = None,
        extra_config: dict[str, Any] | None = None,
        durable: bool = True,
    ) -> "LocalRun":
        """Generate every party's key, announce the auction, commit the bidders' audit seeds.

        ``penalty`` defaults to (T + 1) * aRgt*, just above section 4.1's threshold T * aRgt*."""
        import secrets as _secrets

        from zkauction.credibility import argt_bound

        db = Path(db)
        if db.exists() and db.stat().st_size > 0:
            raise ProtocolError(f"{db} already exists: resume it, or choose a new --db")
        d = private_dir(db)
        d.mkdir(parents=True, exist_ok=True)
        if mode not in MODES:
            raise ProtocolError(f"mode must be one of {MODES}, got {mode!r}")
        keys = {name: SigningKey.generate() for name in cls._key_names(setting.n)}
        for name, k in keys.items():
            k.save(d / f"{name}.pem")
        for i in range(setting.n):
            f = d / f"bidder_{i}.secret"
            f.write_text(_secrets.token_hex(32) + "\n")
            f.chmod(0o600)
        if penalty is None:
            penalty = (rounds + 1) * argt_bound(setting)
        (d / OPENINGS_FILE).unlink(missing_ok=True)
        cfg = {"seed": seed, "setting": setting.to_dict(), "participation": participation.to_dict(), **(extra_config or {})}
        (d / RUN_FILE).write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
        with Ledger.open(db) as ledger:
            Auctioneer(keys["auctioneer"], ledger, outcome).announce(
                n=setting.n, m=setting.m, support=setting.support, input_scale=input_scale, auction=auction,
                rounds=rounds, audits=audits, penalty=penalty, mode=mode,
                bidders=[keys[f"bidder_{i}"].public_hex for i in range(setting.n)],
                auditor=keys["auditor"].public_hex,
                third_party=keys["third_party"].public_hex if mode == "ttp" else None,
            )
        run = cls(db, outcome, circuit=circuit, durable=durable)
        for b in run.bidders:
            b.commit_audit_seed()
        return run

    def close(self) -> None:
        self.auctioneer.store.close()
        self.ledger.close()

    def __enter__(self) -> "LocalRun":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def bids_of_round(self, round: int) -> list[list[float]]:
        return simulated_bids(self.setting, self.participation, self.seed, round)

    def play(self, on_round: Callable[[int], None] | None = None) -> int:
        """Play every round not yet logged (resumes after a crash). Returns how many were played."""
        for b in self.bidders:  # a crash between the announcement and the seed commitments
            if not read_state(self.ledger).commitments:
                b.commit_audit_seed()
        return run_rounds(self.auctioneer, self.bidders, self.bids_of_round, on_round=on_round)

    def reveal_and_select(self, *, withhold: Sequence[int] = ()) -> AuditSelection:
        """Bidders reveal their audit seeds (except ``withhold``, to simulate non-revealers), the
        auditor closes the reveal phase and logs the selection."""
        for b in self.bidders:
            if b.index not in withhold:
                b.reveal_audit_seed()
        self.auditor.close_reveals()
        return self.auditor.select()

    def answer_audit(self, rounds: Sequence[int], *, progress: bool = False,
                     on_round: Callable[[int, float], None] | None = None) -> None:
        """The auctioneer's side of the audit, in the announced mode (proofs are timed)."""
        import time

        st = read_state(self.ledger)
        mode = st.announcement.mode
        for r in rounds:
            t = time.perf_counter()
            if mode == "zk" and r not in st.proofs:
                if self.circuit is None:
                    raise ProtocolError("zk mode needs the circuit to prove")
                self.auctioneer.prove(r, self.circuit, progress=progress)
            elif mode == "reveal" and r not in st.openings:
                self.auctioneer.publish_openings(r)
            elif mode == "ttp" and r not in st.verdicts:
                bids, salts = self.auctioneer.round_inputs(r, st)
                self.third_party.audit_round(r, bids, salts)
            if on_round is not None:
                on_round(r, time.perf_counter() - t)

    def audit(self, *, withhold: Sequence[int] = (), progress: bool = False) -> AuditReport:
        """Reveal, select, answer (prove / publish / third party) and check: the whole audit."""
        sel = self.reveal_and_select(withhold=withhold)
        self.answer_audit(sel.rounds, progress=progress)
        return self.auditor.audit()
