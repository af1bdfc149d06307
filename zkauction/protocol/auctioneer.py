"""The auctioneer (the paper's Algorithm 1, lines 1, 5-8 and its side of the audit) and the
trusted third party of ttp mode.

The :class:`Auctioneer` hosts the log and signs its checkpoints; it keeps received openings in its
own private store (:class:`OpeningStore`, 0600), never in the log in zk mode. It refuses openings
before the round's commitments are closed and checkpointed, rejects bad openings with the bidder's
signed opening as evidence, never excludes a bidder on its own word (``no_opening`` waits for the
bidder's published opening or abstention), and logs each outcome with a check-and-append.
"""


from __future__ import annotations

import json
import secrets
import sqlite3
from pathlib import Path
from typing import Any, Sequence

from zkauction.protocol.checkpoint import SignedCheckpoint
from zkauction.protocol.log import Entry, Ledger, LogChangedError, SigningKey, verify_signature
from zkauction.protocol.private import private_folder
from zkauction.protocol.state import (
    first_entry,
    ABSTENTION,
    ANNOUNCEMENT,
    BID_COMMITMENT,
    COMMITMENTS_CLOSED,
    DISPUTE,
    MODES,
    OPENING_REJECTED,
    OPENINGS,
    OUTCOME,
    PROOF,
    REVEALS_CLOSED,
    ZERO_SALT,
    Announcement,
    OutcomeFunction,
    ProtocolError,
    absent_commitment,
    block_of,
    previous_block,
    read_announcement,
    opening_message,
    unique_key,
)
from zkauction.zk import commitments
from zkauction.zk.circuit import Outcome
from zkauction.zk.commitments import CommitmentError, Opening



from zkauction.protocol.bidder import SignedOpening

def circuit_outcome_function(circuit: Any) -> OutcomeFunction:
    """The circuit's canonical (fixed-point) outcome: what a proof of the round will show, from the
    exact fixed-point evaluator (bit for bit ezkl's witness; ezkl's witness itself for a circuit or a
    round the evaluator cannot vouch for). No bid or salt is written to any file."""
    from zkauction.zk.outcome import fast_outcome_function

    return fast_outcome_function(circuit)


def net_outcome_function(net: Any) -> OutcomeFunction:
    """A plain :class:`~zkauction.learn.nets.AuctionNet` forward pass (float32), for reveal/ttp tests."""
    import torch

    def fn(bids: Sequence[Sequence[float]], salts: Sequence[str]) -> Outcome:
        with torch.no_grad():
            a, p = net(torch.tensor([list(map(float, r)) for r in bids], dtype=torch.float32)[None])
        return Outcome(tuple(tuple(float(x) for x in row) for row in a[0].tolist()), tuple(float(x) for x in p[0].tolist()))

    return fn



class OpeningStore:
    """Openings the auctioneer received, by (round, bidder). In memory, or SQLite at ``path``
    (created 0600 in a 0700 folder: bids and salts are private)."""

    def __init__(self, path: str | Path | None = None, *, durable: bool = True):
        if path is not None:
            path = Path(path)
            private_folder(path.parent)
            if not path.exists():
                path.touch(mode=0o600)
        try:
            self._db = sqlite3.connect(":memory:" if path is None else str(path), isolation_level=None, check_same_thread=False)
            if path is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._db.execute("CREATE TABLE IF NOT EXISTS openings (round INTEGER, bidder INTEGER, opening TEXT, PRIMARY KEY (round, bidder))")
        except sqlite3.DatabaseError as e:
            raise ProtocolError(f"{path}: not the auctioneer's openings store ({e})") from None

    def put_round(self, round: int, openings: dict[int, Opening]) -> None:
        """Store a round's openings in one transaction (one fsync per round, not per bidder)."""
        self.put_rounds({round: openings})

    def put_rounds(self, rounds: dict[int, dict[int, Opening]]) -> None:
        """:meth:`put_round` for several rounds in one transaction (a block: one fsync)."""
        self._db.execute("BEGIN")
        try:
            self._db.executemany("INSERT OR REPLACE INTO openings VALUES (?, ?, ?)",
                                 [(r, i, json.dumps(o.to_dict())) for r, got in rounds.items() for i, o in got.items()])
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def get(self, round: int) -> dict[int, Opening]:
        rows = self._db.execute("SELECT bidder, opening FROM openings WHERE round = ?", (round,)).fetchall()
        return {int(b): Opening.from_dict(json.loads(o)) for b, o in rows}

    def close(self) -> None:
        self._db.close()



