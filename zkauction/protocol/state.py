"""Reading the log: entry kinds, the announcement, and the state every verifier derives itself.

The log of one auction (the paper's Algorithm 1, made credible against the auctioneer):

1. ``announcement`` (entry 0, auctioneer): the auction, its circuit's manifest and vk hashes, T, k,
   the penalty, the verification mode, deadlines and every participant's public key. Its hash is the
   log id.
2. ``registration`` (each bidder, before round 1): the bidder signs the announcement's hash and
   commits to its audit seed (SHA3-256 of domain, bidder index, seed). No round starts until all n
   bidders have registered: a bidder who never agreed to take part is never in a run.
3. Each round r: ``bid_commitment`` (bidders, Poseidon commitments, never bids), then
   ``commitments_closed`` (auctioneer: the list of the round's commitments), covered by a signed
   checkpoint before any bidder sends its (signed) opening (sealed commit phase);
   ``opening_rejected`` (auctioneer, a reason from :data:`REJECTION_REASONS`, with the bidder's
   signed bad opening as evidence); ``dispute`` (a bidder rejected for ``no_opening`` publishes its
   opening, before the outcome); ``outcome`` (auctioneer: participants, the n commitments the
   outcome was computed on, allocation, payment). Under the announced ``exclusion: "void"`` a
   committed bidder left out (rejected, not cured by a dispute) voids the round: every bidder is
   absent from its outcome, so a shill's withdrawal after seeing the openings never pays.
4. After round T: ``seed_reveal`` (bidders; each carries the checkpoint the bidder holds, covering
   round T, as a co-signature of the log it saw), ``reveals_closed`` (auctioneer), then the audited
   rounds' ``proof`` (zk), ``openings`` (reveal) or ``ttp_verdict`` (trusted third party, naming
   the outcome it judged by its hash). The auctioneer's entries carry only the protocol's fields.

Nothing in the log is a verdict: the audit draw, the public checks and the audit's verdict are
functions of the log (:mod:`zkauction.protocol.audit`) that every verifier computes. Entries that
break the rules are kept out of the state; those the auctioneer signed (or, as the log's host,
accepted) are *breaches* and carry the penalty, those of other parties are *notes*.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from zkauction.protocol.log import GENESIS_HASH, ChainError, Entry, Ledger, canonical_json, check_entry
from zkauction.protocol.announcement import (  # noqa: F401  (re-exported: the protocol's public names)
    MODES, PROTOCOL_FORMAT, Announcement, ProtocolError, block_of, previous_block,
)
from zkauction.protocol.reveal import SEED_DOMAIN, seed_commitment, seed_reveal_problem  # noqa: F401  (re-exported)
from zkauction.zk import commitments
from zkauction.zk.circuit import Outcome, finite_number

ZERO_SALT = "0" * 64  # an absent bidder's salt: its commitment to all-zero bids is public

SALT_DOMAIN = b"zkauction-bid-salt-v1\x00"

ANNOUNCEMENT = "announcement"  # auctioneer
REGISTRATION = "registration"  # bidder
BID_COMMITMENT = "bid_commitment"  # bidder
COMMITMENTS_CLOSED = "commitments_closed"  # auctioneer
OPENING_REJECTED = "opening_rejected"  # auctioneer
OUTCOME = "outcome"  # auctioneer
DISPUTE = "dispute"  # bidder
ABSTENTION = "abstention"  # bidder: it will not open its commitment in this round
SEED_REVEAL = "seed_reveal"  # bidder
REVEALS_CLOSED = "reveals_closed"  # auctioneer
PROOF = "proof"  # auctioneer (zk)
OPENINGS = "openings"  # auctioneer (reveal)
TTP_VERDICT = "ttp_verdict"  # trusted third party (ttp)

OutcomeFunction = Callable[[Sequence[Sequence[float]], Sequence[str]], Outcome]
"""(snapped bids [n][m], salts [n]) -> the announced auction's outcome on those bids."""

