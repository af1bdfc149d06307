"""The auctioneer and the bidders (paper, Algorithm 1 lines 1-8): outcome functions, the
auctioneer's private store of openings, Bidder and Auctioneer."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any, Sequence

from zkauction.protocol.log import Entry, Ledger, SigningKey
from zkauction.protocol.state import (
    ANNOUNCEMENT,
    BID_COMMITMENT,
    MODES,
    OPENING_REJECTED,
    OPENINGS,
    OUTCOME,
    PROOF,
    SALT_DOMAIN,
    SEED_COMMITMENT,
    SEED_REVEAL,
    ZERO_SALT,
    Announcement,
    LedgerState,
    OutcomeFunction,
    ProtocolError,
    absent_commitment,
    read_state,
    seed_commitment,
)
from zkauction.zk import commitments
from zkauction.zk.circuit import Outcome
from zkauction.zk.commitments import CommitmentError, Opening

# --------------------------------------------------------------------------------------------------
# Outcome functions


def circuit_outcome_function(circuit: Any) -> OutcomeFunction:
    """The circuit's canonical (fixed-point) outcome: what a proof of the round will show."""
    from zkauction.zk.witness import canonical_outcome

    return lambda bids, salts: canonical_outcome(circuit, bids, salts)


def net_outcome_function(net: Any) -> OutcomeFunction:
    """A plain :class:`~zkauction.learn.nets.AuctionNet` forward pass (float32), for reveal/ttp tests."""
    import torch

    def fn(bids: Sequence[Sequence[float]], salts: Sequence[str]) -> Outcome:
        with torch.no_grad():
            a, p = net(torch.tensor([list(map(float, r)) for r in bids], dtype=torch.float32)[None])
        return Outcome(tuple(tuple(float(x) for x in row) for row in a[0].tolist()), tuple(float(x) for x in p[0].tolist()))

    return fn



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
        :class:`~zkauction.zk.commitments.CommitmentError` naming the round and bidder, is logged as
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
        from zkauction.zk.prove import prove_round

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


