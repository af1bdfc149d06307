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

from dataclasses import dataclass
from typing import Any

from zkauction.errors import ZkAuctionError

PROTOCOL_FORMAT = "zkauction-protocol/3"
MODES = ("zk", "reveal", "ttp")


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

    def to_dict(self) -> dict[str, Any]:
        d = {"format": PROTOCOL_FORMAT, **self.__dict__}
        if self.block == 1:  # rounds one at a time: the announcement is byte for byte what it always was
            del d["block"]
        return d

    @classmethod
    def from_dict(cls, d: Any) -> "Announcement":
        if not isinstance(d, dict) or d.get("format") != PROTOCOL_FORMAT:
            raise ProtocolError(f"announcement: format {d.get('format') if isinstance(d, dict) else d!r}, expected {PROTOCOL_FORMAT!r}")
        try:
            a = cls(**{k: d[k] for k in cls.__dataclass_fields__ if k != "block"}, block=d.get("block", 1))
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
        if a.mode == "ttp" and not a.third_party:
            raise ProtocolError("announcement: mode 'ttp' without the trusted third party's key")
        return a


def block_of(ann: Announcement, round: int) -> range:
    """The rounds of ``round``'s block (the last block may be shorter)."""
    first = (round - 1) // ann.block * ann.block + 1
    return range(first, min(first + ann.block, ann.rounds + 1))


def previous_block(ann: Announcement, round: int) -> range:
    """The rounds of the block before ``round``'s (empty for the first block): each must have its
    outcome before ``round``'s commitments are closed."""
    first = (round - 1) // ann.block * ann.block + 1
    return range(max(1, first - ann.block), first)