ROUND_KINDS = (BID_COMMITMENT, COMMITMENTS_CLOSED, OPENING_REJECTED, OUTCOME, DISPUTE, ABSTENTION, PROOF, OPENINGS,
               TTP_VERDICT)

# Why the auctioneer may reject an opening: nothing else (free text would be a covert channel and
# an excuse nobody can check). Each is decidable from the log: the first three carry the bidder's
# signed opening as evidence (a rejection whose evidence is missing, not signed by the bidder, or a
# valid opening after all is a breach: so a bidder cannot frame an honest auctioneer by sending a bad
# opening and publishing a good one); ``no_opening`` cannot carry evidence (delivery over a private
# channel cannot be proven), so the bidder may publish its opening on the log (``dispute``) before
# the round's outcome, and the outcome must then include it.
REJECTION_REASONS = {
    "opening_mismatch": "the opening does not open the logged commitment",
    "outside_support": "a bid is outside the announced support (or all bids are zero)",
    "malformed_opening": "the opening is not m numbers and a field element",
    "no_opening": "no opening was received",
}
EVIDENCE_REASONS = ("opening_mismatch", "outside_support", "malformed_opening")
OPENING_DOMAIN = "zkauction-opening-v1"


def opening_message(log_id: str, round: int, bidder: int, bids: Any, salt: Any) -> bytes:
    """What a bidder signs when it sends an opening: it binds the opening to this log, round and
    bidder, so the auctioneer can show a bad opening as evidence and nobody can replay it."""
    return (OPENING_DOMAIN + "\n" + canonical_json({"log": log_id, "round": round, "bidder": bidder,
                                                     "bids": bids, "salt": salt})).encode()


def openings_problem(n: int, m: int, bids: Any, salts: Any) -> str | None:
    """What is malformed in a round's published openings (None if nothing): they must be the bids
    of n bidders, m finite numbers each, and n salts, each a field element (64 hex digits); whether
    they open the commitments is checked after."""
    if not isinstance(bids, (list, tuple)) or len(bids) != n or not isinstance(salts, (list, tuple)) or len(salts) != n:
        return f"they must list the bids and the salts of {n} bidders"
    for i, (b, salt) in enumerate(zip(bids, salts)):
        if not (isinstance(b, (list, tuple)) and len(b) == m and all(finite_number(x) for x in b)):
            return f"bidder {i}'s bids must be {m} finite numbers, got {str(b)[:100]}"
        try:
            commitments.check_salt(salt)
        except commitments.CommitmentError as e:
            return f"bidder {i}'s {e}"
    return None


class AuditError(ProtocolError):
    """The audit cannot proceed yet or at all (e.g. the reveal phase is open), with the reason."""


def unique_key(kind: str, round: int | None = None, bidder: int | None = None) -> str:
    """The storage-level uniqueness key of an entry: one of each per round (and bidder)."""
    return "/".join(str(x) for x in (kind, round, bidder) if x is not None)


@functools.lru_cache(maxsize=64)
def absent_commitment(m: int, scale: int) -> str:
    """The public commitment of an absent bidder: all-zero bids under salt 0."""
    return commitments.commit([0.0] * m, ZERO_SALT, scale)


@dataclass(frozen=True)
class Breach:
    """Something the log shows that an honest auctioneer never does: it carries the penalty."""

    seq: int | None
    round: int | None
    reason: str

    def __str__(self) -> str:
        where = f"ledger entry {self.seq}" if self.seq is not None else "the log"
        return f"{where}: {self.reason}"


