"""Entries of the transparency log, one at a time: canonical JSON, Ed25519 keys, entry and statement
hashes, signed statements and the check of one entry (:func:`check_entry`). The log itself (chain,
tree, checkpoints, storage) is :mod:`zkauction.protocol.log`, which re-exports all of this."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from zkauction.protocol import merkle
from zkauction.protocol.storage import Entry, LedgerError

GENESIS_HASH = "0" * 64  # the "previous hash" of entry 0
HASH_DOMAIN = b"zkauction-ledger-entry-v1\x00"
STATEMENT_DOMAIN = b"zkauction-ledger-statement-v1\x00"


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
        text = canonical_json(payload)
        if not isinstance(kind, str) or not kind:
            raise LedgerError("entry kind must be a non-empty string")
        if round is not None and (isinstance(round, bool) or not isinstance(round, int)):
            raise LedgerError(f"round must be an integer or None, got {round!r}")
        h = statement_hash(log_id, round, kind, text, key.public_hex)
        return cls(kind, round, text, key.public_hex, key.sign(bytes.fromhex(h)), unique)

    def check(self, log_id: str) -> None:
        """Raise :class:`LedgerError` unless well-formed, canonical and signed by its signer for ``log_id``."""
        if not isinstance(self.kind, str) or not self.kind:
            raise LedgerError("entry kind must be a non-empty string")
        if self.round is not None and (isinstance(self.round, bool) or not isinstance(self.round, int)):
            raise LedgerError(f"round must be an integer or None, got {self.round!r}")
        try:
            canonical = canonical_json(json.loads(self.payload)) == self.payload
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
                log_id: str) -> None:
    """Raise :class:`ChainError` unless ``entry`` is well-formed, hashed and signed for the log
    ``log_id`` (ignored for entry 0, which defines the log) and, where given, has the expected
    sequence number and previous-hash link."""
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
    statement = statement_hash("" if seq == 0 else log_id, entry.round, entry.kind, entry.payload, entry.signer)
    if not verify_signature(entry.signer, bytes.fromhex(statement), entry.signature):
        raise ChainError(seq, f"signature by {entry.signer[:16]}... does not verify")
