"""The transparency log: the paper's broadcast channel (Algorithm 1's logs L_theta, L_a, L_p and
everything the audit needs), in the manner of Certificate Transparency (RFC 9162).

Every entry has a sequence number, a round (or None), a kind, a canonical-JSON payload, the hash of
the previous entry, its own hash (SHA3-256 over all of the above and the signer, length-prefixed)
and an Ed25519 signature by its author over that hash (RFC 8032). The entries are the leaves of an
RFC 9162 Merkle tree (leaf data: the 32-byte entry hash; :mod:`zkauction.protocol.merkle`), and the
log operator (the auctioneer) signs *checkpoints* (log id, size, root;
:mod:`zkauction.protocol.checkpoint`). The log id is the hash of entry 0, the announcement: a log
rebuilt under other keys is another log.

Why both a hash chain and a tree: the chain makes a full replay (:meth:`Ledger.verify_chain`) name
the first entry whose hash, link or signature fails; the tree gives every party O(log n) inclusion
proofs for an entry and consistency proofs between two checkpoints, so a party that kept a
checkpoint refuses any later view that is not an extension of it (rollback, truncation, fork).

What neither checks is whether the content is true (an auctioneer can sign a wrong payment): that is
the public checks' and the audit's job (:mod:`zkauction.protocol.state`, :mod:`zkauction.protocol.audit`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from zkauction.protocol import merkle
from zkauction.protocol.storage import (
    DuplicateEntryError,
    Entry,
    LedgerError,
    LogLockedError,
    MemoryStorage,
    SQLiteStorage,
    Storage,
)
from zkauction.protocol.storage_pg import open_storage

__all__ = [
    "GENESIS_HASH", "ChainCheck", "ChainError", "LogChangedError", "DuplicateEntryError", "Entry", "Ledger", "LedgerError",
    "LogLockedError", "SigningKey", "canonical_json", "entry_hash", "leaf_hash_of", "verify_signature",
]

GENESIS_HASH = "0" * 64  # the "previous hash" of entry 0
HASH_DOMAIN = b"zkauction-ledger-entry-v1\x00"


class LogChangedError(LedgerError):
    """The log grew between a writer's read and its append (see ``expect_size``)."""


class ChainError(LedgerError):
    """The chain check failed at entry ``seq`` (the first bad one) for ``reason``."""

    exit_code = 1  # a failed check, not bad input

    def __init__(self, seq: int, reason: str):
        super().__init__(f"ledger entry {seq}: {reason}")
        self.seq = seq
        self.reason = reason


def canonical_json(payload: Any) -> str:
    """The one serialisation that is hashed and stored: sorted keys, no spaces, no NaN/Infinity.

    Floats are written with Python's shortest round-trip repr, so a payload read back hashes the same.
    """
    try:
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")  # a lone surrogate has no UTF-8 form: it could be neither hashed nor stored
        return text
    except (TypeError, ValueError) as e:
        raise LedgerError(f"payload is not canonical JSON (plain dicts, lists, str, int, finite float): {e}") from None


# --------------------------------------------------------------------------------------------------
# Keys