@dataclass
class LedgerState:
    """Everything the log holds, each kind checked for authorship and order."""

    announcement: Announcement
    announcement_entry: Entry
    size: int = 0
    registrations: dict[int, str] = field(default_factory=dict)  # bidder -> seed commitment
    commitments: dict[int, dict[int, str]] = field(default_factory=dict)  # round -> bidder -> commitment
    closes: dict[int, Entry] = field(default_factory=dict)
    rejections: dict[int, dict[int, str]] = field(default_factory=dict)  # round -> bidder -> reason
    rejection_entries: dict[int, dict[int, Entry]] = field(default_factory=dict)
    outcomes: dict[int, Entry] = field(default_factory=dict)
    disputes: dict[int, dict[int, Entry]] = field(default_factory=dict)
    abstentions: dict[int, dict[int, Entry]] = field(default_factory=dict)
    reveals: dict[int, Entry] = field(default_factory=dict)
    reveals_closed: Entry | None = None
    proofs: dict[int, Entry] = field(default_factory=dict)
    openings: dict[int, Entry] = field(default_factory=dict)
    ttp_verdicts: dict[int, Entry] = field(default_factory=dict)
    breaches: list[Breach] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def log_id(self) -> str:
        return self.announcement_entry.hash

    @property
    def answers(self) -> dict[int, Entry]:
        """The audit answers of the announced mode, by round: proofs (zk), published openings
        (reveal) or the third party's verdicts (ttp)."""
        return {"zk": self.proofs, "reveal": self.openings, "ttp": self.ttp_verdicts}.get(self.announcement.mode, {})

    @property
    def registered(self) -> bool:
        return len(self.registrations) == self.announcement.n

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


class _Skip(Exception):
    """An entry left out of the state (its reason is already recorded)."""


# The fields of the entries the auctioneer writes once bids are in, and of a rejection's evidence: any other
# is a channel nobody reads, for what must stay sealed (bids in an outcome: the twenty-first review).
AUCTIONEER_FIELDS = {
    COMMITMENTS_CLOSED: {"commitments"}, OPENING_REJECTED: {"bidder", "reason", "evidence"}, REVEALS_CLOSED: set(),
    OUTCOME: {"participants", "commitments", "allocation", "payment"}, OPENINGS: {"bids", "salts"},
    PROOF: {"format", "round_id", "circuit_name", "ezkl_version", "manifest_sha256", "vk_sha256", "commitments", "outcome", "proof", "log"},
}
EVIDENCE_FIELDS = {"bids", "salt", "signature"}


def _writers(ann: Announcement) -> dict[str, str]:
    return {
        ANNOUNCEMENT: "auctioneer", REGISTRATION: "bidder", BID_COMMITMENT: "bidder", COMMITMENTS_CLOSED: "auctioneer",
        OPENING_REJECTED: "auctioneer", OUTCOME: "auctioneer", DISPUTE: "bidder", ABSTENTION: "bidder", SEED_REVEAL: "bidder",
        REVEALS_CLOSED: "auctioneer", PROOF: "auctioneer", OPENINGS: "auctioneer", TTP_VERDICT: "trusted third party",
    }


