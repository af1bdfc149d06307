"""The transparency log: the paper's broadcast channel (Algorithm 1's logs L_theta, L_a, L_p and
everything the audit needs), in the manner of Certificate Transparency (RFC 9162).

Every entry has a sequence number, a round (or None), a kind, a canonical-JSON payload, the hash of
the previous entry, its own hash (SHA3-256 over all of the above and the signer, length-prefixed)
and an Ed25519 signature by its author (RFC 8032) over its *statement*: SHA3-256 over the log id,
round, kind, payload and signer (:func:`statement_hash`), not over the position. An author signs what
it says and in which log; the operator, who sequences the log, places it. So a bidder on another
machine signs its entry before it knows where the entry will land, many bidders submit at once, and
the position is bound by the chain, the Merkle tree and the operator's signed checkpoints. (A
statement the operator replays is the same statement again: the state reader counts the first.) The entries are the leaves of an
RFC 9162 Merkle tree (leaf data: the 32-byte entry hash; :mod:`zkauction.protocol.merkle`), and the
log operator (the auctioneer) signs *checkpoints* (log id, size, root;
:mod:`zkauction.protocol.checkpoint`). The log id is the hash of entry 0, the announcement: a log
rebuilt under other keys is another log. An author may sign many statements with one batch
signature (``Ledger.append_many(..., batch_sign=True)``, :meth:`Statement.sign_many`; the format is in
:mod:`zkauction.protocol.entries`): each entry still carries its own signature string, checked alone.

Why both a hash chain and a tree: the chain makes a full replay (:meth:`Ledger.verify_chain`) name
the first entry whose hash, link or signature fails; the tree gives every party O(log n) inclusion
proofs for an entry and consistency proofs between two checkpoints, so a party that kept a
checkpoint refuses any later view that is not an extension of it (rollback, truncation, fork).

What neither checks is whether the content is true (an auctioneer can sign a wrong payment): that is
the public checks' and the audit's job (:mod:`zkauction.protocol.state`, :mod:`zkauction.protocol.audit`).
"""

from __future__ import annotations

import json
from collections import Counter, OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from zkauction.protocol import merkle
from zkauction.protocol.storage import (
    DuplicateEntryError,
    Entry,
    LedgerError,
    LogLockedError,
    MemoryStorage,
    Storage,
    parse_json,
)
from zkauction.protocol.storage_pg import is_postgres_url, open_storage

__all__ = [
    "BATCH_DOMAIN", "GENESIS_HASH", "ChainCheck", "ChainError", "LogChangedError", "DuplicateEntryError", "Entry",
    "Ledger", "LedgerError", "LogLockedError", "SigningKey", "Statement", "canonical_json", "entry_hash", "leaf_hash_of",
    "statement_hash", "verify_signature",
]


class LogChangedError(LedgerError):
    """The log grew between a writer's read and its append (see ``expect_size``)."""


from zkauction.protocol.entries import (  # noqa: F401  (re-exported: the log's public names)
    BATCH_DOMAIN, GENESIS_HASH, ChainError, SigningKey, Statement, canonical_json, check_entry,
    entry_hash, leaf_hash_of, statement_hash, verify_signature,
)


# --------------------------------------------------------------------------------------------------
# Signed checkpoints (RFC 9162's signed tree head; the views parties keep are in checkpoint.py)

CHECKPOINT_HEADER = "zkauction-checkpoint-v1"


class CheckpointError(LedgerError):
    """A checkpoint or a view of the log that a party must refuse, with the reason."""

    exit_code = 1  # a failed check (rollback, fork, another log), not bad input


class CheckpointSignatureError(CheckpointError):
    """A checkpoint whose signature is not the announced operator's."""


def _hex32(value: Any, what: str) -> str:
    if not isinstance(value, str) or len(value) != 64:
        raise CheckpointError(f"checkpoint {what} must be 64 hex characters")
    try:
        bytes.fromhex(value)
    except ValueError:
        raise CheckpointError(f"checkpoint {what} is not hex") from None
    return value.lower()


