"""Playing rounds: one at a time (:func:`play_round`) or a block of rounds in one pass (:func:`play_block`,
announcement ``block`` B > 1; :mod:`zkauction.protocol.announcement`).

One round (the paper's Algorithm 1, lines 3-8, with a sealed commit phase)::

    bidders commit -> auctioneer closes the commitments, checkpoint -> bidders check the
    checkpointed close and send openings -> auctioneer checks them (rejections with a reason code),
    computes the canonical outcome, logs it with the rejections in one transaction, checkpoint ->
    bidders check the outcome (and dispute a false rejection).

In a block, every round goes through the same steps and checks as :func:`play_round`, only each
step is taken for the whole block at once::

    bidders commit (one batched Poseidon call each, one signature each over the block's statements)
    -> the host logs them in one transaction
    -> the auctioneer closes every round's commitments: one transaction with its checkpoint
    -> each bidder accepts that checkpoint once, checks each round's close (inclusion proof, its own
       commitment listed) and sends the block's openings under one signature
    -> the auctioneer checks each opening (signature, Poseidon in one batched call, support)
    -> outcomes of the block in one batched evaluation, the openings stored in one transaction, the
       outcomes logged in one transaction with its checkpoint
    -> each bidder checks each round's outcome (inclusion proof, computed on its commitment).

A round with anything unusual (a bad or missing opening, hence a rejection, a dispute or an
abstention) leaves the fast path and is finished by the round-by-round steps, which handle every
case; so is a block found partly logged (a crash in the middle: every round-by-round step is
idempotent). The log a block produces is read by the same reader and public checks as any other.

What the fast path costs instead of B rounds one at a time: per party and step one Ed25519
signature (and one verification per verifier) instead of B, one transaction and one fsync instead
of B, one checkpoint instead of B; the per-round work left is the Poseidon commitments and their
checks, the outcome, and hashing, storing and proving inclusion of each entry.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

from zkauction.protocol.auctioneer import Auctioneer, counted_commitments, outcome_inputs, signed_by_bidder
from zkauction.protocol.bidder import Bidder, SignedOpening
from zkauction.protocol.state import (
    BID_COMMITMENT,
    COMMITMENTS_CLOSED,
    OUTCOME,
    ProtocolError,
    block_of,
    first_entry,
    unique_key,
)
from zkauction.zk import commitments
from zkauction.zk.circuit import Outcome
from zkauction.zk.commitments import CommitmentError, Opening


def play_round(auctioneer: Auctioneer, bidders: Sequence[Bidder], round: int, profile: Sequence[Sequence[float]],
               *, dispute: bool = True) -> Any:
    """One round: commit, close (checkpointed), open, outcome (checkpointed), each bidder checks it.
    Resumable: every step is idempotent, so a round interrupted by a crash is completed."""
    present = [b for b in bidders if b.committed_bids(profile[b.index]) is not None]
    items = [b.commitment_item(round, [float(x) for x in profile[b.index]]) for b in present]
    if any(items):  # the host logs the round's commitments in one transaction
        auctioneer.ledger.append_many([i for i in items if i is not None])
    auctioneer.close_commitments(round)
    for b in present:
        try:
            auctioneer.receive_opening(round, b.index, b.open(round))
        except CommitmentError:
            pass  # logged as opening_rejected (with the signed opening as evidence): absent from the round
    return finish_round(auctioneer, present, round, dispute=dispute)


def finish_round(auctioneer: Auctioneer, present: Sequence[Bidder], round: int, *, dispute: bool = True) -> Any:
    """The rest of a round once the openings are in: ``no_opening`` rejections, disputes, the
    outcome, each bidder's check of it."""
    missing = auctioneer.reject_missing(round)
    for b in present:
        if dispute and b.index in missing and b.rejected_for_no_opening(round):
            b.dispute(round)  # "no opening received": the bidder publishes it; the outcome must include it
    out = auctioneer.close_round(round)
    for b in present:
        b.check_outcome(round)
    return out