class _Reader:
    """Replays the log into a :class:`LedgerState`, one handler per entry kind."""

    def __init__(self, ann: Announcement, first: Entry):
        self.st = LedgerState(ann, first, size=1)
        self.ann = ann
        self.bidder_of = {k: i for i, k in enumerate(ann.bidders)}
        self.writers = _writers(ann)
        self.handlers: dict[str, Callable[[Entry, dict[str, Any]], None]] = {
            REGISTRATION: self.registration, BID_COMMITMENT: self.bid_commitment, COMMITMENTS_CLOSED: self.close,
            OPENING_REJECTED: self.rejection, OUTCOME: self.outcome, DISPUTE: self.dispute, ABSTENTION: self.abstention,
            SEED_REVEAL: self.reveal,
            REVEALS_CLOSED: self.reveals_closed, PROOF: self.proof, OPENINGS: self.openings_entry,
            TTP_VERDICT: self.ttp_verdict, ANNOUNCEMENT: self.second_announcement,
        }
        self.entry: Entry | None = None
        self.blame = "note"

    def bad(self, reason: str) -> None:
        e = self.entry
        if self.blame == "auctioneer":
            self.st.breaches.append(Breach(e.seq, e.round, reason))
        else:
            self.st.notes.append(f"ledger entry {e.seq}: {reason} (not counted)")
        raise _Skip

    def role_of(self, e: Entry) -> str:
        if e.signer == self.ann.auctioneer:
            return "auctioneer"
        if self.ann.third_party and e.signer == self.ann.third_party:
            return "trusted third party"
        return f"bidder {self.bidder_of[e.signer]}" if e.signer in self.bidder_of else "unknown signer"

    def read(self, e: Entry) -> None:
        self.entry, self.st.size = e, e.seq + 1
        # The auctioneer hosts the log: whatever it signed, and any entry that should never have been
        # accepted into its log, is its breach. Entries of others that break the rules only do not count.
        known = e.signer in self.bidder_of or e.signer == self.ann.third_party
        self.blame = "note" if known and e.signer != self.ann.auctioneer else "auctioneer"
        try:
            if e.kind not in self.writers:
                self.bad(f"unknown entry kind {e.kind!r}")
            try:
                d = e.data
            except json.JSONDecodeError:
                self.bad(f"{e.kind} payload is not JSON")
            if not isinstance(d, dict):
                self.bad(f"{e.kind} payload is not an object")
            want, role = self.writers[e.kind], self.role_of(e)
            if want == "bidder":  # an integer index (1.0 == 1 == True in Python; only 1 counts)
                if type(d.get("bidder")) is not int or self.bidder_of.get(e.signer) != d["bidder"]:
                    self.bad(f"{e.kind} for bidder {d.get('bidder')!r} not signed by that bidder's key")
            elif role != want:
                self.bad(f"{e.kind} signed by {role}, not by the {want}")
            if e.kind in ROUND_KINDS and (not isinstance(e.round, int) or not 1 <= e.round <= self.ann.rounds):
                self.bad(f"{e.kind} for round {e.round}, outside 1..{self.ann.rounds}")
            if e.kind not in (ANNOUNCEMENT, REGISTRATION) and not self.st.registered and self.blame == "auctioneer":
                self.bad(f"{e.kind} logged before every bidder registered "
                         f"(registered: {sorted(self.st.registrations)} of {self.ann.n})")
            self.extra_fields(e, d)
            self.handlers[e.kind](e, d)
        except _Skip:
            pass
        except (KeyError, TypeError, ValueError, ArithmeticError) as err:
            try:
                self.bad(f"malformed {e.kind} payload ({str(err)[:200]})")
            except _Skip:
                pass

    def extra_fields(self, e: Entry, d: dict[str, Any]) -> None:
        """A field not in AUCTIONEER_FIELDS is the auctioneer's breach (the entry still counts)."""
        extra = sorted(set(d) - AUCTIONEER_FIELDS[e.kind]) if e.kind in AUCTIONEER_FIELDS else []
        ev = d.get("evidence") if e.kind == OPENING_REJECTED else None
        if ev is not None and d.get("reason") not in EVIDENCE_REASONS:
            extra.append("evidence (for a reason that takes none)")
        elif isinstance(ev, dict):
            extra += [f"evidence.{k}" for k in sorted(set(ev) - EVIDENCE_FIELDS)]
        if extra and self.blame == "auctioneer":
            self.st.breaches.append(Breach(e.seq, e.round, f"{e.kind} (round {e.round}) carries fields the protocol does not "
                                           f"define ({', '.join(str(k)[:40] for k in extra[:5])}): a channel for what must "
                                           "stay sealed"))

    # One handler per kind ---------------------------------------------------------------------

    def second_announcement(self, e: Entry, d: dict[str, Any]) -> None:
        self.bad("a second announcement")

    def registration(self, e: Entry, d: dict[str, Any]) -> None:
        i = d["bidder"]
        if self.st.commitments or self.st.closes:
            self.bad(f"bidder {i} registered after round 1 began")
        if i in self.st.registrations:
            self.bad(f"bidder {i} registered twice (the first counts)")
        if d["announcement"] != self.st.log_id:
            self.bad(f"bidder {i}'s registration signs another announcement")
        self.st.registrations[i] = str(d["seed_commitment"])

    def bid_commitment(self, e: Entry, d: dict[str, Any]) -> None:
        r, i = e.round, d["bidder"]
        if r in self.st.closes:  # not counted: the close lists what counts (an informed shill's late bid is out)
            self.bad(f"bidder {i}'s commitment for round {r} logged after the round's commitments were closed")
        if i in self.st.commitments.setdefault(r, {}):
            self.bad(f"bidder {i} committed twice in round {r} (the first counts)")
        mine = commitments.check_felt(d["commitment"], "commitment")
        if mine != d["commitment"]:  # one spelling per commitment: the close lists it as the log holds it
            self.bad(f"bidder {i}'s commitment for round {r} is not in its canonical form (lower-case hex)")
        copied = [j for j, c in self.st.commitments[r].items() if c == mine]
        if copied:  # counted (the close must list it) and the host's breach: an honest host refuses a copy
            lo, hi = sorted((copied[0], i))
            self.st.breaches.append(Breach(e.seq, r, f"bidders {lo} and {hi} logged the same commitment in round {r}: one is "
                                           "a copy (it opens with the other's opening), which an honest host refuses"))
        self.st.commitments[r][i] = mine

    def close(self, e: Entry, d: dict[str, Any]) -> None:
        r, n = e.round, self.ann.n
        if r in self.st.closes:
            self.bad(f"a second close of round {r}'s commitments")
        waiting = [q for q in previous_block(self.ann, r) if q not in self.st.outcomes]
        if waiting:  # one round at a time: round r-1; in blocks: every round of the previous block
            self.bad(f"round {r}'s commitments closed before round {waiting[0]}'s outcome")
        listed = d["commitments"]
        logged = self.st.commitments.get(r, {})
        want = [logged.get(i) for i in range(n)]
        if listed != want:
            self.bad(f"round {r}'s close lists commitments {listed}, but the log holds {want}")
        self.st.closes[r] = e

    def rejection(self, e: Entry, d: dict[str, Any]) -> None:
        r, i = e.round, d["bidder"]
        if r not in self.st.closes or r in self.st.outcomes:
            self.bad(f"rejection of bidder {i} in round {r} outside the round's opening phase")
        if i not in self.st.commitments.get(r, {}):
            self.bad(f"rejection of bidder {i} in round {r}, which has no logged commitment")
        if d["reason"] not in REJECTION_REASONS:
            self.bad(f"rejection of bidder {i} in round {r} with reason {d['reason']!r}, not one of {sorted(REJECTION_REASONS)}")
        if i in self.st.rejections.setdefault(r, {}):
            self.bad(f"bidder {i} rejected twice in round {r}")
        if d["reason"] in EVIDENCE_REASONS and not isinstance(d.get("evidence"), dict):
            self.bad(f"rejection of bidder {i} in round {r} ({d['reason']}) carries no evidence")
        self.st.rejections[r][i] = d["reason"]
        self.st.rejection_entries.setdefault(r, {})[i] = e

    def outcome(self, e: Entry, d: dict[str, Any]) -> None:
        r = e.round
        if r in self.st.outcomes:
            self.bad(f"a second outcome for round {r}")
        if r not in self.st.closes:
            self.bad(f"an outcome for round {r} before its commitments were closed")
        Outcome.from_dict(d)
        self.st.outcomes[r] = e

    def dispute(self, e: Entry, d: dict[str, Any]) -> None:
        r, i = e.round, d["bidder"]
        if i not in self.st.rejections.get(r, {}):
            self.bad(f"bidder {i} disputes a rejection in round {r} that was never logged")
        if self.st.reveals_closed is not None:
            self.bad(f"bidder {i}'s dispute of round {r} came after the reveal phase closed")
        if i in self.st.disputes.setdefault(r, {}):
            self.bad(f"bidder {i} disputed round {r} twice (the first counts)")
        self.st.disputes[r][i] = e

    def abstention(self, e: Entry, d: dict[str, Any]) -> None:
        r, i = e.round, d["bidder"]
        if i not in self.st.commitments.get(r, {}) or r in self.st.outcomes:
            self.bad(f"bidder {i}'s abstention in round {r} is not between its commitment and the outcome")
        self.st.abstentions.setdefault(r, {}).setdefault(i, e)

    def last_outcomes(self, what: str) -> list[Entry]:
        """The outcomes of the last block's rounds (round T's alone, one round at a time); skips the
        entry being read, naming the first round without one."""
        last = block_of(self.ann, self.ann.rounds)
        missing = [q for q in last if q not in self.st.outcomes]
        if missing:
            self.bad(f"{what} before round {missing[0]}'s outcome"
                     + ("" if len(last) == 1 else f" (the last block, rounds {last.start}..{last.stop - 1}, is not complete)"))
        return [self.st.outcomes[q] for q in last]

    def reveal(self, e: Entry, d: dict[str, Any]) -> None:
        i, T = d["bidder"], self.ann.rounds
        last = self.last_outcomes(f"bidder {i} revealed its audit seed")
        if self.st.reveals_closed is not None:
            self.bad(f"bidder {i}'s seed reveal came after the reveal phase closed")
        if i in self.st.reveals:
            self.bad(f"bidder {i} revealed twice (the first counts)")
        problem = seed_reveal_problem(self.ann, self.st.log_id, self.st.registrations.get(i), max(o.seq for o in last), d)
        if problem:  # (the server admits only what this counts: the same rule, reveal.py)
            self.bad(f"bidder {i}'s {problem}")
        self.st.reveals[i] = e

    def reveals_closed(self, e: Entry, d: dict[str, Any]) -> None:
        if self.st.reveals_closed is not None:
            self.bad("a second close of the reveal phase")
        self.last_outcomes("the reveal phase closed")
        self.st.reveals_closed = e

    def _after_reveals(self, what: str, r: int) -> None:
        if self.st.reveals_closed is None:
            self.bad(f"{what} for round {r} before the reveal phase closed")

    def proof(self, e: Entry, d: dict[str, Any]) -> None:
        # a proof reveals nothing: the auctioneer may prove any round once its outcome is logged (`zkauction prove`,
        # in any mode); it holds a proof bundle's fields only (AUCTIONEER_FIELDS)
        if e.round not in self.st.outcomes:
            self.bad(f"a proof for round {e.round} before its outcome")
        self.st.proofs.setdefault(e.round, e)

    def openings_entry(self, e: Entry, d: dict[str, Any]) -> None:
        # published openings reveal bids: only in reveal mode (zk and ttp promise that no bid is ever
        # published), only for the audited rounds, so only once they are drawn (audit.public_checks
        # names openings of a round not drawn; the sixteenth review: a host could publish every
        # round's bids on the signed log)
        self._after_reveals("openings", e.round)
        if self.ann.mode != "reveal":
            self.bad(f"round {e.round}'s openings published in {self.ann.mode} mode, where no bid is ever published")
        problem = openings_problem(self.ann.n, self.ann.m, d.get("bids"), d.get("salts"))
        if problem:  # (every verifier's reveal-mode audit reads them: a malformed answer must not crash it)
            self.bad(f"round {e.round}'s published openings are malformed: {problem}")
        self.st.openings.setdefault(e.round, e)

    def ttp_verdict(self, e: Entry, d: dict[str, Any]) -> None:
        if e.round not in self.st.outcomes:
            self.bad(f"a third-party verdict for round {e.round} before its outcome")
        self.st.ttp_verdicts.setdefault(e.round, e)


