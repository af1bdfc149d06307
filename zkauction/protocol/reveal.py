"""The audit seed: its commitment at registration and its reveal after round T. One rule for what a
reveal must carry, which the reader counts by (:mod:`~zkauction.protocol.state`) and the server
admits by (:mod:`~zkauction.service.engine`): a server admitting by a restatement of the rule could
log a reveal the reader then ignores, shown and never counted."""

from __future__ import annotations

import hashlib
from typing import Any

from zkauction.protocol.announcement import Announcement
from zkauction.protocol.log import LedgerError, SignedCheckpoint

SEED_DOMAIN = b"zkauction-audit-seed-v1\x00"


def seed_commitment(bidder: int, seed: str) -> str:
    """SHA3-256(domain, bidder index, seed) as hex; the seed is 32 bytes hex."""
    return hashlib.sha3_256(SEED_DOMAIN + bidder.to_bytes(4, "big") + bytes.fromhex(seed)).hexdigest()


def seed_reveal_problem(ann: Announcement, log_id: str, registered: str | None, last_outcome: int,
                        d: dict[str, Any]) -> str | None:
    """What is wrong with bidder ``d["bidder"]``'s seed reveal ``d`` (None: it counts): its seed must
    be the one its registration committed to (``registered``), and it must carry a checkpoint the
    announced auctioneer signed for this log (``log_id``) covering the last outcome (entry
    ``last_outcome``; in blocks, every outcome of the last block), the bidder's co-signature of the
    log it saw. Worded to follow "bidder i's"."""
    i = d.get("bidder")
    try:
        seed_ok = registered is not None and seed_commitment(i, str(d.get("seed"))) == registered
    except (ValueError, TypeError, AttributeError, OverflowError):
        seed_ok = False
    if not seed_ok:
        return "revealed seed does not match its registration's seed commitment"
    try:  # the auctioneer's own signed checkpoint, as the bidder accepted it: a co-signature, not a claim
        cp = SignedCheckpoint.from_dict(d.get("checkpoint"))
        cp.verify(ann.auctioneer)
    except (LedgerError, ValueError, TypeError, KeyError) as err:
        return f"reveal carries no checkpoint signed by the auctioneer ({err})"
    if cp.log_id != log_id or cp.size <= last_outcome:
        return (f"reveal carries no checkpoint of this log covering round {ann.rounds}'s outcome"
                + ("" if ann.block == 1 else " and every outcome of the last block"))
    return None