def run_rounds(auctioneer: Auctioneer, bidders: Sequence[Bidder], bids_of_round: Callable[[int], Sequence[Sequence[float]]],
               rounds: Iterable[int] | None = None, *, on_round: Callable[[int], None] | None = None) -> int:
    """Play rounds (default: every round without an outcome, in order). Returns how many."""
    ann = auctioneer.announcement()
    todo = list(rounds) if rounds is not None else [
        r for r in range(1, ann.rounds + 1) if not auctioneer.ledger.entries(kind=OUTCOME, round=r)]
    # announced in blocks: each block in one pass (play_block); else one round at a time
    for group in (block_starts(ann, todo) if ann.block > 1 else [[r] for r in todo]):
        if ann.block > 1:
            play_block(auctioneer, bidders, group, {r: bids_of_round(r) for r in group})
        else:
            play_round(auctioneer, bidders, group[0], bids_of_round(group[0]))
        for r in group:
            if on_round is not None:
                on_round(r)
    return len(todo)


def _fresh(auctioneer: Auctioneer, rounds: Sequence[int]) -> bool:
    """No entry of the block is logged yet; raises unless the block may start
    (:meth:`Auctioneer.check_may_start`)."""
    ledger = auctioneer.ledger
    auctioneer.check_may_start(rounds[0])
    return not any(ledger.entries(kind=k, round=r) for r in rounds for k in (BID_COMMITMENT, COMMITMENTS_CLOSED))


def play_block(auctioneer: Auctioneer, bidders: Sequence[Bidder], rounds: Sequence[int],
               profiles: dict[int, Sequence[Sequence[float]]]) -> None:
    """Play ``rounds`` (one block, in order) on ``profiles`` ({round: bids [n][m]}), as the module
    docstring describes. A block found partly logged is finished round by round."""
    rounds = list(rounds)
    if not rounds:
        return
    ledger, key = auctioneer.ledger, auctioneer.key
    if not _fresh(auctioneer, rounds):
        for r in rounds:
            if first_entry(ledger, OUTCOME, r, auctioneer.announcement().auctioneer) is None:
                play_round(auctioneer, bidders, r, profiles[r])
        return
    ann = auctioneer.announcement()
    present = {b.index: [r for r in rounds if b.committed_bids(profiles[r][b.index]) is not None] for b in bidders}

    # 1. commitments: one batched Poseidon call and one signature per bidder, one transaction
    items = []
    for b in bidders:
        items += b.commitment_items_many(present[b.index], [profiles[r][b.index] for r in present[b.index]])
    logged = ledger.append_many(items, batch_sign=True) if items else []
    # what each close lists: the block's commitments as every verifier counts them (the block is fresh:
    # nothing of its rounds was logged before these), whatever else a bidder's client slipped in
    by_round: dict[int, list[Any]] = {r: [] for r in rounds}
    for e in logged:
        by_round.setdefault(e.round, []).append(e)
    listed: dict[int, list[str | None]] = {}
    for r in rounds:
        counted = counted_commitments(ann, by_round[r])
        listed[r] = [counted.get(i) for i in range(ann.n)]

    # 2. the auctioneer closes every round of the block: one transaction with its checkpoint
    ledger.append_many([(COMMITMENTS_CLOSED, {"commitments": listed[r]}, key, r, unique_key(COMMITMENTS_CLOSED, r))
                        for r in rounds], checkpoint_key=key, batch_sign=True)

    # 3. each bidder checks the checkpointed closes and sends the block's openings under one signature
    sent = {b.index: dict(zip(present[b.index], b.open_many(present[b.index]))) for b in bidders if present[b.index]}

    # 4. the auctioneer checks them; a round with any trouble leaves the fast path
    clean = receive_openings(auctioneer, rounds, listed, sent)
    slow = sorted(set(rounds) - set(clean))

    # 5. outcomes of the clean rounds: one evaluation, one store transaction, one log transaction
    if clean:
        close_rounds(auctioneer, clean, listed)
    for r in slow:
        finish_round(auctioneer, [b for b in bidders if r in present[b.index]], r)

    # 6. each bidder checks each outcome of a round it bid in
    clean_set = set(clean)
    for b in bidders:
        mine = [r for r in present[b.index] if r in clean_set]
        if mine:
            b.check_outcomes(mine)


