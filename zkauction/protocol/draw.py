"""The audit draw (the paper's Algorithm 1, line 9): which rounds are audited, from the bidders'
audit seeds alone (see :mod:`zkauction.protocol.audit`, "The draw cannot be ground")."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from zkauction.protocol.state import AuditError, LedgerState

DRAW_DOMAIN = b"zkauction-audit-draw-v2\x00"


def draw_digest(log_id: str, seeds: dict[int, str]) -> bytes:
    """SHA3-256(domain, log id, then for every bidder in order: index (4 bytes), seed (32 bytes))."""
    h = hashlib.sha3_256(DRAW_DOMAIN + bytes.fromhex(log_id))
    for i in sorted(seeds):
        h.update(i.to_bytes(4, "big") + bytes.fromhex(seeds[i]))
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


@dataclass(frozen=True)
class AuditDraw:
    rounds: list[int]
    digest: str | None
    revealed: list[int]
    withheld: list[int]
    fallback: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def audit_draw(st: LedgerState) -> AuditDraw:
    """The audited rounds. Raises :class:`AuditError` while the reveal phase is open."""
    ann = st.announcement
    if st.reveals_closed is None:
        done = st.rounds_done
        if done < ann.rounds:
            raise AuditError(f"{done} of {ann.rounds} rounds played: the audit starts after round {ann.rounds}")
        raise AuditError(f"the reveal phase is open (seeds revealed by {sorted(st.reveals)} of {ann.n} bidders)")
    revealed = sorted(st.reveals)
    withheld = [i for i in range(ann.n) if i not in st.reveals]
    if withheld:
        return AuditDraw(list(range(1, ann.rounds + 1)), None, revealed, withheld,
                         f"bidder(s) {', '.join(map(str, withheld))} revealed no seed: every round is audited")
    digest = draw_digest(st.log_id, {i: str(st.reveals[i].data["seed"]) for i in revealed})
    return AuditDraw(select_audit_rounds(digest, ann.rounds, ann.audits), digest.hex(), revealed, [], None)


def unconfirmed_reason(draw: AuditDraw) -> str:
    """Why a log whose rounds all check out is not valid: the bidders that never co-signed it."""
    who = ", ".join(map(str, draw.withheld))
    return (f"bidder(s) {who} revealed no seed, so never co-signed this log: whether they were shown this log "
            "(and not another history of the rounds, a split view) is unconfirmed; compare checkpoints with them "
            "(`zkauction log verify --since THEIRS`, or theirs in a monitor's --state: one the auctioneer signed over "
            "another history makes the log invalid)")
