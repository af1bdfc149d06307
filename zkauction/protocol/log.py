"""The ledger: the paper's broadcast channel (Algorithm 1's logs L_theta, L_a, L_p and everything the
audit needs), as an append-only, hash-chained, signed log.

Every entry has a sequence number, a round (or None), a kind, a canonical-JSON payload, the hash of
the previous entry, its own hash (SHA3-256 over all of the above and the signer) and an Ed25519
signature by its author over that hash (pycryptodome, RFC 8032). Anyone holding the file can replay
the chain with :meth:`Ledger.verify_chain`, which names the first entry whose hash, link or signature
fails: editing, deleting or reordering entries behind the ledger's back is detected, and only the
holder of a signer's key can write entries in its name.

What the chain does not check is whether the content is true (an auctioneer can sign a wrong
payment): that is the audit's job (:mod:`zkauction.protocol.audit`).

Storage is one small interface, :class:`Storage`: :class:`SQLiteStorage` (WAL, one transaction per
append, so a crash leaves every committed entry intact and nothing half-written) is the embedded
default, :class:`MemoryStorage` is for tests and benchmarks; a server database can implement the
same four methods.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol

from Crypto.PublicKey import ECC
from Crypto.Signature import eddsa

GENESIS_HASH = "0" * 64  # the "previous hash" of entry 0
HASH_DOMAIN = b"zkauction-ledger-entry-v1\x00"


class LedgerError(ValueError):
    """A ledger that cannot be opened or appended to, with the reason."""


class ChainError(LedgerError):
    """The chain check failed at entry ``seq`` (the first bad one) for ``reason``."""

    def __init__(self, seq: int, reason: str):
        super().__init__(f"ledger entry {seq}: {reason}")
        self.seq = seq
        self.reason = reason


def canonical_json(payload: Any) -> str:
    """The one serialisation that is hashed and stored: sorted keys, no spaces, no NaN/Infinity.

    Floats are written with Python's shortest round-trip repr, so a payload read back hashes the same.
    """
    try:
        return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise LedgerError(f"payload is not canonical JSON (plain dicts, lists, str, int, finite float): {e}") from None


# --------------------------------------------------------------------------------------------------
# Keys


class SigningKey:
    """An Ed25519 key pair (pycryptodome). ``public_hex`` (32 raw bytes, hex) names the signer."""

    def __init__(self, key: ECC.EccKey):
        if not key.has_private():
            raise LedgerError("a signing key needs its private part")
        if key.curve not in ("Ed25519", "ed25519"):
            raise LedgerError(f"expected an Ed25519 key, got curve {key.curve}")
        self._key = key
        self._signer = eddsa.new(key, "rfc8032")
        self.public_hex = key.public_key().export_key(format="raw").hex()

    @classmethod
    def generate(cls) -> "SigningKey":
        return cls(ECC.generate(curve="Ed25519"))

    @classmethod
    def from_pem(cls, text: str) -> "SigningKey":
        try:
            return cls(ECC.import_key(text))
        except (ValueError, IndexError, TypeError) as e:
            raise LedgerError(f"not an Ed25519 private key in PEM: {e}") from None

    @classmethod
    def load(cls, path: str | Path) -> "SigningKey":
        path = Path(path)
        if not path.is_file():
            raise LedgerError(f"{path}: no such key file")
        return cls.from_pem(path.read_text())

    def to_pem(self) -> str:
        return self._key.export_key(format="PEM")

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.to_pem())
        tmp.chmod(0o600)
        tmp.replace(path)

    def sign(self, message: bytes) -> str:
        return self._signer.sign(message).hex()


_VERIFIERS: dict[str, Any] = {}


def verify_signature(public_hex: str, message: bytes, signature_hex: str) -> bool:
    """True iff ``signature_hex`` is a valid Ed25519 signature of ``message`` by ``public_hex``."""
    try:
        verifier = _VERIFIERS.get(public_hex)
        if verifier is None:
            key = eddsa.import_public_key(bytes.fromhex(public_hex))
            verifier = _VERIFIERS.setdefault(public_hex, eddsa.new(key, "rfc8032"))
        verifier.verify(message, bytes.fromhex(signature_hex))
        return True
    except (ValueError, TypeError):
        return False


# --------------------------------------------------------------------------------------------------
# Entries


@dataclass(frozen=True)
class Entry:
    """One ledger entry. ``payload`` is the canonical JSON text; :attr:`data` parses it."""

    seq: int
    round: int | None
    kind: str
    payload: str
    prev_hash: str
    hash: str
    signer: str
    signature: str

    @property
    def data(self) -> Any:
        return json.loads(self.payload)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "round": self.round,
            "kind": self.kind,
            "payload": self.data,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
            "signer": self.signer,
            "signature": self.signature,
        }


def entry_hash(seq: int, round: int | None, kind: str, payload: str, prev_hash: str, signer: str) -> str:
    """SHA3-256 over the entry's fields (length-prefixed, so no two field lists collide)."""
    h = hashlib.sha3_256(HASH_DOMAIN)
    for field in (str(seq), "" if round is None else str(round), kind, payload, prev_hash, signer):
        b = field.encode("utf-8")
        h.update(len(b).to_bytes(8, "big"))
        h.update(b)
    return h.hexdigest()


