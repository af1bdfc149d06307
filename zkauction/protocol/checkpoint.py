"""Signed checkpoints and the view each party keeps of the log.

A checkpoint is the log operator's signed statement "log L has N entries with Merkle root R"
(RFC 9162's signed tree head). Every party (bidder, auditor, monitor, anyone) keeps the last
checkpoint it accepted, on its own side, and accepts a newer view only as a *proven extension* of
it (a consistency proof), so whatever the auctioneer does to its own database afterwards:

- a smaller log than the kept checkpoint is a rollback or a truncation (:class:`RollbackError`);
- the same size with another root, or a consistency proof that fails, is a fork: two different
  logs shown under the operator's signature (:class:`ForkError`). The kept checkpoint is the
  evidence: it is signed by the auctioneer, and anyone holding the log it now serves can compute
  that log's root at that size and see it differ;
- another log id (the log rebuilt from entry 0, e.g. under new keys) is another log
  (:class:`LogIdentityError`);
- a checkpoint not signed by the announced operator is refused (:class:`CheckpointSignatureError`).

The checkpoint's signed text (one line per field, like a transparency-dev checkpoint note)::

    zkauction-checkpoint-v1
    <log id: hash of entry 0, hex>
    <size, decimal>
    <root, hex>
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zkauction.protocol import merkle
from zkauction.protocol.log import (  # noqa: F401  (the checkpoint format lives with the log)
    CHECKPOINT_HEADER,
    CheckpointError,
    ChainError,
    CheckpointSignatureError,
    Entry,
    Ledger,
    LedgerError,
    SignedCheckpoint,
)
from zkauction.protocol.private import write_private

class LogIdentityError(CheckpointError):
    """A checkpoint or log of another log (another entry 0): for example the log re-keyed."""


class RollbackError(CheckpointError):
    """The log is smaller than a checkpoint already accepted: rolled back or truncated."""


class ForkError(CheckpointError):
    """The log is not an extension of a checkpoint already accepted: a fork (split view)."""


def check_extension(kept: SignedCheckpoint, new: SignedCheckpoint, proof: list[str]) -> None:
    """Raise unless ``new`` is a proven extension of ``kept`` (same log, size not smaller,
    consistency proof valid). Both signatures are the caller's to check."""
    if new.log_id != kept.log_id:
        raise LogIdentityError(f"the log id changed from {kept.log_id[:16]}... to {new.log_id[:16]}...: "
                               "this is another log (rebuilt or re-keyed)")
    if new.size < kept.size:
        raise RollbackError(f"the log has {new.size} entries, fewer than the {kept.size} of the checkpoint kept: "
                            "rolled back or truncated")
    try:
        merkle.verify_consistency(kept.size, new.size, bytes.fromhex(kept.root), bytes.fromhex(new.root),
                                  [bytes.fromhex(h) for h in proof])
    except (merkle.MerkleError, ValueError) as e:
        raise ForkError(f"the log of size {new.size} is not an extension of the checkpoint kept at size "
                        f"{kept.size} (fork): {e}") from None


def check_log_extends(ledger: Ledger, kept: SignedCheckpoint) -> None:
    """Raise unless the entries of ``ledger`` (read in full) extend ``kept``: a party holding the
    whole log compares the log's own root at the kept size with the kept root."""
    if len(ledger) == 0 or ledger.log_id != kept.log_id:
        got = ledger.log_id[:16] + "..." if len(ledger) else "an empty log"
        raise LogIdentityError(f"the log is {got}, not the log {kept.log_id[:16]}... of the checkpoint kept")
    if len(ledger) < kept.size:
        raise RollbackError(f"the log has {len(ledger)} entries, fewer than the {kept.size} of the checkpoint kept: "
                            "rolled back or truncated")
    if ledger.root(kept.size) != kept.root:
        raise ForkError(f"the log's first {kept.size} entries are not the ones of the checkpoint kept (fork or rewrite)")


def attested_size(ledger: Ledger, checkpoints: list[SignedCheckpoint], auctioneer: str) -> int:
    """How much of ``ledger`` the auctioneer vouched for: the largest size of a checkpoint among
    ``checkpoints`` it signed for this log whose root is the root of the log's entries up to that size
    (0: none). Entries beyond it are whatever the file or the server holds, re-placeable by anyone:
    statements are signed without their place in the log."""
    best = 0
    for cp in checkpoints:
        try:
            if cp.log_id == ledger.log_id and cp.size <= len(ledger) and ledger.root(cp.size) == cp.root:
                cp.verify(auctioneer)
                best = max(best, cp.size)
        except CheckpointError:
            continue
    return best