def counted_commitments(ann: Announcement, entries: Sequence[Entry]) -> dict[int, str]:
    """{bidder: commitment} of one round's ``bid_commitment`` entries (in log order), counted as the
    reader counts them: the first one signed by the bidder it names, a well-formed field element in
    its canonical (lower-case) form (a close listing anything else is the auctioneer's breach)."""
    out: dict[int, str] = {}
    for e in entries:
        d = e.data
        i = d.get("bidder") if isinstance(d, dict) else None
        if type(i) is int and 0 <= i < ann.n and e.signer == ann.bidders[i] and i not in out:
            try:
                c = commitments.check_felt(d.get("commitment"), "commitment")
            except CommitmentError:
                continue
            if c == d.get("commitment"):
                out[i] = c
    return out


def signed_by_bidder(ann: Announcement, log_id: str, round: int, bidder: int, signed: Any) -> bool:
    """Whether ``signed`` is an opening signed by ``bidder`` for ``round`` of the log ``log_id``
    (plain or batch signature); anything malformed is not."""
    opening = getattr(signed, "opening", None)
    try:
        msg = opening_message(log_id, round, bidder, list(opening.bids), opening.salt)
        return verify_signature(ann.bidders[bidder], msg, signed.signature)
    except (AttributeError, TypeError, ValueError):
        return False


def outcome_inputs(ann: Announcement, listed: Sequence[str | None],
                   accepted: dict[int, Opening]) -> tuple[list[list[float]], list[str], list[str], list[int]]:
    """(bids, salts) the outcome is computed on and (commitments, participants) the outcome entry
    names: a bidder takes part iff its opening is in ``accepted`` (its commitment the one the close
    lists); any other is absent: all-zero bids, salt 0, the public all-zero commitment."""
    bids, salts = [[0.0] * ann.m for _ in range(ann.n)], [ZERO_SALT] * ann.n
    coms, present = [absent_commitment(ann.m, ann.input_scale)] * ann.n, [0] * ann.n
    for i, o in accepted.items():
        bids[i], salts[i], coms[i], present[i] = list(o.bids), o.salt, listed[i], 1
    return bids, salts, coms, present


