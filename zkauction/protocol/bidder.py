"""A bidder (the paper's Algorithm 1, lines 2-4 and 9), with its own key, its own secret and its
own view of the log.

A :class:`Bidder` keeps, on its own side, its key, a secret (its salts and audit seed derive from
it and the log id) and the last checkpoint it accepted (:class:`~zkauction.protocol.checkpoint.LogView`).
It registers only for an announcement that names its key and the auction it was told about; it sends
its signed opening only once a checkpoint it accepted covers the round's closed list of commitments
with its own in it (so no shill can commit after seeing it); it checks every outcome it takes part
in; against a ``no_opening`` rejection it publishes its opening on the log; it reveals its audit
seed only once a checkpoint it accepted covers round T, and puts that checkpoint in its reveal.
"""


from __future__ import annotations

import hashlib
import json
import math
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from zkauction.protocol.checkpoint import LogView, SignedCheckpoint
from zkauction.protocol.log import Entry, Ledger, SigningKey
from zkauction.protocol.private import write_private
from zkauction.protocol.state import (
    first_entry,
    ABSTENTION,
    BID_COMMITMENT,
    COMMITMENTS_CLOSED,
    DISPUTE,
    OPENING_REJECTED,
    OUTCOME,
    REGISTRATION,
    SALT_DOMAIN,
    SEED_REVEAL,
    Announcement,
    block_of,
    ProtocolError,
    read_announcement,
    rejected_no_opening,
    seed_commitment,
    opening_message,
    unique_key,
)
from zkauction.zk import commitments
from zkauction.zk.commitments import Opening


class NotCovered(ProtocolError):
    """What a step needs (a close, an outcome, round T's outcome) is not yet in a checkpoint this
    bidder holds. Not yet, not never: a networked client waits for it on its silence clock (a host
    whose unsigned status ran ahead of its signed log stopped an honest client with this error,
    exit 2, no penalty: the eighteenth review)."""


@dataclass(frozen=True)
class SignedOpening:
    """An opening as a bidder sends it: signed over (log id, round, bidder, bids, salt), so that the
    auctioneer can show a bad one on the log as the evidence of its rejection."""

    opening: Opening
    signature: str



def _derive(secret: bytes, label: bytes, nbytes: int = 32) -> bytes:
    return hashlib.shake_256(SALT_DOMAIN + secret + label).digest(nbytes)



