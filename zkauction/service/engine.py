"""The auctioneer's side of a networked run, without HTTP: admits the bidders' signed statements,
runs the rounds on deadlines, answers the audit. :mod:`zkauction.service.server` puts it behind HTTP.

Everything that touches the log runs on one asyncio event loop (one writer, no locks); proving runs
in a worker thread and only its result is logged on the loop. A round::

    commit   bidders' signed commitments (or a signed "pass": absent this round) until every bidder
             answered or ``commit_s`` passed -> the close and its checkpoint, one transaction
    open     signed openings (private) until every listed bidder opened or ``open_s`` passed
    closing  ``no_opening`` rejections are logged; the round waits for those bidders' published
             openings (dispute) or abstentions until ``dispute_s`` passed, then leaves the silent
             ones out: the round is void, nothing sold (a void round gives the auctioneer nothing, so
             its own clock is enough; under an old ``drop`` announcement it waits for ever)
    done     the outcome and its checkpoint, one transaction

After round T: ``reveal`` (seed reveals until all n or ``reveal_s``), ``audit`` (the drawn rounds
are proven, or their openings published), ``finished``.

Durability: statements arriving together are appended in one transaction (group commit) and each
request is answered only after its transaction committed (fsynced unless ``durable=False``: then
still safe against a killed process, not a power cut). Openings and passes live in memory until the
outcome: after a restart the bidders send them again (the client does).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from zkauction.protocol.announcement import DEFAULT_DEADLINES  # (answer_s: per audited round)
from zkauction.protocol.auctioneer import Auctioneer, OpeningStore
from zkauction.protocol.bidder import SignedOpening
from zkauction.protocol.log import Entry, Ledger, LedgerError, SignedCheckpoint, SigningKey, Statement, canonical_json, verify_signature
from zkauction.protocol.state import (
    ABSTENTION,
    BID_COMMITMENT,
    COMMITMENTS_CLOSED,
    DISPUTE,
    OPENING_REJECTED,
    OUTCOME,
    PROOF,
    OPENINGS,
    REGISTRATION,
    REVEALS_CLOSED,
    SEED_REVEAL,
    ProtocolError,
    first_entry,
    read_announcement,
    rejected_no_opening,
    unique_key,
)
from zkauction.zk import commitments
from zkauction.zk.commitments import CommitmentError, Opening

PHASES = ("commit", "open", "closing", "done")
FINAL_PHASES = ("reveal", "audit", "finished")
BIDDER_KINDS = (REGISTRATION, BID_COMMITMENT, DISPUTE, ABSTENTION, SEED_REVEAL)
PASS_DOMAIN = "zkauction-pass-v1"


def pass_message(log_id: str, round: int, bidder: int) -> bytes:
    """What a bidder signs to say it does not bid in ``round`` (a liveness hint, never logged)."""
    return (PASS_DOMAIN + "\n" + canonical_json({"log": log_id, "round": round, "bidder": bidder})).encode()


class Rejected(ProtocolError):
    """A request the auctioneer refuses: ``status`` is the HTTP status (400 bad, 409 wrong time or conflict)."""

    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.status = status


@dataclass(order=True, frozen=True)
class Status:
    round: int  # T + 1 once the rounds are over
    phase: int  # index in PHASES, or in FINAL_PHASES when round == T + 1

    def name(self, T: int) -> str:
        return (FINAL_PHASES if self.round > T else PHASES)[self.phase]


@dataclass
class EngineStats:
    started: float = field(default_factory=time.time)
    round_started: dict[int, float] = field(default_factory=dict)
    round_seconds: dict[int, float] = field(default_factory=dict)


class Engine:
    """Runs one announced auction over ``ledger`` (already announced; see :func:`announce`)."""

    def __init__(self, ledger: Ledger, key: SigningKey, outcome: Callable, *, store: OpeningStore,
                 circuit: Any = None, prove: Callable[[int], Any] | None = None):
        self.ledger, self.key, self.circuit = ledger, key, circuit
        self.ann, first = read_announcement(ledger)
        if self.ann.auctioneer != key.public_hex:
            raise ProtocolError("this key is not the auctioneer the log's announcement names")
        self.log_id = first.hash
        self.auctioneer = Auctioneer(key, ledger, outcome, store=store)
        self.deadlines = {**DEFAULT_DEADLINES, **{k: float(v) for k, v in self.ann.deadlines.items()
                                                  if k in DEFAULT_DEADLINES}}
        self.bidder_of = {k: i for i, k in enumerate(self.ann.bidders)}
        self.status = Status(0, 0)
        self.passes: dict[int, set[int]] = {}
        self.committed: dict[int, set[int]] = {}
        self.stats = EngineStats()
        self._batch: list[tuple[Statement, asyncio.Future]] = []
        self._pending_keys: set[str] = set()
        self._poke: asyncio.Event | None = None
        self._changed: asyncio.Condition | None = None
        self._prove = prove
        self.error: str | None = None

    def close(self) -> None:
        """Close the log and the auctioneer's opening store (the engine's files)."""
        self.ledger.close()
        self.auctioneer.store.close()

    # ---------------------------------------------------------------- waiting

    def _events(self) -> tuple[asyncio.Event, asyncio.Condition]:
        if self._poke is None:
            self._poke, self._changed = asyncio.Event(), asyncio.Condition()
        return self._poke, self._changed

    async def _set_status(self, round: int, phase: int) -> None:
        _, changed = self._events()
        self.status = Status(round, phase)
        if round <= self.ann.rounds and phase == 0:
            self.stats.round_started[round] = time.perf_counter()
        async with changed:
            changed.notify_all()

    async def wait_status(self, round: int, phase: int, timeout: float) -> Status:
        """Return once the run reached (round, phase) or later, or after ``timeout`` seconds."""
        _, changed = self._events()
        want = Status(round, phase)
        if self.status >= want:
            return self.status
        try:
            async with changed:
                await asyncio.wait_for(changed.wait_for(lambda: self.status >= want), timeout)
        except asyncio.TimeoutError:
            pass
        return self.status

    async def _until(self, done: Callable[[], bool], timeout: float | None) -> bool:
        poke, _ = self._events()
        end = None if timeout is None else time.monotonic() + timeout
        while not done():
            poke.clear()
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                return False
            try:
                await asyncio.wait_for(poke.wait(), left)
            except asyncio.TimeoutError:
                return done()
        return True

    def poke(self) -> None:
        self._events()[0].set()

    # ---------------------------------------------------------------- admission

    async def submit(self, st: Statement) -> Entry:
        """Admit one bidder statement (idempotent: the same statement again returns its entry)."""
        i = self.bidder_of.get(st.signer)
        if i is None:
            raise Rejected(f"signer {st.signer[:16]}... is not a bidder of this auction", 400)
        if st.kind not in BIDDER_KINDS:
            raise Rejected(f"kind {st.kind!r}: a bidder may submit only {', '.join(BIDDER_KINDS)}", 400)
        try:
            st.check(self.log_id)
            d = json.loads(st.payload)
        except LedgerError as e:
            raise Rejected(f"statement refused: {e}", 400) from None
        # an integer, exactly: 1.0 and true equal 1 in Python, and a reader that counts such an entry
        # while the auctioneer's own code skips it would make the honest auctioneer's close a breach
        if not isinstance(d, dict) or type(d.get("bidder")) is not int or d["bidder"] != i:
            raise Rejected(f"payload.bidder must be {i} (an integer), the index of the signing key", 400)
        per_round = st.kind in (BID_COMMITMENT, DISPUTE, ABSTENTION)
        if per_round != (st.round is not None):
            raise Rejected(f"{st.kind} {'needs' if per_round else 'takes no'} round", 400)
        ukey = unique_key(st.kind, st.round if per_round else None, i)
        same = first_entry(self.ledger, st.kind, st.round, st.signer)
        if same is not None:
            if same.payload == st.payload:
                return same
            raise Rejected(f"{ukey} is already logged with another payload")
        if ukey in self._pending_keys:
            raise Rejected(f"{ukey} is being logged by another request")
        self._admissible(st, d, i)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        self._batch.append((Statement(st.kind, st.round, st.payload, st.signer, st.signature, ukey), fut))
        self._pending_keys.add(ukey)
        if len(self._batch) == 1:
            loop.call_soon(self._flush)
        entry = await fut
        if st.kind == BID_COMMITMENT:
            self.committed.setdefault(st.round, set()).add(i)
        self.poke()
        return entry

    def _admissible(self, st: Statement, d: dict[str, Any], i: int) -> None:
        T, s = self.ann.rounds, self.status
        if st.kind == REGISTRATION:
            if s.round > 1 or (s.round == 1 and s.phase > 0) or d.get("announcement") != self.log_id:
                raise Rejected("registration closed, or for another announcement")
            # admitted only if the reader will count it: a registration it does not count would leave the
            # run "unregistered", and every entry the auctioneer then logs a breach
            if not isinstance(d.get("seed_commitment"), str) or not re.fullmatch(r"[0-9a-f]{64}", d["seed_commitment"]):
                raise Rejected("payload.seed_commitment must be 64 lower-case hex digits", 400)
        elif st.kind == BID_COMMITMENT:
            try:
                canonical = commitments.check_felt(d.get("commitment"), "commitment")
            except CommitmentError as e:
                raise Rejected(f"payload.commitment: {e}", 400) from None
            if canonical != d["commitment"]:  # the reader counts only the canonical spelling (and so does the close)
                raise Rejected("payload.commitment must be lower-case hex (its canonical form)", 400)
            if s != Status(st.round, 0):
                raise Rejected(f"round {st.round} is not in its commit phase (now: round {s.round}, {s.name(T)})")
            # a copy of another bidder's commitment would open with that bidder's opening: never logged
            mine = d["commitment"].lower()
            others = [e.data for e in self.ledger.entries(kind=BID_COMMITMENT, round=st.round)]
            others += [json.loads(q.payload) for q, _ in self._batch if q.kind == BID_COMMITMENT and q.round == st.round]
            if any(str(o.get("commitment", "")).lower() == mine and o.get("bidder") != i for o in others):
                raise Rejected(f"round {st.round}: this commitment is already another bidder's (a copy is never logged)")
        elif st.kind in (DISPUTE, ABSTENTION):
            if s.round != st.round or s.phase == 0 or first_entry(self.ledger, OUTCOME, st.round, self.ann.auctioneer):
                raise Rejected(f"{st.kind} of round {st.round} only between its close and its outcome")
            # the reader counts a dispute only after the no_opening rejection it answers (an earlier one
            # would be logged, not counted, and an outcome honouring it a breach)
            if st.kind == ABSTENTION and not any(e.signer == self.ann.bidders[i] and e.fields.get("bidder") == i
                                                 for e in self.ledger.entries(kind=BID_COMMITMENT, round=st.round)):
                # the reader counts an abstention only from a bidder that committed in the round
                raise Rejected(f"an abstention of round {st.round} withdraws a commitment, and bidder {i} has none")
            if st.kind == DISPUTE and not rejected_no_opening(self.ledger, st.round, i, self.ann.auctioneer):
                raise Rejected(f"a dispute of round {st.round} answers a no_opening rejection, and bidder {i} has none")
            if st.kind == DISPUTE:  # one that is not a valid opening cures nothing: never logged
                from zkauction.protocol.audit import valid_opening
                from zkauction.protocol.state import round_state

                rs = round_state(self.ledger, st.round)
                problem = valid_opening(rs, i, rs.commitments.get(st.round, {}).get(i, ""), d.get("bids"), d.get("salt"))
                if problem:
                    raise Rejected(f"payload: {problem}", 400)
        elif st.kind == SEED_REVEAL:
            if s != Status(T + 1, 0):
                raise Rejected("seed reveals only in the reveal phase (after round T's outcome)")
            # the checkpoint a reveal carries is co-signed: one that is not of this log would be logged as
            # the honest auctioneer's fork (a bidder holding one of an earlier, byte-identical auction)
            from zkauction.protocol.audit import cosigned_problem

            try:
                cp = SignedCheckpoint.from_dict(d.get("checkpoint"))
                ours = cosigned_problem(self.ledger, cp) is None
            except (TypeError, ValueError, KeyError, LedgerError):
                ours = False
            if not ours:
                raise Rejected("payload.checkpoint: not a checkpoint of this log (size and root)", 400)
            # and only a reveal the reader counts: the reader's own rule (reveal.py), not a restatement of it
            from zkauction.protocol.reveal import seed_reveal_problem

            reg = next((e for e in self.ledger.entries(kind=REGISTRATION) if e.signer == self.ann.bidders[i]), None)
            last = max((e.seq for e in self.ledger.entries(kind=OUTCOME)), default=-1)
            problem = seed_reveal_problem(self.ann, self.log_id, None if reg is None else reg.fields.get("seed_commitment"),
                                          last, {**d, "bidder": i})
            if problem:
                raise Rejected(f"payload: bidder {i}'s {problem}", 400)

    def _flush(self) -> None:
        batch, self._batch = self._batch, []
        if not batch:  # (flushed early, before a close: the scheduled call finds nothing)
            return
        try:
            entries = self.ledger.append_signed([st for st, _ in batch])
        except Exception as e:  # nothing written (one transaction): every request is told
            for _, fut in batch:
                fut.set_exception(Rejected(f"not logged: {e}", 500 if not isinstance(e, LedgerError) else 409))
        else:
            for (_, fut), e in zip(batch, entries):
                fut.set_result(e)
        finally:
            self._pending_keys.difference_update(st.unique for st, _ in batch)

    def receive_pass(self, round: int, bidder: int, signature: str) -> None:
        if not 0 <= bidder < self.ann.n or not verify_signature(self.ann.bidders[bidder], pass_message(self.log_id, round, bidder), signature):
            raise Rejected(f"the pass of bidder {bidder} for round {round} is not signed by that bidder", 400)
        if self.status != Status(round, 0):
            raise Rejected(f"round {round} is not in its commit phase")
        self.passes.setdefault(round, set()).add(bidder)
        self.poke()

    def receive_opening(self, round: int, bidder: int, bids: list[float], salt: str, signature: str) -> None:
        if self.status.round != round or self.status.phase != 1:
            raise Rejected(f"round {round} is not in its opening phase (now: round {self.status.round}, "
                           f"{self.status.name(self.ann.rounds)})")
        signed = SignedOpening(Opening(tuple(float(b) for b in bids), salt), signature)
        try:
            self.auctioneer.receive_opening(round, bidder, signed)
        except CommitmentError as e:
            raise Rejected(str(e), 400) from None
        finally:
            self.poke()

    # ---------------------------------------------------------------- the rounds

    def _answered(self, r: int) -> bool:
        return len(self.committed.get(r, set()) | self.passes.get(r, set())) >= self.ann.n

    def _opened(self, r: int) -> bool:
        close = first_entry(self.ledger, COMMITMENTS_CLOSED, r, self.ann.auctioneer)
        got = set(self.auctioneer._pending.get(r, {}))
        rejected = {e.data.get("bidder") for e in self.ledger.entries(kind=OPENING_REJECTED, round=r)}
        return all(c is None or i in got or i in rejected for i, c in enumerate(close.data["commitments"]))

    async def run(self) -> None:
        """Drive the run from wherever the log stands (a restart resumes) to the end of the audit."""
        try:
            await self._run()
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # recorded for /api/status and the operator's log, then re-raised
            self.error = f"{type(e).__name__}: {e}"  # (also a panic from a native library: clients stop waiting)
            raise

    async def _run(self) -> None:
        ann, a = self.ann, self.auctioneer
        await self._until(a.all_registered, None)  # as the reader counts them, not entries
        cp = self.ledger.latest_checkpoint()
        if cp is None or cp.size < len(self.ledger):
            a.checkpoint()
        for r in range(1, ann.rounds + 1):
            if first_entry(self.ledger, OUTCOME, r, ann.auctioneer) is not None:
                continue
            self.committed[r] = {e.data["bidder"] for e in self.ledger.entries(kind=BID_COMMITMENT, round=r)
                                 if e.signer in self.bidder_of}
            if first_entry(self.ledger, COMMITMENTS_CLOSED, r, ann.auctioneer) is None:
                await self._set_status(r, 0)
                await self._until(lambda: self._answered(r), self.deadlines["commit_s"])
                a.close_commitments(r)
            await self._set_status(r, 1)
            await self._until(lambda: self._opened(r), self.deadlines["open_s"])
            a.reject_missing(r)
            await self._set_status(r, 2)
            end = time.monotonic() + self.deadlines["dispute_s"]
            while True:
                if self._batch:  # a dispute admitted before the deadline is logged before the outcome
                    self._flush()
                try:
                    a.close_round(r, give_up=time.monotonic() >= end)
                    break
                except ProtocolError:  # waiting for a dispute or an abstention
                    left = end - time.monotonic()  # (past it under drop: every second, as before)
                    await self._until(lambda: False, min(1.0, left) if left > 0 else 1.0)
            self.stats.round_seconds[r] = time.perf_counter() - self.stats.round_started.get(r, time.perf_counter())
            self.passes.pop(r, None)
            self.committed.pop(r, None)
            await self._set_status(r, 3)
        T = ann.rounds
        if first_entry(self.ledger, REVEALS_CLOSED, None, ann.auctioneer) is None:
            await self._set_status(T + 1, 0)
            await self._until(lambda: len(self.ledger.entries(kind=SEED_REVEAL)) >= ann.n, self.deadlines["reveal_s"])
            a.close_reveals()
        await self._set_status(T + 1, 1)
        await self._answer_audit()
        await self._set_status(T + 1, 2)

    async def _answer_audit(self) -> None:
        from zkauction.protocol.audit import audit_draw
        from zkauction.protocol.state import read_state

        ann, a = self.ann, self.auctioneer
        draw = audit_draw(read_state(self.ledger))
        for r in draw.rounds:
            if ann.mode == "zk":
                if first_entry(self.ledger, PROOF, r, ann.auctioneer) is not None:
                    continue
                if self._prove is None:
                    raise ProtocolError("zk mode: the server needs the circuit to prove the audited rounds")
                bids, salts = a.round_inputs(r)
                bundle = await asyncio.get_running_loop().run_in_executor(None, self._prove, r, bids, salts)
                a.log_proof(r, bundle, self.circuit)  # verified before it is logged
            elif ann.mode == "reveal" and first_entry(self.ledger, OPENINGS, r, ann.auctioneer) is None:
                a.publish_openings(r)


def announce(ledger: Ledger, key: SigningKey, circuit: Any, *, bidders: list[str], rounds: int, audits: int,
             penalty: float | None, mode: str, deadlines: dict[str, float] | None = None) -> Entry:
    """Announce an auction of ``circuit`` to the bidders whose public keys are ``bidders``."""
    from zkauction.protocol.announcement import default_penalty
    from zkauction.protocol.demo import auction_info

    setting = circuit.auction_setting()
    if len(bidders) != setting.n:
        raise ProtocolError(f"the circuit is for {setting.n} bidders; {len(bidders)} bidder keys were given")
    info = auction_info(circuit)
    if penalty is None:
        penalty = default_penalty(rounds, setting.support, info.get("output_scale"))
    return Auctioneer(key, ledger, lambda b, s: None).announce(
        n=setting.n, m=setting.m, support=setting.support, input_scale=circuit.input_scale, auction=info,
        rounds=rounds, audits=audits, penalty=penalty, mode=mode, bidders=bidders,
        deadlines={**DEFAULT_DEADLINES, **(deadlines or {})})


def engine_for(db: str | Path, state_dir: str | Path, circuit: Any, *, durable: bool = True) -> Engine:
    """Open the announced run in ``db`` with the auctioneer's key and openings store in ``state_dir``."""
    from zkauction.protocol.auctioneer import circuit_outcome_function
    from zkauction.zk.prove import prove_round

    state_dir = Path(state_dir)
    ledger = Ledger.open(db, durable=durable)
    try:
        key = SigningKey.load(state_dir / "auctioneer.pem")
        store = OpeningStore(state_dir / "openings.db", durable=durable)
        prove = None if circuit is None else (lambda r, bids, salts: prove_round(circuit, bids, salts, round_id=r))
        return Engine(ledger, key, circuit_outcome_function(circuit), store=store, circuit=circuit, prove=prove)
    except BaseException:
        ledger.close()
        raise