class SigningKey:
    """An Ed25519 key pair (pyca/cryptography, RFC 8032). ``public_hex`` (32 raw bytes, hex) names
    the signer. Keys are stored as PKCS#8 PEM (0600)."""

    def __init__(self, key: Any):
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            kind = "a public key only" if isinstance(key, ed25519.Ed25519PublicKey) else type(key).__name__
            raise LedgerError(f"a signing key needs an Ed25519 private key, got {kind}")
        self._key = key
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public_hex = raw.hex()

    @classmethod
    def generate(cls) -> "SigningKey":
        return cls(ed25519.Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> "SigningKey":
        """The key whose RFC 8032 private seed is ``seed`` (32 bytes): for known-answer vectors."""
        if len(seed) != 32:
            raise LedgerError(f"an Ed25519 seed is 32 bytes, got {len(seed)}")
        return cls(ed25519.Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_pem(cls, text: str) -> "SigningKey":
        try:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as e:
            raise LedgerError(f"not an Ed25519 private key in PEM: {e}") from None
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise LedgerError(f"not an Ed25519 private key in PEM: a {type(key).__name__}")
        return cls(key)

    @classmethod
    def load(cls, path: str | Path) -> "SigningKey":
        path = Path(path)
        if not path.is_file():
            raise LedgerError(f"{path}: no such key file")
        return cls.from_pem(path.read_text())

    def to_pem(self) -> str:
        return self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()).decode()

    def save(self, path: str | Path) -> None:
        from zkauction.protocol.private import write_private

        write_private(Path(path), self.to_pem())

    def sign(self, message: bytes) -> str:
        return self._key.sign(message).hex()


_VERIFIERS: dict[str, Any] = {}


def verify_signature(public_hex: str, message: bytes, signature_hex: str) -> bool:
    """True iff ``signature_hex`` is a valid Ed25519 signature of ``message`` by ``public_hex``."""
    try:
        verifier = _VERIFIERS.get(public_hex)
        if verifier is None:
            verifier = ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
            if len(_VERIFIERS) < 4096:
                _VERIFIERS[public_hex] = verifier
        verifier.verify(bytes.fromhex(signature_hex), message)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


# --------------------------------------------------------------------------------------------------
# Entries


def entry_hash(seq: int, round: int | None, kind: str, payload: str, prev_hash: str, signer: str) -> str:
    """SHA3-256 over the entry's fields (length-prefixed, so no two field lists collide)."""
    h = hashlib.sha3_256(HASH_DOMAIN)
    for field in (str(seq), "" if round is None else str(round), kind, payload, prev_hash, signer):
        b = field.encode("utf-8")
        h.update(len(b).to_bytes(8, "big"))
        h.update(b)
    return h.hexdigest()


def leaf_hash_of(entry: Entry) -> bytes:
    """The entry's Merkle leaf hash: RFC 9162's SHA-256(0x00 || entry hash)."""
    return merkle.leaf_hash(bytes.fromhex(entry.hash))


def check_entry(entry: Entry, expected_seq: int | None = None, expected_prev: str | None = None) -> None:
    """Raise :class:`ChainError` unless ``entry`` is well-formed, hashed and signed (and, where
    given, has the expected sequence number and previous-hash link)."""
    seq = entry.seq
    if expected_seq is not None and seq != expected_seq:
        raise ChainError(expected_seq, f"sequence number is {seq}, expected {expected_seq} (entry missing or reordered)")
    if expected_prev is not None and entry.prev_hash != expected_prev:
        raise ChainError(seq, f"previous-hash link is {entry.prev_hash[:16]}..., expected {expected_prev[:16]}...")
    try:
        json.loads(entry.payload)
    except (json.JSONDecodeError, TypeError):
        raise ChainError(seq, "payload is not valid JSON") from None
    try:
        recomputed = entry_hash(seq, entry.round, entry.kind, entry.payload, entry.prev_hash, entry.signer)
    except UnicodeEncodeError:
        raise ChainError(seq, "a field is not valid Unicode text (lone surrogate)") from None
    if recomputed != entry.hash:
        raise ChainError(seq, f"hash mismatch: stored {entry.hash[:16]}..., content hashes to {recomputed[:16]}...")
    if not verify_signature(entry.signer, bytes.fromhex(entry.hash), entry.signature):
        raise ChainError(seq, f"signature by {entry.signer[:16]}... does not verify")


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
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as e:
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



# --------------------------------------------------------------------------------------------------
# The log


@dataclass(frozen=True)
class ChainCheck:
    """A chain that verified: how many entries, the head hash and the Merkle root."""

    n_entries: int
    head: str
    root: str = ""


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
        prev = GENESIS_HASH
        for e in storage.scan(0):
            if verify:
                check_entry(e, self.tree.size, prev)
            prev = e.hash
            try:
                self.tree.append(leaf_hash_of(e))
            except (ValueError, TypeError):  # merkle.MerkleError is a ValueError
                raise ChainError(e.seq, "the stored hash is not 32 bytes of hex") from None
        self._head = prev

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
                    *, expect_size: int | None = None, checkpoint_key: SigningKey | None = None) -> list[Entry]:
        """Sign and append several entries in one transaction (all or none). ``expect_size``: refuse
        (:class:`LogChangedError`) if the log no longer has that many entries, so a writer that
        decided on what it read appends only if nothing came in since (check-and-append)."""
        self._check_not_moved()
        if expect_size is not None and self.tree.size != expect_size:
            raise LogChangedError(f"the log has {self.tree.size} entries, not the {expect_size} this append was decided on")
        seq, prev, built = self.tree.size, self._head, []
        for kind, payload, key, rnd, unique in items:
            if not isinstance(kind, str) or not kind:
                raise LedgerError("entry kind must be a non-empty string")
            if rnd is not None and (isinstance(rnd, bool) or not isinstance(rnd, int)):
                raise LedgerError(f"round must be an integer or None, got {rnd!r}")
            text = canonical_json(payload)
            h = entry_hash(seq, rnd, kind, text, prev, key.public_hex)
            built.append((Entry(seq, rnd, kind, text, prev, h, key.public_hex, key.sign(bytes.fromhex(h))), unique))
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
                raise
            self._head = prev
            return [e for e, _ in built]
        self.storage.append_many(built)
        for e, _ in built:
            self.tree.append(leaf_hash_of(e))
        self._head = prev
        return [e for e, _ in built]

    def get(self, seq: int) -> Entry:
        e = self.storage.get(seq)
        if e is None:
            raise LedgerError(f"the log has no entry {seq} (size {len(self)})")
        return e

    def entries(self, kind: str | None = None, round: int | None = None, start: int = 0, stop: int | None = None) -> list[Entry]:
        return list(self.storage.scan(start, kind, round, stop))

    def __iter__(self) -> Iterator[Entry]:
        return self.storage.scan(0)

    def root(self, size: int | None = None) -> str:
        return self.tree.root(size).hex()

    def inclusion_proof(self, seq: int, size: int | None = None) -> list[str]:
        return [h.hex() for h in self.tree.inclusion_proof(seq, size)]

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[str]:
        return [h.hex() for h in self.tree.consistency_proof(old_size, new_size)]

    def verify_chain(self) -> ChainCheck:
        """Replay the whole chain. Returns a :class:`ChainCheck`, or raises :class:`ChainError`
        naming the first entry whose sequence number, link, hash or signature fails."""
        prev, n, tree = GENESIS_HASH, 0, merkle.MerkleTree()
        for entry in self.storage.scan(0):
            check_entry(entry, n, prev)
            tree.append(leaf_hash_of(entry))
            prev, n = entry.hash, n + 1
        return ChainCheck(n, prev, tree.root().hex())

    # Signed checkpoints (the operator signs; everyone keeps the last one it accepted).

    def checkpoint(self, key: SigningKey) -> SignedCheckpoint:
        """Sign a checkpoint of the log as it is now and store it beside the entries."""
        cp = SignedCheckpoint.sign(key, self.log_id, len(self), self.root())
        self.storage.put_checkpoint(cp.size, cp.to_json())
        return cp

    def latest_checkpoint(self) -> SignedCheckpoint | None:
        """The newest signed checkpoint stored with the log, or None."""
        text = self.storage.latest_checkpoint()
        return None if text is None else SignedCheckpoint.from_json(text)