class Bidder:
    """A bidder with its own key, secret and kept checkpoint (see the module docstring).

    ``expected`` holds what the bidder was told about the auction out of band (e.g. the circuit's
    ``manifest_sha256`` and ``vk_sha256``, ``rounds``): it registers only if the announcement says
    the same."""

    def __init__(self, index: int, key: SigningKey, ledger: Ledger, *, secret: bytes | None = None,
                 view_path: str | Path | None = None, expected: dict[str, Any] | None = None,
                 record_path: str | Path | None = None):
        """``record_path``: where this bidder's secret keeps the log ids it registered in (beside the
        secret; in memory if None): a secret never registers twice in one log id (see :meth:`register`)."""
        self.index = index
        self.key = key
        self.ledger = ledger
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self.expected = dict(expected or {})
        self._openings: dict[int, Opening] = {}
        self._commitments: dict[int, str] = {}  # computed once, at commit time (Poseidon is the cost)
        self._closed: dict[int, list] = {}  # each round's checked close (its commitment list) it opened under
        self._view_path = view_path
        self._record_path = Path(record_path) if record_path is not None else None
        self._record: list[str] = []
        self._view: LogView | None = None
        self._ann: Announcement | None = None

    # Seeds and salts derive from the secret AND the log id: a secret reused in another auction gives
    # unrelated values (else that auction's host would know this one's seed and salts in advance).

    @property
    def seed(self) -> str:
        self.announcement
        return _derive(self._secret, b"audit-seed" + bytes.fromhex(self._log_id)).hex()

    def salt(self, round: int) -> str:
        self.announcement
        x = int.from_bytes(_derive(self._secret, b"salt" + bytes.fromhex(self._log_id) + round.to_bytes(8, "big"), 64), "big")
        return commitments.int_to_felt(x % commitments.FIELD_MODULUS)

    @property
    def announcement(self) -> Announcement:
        if self._ann is None:
            self._ann, first = read_announcement(self.ledger)
            self._check_announcement(self._ann)
            self._log_id = first.hash
        return self._ann

    @property
    def view(self) -> LogView:
        if self._view is None:
            ann = self.announcement
            self._view = LogView(ann.auctioneer, self._view_path, log_id=self._log_id)
        return self._view

    def _check_announcement(self, ann: Announcement) -> None:
        if not 0 <= self.index < ann.n or ann.bidders[self.index] != self.key.public_hex:
            raise ProtocolError(f"bidder {self.index}: the announcement does not name this bidder's key at index {self.index}")
        if ann.mode == "ttp" and "third_party" not in self.expected:
            raise ProtocolError(f"bidder {self.index}: ttp mode, but this bidder was told of no trusted third party: "
                                "refusing to take part (the auctioneer could name its own key)")
        from zkauction.protocol.credibility import keep_threshold, round_gain_bound

        # the exact minimal penalty, any k, for the most a round can take within the public checks
        needed = keep_threshold(ann.rounds, round_gain_bound(ann.support, ann.term("output_scale")))
        if not ann.penalty > needed:  # else deviating can pay: the audit's threat is what makes it credible
            raise ProtocolError(f"bidder {self.index}: the announced penalty {ann.penalty:g} is not above {needed:g}, the "
                                f"least that makes every deviation unprofitable for T = {ann.rounds}, k = {ann.audits}: "
                                "refusing to take part")
        for k, want in self.expected.items():
            got = ann.term(k)
            if got != want:
                raise ProtocolError(f"bidder {self.index}: the announcement's {k} is {got!r}, not the {want!r} "
                                    "this bidder was told: refusing to take part")

    def sync(self) -> SignedCheckpoint:
        """Accept the log's newest checkpoint (a proven extension of the kept one) and keep it."""
        return self.view.observe(self.ledger)

    def register(self) -> Entry | None:
        """Sign the announcement and commit to an audit seed (idempotent).

        Salts and the audit seed derive from the secret and the log id, and the log id is the hash
        of the announcement: an auctioneer that announces the same auction again gets the same id,
        and would know this bidder's salts there from the openings it received here. So a secret
        registers once per log id: the id is recorded (``record_path``) before the registration is
        signed, and a bidder that holds no checkpoint of a log in which its secret already
        registered (its registration is logged, or its record names the id) refuses to go on: it
        cannot tell a resumed auction from a copy of one."""
        had_view = self.view.kept is not None
        self.sync()  # reads and checks the announcement first
        mine = first_entry(self.ledger, REGISTRATION, None, self.key.public_hex)
        if not had_view and (mine is not None or self._log_id in self._registered_logs()):
            raise ProtocolError(f"bidder {self.index}: this secret already registered in log {self._log_id[:16]}..., "
                                "but this bidder holds no checkpoint of it: a copy of an auction it took part in "
                                "would reuse its salts and audit seed; refusing (start from a new bidder state)")
        if mine is not None:
            return None
        if self.announcement.exclusion != "void":  # (a log it registered in before "void" existed goes on)
            raise ProtocolError(f"bidder {self.index}: the announcement lets a round go on without a committed bidder left "
                                "out (exclusion 'drop'): a shill that has seen the honest openings could withdraw exactly "
                                "when that pays; refusing to take part")
        self._remember_log(self._log_id)
        payload = {"bidder": self.index, "announcement": self._log_id, "seed_commitment": seed_commitment(self.index, self.seed)}
        return self.ledger.append(REGISTRATION, payload, self.key, unique=unique_key(REGISTRATION, bidder=self.index))

    def _registered_logs(self) -> list[str]:
        if self._record_path is not None and self._record_path.is_file():
            try:
                logs = json.loads(self._record_path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise ProtocolError(f"{self._record_path}: not this bidder's record of log ids ({e})") from None
            return [str(x) for x in logs] if isinstance(logs, list) else []
        return list(self._record)

    def _remember_log(self, log_id: str) -> None:
        logs = self._registered_logs()
        if log_id not in logs:
            logs.append(log_id)
        self._record = logs
        if self._record_path is not None:
            write_private(self._record_path, json.dumps(logs) + "\n")  # durable: before the registration exists

    def committed_bids(self, values: Sequence[float]) -> tuple[float, ...] | None:
        """``values`` as this bidder would commit them (snapped to the announced input grid), or None
        when they snap to all zeros: that is no bid (the auctioneer must reject it, and a committed
        bidder left out voids the round for the others), so the bidder sits the round out. A value
        inside its announced support whose grid point falls outside it (a bound off the grid) takes
        the nearest grid point inside. A value outside the support is committed as snapped (the
        auctioneer must reject it, voiding the round: the tests use that to play a bidder that bids
        outside). A value the grid cannot hold (negative, not finite, too large) raises
        CommitmentError."""
        ann = self.announcement
        scale, out = ann.input_scale, []
        values = [float(v) for v in values]
        if all(x == 0 for x in values):
            return None
        for j, (x, s) in enumerate(zip(values, commitments.snap_bids(values, scale))):
            lo, hi = (float(b) for b in ann.support[self.index][j])
            if not lo <= x <= hi:
                out.append(s)
                continue
            if s > hi:
                s = math.floor(hi * 2**scale) / 2**scale
            elif s < lo:
                s = math.ceil(lo * 2**scale) / 2**scale
            if not lo <= s <= hi:
                raise ProtocolError(f"bidder {self.index}: the support [{lo:g}, {hi:g}] of item {j} holds no point of the input "
                                    f"grid 2^-{scale}: no bid can be committed for it")
            out.append(s)
        snapped = tuple(out)
        return snapped if any(snapped) else None

    def _some_bid(self, round: int, bids: Sequence[float]) -> tuple[float, ...]:
        """:meth:`committed_bids`, refusing bids that are no bid."""
        snapped = self.committed_bids(bids)
        if snapped is None:
            raise ProtocolError(f"bidder {self.index}: round {round}: the bids {list(bids)} are all zero on the input grid "
                                f"(2^-{self.announcement.input_scale}): no bid, which would void the round; sit it out")
        return snapped

    def commitment_item(self, round: int, bids: Sequence[float]) -> tuple[str, Any, SigningKey, int, str] | None:
        """The signed commitment entry to append for ``round`` (None if already logged), for a host
        that appends all bidders' commitments of a round in one transaction; see :meth:`commit`."""
        ann = self.announcement
        commitment, opening = commitments.make_commitment(self._some_bid(round, bids), ann.input_scale, salt=self.salt(round))
        logged = first_entry(self.ledger, BID_COMMITMENT, round, self.key.public_hex)
        if logged is not None and logged.data["commitment"] != commitment:
            raise ProtocolError(f"bidder {self.index} already committed to other bids in round {round}")
        if logged is None and first_entry(self.ledger, COMMITMENTS_CLOSED, round, ann.auctioneer) is not None:
            raise ProtocolError(f"round {round}: the commitments are closed; bidder {self.index} is too late")
        self._openings[round] = opening
        self._commitments[round] = commitment
        if logged is not None:
            return None
        return (BID_COMMITMENT, {"bidder": self.index, "commitment": commitment}, self.key, round,
                unique_key(BID_COMMITMENT, round, self.index))

    def commitment_items_many(self, rounds: Sequence[int], bids: Sequence[Sequence[float]]) -> list[tuple[str, Any, SigningKey, int, str]]:
        """:meth:`commitment_item` for a block of rounds none of which has a commitment of this
        bidder logged yet (a fresh block): one batched Poseidon call for all of them."""
        ann = self.announcement
        openings = [Opening(self._some_bid(r, b), self.salt(r)) for r, b in zip(rounds, bids)]
        coms = commitments.commit_many([(o.bids, o.salt) for o in openings], ann.input_scale)
        items = []
        for r, o, c in zip(rounds, openings, coms):
            if self._commitments.get(r, c) != c:
                raise ProtocolError(f"bidder {self.index} already committed to other bids in round {r}")
            self._openings[r], self._commitments[r] = o, c
            items.append((BID_COMMITMENT, {"bidder": self.index, "commitment": c}, self.key, r,
                          unique_key(BID_COMMITMENT, r, self.index)))
        return items

    def commit(self, round: int, bids: Sequence[float]) -> str:
        """Commit to ``bids`` for ``round`` (snapped to the grid); the opening stays with the bidder
        until :meth:`open`. Idempotent after a crash: the same bids give the same commitment."""
        item = self.commitment_item(round, bids)
        if item is not None:
            self.ledger.append_many([item])
        return self._commitments[round]

    def sign_opening(self, round: int, opening: Opening) -> SignedOpening:
        self.announcement  # the log id it signs over
        msg = opening_message(self._log_id, round, self.index, list(opening.bids), opening.salt)
        return SignedOpening(opening, self.key.sign(msg))

    def open(self, round: int) -> SignedOpening:
        """The signed opening for ``round``, released only when a checkpoint this bidder accepted
        covers the round's closed list of commitments with this bidder's own commitment in it, and
        that checkpoint is on its own disk (a restarted bidder must still hold the close it opened
        under, or the host could rewrite the round around the opening)."""
        opening = self._checked_opening(round)
        self.view.flush(durable=True)
        return self.sign_opening(round, opening)

    def open_many(self, rounds: Sequence[int]) -> list[SignedOpening]:
        """:meth:`open` for a block of rounds, each checked as :meth:`open` checks it, all signed
        with one signature (:meth:`~zkauction.protocol.entries.SigningKey.sign_many`)."""
        self.sync()  # one checkpoint for the block's closes, checked in one pass when they end it
        found = self._check_block_tail(COMMITMENTS_CLOSED, rounds[0]) if rounds else {}
        openings = [self._checked_opening(r, found=found) for r in rounds]
        self.view.flush(durable=True)  # as open(): the closes they are sent under, on its own disk first
        msgs = [opening_message(self._log_id, r, self.index, list(o.bids), o.salt) for r, o in zip(rounds, openings)]
        return [SignedOpening(o, sig) for o, sig in zip(openings, self.key.sign_many(msgs))]

    def _checked_opening(self, round: int, *, found: dict[int, Entry | None] | None = None) -> Opening:
        """The opening of ``round`` once its close is checked. ``found``: a block's closes the caller
        looked up just after syncing (:meth:`_check_block_tail`); None: sync and look up here."""
        if round not in self._openings:
            raise ProtocolError(f"bidder {self.index} has no commitment for round {round}")
        listed = self._checked_close(round, "the opening is not sent", found=found)
        mine = self._commitments[round]
        if listed[self.index] != mine:
            raise ProtocolError(f"round {round}: the closed list does not hold bidder {self.index}'s commitment")
        copies = [j for j, c in enumerate(listed) if j != self.index and isinstance(c, str) and c.lower() == mine.lower()]
        if copies:  # its opening would open the copy too: a shill would bid exactly this bid (the log shows the breach)
            raise ProtocolError(f"round {round}: the closed list gives bidder {copies[0]} bidder {self.index}'s commitment "
                                "(a copy): the opening is not sent")
        self._closed[round] = listed
        return self._openings[round]

    def _checked_close(self, round: int, then: str, *, found: dict[int, Entry | None] | None = None) -> list:
        """The list of n commitments in ``round``'s close, covered by the kept checkpoint (an
        inclusion proof); ``then`` says what does not happen without one. ``found``: as for
        :meth:`_checked_opening` (None: sync first)."""
        if found is None:
            self.sync()
        close = (found[round] if found and round in found
                 else first_entry(self.ledger, COMMITMENTS_CLOSED, round, self.announcement.auctioneer))
        if close is None or close.seq >= self.view.kept.size:
            raise NotCovered(f"round {round}: the commitments are not closed in a checkpoint bidder {self.index} holds; "
                                f"{then}")
        self.view.check_included(self.ledger, close.seq, close)
        listed = close.fields.get("commitments")
        if not isinstance(listed, list) or len(listed) != self.announcement.n:
            raise ProtocolError(f"round {round}: the close is malformed (no list of {self.announcement.n} commitments): "
                                f"the auctioneer's breach; {then}")
        return listed

    def resume_round(self, round: int, bids: Sequence[float]) -> bool:
        """After a restart: whether ``round``'s close, covered by the kept checkpoint (an inclusion
        proof, never a filtered query's word), lists this bidder's commitment of ``bids``; if so its
        opening is restored (for :meth:`check_outcome` and :meth:`dispute`)."""
        closed = self._checked_close(round, "its outcome cannot be checked")
        snapped = self.committed_bids(bids)
        if snapped is None:
            return False
        commitment, opening = commitments.make_commitment(snapped, self.announcement.input_scale, salt=self.salt(round))
        listed = closed[self.index]
        if not isinstance(listed, str) or listed.lower() != commitment.lower():
            return False
        self._openings[round], self._commitments[round], self._closed[round] = opening, commitment, closed
        return True

    def check_outcome(self, round: int, *, found: dict[int, Entry | None] | None = None) -> str:
        """Check the outcome of a round this bidder bid in: covered by the kept checkpoint, computed
        on its commitment, and charging it no more than its allocation is worth at its own bids
        (:func:`~zkauction.protocol.audit.own_outcome_problem`). Returns ``"ok"``, ``"rejected"``
        (then it may dispute) or ``"void"`` (another committed bidder was rejected: nothing sold).
        ``found``: a block's outcomes the caller looked up just after syncing (:meth:`check_outcomes`)."""
        ann = self.announcement
        if found is None:
            self.sync()
        out = found[round] if found and round in found else first_entry(self.ledger, OUTCOME, round, ann.auctioneer)
        if out is None or out.seq >= self.view.kept.size:
            raise NotCovered(f"round {round}: no outcome covered by a checkpoint bidder {self.index} holds")
        self.view.check_included(self.ledger, out.seq, out)
        if round not in self._openings:
            return "ok"
        try:
            verdict = self._judge_outcome(round, out)
        except ProtocolError:  # the checkpoint that covers the breach, pinned on its own disk before it stops:
            self.view.flush(durable=True)  # a host that rolls the log back and replays the round is then a fork
            raise
        if found is None:  # (a block's outcomes: check_outcomes writes once for all of them)
            self.view.flush(durable=True)  # the outcome it checked, pinned on its own disk
        return verdict

    def _judge_outcome(self, round: int, out: Entry) -> str:
        ann = self.announcement
        mine = self._commitments[round]
        try:
            used = out.data["commitments"][self.index] == mine and out.data["participants"][self.index] == 1
        except (KeyError, IndexError, TypeError):
            raise ProtocolError(f"round {round}: the outcome is malformed (no commitment or participation of "
                                f"bidder {self.index})") from None
        if used:
            from zkauction.protocol.audit import own_outcome_problem

            problem = own_outcome_problem(ann, self.index, self._openings[round].bids, out.data)
            if problem:
                raise ProtocolError(f"round {round}: {problem}")
            closed = self._closed.get(round, [])
            left = [j for j, c in enumerate(closed) if c is not None and j < len(out.data["participants"])
                    and out.data["participants"][j] != 1]
            if ann.exclusion == "void" and left:  # (the public checks name it too; a bidder need not wait for them)
                raise ProtocolError(f"round {round}: the outcome sells while bidder {left[0]}, whose commitment was closed "
                                    "in the round, is left out: the round must be void (the auctioneer's breach)")
            return "ok"
        rejections = [e for e in self.ledger.entries(kind=OPENING_REJECTED, round=round) if e.signer == ann.auctioneer]
        if any(e.fields.get("bidder") == self.index for e in rejections):
            return "rejected"  # justified or not, the public checks decide from the log
        if ann.exclusion == "void" and rejections and not any(out.fields.get("participants") or [1]):
            return "void"  # another committed bidder left out (the public checks judge its rejection)
        raise ProtocolError(f"round {round}: the outcome was not computed on bidder {self.index}'s commitment")

    def check_outcomes(self, rounds: Sequence[int]) -> list[str]:
        """:meth:`check_outcome` of a block's rounds under one checkpoint (the outcomes checked in one
        pass when they end it)."""
        self.sync()
        found = self._check_block_tail(OUTCOME, rounds[0]) if rounds else {}
        verdicts = [self.check_outcome(r, found=found) for r in rounds]
        self.view.flush(durable=True)  # the outcomes it checked, pinned on its own disk
        return verdicts

    def _check_block_tail(self, kind: str, round: int) -> dict[int, Entry | None]:
        """The entries of ``kind`` of ``round``'s block that end the kept checkpoint's log, checked in
        one pass (:meth:`LogView.check_tail`); the others are checked one by one later. Returns the
        block's first ``kind`` entry of each round (what the caller then checks and acts on)."""
        ann = self.announcement
        found = {q: first_entry(self.ledger, kind, q, ann.auctioneer) for q in block_of(ann, round)}
        tail: list[Entry] = []
        for e in sorted((e for e in found.values() if e is not None), key=lambda e: e.seq, reverse=True):
            if e.seq != self.view.kept.size - 1 - len(tail):
                break
            tail.append(e)
        self.view.check_tail(self.ledger, tail[::-1])
        return found

    def rejected_for_no_opening(self, round: int) -> bool:
        """Whether the auctioneer logged ``no_opening`` for this bidder in ``round``."""
        return rejected_no_opening(self.ledger, round, self.index, self.announcement.auctioneer)

    def dispute(self, round: int) -> Entry:
        """Publish this round's opening on the log, against a ``no_opening`` rejection: logged before
        the round's outcome, the outcome must include it."""
        o = self._openings.get(round)
        if o is None:
            raise ProtocolError(f"bidder {self.index} has no opening for round {round} to publish")
        self.view.flush(durable=True)
        return self.ledger.append(DISPUTE, {"bidder": self.index, "bids": list(o.bids), "salt": o.salt}, self.key,
                                  round=round, unique=unique_key(DISPUTE, round, self.index))

    def abstain(self, round: int) -> Entry:
        """Declare, before the outcome, that this bidder will not open its commitment of ``round``
        (what lets the auctioneer reject it for ``no_opening`` and close the round)."""
        return self.ledger.append(ABSTENTION, {"bidder": self.index}, self.key, round=round,
                                  unique=unique_key(ABSTENTION, round, self.index))

    def reveal(self) -> Entry | None:
        """Reveal the audit seed, once a checkpoint this bidder accepted covers round T's outcome;
        the reveal carries that checkpoint (the bidder's co-signature of the log it saw)."""
        ann = self.announcement
        cp = self.sync()
        for q in block_of(ann, ann.rounds):  # round T (in blocks: every round of the last block)
            out = first_entry(self.ledger, OUTCOME, q, ann.auctioneer)
            if out is None or out.seq >= cp.size:
                raise NotCovered(f"bidder {self.index}: not revealing the audit seed before a checkpoint covers round {q}")
            # the outcome itself, not the host's word for its position: once the seed is out, the host knows the draw
            self.view.check_included(self.ledger, out.seq, out)
        if first_entry(self.ledger, SEED_REVEAL, None, self.key.public_hex) is not None:
            return None
        self.view.flush(durable=True)  # the checkpoint it co-signs is on its own disk first
        payload = {"bidder": self.index, "seed": self.seed, "checkpoint": cp.to_dict()}
        return self.ledger.append(SEED_REVEAL, payload, self.key, unique=unique_key(SEED_REVEAL, bidder=self.index))