@dataclass(frozen=True)
class SignedCheckpoint:
    log_id: str
    size: int
    root: str
    signer: str
    signature: str

    @staticmethod
    def message(log_id: str, size: int, root: str) -> bytes:
        return f"{CHECKPOINT_HEADER}\n{log_id}\n{size}\n{root}\n".encode()

    @classmethod
    def sign(cls, key: SigningKey, log_id: str, size: int, root: str) -> "SignedCheckpoint":
        return cls(log_id, size, root, key.public_hex, key.sign(cls.message(log_id, size, root)))

    def verify(self, operator: str) -> None:
        """Raise unless this checkpoint is signed by ``operator`` (public key hex)."""
        if self.signer != operator:
            raise CheckpointSignatureError(f"checkpoint of size {self.size} is signed by {self.signer[:16]}..., "
                                           f"not by the announced auctioneer {operator[:16]}...")
        if not verify_signature(operator, self.message(self.log_id, self.size, self.root), self.signature):
            raise CheckpointSignatureError(f"checkpoint of size {self.size}: the signature does not verify")

    def to_dict(self) -> dict[str, Any]:
        return {"log_id": self.log_id, "size": self.size, "root": self.root, "signer": self.signer, "signature": self.signature}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: Any) -> "SignedCheckpoint":
        if not isinstance(d, dict):
            raise CheckpointError("a checkpoint must be a JSON object")
        missing = [k for k in ("log_id", "size", "root", "signer", "signature") if k not in d]
        if missing:
            raise CheckpointError(f"checkpoint: missing field(s) {', '.join(missing)}")
        size = d["size"]
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise CheckpointError(f"checkpoint size must be a non-negative integer, got {size!r}")
        if not isinstance(d["signature"], str):
            raise CheckpointError("checkpoint signature must be hex text")
        return cls(_hex32(d["log_id"], "log_id"), size, _hex32(d["root"], "root"), _hex32(d["signer"], "signer"),
                   d["signature"])

    @classmethod
    def from_json(cls, text: str) -> "SignedCheckpoint":
        try:
            return cls.from_dict(parse_json(text))
        except (json.JSONDecodeError, TypeError) as e:  # (TypeError: a stored value that is not text)
            raise CheckpointError(f"checkpoint is not valid JSON: {e}") from None

    @classmethod
    def load(cls, path: str | Path) -> "SignedCheckpoint":
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: no such checkpoint file")
        try:
            return cls.from_json(path.read_text())
        except CheckpointError as e:
            raise CheckpointError(f"{path}: {e}") from None
        except UnicodeDecodeError:
            raise CheckpointError(f"{path}: not a checkpoint (not UTF-8 text)") from None



# --------------------------------------------------------------------------------------------------
# The log


@dataclass(frozen=True)
class ChainCheck:
    """A chain that verified: how many entries, the head hash and the Merkle root."""

    n_entries: int
    head: str
    root: str = ""


def remove_log_files(db: str | Path) -> None:
    """Remove an SQLite log's files (the file a symlink names, its WAL and shared memory), never its
    lock file; call it only while holding the writer's lock on a log this process just created and
    that holds nothing of anyone else's (:func:`announcing`). A PostgreSQL URL: nothing."""
    if is_postgres_url(db):
        return
    path = Path(db).resolve()
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


@contextmanager
def announcing(db: str | Path, *, durable: bool = True) -> Iterator["Ledger"]:
    """The log at ``db``, opened as its writer (the lock taken first: a log another writer holds
    raises :class:`LogLockedError` and nothing is touched), for a first announcement. If the block
    raises and the log held no entry when it was opened, its files are removed while the lock is
    still held (:func:`remove_log_files`), so that the corrected command starts afresh instead of
    meeting an empty log it refuses."""
    ledger = Ledger.open(db, durable=durable)
    empty = len(ledger) == 0
    try:
        yield ledger
    except BaseException:
        if empty:
            remove_log_files(db)
        raise
    finally:
        ledger.close()


ROUNDS_KEPT = 256  # a writer's checked round lookups kept in memory (a few blocks' worth)