def first_entry(ledger: Ledger, kind: str, round: int, signer: str) -> Entry | None:
    """The first ``kind`` entry of ``round`` signed by ``signer`` (an index lookup, O(1) per round)."""
    return next((e for e in ledger.entries(kind=kind, round=round)  # (a remote host may answer with another round's)
                 if e.signer == signer and e.kind == kind and e.round == round), None)


def rejected_no_opening(ledger: Ledger, round: int, bidder: int, auctioneer: str) -> bool:
    """Whether ``auctioneer`` logged a ``no_opening`` rejection of ``bidder`` in ``round``."""
    return any(e.fields.get("bidder") == bidder and e.fields.get("reason") == "no_opening" and e.signer == auctioneer
               for e in ledger.entries(kind=OPENING_REJECTED, round=round))


def read_announcement(ledger: Ledger, signatures: bool = True) -> tuple[Announcement, Entry]:
    first = ledger.storage.get(0)
    if first is None:
        raise ProtocolError("the log is empty: no auction has been announced")
    if first.kind != ANNOUNCEMENT:
        raise ProtocolError(f"ledger entry 0 is a {first.kind!r}, expected the auction announcement")
    try:  # the announcement is what every party registers for: its content must hash to its id
        check_entry(first, 0, GENESIS_HASH, log_id="", signatures=signatures)  # (False: pinned, checkpoint.pinned_log)
    except ChainError as e:
        raise ProtocolError(f"the announcement does not verify: {e}") from None
    ann = Announcement.from_dict(first.data)
    if first.signer != ann.auctioneer:
        raise ProtocolError("ledger entry 0: the announcement is not signed by the auctioneer it names")
    return ann, first