def vouched_prefix(ledger: Ledger, size: int, *, signatures: bool = True, verified: bool = False) -> Ledger:
    """The log's first ``size`` entries (those a checkpoint vouches for, :func:`attested_size`), every
    entry checked: ``ledger`` itself when it holds no more and its chain verifies, else an in-memory
    replica of its first ``size`` rows in the Merkle tree's order, each read at its place (a row's
    stored sequence number is content its hash pins: a copy's renumbered, duplicated or fractional
    rows framed or stopped the verifiers, the twenty-fifth review). Raises :class:`ChainError` naming
    the first bad entry (``.entry``: the row that failed, where there is one). ``verified``: the
    caller has just verified the whole chain (not again)."""
    if size == len(ledger) and ledger.unreadable is None and signatures:  # (else rows it could not read follow)
        try:
            if not verified:
                ledger.verify_chain()
            return ledger
        except ChainError:
            pass  # (read by place below, to name the failure the same way)
    prefix, place, rows = Ledger.in_memory(), 0, ledger.storage.scan(0)
    try:
        while place < size and (e := next(rows, None)) is not None:  # (not a row further: it may be unreadable)
            e = e if e.seq == place else Entry(place, e.round, e.kind, e.payload, e.prev_hash, e.hash, e.signer, e.signature)
            try:
                prefix.replicate([e], signatures=signatures)
            except ChainError as err:
                err.entry = e
                raise
            place += 1
    except ChainError:
        raise
    except LedgerError as err:  # a row of another type than the log writes
        raise ChainError(place, f"unreadable row: {err}") from None
    if place < size:
        raise ChainError(place, f"missing: the copy holds {place} of the {size} entries a checkpoint pins")
    return prefix


def stored_checkpoint(ledger: Ledger, auctioneer: str) -> SignedCheckpoint | None:
    """The newest checkpoint stored with the log (among its 64 newest rows) that is this log's and
    signed by ``auctioneer``: a row of junk, of another log or signed by anyone else is evidence of
    nothing (the twenty-third review: one at the largest size changed what `log verify` reported)."""
    for cp in ledger.stored_checkpoints():
        try:
            if cp.log_id == ledger.log_id:
                cp.verify(auctioneer)
                return cp
        except CheckpointError:
            continue
    return None


def pinned_log(ledger: Ledger, size: int, *, verified: bool = False) -> tuple[Ledger, str | None]:
    """:func:`vouched_prefix` and None; or, where only signatures fail among those entries, the entries
    read without them and the first failure. A checkpoint pins each entry's content and signer, not its
    signature (the Merkle leaf does not cover it), so anyone holding a copy can spoil one; read as
    pinned, the entries are what the auctioneer vouched for, a breach among them its own (a host that
    spoiled one signature of its log was pending for ever: the twenty-second review). A verdict it
    passes needs the signatures. Raises :class:`ChainError` for any other failure."""
    try:
        return vouched_prefix(ledger, size, verified=verified), None
    except ChainError as e:
        if not e.reason.startswith("signature"):
            raise
        spoiled = str(e)
    return vouched_prefix(ledger, size, signatures=False), spoiled


def equivocation(ledger: Ledger, cp: SignedCheckpoint, auctioneer: str, attested: int) -> str | None:
    """``cp``, a checkpoint held outside the log (a bidder's, a monitor's, another fork's), against the
    log's first ``attested`` entries, which a checkpoint the auctioneer signed vouches for
    (:func:`attested_size`): the reason ``cp`` proves that ``auctioneer`` signed two histories of this
    log (its root is not the root of the log's first ``cp.size`` entries), else None (consistent, or
    beyond the attested part: nothing proven about entries anyone could have placed). Raises
    :class:`CheckpointError` for a checkpoint that is no evidence about this log (another log's, not
    signed by its auctioneer)."""
    if len(ledger) == 0 or cp.log_id != ledger.log_id:
        raise LogIdentityError(f"a checkpoint of the log {cp.log_id[:16]}... is no evidence about this log")
    cp.verify(auctioneer)
    if cp.size > attested or ledger.root(cp.size) == cp.root:
        return None
    return (f"the auctioneer signed a checkpoint of size {cp.size} (root {cp.root[:16]}...) that is not the root of "
            f"the first {cp.size} entries of this log, which its checkpoint of size {attested} vouches for: two "
            "histories of one log (a fork or a rewrite)")


