"""Entries of the transparency log, one at a time: canonical JSON, Ed25519 keys, entry and statement
hashes, signed statements and the check of one entry (:func:`check_entry`). The log itself (chain,
tree, checkpoints, storage) is :mod:`zkauction.protocol.log`, which re-exports all of this.

Signatures come in two forms, and :func:`verify_signature` accepts both wherever a signature is checked
(entries, statements, checkpoints, openings):

- **plain**: the Ed25519 signature (RFC 8032) of the message, exactly 128 hex characters;
- **batch** (:meth:`SigningKey.sign_many`): one Ed25519 signature covers k >= 2 messages. The messages
  are the leaf data of an RFC 9162 Merkle tree (:mod:`zkauction.protocol.merkle`: leaf hash
  SHA-256(0x00 || message)); the key signs ``BATCH_DOMAIN || k || root`` once (k as 4 bytes,
  big-endian), and message i's signature is the text ``b1.<i>.<k>.<sig>.<path>``: ``i`` and ``k`` in
  decimal without sign or leading zero (0 <= i < k, 2 <= k <= 2**20), ``sig`` the 128 hex characters
  of the Ed25519 signature, ``path`` the RFC 9162 inclusion proof of leaf i in the tree of size k, its
  32-byte hashes in hex, concatenated (exactly 64 characters per element, no separator). Hex may be
  upper or lower case; anything else is not a batch signature and verifies nothing. A verifier
  recomputes the root from the message, i, k and the path, and checks the Ed25519 signature over
  ``BATCH_DOMAIN || k || root``; a success is cached per process by (key, k, root, signature), so a
  batch costs one Ed25519 verification however many of its messages are checked.

Threats: whoever holds a signature (the auctioneer hosts the log) may alter any part of it or present
it with another message; that must verify nothing the key did not sign. The root is recomputed from
the message, so a message outside the batch, a swapped path or index, or a changed message gives
another root, which the key never signed (the cache is keyed by that root, and only successes are
kept). k is signed because the root alone does not fix it: leaf 0 of 7 and leaf 0 of 8 have paths
of the same shape, so an unsigned k could be changed and the string still verify (the same message,
but a second spelling of its signature). ``BATCH_DOMAIN`` keeps a batch root from being a plain
signed message and the other way round: every plain message this package signs is 32 bytes
(statement hashes) or starts with its own domain. What a batch signature does not hide: its path is
the hashes of other messages of the batch, so a key must not batch messages whose leaf hash reveals
a secret (a low-entropy one can be guessed and hashed). A signature string is still not the only one
of its message (plain and batch forms, hex case): nothing hashes it, and only what it signs counts.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from zkauction.protocol import merkle
from zkauction.protocol.storage import Entry, LedgerError, parse_json

GENESIS_HASH = "0" * 64  # the "previous hash" of entry 0
HASH_DOMAIN = b"zkauction-ledger-entry-v1\x00"
STATEMENT_DOMAIN = b"zkauction-ledger-statement-v1\x00"
BATCH_DOMAIN = b"zkauction-signature-batch-v1\x00"  # a batch signature signs this || count || Merkle root
MAX_BATCH = 2**20  # the most messages one batch signature covers (a path of at most 20 hashes)


def outcome_digest(e: Entry) -> str:
    """The SHA-256 of an entry's signed payload (its canonical text): what a third party's verdict
    names of the outcome it judged, so that it is a verdict on that outcome only."""
    return hashlib.sha256(e.payload.encode()).hexdigest()


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
        """The plain signature of ``message``: 128 hex characters."""
        return self._key.sign(message).hex()

    def sign_many(self, messages: Sequence[bytes]) -> list[str]:
        """One signature string per message, all from one Ed25519 signature (the batch form of the
        module doc); a single message gets its plain signature, and no message none."""
        k = len(messages)
        if not all(isinstance(m, (bytes, bytearray)) for m in messages):
            raise LedgerError("sign_many signs bytes messages only")
        if k > MAX_BATCH:
            raise LedgerError(f"a batch signature covers at most {MAX_BATCH} messages, got {k}")
        if k < 2:
            return [self.sign(m) for m in messages]
        tree = merkle.MerkleTree.from_leaf_hashes(merkle.leaf_hash(bytes(m)) for m in messages)
        sig = self.sign(_batch_message(k, tree.root()))
        return [f"b1.{i}.{k}.{sig}." + "".join(p.hex() for p in tree.inclusion_proof(i)) for i in range(k)]


_VERIFIERS: dict[str, Any] = {}
_BATCH_VERIFIED: set[tuple[str, bytes, bytes]] = set()  # (key, signed message, signature) that verified
_BATCH_CACHE_SIZE = 65536
_PLAIN = re.compile(r"[0-9a-fA-F]{128}")
_BATCH = re.compile(r"b1\.(0|[1-9][0-9]{0,6})\.([1-9][0-9]{0,6})\.([0-9a-fA-F]{128})\.((?:[0-9a-fA-F]{64}){0,20})")


def _ed25519_verify(public_hex: str, signature: bytes, message: bytes) -> bool:
    """The one Ed25519 verification (RFC 8032, pyca/cryptography) every signature check ends in."""
    verifier = _VERIFIERS.get(public_hex)
    if verifier is None:
        verifier = ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
        if len(_VERIFIERS) < 4096:
            _VERIFIERS[public_hex] = verifier
    try:
        verifier.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def _batch_message(count: int, root: bytes) -> bytes:
    """What the one Ed25519 signature of a batch of ``count`` messages with Merkle root ``root`` signs."""
    return BATCH_DOMAIN + count.to_bytes(4, "big") + root


def _batch_root(message: bytes, index: int, count: int, path_hex: str) -> bytes | None:
    """The Merkle root that ``path_hex`` gives for ``message`` at ``index`` of ``count``, or None if
    the numbers or the path's length are not those of an RFC 9162 inclusion proof."""
    if not 2 <= count <= MAX_BATCH or not 0 <= index < count:
        return None
    path = [bytes.fromhex(path_hex[j:j + 64]) for j in range(0, len(path_hex), 64)]
    if len(path) != merkle._inclusion_proof_length(index, count):  # the verifier's own rule (RFC 9162 2.1.3.2)
        return None
    return merkle._root_from_inclusion(merkle.leaf_hash(message), index, count, path)