class Auctioneer:
    """Hosts the log, runs the rounds and answers the audit. ``outcome`` computes what it publishes
    (honest: the announced auction's canonical outcome; a test can inject a dishonest one)."""

    def __init__(self, key: SigningKey, ledger: Ledger, outcome: OutcomeFunction, *, store: OpeningStore | None = None):
        self.key = key
        self.ledger = ledger
        self.outcome = outcome
        self.store = store or OpeningStore()
        self._pending: dict[int, dict[int, Opening]] = {}
        self._ann: Announcement | None = None

    def announce(self, *, n: int, m: int, support: Sequence[Sequence[Sequence[float]]], input_scale: int,
                 auction: dict[str, Any], rounds: int, audits: int, penalty: float, mode: str, bidders: Sequence[str],
                 third_party: str | None = None, deadlines: dict[str, Any] | None = None, block: int = 1,
                 exclusion: str = "void", nonce: str | None = None) -> Entry:
        """Announce the auction as entry 0 of an empty log. ``nonce``: by default a fresh one, so that
        the same auction announced again is another log (a deliberate copy, the same nonce, is the same
        log id, and two histories under it the auctioneer's equivocation)."""
        if len(self.ledger):
            raise ProtocolError("the log already holds an auction: announce on an empty log")
        if mode not in MODES:
            raise ProtocolError(f"mode must be one of {MODES}, got {mode!r}")
        if not isinstance(penalty, (int, float)) or not penalty >= 0:
            raise ProtocolError(f"the penalty must be a non-negative number, got {penalty!r}")
        ann = Announcement(
            rounds=rounds, audits=audits, penalty=float(penalty), mode=mode, n=n, m=m, input_scale=input_scale,
            support=[[list(map(float, p)) for p in row] for row in support], auction=dict(auction),
            auctioneer=self.key.public_hex, bidders=list(bidders), third_party=third_party, deadlines=dict(deadlines or {}),
            block=block, exclusion=exclusion, nonce=secrets.token_hex(16) if nonce is None else nonce,
        )
        Announcement.from_dict(ann.to_dict())
        e = self.ledger.append(ANNOUNCEMENT, ann.to_dict(), self.key, unique=ANNOUNCEMENT, checkpoint_key=self.key)
        return e

    def announcement(self) -> Announcement:
        if self._ann is None:
            self._ann, _ = read_announcement(self.ledger)
        return self._ann

    def checkpoint(self) -> SignedCheckpoint:
        return self.ledger.checkpoint(self.key)

    def _commitments_of(self, round: int) -> dict[int, str]:
        return counted_commitments(self.announcement(), self.ledger.entries(kind=BID_COMMITMENT, round=round))

    def all_registered(self) -> bool:
        """Whether every bidder's registration is logged, as every verifier's reader counts them (a
        malformed or doubled registration entry is not one)."""
        from zkauction.protocol.state import round_state

        return round_state(self.ledger, 1).registered

    def check_may_start(self, round: int) -> None:
        """Raise :class:`ProtocolError` unless ``round``'s commitments may be closed: round 1 once
        every bidder has registered, any other once every round of the previous block (round - 1,
        one round at a time) has its outcome."""
        ann = self.announcement()
        if round == 1 and not self.all_registered():
            raise ProtocolError("round 1 cannot start before every bidder has registered")
        for q in previous_block(ann, round):
            if first_entry(self.ledger, OUTCOME, q, ann.auctioneer) is None:
                raise ProtocolError(f"round {round} cannot start before round {q}'s outcome")

    def close_commitments(self, round: int) -> Entry:
        """Close round ``round``'s commit phase: log the list of its commitments and checkpoint it.
        Openings are accepted only after this."""
        ann = self.announcement()
        if not isinstance(round, int) or not 1 <= round <= ann.rounds:
            raise ProtocolError(f"round must be in 1..{ann.rounds}, got {round!r}")
        done = first_entry(self.ledger, COMMITMENTS_CLOSED, round, ann.auctioneer)
        if done is None:
            self.check_may_start(round)
            logged = self._commitments_of(round)
            (done,) = self.ledger.append_many([(COMMITMENTS_CLOSED, {"commitments": [logged.get(i) for i in range(ann.n)]},
                                                self.key, round, unique_key(COMMITMENTS_CLOSED, round))],
                                              checkpoint_key=self.key)  # the close and its checkpoint: one transaction
        cp = self.ledger.latest_checkpoint()
        if cp is None or cp.size <= done.seq:
            self.checkpoint()
        return done

    def receive_opening(self, round: int, bidder: int, signed: SignedOpening) -> None:
        """The private channel: a bidder's signed opening for ``round``, accepted only after the
        round's commitments are closed and checkpointed. An unsigned opening is ignored (it could not
        be shown as evidence). A bad one raises :class:`~zkauction.zk.commitments.CommitmentError`
        naming the round and bidder, and is logged as ``opening_rejected`` with a reason from the
        closed set and the signed opening as evidence; the bidder is absent from the round."""
        ann = self.announcement()
        close = first_entry(self.ledger, COMMITMENTS_CLOSED, round, ann.auctioneer)
        cp = self.ledger.latest_checkpoint()
        if close is None or cp is None or cp.size <= close.seq:
            raise ProtocolError(f"round {round}: openings are refused until the round's commitments are closed and checkpointed")
        com = close.data["commitments"][bidder] if 0 <= bidder < ann.n else None
        rejected = any(e.data.get("bidder") == bidder for e in self.ledger.entries(kind=OPENING_REJECTED, round=round))
        if com is None or rejected:
            raise CommitmentError(f"round {round}: bidder {bidder} has no open commitment in this round")
        opening = getattr(signed, "opening", None)
        if not signed_by_bidder(ann, self.ledger.log_id, round, bidder, signed):
            raise CommitmentError(f"round {round}: bidder {bidder}'s opening is not signed by bidder {bidder}: ignored")
        reason, detail = self._opening_problem(ann, com, opening)
        if reason is None:
            detail = self._support_problem(ann, bidder, opening.bids)
            reason = "outside_support" if detail else None
        if reason is not None:
            evidence = {"bids": list(opening.bids), "salt": opening.salt, "signature": signed.signature}
            self.ledger.append(OPENING_REJECTED, {"bidder": bidder, "reason": reason, "evidence": evidence}, self.key,
                               round=round, unique=unique_key(OPENING_REJECTED, round, bidder))
            raise CommitmentError(f"round {round}: bidder {bidder}'s opening is rejected ({reason}): {detail}")
        self._pending.setdefault(round, {})[bidder] = opening

    @staticmethod
    def _opening_problem(ann: Announcement, commitment: str, opening: Any) -> tuple[str | None, str | None]:
        """(reason code, detail) if ``opening`` is malformed or does not open ``commitment``."""
        try:
            if not isinstance(opening, Opening) or len(opening.bids) != ann.m:
                raise CommitmentError(f"expected {ann.m} bids and a salt")
            commitments.check_salt(opening.salt)
            commitments.snap_bids(opening.bids, ann.input_scale)
        except (CommitmentError, TypeError, ValueError) as e:
            return "malformed_opening", str(e)
        try:
            commitments.check_opening(commitment, opening, ann.input_scale)
        except CommitmentError as e:
            return "opening_mismatch", str(e)
        return None, None

    @staticmethod
    def _support_problem(ann: Announcement, bidder: int, bids: Sequence[float]) -> str | None:
        if len(bids) != ann.m:
            return f"expected {ann.m} bids, got {len(bids)}"
        if all(b == 0 for b in bids):
            return "all-zero bids (an absent bidder does not commit)"
        for j, b in enumerate(bids):
            lo, hi = ann.support[bidder][j]
            if not lo <= b <= hi:
                return f"bid for item {j} is {b:g}, outside the support [{lo:g}, {hi:g}]"
        return None

    def reject_missing(self, round: int) -> list[int]:
        """Log ``no_opening`` for every bidder who committed but sent no valid opening, and
        checkpoint: such a bidder may then publish its opening on the log before the outcome."""
        ann = self.announcement()
        close = self.close_commitments(round)
        rejected = {e.data.get("bidder") for e in self.ledger.entries(kind=OPENING_REJECTED, round=round)}
        received = self._pending.get(round, {})
        missing = [i for i in range(ann.n) if close.data["commitments"][i] is not None and i not in rejected and i not in received]
        if missing:
            self.ledger.append_many([(OPENING_REJECTED, {"bidder": i, "reason": "no_opening"}, self.key, round,
                                      unique_key(OPENING_REJECTED, round, i)) for i in missing], checkpoint_key=self.key)
        return missing

    def close_round(self, round: int, *, give_up: bool = False) -> Entry:
        """Compute the outcome on the accepted openings (and on openings that bidders rejected for
        ``no_opening`` published on the log), log it and checkpoint. Reads only this round's
        entries: a round costs the same at round 1 and 10^5.

        A bidder rejected for ``no_opening`` that has neither published its opening nor abstained
        holds the round (ProtocolError) unless ``give_up`` (its dispute deadline passed) and the
        announcement voids rounds (``exclusion: void``): then it is left out and the round is void,
        nothing sold. Voiding on the auctioneer's own clock gives it nothing a shill's abstention
        did not (and a void round sells nothing), so no trusted time is needed."""
        from zkauction.protocol.audit import published_openings
        from zkauction.protocol.state import round_state

        ann = self.announcement()
        self.reject_missing(round)
        if first_entry(self.ledger, OUTCOME, round, ann.auctioneer) is not None:
            raise ProtocolError(f"round {round} already has an outcome")
        close = first_entry(self.ledger, COMMITMENTS_CLOSED, round, ann.auctioneer)
        listed = close.data["commitments"]
        rejected = {e.data.get("bidder"): e.data.get("reason") for e in self.ledger.entries(kind=OPENING_REJECTED, round=round)}
        received = dict(self._pending.get(round, {}))
        size = len(self.ledger)
        if self.ledger.entries(kind=DISPUTE, round=round):
            # exactly the disputes every verifier counts (after the rejection, the first, a valid opening):
            # the public checks then require these bidders in the outcome, and only these
            st = round_state(self.ledger, round)
            for i in published_openings(st, round, before=size):
                if i not in received:
                    d = st.disputes[round][i].data
                    received[i] = Opening(tuple(float(b) for b in d["bids"]), str(d["salt"]))
                    rejected.pop(i, None)
        abstained = {e.data.get("bidder") for e in self.ledger.entries(kind=ABSTENTION, round=round)
                     if 0 <= e.data.get("bidder", -1) < ann.n and e.signer == ann.bidders[e.data["bidder"]]}
        waiting = [i for i, why in rejected.items() if why == "no_opening" and i not in abstained]
        if waiting and not (give_up and ann.exclusion == "void"):  # never excludes on its own word and sells
            raise ProtocolError(f"round {round}: bidder(s) {waiting} committed but neither opened, published the "
                                "opening on the log nor abstained: the round waits for them")
        accepted = {i: received[i] for i in range(ann.n)
                    if listed[i] is not None and i not in rejected and i in received}
        if ann.exclusion == "void" and any(listed[i] is not None and i not in accepted for i in range(ann.n)):
            accepted = {}  # a committed bidder left out voids the round: a withdrawal never pays
        bids, salts, coms, present = outcome_inputs(ann, listed, accepted)
        # Stored before the outcome is logged: an outcome whose openings are lost could not be proven.
        if accepted:
            self.store.put_round(round, accepted)
        out = self.outcome(bids, salts)
        try:  # appended only if nothing (a published opening) came in since it was read
            (entry,) = self.ledger.append_many([(OUTCOME, {"participants": present, "commitments": coms, **out.to_dict()},
                                                 self.key, round, unique_key(OUTCOME, round))], expect_size=size,
                                               checkpoint_key=self.key)
        except LogChangedError:
            return self.close_round(round, give_up=give_up)
        self._pending.pop(round, None)
        return entry

    def close_reveals(self) -> Entry:
        """End the reveal phase (after round T); a seed not revealed by now audits every round."""
        ann = self.announcement()
        for q in block_of(ann, ann.rounds):  # round T, or every round of the last block
            if first_entry(self.ledger, OUTCOME, q, ann.auctioneer) is None:
                raise ProtocolError(f"the reveal phase cannot close before round {q}'s outcome")
        e = first_entry(self.ledger, REVEALS_CLOSED, None, ann.auctioneer)
        if e is None:
            e = self.ledger.append(REVEALS_CLOSED, {}, self.key, unique=REVEALS_CLOSED, checkpoint_key=self.key)
        return e

    def round_inputs(self, round: int) -> tuple[list[list[float]], list[str]]:
        """The bids and salts the outcome of ``round`` was computed on (from the private store)."""
        ann = self.announcement()
        out = first_entry(self.ledger, OUTCOME, round, ann.auctioneer)
        if out is None:
            raise ProtocolError(f"round {round} has no logged outcome")
        got = self.store.get(round)
        bids, salts = [[0.0] * ann.m for _ in range(ann.n)], [ZERO_SALT] * ann.n
        for i, p in enumerate(out.data["participants"]):
            if p:
                if i not in got:
                    raise ProtocolError(f"round {round}: the auctioneer's store lacks bidder {i}'s opening")
                bids[i], salts[i] = list(got[i].bids), got[i].salt
        return bids, salts

    def prove(self, round: int, circuit: Any, *, progress: bool = False) -> Any:
        """zk mode: prove ``round`` and log the bundle (:meth:`log_proof`); return it. A round whose
        proof is logged already returns the logged bundle."""
        from zkauction.zk.prove import prove_round

        logged = first_entry(self.ledger, PROOF, round, self.announcement().auctioneer)
        if logged is not None:
            from zkauction.zk.bundle import ProofBundle

            return ProofBundle.from_dict(logged.data)
        bids, salts = self.round_inputs(round)
        return self.log_proof(round, prove_round(circuit, bids, salts, round_id=round, progress=progress), circuit)

    def log_proof(self, round: int, bundle: Any, circuit: Any) -> Any:
        """zk mode: check ``bundle`` (made here or by a proving pool) with
        :func:`~zkauction.zk.bundle.verify_bundle` against ``circuit`` and the round's logged
        commitments and outcome, then attach the log proof (announcement and outcome entries with
        their inclusion proofs under a signed checkpoint), log it and return it. A bundle that does
        not verify is refused (:class:`ProtocolError` naming the round and the failed check) and
        nothing is logged; a round whose proof is logged already returns the logged bundle."""
        import dataclasses

        from zkauction.protocol.bundle_log import make_log_proof
        from zkauction.zk.bundle import ProofBundle, VerificationError, verify_bundle
        from zkauction.zk.circuit import Outcome

        ann = self.announcement()
        out = first_entry(self.ledger, OUTCOME, round, ann.auctioneer)
        if out is None:
            raise ProtocolError(f"round {round} has no logged outcome")
        if getattr(bundle, "round_id", None) != round:
            raise ProtocolError(f"round {round}: the bundle is for round {getattr(bundle, 'round_id', None)!r}: not logged")
        try:
            verify_bundle(bundle, circuit, expected_commitments=out.data["commitments"],
                          expected_outcome=Outcome.from_dict(out.data),
                          expected_manifest_sha256=ann.auction.get("manifest_sha256"))
        except VerificationError as e:
            raise ProtocolError(f"round {round}: the proof does not verify ({e}): not logged") from None
        logged = first_entry(self.ledger, PROOF, round, ann.auctioneer)
        if logged is not None:
            return ProofBundle.from_dict(logged.data)
        bundle = dataclasses.replace(bundle, log=make_log_proof(self.ledger, round, self.ledger.latest_checkpoint()))
        self.ledger.append(PROOF, bundle.to_dict(), self.key, round=round, unique=unique_key(PROOF, round),
                           checkpoint_key=self.key)
        return bundle

    def publish_openings(self, round: int) -> Entry:
        """reveal mode: log the round's openings (bids and salts) for everyone to check."""
        bids, salts = self.round_inputs(round)
        e = self.ledger.append(OPENINGS, {"bids": bids, "salts": salts}, self.key, round=round,
                               unique=unique_key(OPENINGS, round), checkpoint_key=self.key)
        return e