def check_entry(entry: Entry, expected_seq: int, expected_prev: str) -> None:
    """Raise :class:`ChainError` unless ``entry`` is well-formed, linked, hashed and signed."""
    seq = entry.seq
    if seq != expected_seq:
        raise ChainError(expected_seq, f"sequence number is {seq}, expected {expected_seq} (entry missing or reordered)")
    if entry.prev_hash != expected_prev:
        raise ChainError(seq, f"previous-hash link is {entry.prev_hash[:16]}..., expected {expected_prev[:16]}...")
    try:
        json.loads(entry.payload)
    except (json.JSONDecodeError, TypeError):
        raise ChainError(seq, "payload is not valid JSON") from None
    recomputed = entry_hash(seq, entry.round, entry.kind, entry.payload, entry.prev_hash, entry.signer)
    if recomputed != entry.hash:
        raise ChainError(seq, f"hash mismatch: stored {entry.hash[:16]}..., content hashes to {recomputed[:16]}...")
    if not verify_signature(entry.signer, bytes.fromhex(entry.hash), entry.signature):
        raise ChainError(seq, f"signature by {entry.signer[:16]}... does not verify")


# --------------------------------------------------------------------------------------------------
# Storage


class Storage(Protocol):
    """What the ledger needs from a database. ``append`` must be atomic and must fail (raise
    :class:`LedgerError`) if an entry with that sequence number already exists."""

    def append(self, entry: Entry) -> None: ...

    def last(self) -> Entry | None: ...

    def scan(self, start: int = 0, kind: str | None = None, round: int | None = None) -> Iterator[Entry]: ...

    def close(self) -> None: ...


class MemoryStorage:
    """A list in memory (tests, benchmarks)."""

    def __init__(self) -> None:
        self._entries: list[Entry] = []

    def append(self, entry: Entry) -> None:
        if entry.seq != len(self._entries):
            raise LedgerError(f"cannot append entry {entry.seq}: the ledger has {len(self._entries)} entries")
        self._entries.append(entry)

    def last(self) -> Entry | None:
        return self._entries[-1] if self._entries else None

    def scan(self, start: int = 0, kind: str | None = None, round: int | None = None) -> Iterator[Entry]:
        for e in self._entries[start:]:
            if (kind is None or e.kind == kind) and (round is None or e.round == round):
                yield e

    def close(self) -> None:
        pass


_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY,
    round INTEGER,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    signer TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_kind_round ON entries (kind, round);