def verify_signature(public_hex: str, message: bytes, signature_hex: str) -> bool:
    """True iff ``signature_hex`` is a valid signature of ``message`` by ``public_hex``: its plain
    Ed25519 signature or a batch signature covering it (module doc). Never raises: anything
    malformed is simply not a valid signature."""
    try:
        if not isinstance(message, (bytes, bytearray)) or not isinstance(signature_hex, str):
            return False
        if _PLAIN.fullmatch(signature_hex):
            return _ed25519_verify(public_hex, bytes.fromhex(signature_hex), message)
        parts = _BATCH.fullmatch(signature_hex)
        if parts is None:
            return False
        count = int(parts[2])
        root = _batch_root(bytes(message), int(parts[1]), count, parts[4])
        if root is None:
            return False
        key = (public_hex, _batch_message(count, root), bytes.fromhex(parts[3]))
        if key in _BATCH_VERIFIED:
            return True
        if not _ed25519_verify(public_hex, key[2], key[1]):
            return False  # never cached: a failure is checked again every time
        if len(_BATCH_VERIFIED) >= _BATCH_CACHE_SIZE:
            _BATCH_VERIFIED.clear()
        _BATCH_VERIFIED.add(key)
        return True
    except (ValueError, TypeError):  # e.g. a public key that is not 32 bytes of hex, an argument of the wrong type
        return False


# --------------------------------------------------------------------------------------------------
# Entries


def _fields_hash(domain: bytes, fields: Sequence[str]) -> str:
    h = hashlib.sha3_256(domain)
    for field in fields:
        b = field.encode("utf-8")
        h.update(len(b).to_bytes(8, "big"))
        h.update(b)
    return h.hexdigest()


def entry_hash(seq: int, round: int | None, kind: str, payload: str, prev_hash: str, signer: str) -> str:
    """SHA3-256 over the entry's fields (length-prefixed, so no two field lists collide)."""
    return _fields_hash(HASH_DOMAIN, (str(seq), "" if round is None else str(round), kind, payload, prev_hash, signer))


def statement_hash(log_id: str, round: int | None, kind: str, payload: str, signer: str) -> str:
    """What an entry's author signs: SHA3-256 over the log id ("" for entry 0, the announcement that
    defines the log), round, kind, payload and signer (length-prefixed)."""
    return _fields_hash(STATEMENT_DOMAIN, (log_id, "" if round is None else str(round), kind, payload, signer))