def receive_openings(auctioneer: Auctioneer, rounds: Sequence[int], listed: dict[int, list[str | None]],
                     sent: dict[int, dict[int, SignedOpening]]) -> list[int]:
    """Check the block's openings as :meth:`Auctioneer.receive_opening` does (signature, opening,
    support), the Poseidon hashes in one batched call; accepted ones are kept for the outcome. A
    round where a committed bidder's opening is missing or bad is not clean: its openings go
    through :meth:`Auctioneer.receive_opening` one by one (which logs the rejections). Returns the
    clean rounds."""
    ann, log_id = auctioneer.announcement(), auctioneer.ledger.log_id
    todo: list[tuple[int, int, SignedOpening]] = []
    dirty: set[int] = set()
    for r in rounds:
        for i in range(ann.n):
            if listed[r][i] is None:
                continue
            s = sent.get(i, {}).get(r)
            o = getattr(s, "opening", None)
            if (not isinstance(o, Opening) or len(o.bids) != ann.m or not signed_by_bidder(ann, log_id, r, i, s)
                    or auctioneer._support_problem(ann, i, o.bids) is not None):
                dirty.add(r)
            else:
                todo.append((r, i, s))
    try:
        hashes = commitments.commit_many([(s.opening.bids, s.opening.salt) for _, _, s in todo], ann.input_scale)
    except (CommitmentError, TypeError, ValueError):
        hashes = [None] * len(todo)  # a malformed opening: each is judged on its own below
    for (r, i, s), h in zip(todo, hashes):
        if h != listed[r][i]:
            dirty.add(r)
    for r, i, s in todo:
        if r not in dirty:
            auctioneer._pending.setdefault(r, {})[i] = s.opening
    for r in sorted(dirty):  # the slow path: each opening judged and, if bad, rejected with its evidence
        auctioneer._pending.pop(r, None)
        for i in range(ann.n):
            if listed[r][i] is not None and r in sent.get(i, {}):
                try:
                    auctioneer.receive_opening(r, i, sent[i][r])
                except CommitmentError:
                    pass
    return [r for r in rounds if r not in dirty]


def close_rounds(auctioneer: Auctioneer, rounds: Sequence[int], listed: dict[int, list[str | None]]) -> None:
    """:meth:`Auctioneer.close_round` for clean rounds of a fresh block (every committed bidder's
    opening accepted, nothing rejected): the outcomes in one batched evaluation, the openings stored
    in one transaction, then the outcomes logged in one transaction with their checkpoint."""
    ann, ledger = auctioneer.announcement(), auctioneer.ledger
    inputs, rows, stored = [], [], {}
    for r in rounds:
        got = auctioneer._pending.get(r, {})
        committed = [i for i in range(ann.n) if listed[r][i] is not None]
        if any(i not in got for i in committed):
            raise ProtocolError(f"round {r}: not every committed bidder's opening is accepted: not a clean round")
        stored[r] = {i: got[i] for i in committed}
        bids, salts, coms, present = outcome_inputs(ann, listed[r], stored[r])
        inputs.append((bids, salts))
        rows.append((r, present, coms))
    many = getattr(auctioneer.outcome, "many", None)
    outs: list[Outcome] = many(inputs) if many is not None else [auctioneer.outcome(b, s) for b, s in inputs]
    # Stored before the outcomes are logged: an outcome whose openings are lost could not be proven.
    auctioneer.store.put_rounds({r: o for r, o in stored.items() if o})
    size = len(ledger)
    ledger.append_many([(OUTCOME, {"participants": present, "commitments": coms, **out.to_dict()}, auctioneer.key, r,
                         unique_key(OUTCOME, r)) for (r, present, coms), out in zip(rows, outs)],
                       expect_size=size, checkpoint_key=auctioneer.key, batch_sign=True)
    for r in rounds:
        auctioneer._pending.pop(r, None)


def block_starts(ann: Any, todo: Sequence[int]) -> list[list[int]]:
    """``todo`` (rounds in order) grouped by block."""
    groups: dict[int, list[int]] = {}
    for r in todo:
        groups.setdefault(block_of(ann, r).start, []).append(r)
    return list(groups.values())