class Ledger:
    """The append-only, hash-chained, signed log with its Merkle tree, over a :class:`Storage`.

    ``Ledger.open("auction.db")`` opens (or creates) an SQLite log for writing: it takes the
    writer's lock and replays the whole chain first (an honest writer never appends to a log whose
    history does not verify). ``Ledger.open(path, writer=False)`` is a read-only view (anyone,
    no lock). The Merkle tree is rebuilt from the stored entry hashes on open.
    """

    def __init__(self, storage: Storage, *, verify: bool = False):
        self.storage = storage
        self.tree = merkle.MerkleTree()
        self._head = GENESIS_HASH
        # how many entries of each round and of each kind the full read holds: a filtered lookup
        # (an index) must return as many, so a doctored index cannot hide an entry a replay sees
        self._per_round: Counter[int | None] = Counter()
        self._per_kind: Counter[str] = Counter()
        # a writer's checked lookups by round, until it appends to that round (the writer's lock: no
        # other process appends); a reader always asks the storage, which may have grown
        self._rounds_seen: OrderedDict[int, list[Entry]] = OrderedDict()
        self._keep_rounds = ROUNDS_KEPT if getattr(storage, "writer", True) else 0
        # a reader stops at the first row it cannot read (a host's junk after its checkpoints hid what they
        # pin from every offline verifier: the twenty-third review); verify_chain names it, as damage
        self.unreadable: ChainError | None = None
        prev = log_id = GENESIS_HASH
        try:
            for e in storage.scan(0):
                if verify:
                    check_entry(e, self.tree.size, prev, log_id=log_id)
                try:
                    self.tree.append(leaf_hash_of(e))
                except (ValueError, TypeError):  # merkle.MerkleError is a ValueError
                    raise ChainError(e.seq, "the stored hash is not 32 bytes of hex") from None
                prev, log_id = e.hash, (e.hash if self.tree.size == 1 else log_id)
                self._counted(e)
        except LedgerError as err:  # (ChainError is one)
            if verify:
                raise
            self.unreadable = err if isinstance(err, ChainError) else ChainError(self.tree.size, f"unreadable row: {err}")
        self._head = prev

    def _counted(self, e: Entry) -> None:
        self._per_round[e.round] += 1
        self._per_kind[e.kind] += 1
        self._rounds_seen.pop(e.round, None)

    @classmethod
    def open(cls, path: str | Path, *, durable: bool = True, writer: bool = True, verify: bool | None = None) -> "Ledger":
        storage = open_storage(path, durable=durable, writer=writer)  # a file path, or a postgresql:// URL
        try:
            return cls(storage, verify=writer if verify is None else verify)
        except BaseException:
            storage.close()
            raise

    @classmethod
    def in_memory(cls) -> "Ledger":
        return cls(MemoryStorage())

    def close(self) -> None:
        self.storage.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def head(self) -> str:
        """Hash of the last entry (GENESIS_HASH for an empty log)."""
        return self._head

    def __len__(self) -> int:
        return self.tree.size

    @property
    def log_id(self) -> str:
        """The hash of entry 0 (the announcement): names this log."""
        first = self.storage.get(0)
        if first is None:
            raise LedgerError("the log is empty: it has no id before its announcement")
        return first.hash

    def replicate(self, entries: Iterable[Entry], *, signatures: bool = True) -> int:
        """Append entries signed and placed by another log's operator (a replica of that log): each
        must be the next one here (sequence number, link, hash, signature for this log), else
        :class:`ChainError` names it and nothing from it on is added. Returns how many were added.
        ``signatures=False`` (a verifier's reading of what a checkpoint pins) leaves signatures unchecked."""
        n = 0
        for e in entries:
            check_entry(e, self.tree.size, self._head, log_id=e.hash if self.tree.size == 0 else self.log_id,
                        signatures=signatures)
            self.storage.append_many([(e, None)])
            self.tree.append(leaf_hash_of(e))
            self._counted(e)
            self._head = e.hash
            n += 1
        return n

    def _check_not_moved(self) -> None:
        last = self.storage.last()
        if (GENESIS_HASH if last is None else last.hash) != self._head or (0 if last is None else last.seq + 1) != self.tree.size:
            raise LedgerError("the log changed under this writer (another writer, or the file was replaced): reopen it")

    def append(self, kind: str, payload: Any, key: SigningKey, round: int | None = None, *, unique: str | None = None,
               checkpoint_key: SigningKey | None = None) -> Entry:
        """Sign and append one entry; returns it. Atomic: after a crash it is either there or not.
        ``unique`` is a key no other entry of the log may carry (e.g. ``outcome/7``);
        ``checkpoint_key`` signs a checkpoint covering it, stored in the same transaction."""
        return self.append_many([(kind, payload, key, round, unique)], checkpoint_key=checkpoint_key)[0]

    def append_many(self, items: Sequence[tuple[str, Any, SigningKey, int | None, str | None]],
                    *, expect_size: int | None = None, checkpoint_key: SigningKey | None = None,
                    batch_sign: bool = False) -> list[Entry]:
        """Sign and append several entries in one transaction (all or none). ``expect_size``: refuse
        (:class:`LogChangedError`) if the log no longer has that many entries, so a writer that
        decided on what it read appends only if nothing came in since (check-and-append).
        ``batch_sign``: each key signs all its entries of this call with one batch signature
        (:meth:`Statement.sign_many`; entry 0, which defines the log id, is signed alone)."""
        statements: list[Statement] = []
        log_id = self.log_id if self.tree.size else ""
        for kind, payload, key, rnd, unique in items:
            if batch_sign and log_id:  # the rest is batch-signed below, for this log id
                break
            st = Statement.sign(key, log_id, kind, payload, rnd, unique)
            if not log_id:  # entry 0 defines the log: the rest of the batch is signed for its id
                log_id = entry_hash(0, st.round, st.kind, st.payload, GENESIS_HASH, st.signer)
            statements.append(st)
        if batch_sign:
            statements += self._batch_signed(items[len(statements):], log_id)
        return self._place(statements, expect_size, checkpoint_key)

    @staticmethod
    def _batch_signed(items: Sequence[tuple[str, Any, SigningKey, int | None, str | None]],
                      log_id: str) -> list[Statement]:
        """``items`` signed for ``log_id``, one :meth:`Statement.sign_many` per key, in the items' order."""
        groups: dict[str, tuple[SigningKey, list[int]]] = {}
        for i, (_, _, key, _, _) in enumerate(items):
            groups.setdefault(key.public_hex, (key, []))[1].append(i)
        out: dict[int, Statement] = {}
        for key, positions in groups.values():
            own = [(items[i][0], items[i][1], items[i][3], items[i][4]) for i in positions]  # (kind, payload, round, unique)
            for i, st in zip(positions, Statement.sign_many(key, log_id, own)):
                out[i] = st
        return [out[i] for i in range(len(items))]

    def append_signed(self, statements: Sequence[Statement], *, expect_size: int | None = None,
                      checkpoint_key: SigningKey | None = None) -> list[Entry]:
        """Place statements signed elsewhere (a remote party's submissions), in one transaction.
        Each must be canonical and signed for this log (:class:`LedgerError` otherwise, nothing
        written); who may say what is the protocol's business (:mod:`zkauction.protocol.state`)."""
        log_id = self.log_id if self.tree.size else ""
        for st in statements:
            st.check(log_id)
            if not log_id:
                log_id = entry_hash(0, st.round, st.kind, st.payload, GENESIS_HASH, st.signer)
        return self._place(list(statements), expect_size, checkpoint_key)

    def _place(self, statements: Sequence[Statement], expect_size: int | None,
               checkpoint_key: SigningKey | None) -> list[Entry]:
        self._check_not_moved()
        if expect_size is not None and self.tree.size != expect_size:
            raise LogChangedError(f"the log has {self.tree.size} entries, not the {expect_size} this append was decided on")
        seq, prev, built = self.tree.size, self._head, []
        for st in statements:
            h = entry_hash(seq, st.round, st.kind, st.payload, prev, st.signer)
            built.append((Entry(seq, st.round, st.kind, st.payload, prev, h, st.signer, st.signature), st.unique))
            seq, prev = seq + 1, h
        if checkpoint_key is not None:  # signed over the tree as it will be, stored in the same transaction
            log_id = self.log_id if self.tree.size else built[0][0].hash
            for e, _ in built:
                self.tree.append(leaf_hash_of(e))
            try:
                cp = SignedCheckpoint.sign(checkpoint_key, log_id, self.tree.size, self.tree.root().hex())
                self.storage.append_many(built, (cp.size, cp.to_json()))
            except BaseException:  # nothing was stored: the tree goes back to what the storage holds
                self.tree = merkle.MerkleTree.from_leaf_hashes(leaf_hash_of(e) for e in self.storage.scan(0))
                self._rounds_seen.clear()  # (and no round looked up before is taken on trust)
                raise
            for e, _ in built:
                self._counted(e)
            self._head = prev
            return [e for e, _ in built]
        self.storage.append_many(built)
        for e, _ in built:
            self.tree.append(leaf_hash_of(e))
            self._counted(e)
        self._head = prev
        return [e for e, _ in built]

    def get(self, seq: int) -> Entry:
        e = self.storage.get(seq)
        if e is None:
            raise LedgerError(f"the log has no entry {seq} (size {len(self)})")
        return e

    def entries(self, kind: str | None = None, round: int | None = None, start: int = 0, stop: int | None = None) -> list[Entry]:
        """The entries from ``start`` to ``stop`` (all by default), of one ``kind`` and/or ``round``.
        A lookup by kind or round is checked against the full read made on open: every entry it
        returns has that kind and round, comes once, in order, as that read found it (its leaf in the
        Merkle tree), and it returns as many of the first ``len(self)`` entries as that read counted
        (so exactly the entries that read found), else :class:`LedgerError` (a damaged or doctored index would
        otherwise hide an entry from every lookup, e.g. ``zkauction verify --db``, that a replay,
        e.g. ``zkauction log verify``, sees). A lookup of both reads the round and keeps the kind."""
        bound = len(self) if self.unreadable is not None else None  # (a reader of a damaged file: the rows it read)
        if (kind is None and round is None) or start or stop is not None:
            return list(self.storage.scan(start, kind, round, stop if stop is not None else bound))
        seen = self._rounds_seen.get(round) if round is not None else None
        if seen is not None:
            self._rounds_seen.move_to_end(round)
            return list(seen) if kind is None else [e for e in seen if e.kind == kind]
        got = list(self.storage.scan(0, None if round is not None else kind, round, bound))
        what, want = (f"round {round}", self._per_round[round]) if round is not None else (f"kind {kind!r}", self._per_kind[kind])
        last = -1
        for e in got:
            if (round is not None and e.round != round) or (round is None and e.kind != kind):
                raise LedgerError(f"the log's lookup of {what} returned entry {e.seq} of round {e.round}, kind {e.kind!r}: "
                                  "a damaged or doctored index")
            if e.seq <= last:
                raise LedgerError(f"the log's lookup of {what} returned entry {e.seq} after entry {last}: "
                                  "a damaged or doctored index")
            last = e.seq
            if e.seq < self.tree.size and self.tree.leaf_hash_at(e.seq) != leaf_hash_of(e):
                raise LedgerError(f"the log's lookup of {what} returned an entry {e.seq} that is not the full read's: "
                                  "a damaged or doctored index")
        held = sum(e.seq < self.tree.size for e in got)
        if held != want:
            raise LedgerError(f"the log's lookup of {what} returned {held} of its first {self.tree.size} entries, "
                              f"its full read holds {want}: a damaged or doctored index (it hides entries from "
                              "lookups that a replay sees)")
        if round is not None and self._keep_rounds and held == len(got):
            self._rounds_seen[round] = list(got)
            if len(self._rounds_seen) > self._keep_rounds:
                self._rounds_seen.popitem(last=False)
        return got if kind is None or round is None else [e for e in got if e.kind == kind]

    def __iter__(self) -> Iterator[Entry]:
        return self.storage.scan(0)

    def root(self, size: int | None = None) -> str:
        return self.tree.root(size).hex()

    def frontier(self, size: int) -> list[str]:
        """The roots of the perfect subtrees of the tree of the first ``size`` entries (see
        :func:`~zkauction.protocol.merkle.root_with_tail`)."""
        return [h.hex() for h in self.tree.frontier(size)]

    def inclusion_proof(self, seq: int, size: int | None = None) -> list[str]:
        return [h.hex() for h in self.tree.inclusion_proof(seq, size)]

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[str]:
        return [h.hex() for h in self.tree.consistency_proof(old_size, new_size)]

    def verify_chain(self) -> ChainCheck:
        """Replay the whole chain. Returns a :class:`ChainCheck`, or raises :class:`ChainError`
        naming the first entry whose sequence number, link, hash or signature fails."""
        prev, n, tree, log_id = GENESIS_HASH, 0, merkle.MerkleTree(), GENESIS_HASH
        try:
            for entry in self.storage.scan(0):
                try:
                    check_entry(entry, n, prev, log_id=log_id)
                except ChainError as err:
                    err.entry = entry  # (the row that failed, which storage.get(err.seq) need not return)
                    raise
                tree.append(leaf_hash_of(entry))
                prev, n = entry.hash, n + 1
                log_id = entry.hash if n == 1 else log_id
        except ChainError:
            raise
        except LedgerError as e:  # a row of another type than the log writes
            raise ChainError(n, f"unreadable row: {e}") from None
        return ChainCheck(n, prev, tree.root().hex())

    # Signed checkpoints (the operator signs; everyone keeps the last one it accepted).

    def checkpoint(self, key: SigningKey) -> SignedCheckpoint:
        """Sign a checkpoint of the log as it is now and store it beside the entries."""
        cp = SignedCheckpoint.sign(key, self.log_id, len(self), self.root())
        self.storage.put_checkpoint(cp.size, cp.to_json())
        return cp

    def stored_checkpoints(self) -> Iterator[SignedCheckpoint]:
        """The readable checkpoints stored with the log, newest first (among its 64 newest rows). A row
        that is not a checkpoint (a host's junk, at the largest size) is passed over, not raised: it
        left every verifier without a verdict (the twenty-second review). Whose signature it carries,
        and whether the log holds it, is each verifier's to check."""
        for text in self.storage.recent_checkpoints(64):
            try:
                yield SignedCheckpoint.from_json(text)
            except CheckpointError:
                continue

    def latest_checkpoint(self) -> SignedCheckpoint | None:
        """The newest readable checkpoint stored with the log (:meth:`stored_checkpoints`), or None."""
        return next(self.stored_checkpoints(), None)