def read_state(ledger: Ledger, *, stop: int | None = None, signatures: bool = True) -> LedgerState:
    """Replay the log (its first ``stop`` entries) into a :class:`LedgerState`.

    Raises :class:`ProtocolError` only for a log without a valid announcement; everything else that
    breaks the rules is recorded in ``breaches`` (the auctioneer's) or ``notes`` (others')."""
    ann, first = read_announcement(ledger, signatures)
    reader = _Reader(ann, first)
    for e in ledger.entries(start=1, stop=stop):
        reader.read(e)
    return reader.st


def round_state(ledger: Ledger, round: int, stop: int | None = None) -> LedgerState:
    """The state of one round only (its entries, the registrations and the previous round's
    outcome), read with index lookups: what checking one round costs, at any length of the log.
    ``stop``: only entries before it (those a checkpoint of the auctioneer's pins: the twenty-sixth review)."""
    ann, first = read_announcement(ledger)
    reader, pinned = _Reader(ann, first), lambda es: [e for e in es if stop is None or e.seq < stop]
    for e in pinned(ledger.entries(kind=REGISTRATION)):
        check_entry(e, log_id=first.hash)
        reader.read(e)
    for q in previous_block(ann, round):  # taken as given: only their existence orders this round
        prev = [e for e in pinned(ledger.entries(kind=OUTCOME, round=q)) if e.signer == ann.auctioneer][:1]
        reader.st.outcomes.update({q: e for e in prev})
    closed = [e for e in pinned(ledger.entries(kind=REVEALS_CLOSED)) if e.signer == ann.auctioneer][:1]
    for e in sorted(pinned(ledger.entries(round=round)) + closed, key=lambda e: e.seq):
        check_entry(e, log_id=first.hash)  # content, hash and signature of every entry this round's checks rely on
        if e.kind == REVEALS_CLOSED:  # taken as given too: it orders disputes and proofs
            reader.st.reveals_closed = e
        else:
            reader.read(e)
    return reader.st