CREATE INDEX IF NOT EXISTS entries_round ON entries (round);
-- Defence in depth: honest tools cannot rewrite history. Someone with the file can drop these, and
-- then the hash chain is what catches them.
CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
"""

_COLUMNS = "seq, round, kind, payload, prev_hash, hash, signer, signature"


class SQLiteStorage:
    """SQLite in WAL mode, one transaction per append.

    A process killed at any point leaves the file with every committed append and no partial one.
    ``durable=True`` (``synchronous=FULL``) also survives a power cut after each append returns, at
    the cost of an fsync per entry; ``durable=False`` (``synchronous=NORMAL``) survives process
    crashes but may lose the last appends on a power cut.
    """

    def __init__(self, path: str | Path, *, durable: bool = True):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_file():
            raise LedgerError(f"{self.path}: not a file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise LedgerError(f"{self.path}: not a ledger database ({e})") from None

    @staticmethod
    def _row(r: tuple) -> Entry:
        return Entry(int(r[0]), None if r[1] is None else int(r[1]), r[2], r[3], r[4], r[5], r[6], r[7])

    def append(self, entry: Entry) -> None:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    (top,) = self._db.execute("SELECT MAX(seq) FROM entries").fetchone()
                    n = 0 if top is None else int(top) + 1
                    if entry.seq != n:
                        raise LedgerError(
                            f"cannot append entry {entry.seq}: the ledger has {n} entries (another writer?)"
                        )
                    self._db.execute(
                        f"INSERT INTO entries ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (entry.seq, entry.round, entry.kind, entry.payload, entry.prev_hash, entry.hash,
                         entry.signer, entry.signature),
                    )
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.DatabaseError as e:
                raise LedgerError(f"{self.path}: append of entry {entry.seq} failed: {e}") from None

    def last(self) -> Entry | None:
        with self._lock:
            r = self._db.execute(f"SELECT {_COLUMNS} FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
        return None if r is None else self._row(r)

    def scan(self, start: int = 0, kind: str | None = None, round: int | None = None) -> Iterator[Entry]:
        sql = f"SELECT {_COLUMNS} FROM entries WHERE seq >= ?"
        args: list[Any] = [start]
        if kind is not None:
            sql += " AND kind = ?"
            args.append(kind)
        if round is not None:
            sql += " AND round = ?"
            args.append(round)
        sql += " ORDER BY seq"
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        for r in rows:
            yield self._row(r)

    def close(self) -> None:
        with self._lock:
            self._db.close()


# --------------------------------------------------------------------------------------------------
# The ledger


@dataclass(frozen=True)
class ChainCheck:
    """A chain that verified: how many entries, and the head hash."""

    n_entries: int
    head: str


class Ledger:
    """Append-only, hash-chained, signed log over a :class:`Storage`.

    ``Ledger.open("auction.db")`` opens (or creates) an SQLite ledger. Appends are signed by the
    caller's :class:`SigningKey`; reads never trust the cache of another process (the head is
    re-read before each append, and the storage refuses a sequence number that is taken).
    """

    def __init__(self, storage: Storage):
        self.storage = storage

    @classmethod
    def open(cls, path: str | Path, *, durable: bool = True) -> "Ledger":
        return cls(SQLiteStorage(path, durable=durable))

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
        """Hash of the last entry (GENESIS_HASH for an empty ledger)."""
        last = self.storage.last()
        return GENESIS_HASH if last is None else last.hash

    def __len__(self) -> int:
        last = self.storage.last()
        return 0 if last is None else last.seq + 1

    def append(self, kind: str, payload: Any, key: SigningKey, round: int | None = None) -> Entry:
        """Sign and append one entry; returns it. Atomic: after a crash it is either there or not."""
        if not isinstance(kind, str) or not kind:
            raise LedgerError("entry kind must be a non-empty string")
        if round is not None and (isinstance(round, bool) or not isinstance(round, int)):
            raise LedgerError(f"round must be an integer or None, got {round!r}")
        text = canonical_json(payload)
        last = self.storage.last()
        seq = 0 if last is None else last.seq + 1
        prev = GENESIS_HASH if last is None else last.hash
        h = entry_hash(seq, round, kind, text, prev, key.public_hex)
        entry = Entry(seq, round, kind, text, prev, h, key.public_hex, key.sign(bytes.fromhex(h)))
        self.storage.append(entry)
        return entry

    def entries(self, kind: str | None = None, round: int | None = None, start: int = 0) -> list[Entry]:
        return list(self.storage.scan(start, kind, round))

    def __iter__(self) -> Iterator[Entry]:
        return self.storage.scan(0)

    def verify_chain(self) -> ChainCheck:
        """Replay the whole chain. Returns a :class:`ChainCheck`, or raises :class:`ChainError`
        naming the first entry whose sequence number, link, hash or signature fails."""
        prev, n = GENESIS_HASH, 0
        for entry in self.storage.scan(0):
            check_entry(entry, n, prev)
            prev, n = entry.hash, n + 1
        return ChainCheck(n, prev)