@dataclass(frozen=True)
class Statement:
    """A signed entry before the operator places it: what a remote party submits. ``payload`` is
    the exact canonical JSON text that is signed and stored."""

    kind: str
    round: int | None
    payload: str
    signer: str
    signature: str
    unique: str | None = None

    @classmethod
    def sign(cls, key: "SigningKey", log_id: str, kind: str, payload: Any, round: int | None = None,
             unique: str | None = None) -> "Statement":
        return cls.sign_many(key, log_id, [(kind, payload, round, unique)])[0]

    @classmethod
    def sign_many(cls, key: "SigningKey", log_id: str,
                  items: Sequence[tuple[str, Any, int | None, str | None]]) -> list["Statement"]:
        """Statements ``(kind, payload, round, unique)`` for ``log_id``, all signed with one
        :meth:`SigningKey.sign_many` (a batch signature each; a single one gets a plain signature)."""
        texts, hashes = [], []
        for kind, payload, round, _ in items:
            text = canonical_json(payload)
            if not isinstance(kind, str) or not kind:
                raise LedgerError("entry kind must be a non-empty string")
            if round is not None and (isinstance(round, bool) or not isinstance(round, int)):
                raise LedgerError(f"round must be an integer or None, got {round!r}")
            texts.append(text)
            hashes.append(bytes.fromhex(statement_hash(log_id, round, kind, text, key.public_hex)))
        signatures = key.sign_many(hashes)
        return [cls(kind, round, text, key.public_hex, sig, unique)
                for (kind, _, round, unique), text, sig in zip(items, texts, signatures)]

    def check(self, log_id: str) -> None:
        """Raise :class:`LedgerError` unless well-formed, canonical and signed by its signer for ``log_id``."""
        if not isinstance(self.kind, str) or not self.kind:
            raise LedgerError("entry kind must be a non-empty string")
        if self.round is not None and (isinstance(self.round, bool) or not isinstance(self.round, int)):
            raise LedgerError(f"round must be an integer or None, got {self.round!r}")
        try:
            canonical = canonical_json(parse_json(self.payload)) == self.payload
        except (json.JSONDecodeError, TypeError, LedgerError):
            canonical = False
        if not canonical:
            raise LedgerError("payload is not canonical JSON text (sorted keys, no spaces)")
        try:
            h = statement_hash(log_id, self.round, self.kind, self.payload, self.signer)
        except (UnicodeEncodeError, AttributeError):
            raise LedgerError("a field is not valid Unicode text") from None
        if not verify_signature(self.signer, bytes.fromhex(h), self.signature):
            raise LedgerError(f"{self.kind}: the signature by {str(self.signer)[:16]}... does not verify")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "round": self.round, "payload": self.payload, "signer": self.signer,
                "signature": self.signature}

    @classmethod
    def from_dict(cls, d: Any, unique: str | None = None) -> "Statement":
        try:
            rnd = d["round"]
            if rnd is not None and (isinstance(rnd, bool) or not isinstance(rnd, int)):
                raise TypeError
            fields = [d[k] for k in ("kind", "payload", "signer", "signature")]
            if not all(isinstance(x, str) for x in fields):
                raise TypeError
        except (KeyError, TypeError):
            raise LedgerError("a statement must be an object with kind, round (integer or null), payload, "
                              "signer and signature (strings)") from None
        return cls(fields[0], rnd, fields[1], fields[2], fields[3], unique)


def leaf_hash_of(entry: Entry) -> bytes:
    """The entry's Merkle leaf hash: RFC 9162's SHA-256(0x00 || entry hash)."""
    return merkle.leaf_hash(bytes.fromhex(entry.hash))


def check_entry(entry: Entry, expected_seq: int | None = None, expected_prev: str | None = None, *,
                log_id: str, signatures: bool = True) -> None:
    """Raise :class:`ChainError` unless ``entry`` is well-formed, hashed and signed for the log
    ``log_id`` (ignored for entry 0, which defines the log) and, where given, has the expected
    sequence number and previous-hash link."""
    seq = entry.seq
    if expected_seq is not None and seq != expected_seq:
        raise ChainError(expected_seq, f"sequence number is {seq}, expected {expected_seq} (entry missing or reordered)")
    if expected_prev is not None and entry.prev_hash != expected_prev:
        raise ChainError(seq, f"previous-hash link is {entry.prev_hash[:16]}..., expected {expected_prev[:16]}...")
    try:
        parse_json(entry.payload)
    except (json.JSONDecodeError, TypeError):
        raise ChainError(seq, "payload is not valid JSON (or nested too deep)") from None
    try:
        recomputed = entry_hash(seq, entry.round, entry.kind, entry.payload, entry.prev_hash, entry.signer)
    except UnicodeEncodeError:
        raise ChainError(seq, "a field is not valid Unicode text (lone surrogate)") from None
    if recomputed != entry.hash:
        raise ChainError(seq, f"hash mismatch: stored {entry.hash[:16]}..., content hashes to {recomputed[:16]}...")
    statement = statement_hash("" if seq == 0 else log_id, entry.round, entry.kind, entry.payload, entry.signer)
    if signatures and not verify_signature(entry.signer, bytes.fromhex(statement), entry.signature):
        raise ChainError(seq, f"signature by {entry.signer[:16]}... does not verify")


def pinned_failure(entry: Entry | None, err: ChainError) -> bool:
    """Whether ``err``, the chain check failing at ``entry``, is in what a checkpoint covering it pins:
    the entry's content hashes to its stored hash (the Merkle leaf) and the failure is not the
    signature (which the hash does not cover). Else a copy of the log was damaged after the fact
    (anyone holding a file can do that): no evidence against its signer."""
    if entry is None or entry.seq != err.seq:  # (an entry missing from the copy, or out of place: damage)
        return False
    try:
        same = entry_hash(entry.seq, entry.round, entry.kind, entry.payload, entry.prev_hash, entry.signer) == entry.hash
    except (UnicodeEncodeError, TypeError, ValueError):
        return False
    return same and not err.reason.startswith("signature")