class LogView:
    """One party's view of the log: the operator it trusts to sign checkpoints, the log id it
    registered in, and the last checkpoint it accepted (persisted 0600 at ``path`` if given).

    :meth:`observe` accepts the log's newest checkpoint only if it is signed by the operator, is
    for the same log, matches the entries this party reads, and extends the kept one."""

    def __init__(self, operator: str, path: str | Path | None = None, *, log_id: str | None = None):
        self.operator = operator
        self.path = Path(path) if path is not None else None
        self.kept: SignedCheckpoint | None = None
        self.log_id = log_id
        self.checks = 0  # consistency checks made (reported by the demo)
        self._tail: dict[int, Any] = {}  # entries check_tail checked, by sequence number
        self._persisted = -(10**9)  # size of the checkpoint last written to disk
        if self.path is not None and self.path.is_file():
            self.kept = SignedCheckpoint.load(self.path)
            self.log_id = self.log_id or self.kept.log_id
            self._persisted = self.kept.size

    def accept(self, cp: SignedCheckpoint, proof: list[str] | None) -> SignedCheckpoint:
        """Accept ``cp`` given a consistency proof from the kept checkpoint (a light client)."""
        if cp == self.kept and cp.log_id == (self.log_id or cp.log_id):  # the very checkpoint already accepted
            return cp
        cp.verify(self.operator)
        if self.log_id is not None and cp.log_id != self.log_id:
            raise LogIdentityError(f"checkpoint is for log {cp.log_id[:16]}..., not the log {self.log_id[:16]}... "
                                   "this party registered in (rebuilt or re-keyed)")
        if self.kept is not None:
            check_extension(self.kept, cp, proof or [])
            self.checks += 1
        self._keep(cp)
        return cp

    def observe(self, ledger: Ledger) -> SignedCheckpoint:
        """Accept the ledger's newest checkpoint, checking it against the entries themselves."""
        cp = ledger.latest_checkpoint()
        if cp is None:
            raise CheckpointError("the log has no signed checkpoint")
        if cp.size > len(ledger):
            raise RollbackError(f"the newest checkpoint covers {cp.size} entries but the log has {len(ledger)}: truncated")
        if ledger.root(cp.size) != cp.root:
            raise ForkError(f"the log's entries do not hash to its own checkpoint of size {cp.size}")
        proof = ledger.consistency_proof(self.kept.size, cp.size) if self.kept is not None and self.kept.size <= cp.size else []
        if self.kept is not None and cp.size < self.kept.size:
            check_log_extends(ledger, self.kept)  # names the rollback
        return self.accept(cp, proof)

    def check_tail(self, ledger: Ledger, entries: list[Any]) -> bool:
        """Check, in one pass, entries that end the kept checkpoint's log (consecutive, the last one
        at ``kept.size - 1``: a block's closes or outcomes with their checkpoint): each well-formed
        and signed, and all of them with the host's frontier of the log before them hashing to the
        kept root (:func:`~zkauction.protocol.merkle.root_with_tail`). Then :meth:`check_included`
        takes these very entries without a proof each. Returns False, having checked nothing, for
        entries that are not such a tail (the caller checks each by its inclusion proof)."""
        from zkauction.protocol.log import check_entry, leaf_hash_of

        if not entries or self.kept is None or not hasattr(ledger, "frontier"):
            return False
        start = self.kept.size - len(entries)
        if any(e is None or e.seq != start + k for k, e in enumerate(entries)):
            return False
        for e in entries:
            check_entry(e, e.seq, log_id=self.kept.log_id)
        try:
            root = merkle.root_with_tail(start, [bytes.fromhex(h) for h in ledger.frontier(start)],
                                         [leaf_hash_of(e) for e in entries])
        except (merkle.MerkleError, ValueError) as err:
            raise ForkError(f"entries {start}..{self.kept.size - 1}: the host's frontier is malformed ({err})") from None
        if root.hex() != self.kept.root:
            raise ForkError(f"entries {start}..{self.kept.size - 1} are not the end of the log of the checkpoint kept")
        self._tail = {e.seq: e for e in entries}
        return True

    def check_included(self, ledger: Ledger, seq: int, entry: Any = None) -> None:
        """Raise unless entry ``seq`` (``entry``, the very object the caller acts on, if given: the
        host could serve other content on a second read) is well-formed, signed and covered by the
        kept checkpoint (inclusion proof; none for an entry :meth:`check_tail` just checked)."""
        if self.kept is None or seq >= self.kept.size:
            raise CheckpointError(f"entry {seq} is not covered by a checkpoint this party holds")
        e = entry if entry is not None else ledger.get(seq)
        if e is None:
            raise ForkError(f"entry {seq} is covered by the checkpoint kept, but the host does not serve it")
        if self._tail.get(seq) == e:
            return
        from zkauction.protocol.log import check_entry, leaf_hash_of

        check_entry(e, seq, log_id=self.kept.log_id)  # the leaf is the stored hash: the content must hash to it (ChainError)
        try:
            merkle.verify_inclusion(leaf_hash_of(e), seq, self.kept.size,
                                    [bytes.fromhex(h) for h in ledger.inclusion_proof(seq, self.kept.size)],
                                    bytes.fromhex(self.kept.root))
        except merkle.MerkleError as err:
            raise ForkError(f"entry {seq} is not in the log of the checkpoint kept: {err}") from None

    PERSIST_EVERY = 64  # entries: the kept checkpoint on disk lags the one in memory by less than this

    def _keep(self, cp: SignedCheckpoint) -> None:
        self.kept = cp
        self.log_id = cp.log_id
        if self.path is not None and cp.size - self._persisted >= self.PERSIST_EVERY:
            self.flush()

    def flush(self, durable: bool = False) -> None:
        """Write the kept checkpoint to disk (atomic; fsynced if ``durable``: see write_private).
        Done every :data:`PERSIST_EVERY` entries, when the party stops and, durably, before anything
        that checkpoint vouches for leaves the party: a bidder's openings (the close they were sent
        under), disputes and seed reveal. A party that crashes otherwise keeps an older anchor, valid
        but blind to a rewrite of what came after it."""
        if self.path is not None and self.kept is not None and self.kept.size != self._persisted:
            write_private(self.path, self.kept.to_json(), durable=durable)
            self._persisted = self.kept.size