class TrustedThirdParty:
    """The paper's third verifier (ttp mode): receives an audited round's openings privately,
    recomputes the outcome and logs a signed verdict."""

    def __init__(self, key: SigningKey, ledger: Ledger, outcome: OutcomeFunction):
        self.key = key
        self.ledger = ledger
        self.outcome = outcome

    def audit_round(self, round: int, bids: Sequence[Sequence[float]], salts: Sequence[str]) -> Any:
        from zkauction.protocol.audit import Verdict, check_round, check_round_openings
        from zkauction.protocol.entries import outcome_digest
        from zkauction.protocol.state import TTP_VERDICT, round_state

        st = round_state(self.ledger, round)
        if round not in st.outcomes:  # a verdict logged now would never count, and would block the real one
            raise ProtocolError(f"round {round} has no logged outcome: the third party has nothing to verify yet")
        try:
            problems = check_round(st, round)
            if problems:
                raise ProtocolError(str(problems[0]))
            check_round_openings(st, round, bids, salts, self.outcome)
            v = Verdict(round, "ttp", True, f"round {round}: outcome verified (ttp)")
        except ProtocolError as e:
            v = Verdict(round, "ttp", False, str(e))
        if first_entry(self.ledger, TTP_VERDICT, round, self.key.public_hex) is None:
            # the outcome judged, by the hash of its signed payload: a verdict on an outcome shown in another copy
            # of the log (a fork the host served the third party) is no verdict on the logged one (the twenty-first review)
            payload = {**v.to_dict(), "outcome_sha256": outcome_digest(st.outcomes[round])}
            self.ledger.append(TTP_VERDICT, payload, self.key, round=round, unique=unique_key(TTP_VERDICT, round))
        return v
