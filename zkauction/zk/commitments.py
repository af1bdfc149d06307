"""Sealed-bid commitments (paper, Algorithm 1: bidders publish c_i = Com(b_i, r_i) before the outcome).

A bidder's commitment for a round is the Poseidon hash that ezkl computes for that bidder's hashed
input in the auction circuit (docs/design.md, "ONNX and circuit contract")::

    commitment = ezkl.poseidon_hash([float_to_felt(b_1, S), ..., float_to_felt(b_m, S), salt])[0]

computed by :mod:`zkauction.zk.poseidon` (the same hash in C, bit for bit; ezkl where it is not built)

so it is *exactly* public instance i of the audit proof: a bidder checks its own commitment against
the proof without seeing anyone else's bids. Everything here runs on the bidder's side alone.

Representations (ezkl 23's own, so values can be passed to ezkl unchanged):

- a field element ("felt") is a 64-character lowercase hex string of the 32-byte little-endian
  integer, no ``0x`` prefix; salts and commitments are felts;
- a bid is a float on the fixed-point grid of the circuit's input scale S: :func:`snap_bid` rounds it
  to ``round(b * 2^S) / 2^S``. The snapped value *is* the bid (commitment, circuit input and ledger
  alike), so no float conversion can make them disagree.

Public API: :data:`FIELD_MODULUS`, :class:`CommitmentError`, :func:`new_salt`, :func:`check_salt`,
:func:`snap_bid`, :func:`grid_index`, :func:`snap_bids`, :func:`bid_felts`, :func:`commit`, :class:`Opening`,
:func:`commit_many`, :func:`make_commitment`, :func:`check_opening`.
"""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass
from typing import Any, Sequence

from zkauction.errors import ZkAuctionError
from zkauction.zk import poseidon

# The BN254 scalar field: ezkl's circuits (halo2, KZG on BN254) compute modulo this prime.
FIELD_MODULUS = 21888242871839275222246405745257275088548364400416034343698204186575808495617
FELT_HEX_LENGTH = 64  # 32 bytes, little-endian, lowercase hex, no prefix

# A scaled bid must stay far below the modulus and be exact in ezkl's 32-bit float parsing (24-bit
# mantissa), so snapped bids are capped at 2^24 grid steps.
MAX_GRID_STEPS = 2**24


class CommitmentError(ZkAuctionError, ValueError):
    """A bid, salt, commitment or opening that is malformed or does not match, with the reason."""


def felt_to_int(felt: str) -> int:
    """The integer a felt string encodes (little-endian)."""
    return int.from_bytes(bytes.fromhex(felt), "little")


def int_to_felt(x: int) -> str:
    """The felt string of an integer in [0, FIELD_MODULUS)."""
    if not 0 <= x < FIELD_MODULUS:
        raise CommitmentError(f"integer {x} is outside the BN254 scalar field [0, {FIELD_MODULUS})")
    return x.to_bytes(32, "little").hex()


_HEX_DIGITS = re.compile(r"[0-9a-f]+").fullmatch  # (not "$": it matches before a final newline)


def check_felt(value: Any, what: str = "field element") -> str:
    """Return ``value`` normalised to lowercase if it is a valid felt string, else raise.

    A valid felt is 64 hex characters (32 bytes little-endian) encoding an integer below
    :data:`FIELD_MODULUS`. ezkl panics on anything else, so this check runs first.
    """
    if not isinstance(value, str):
        raise CommitmentError(f"{what} must be a 64-character hex string, got {type(value).__name__}")
    s = value.lower()
    if s.startswith("0x"):
        raise CommitmentError(f"{what} must be 64 hex characters without a 0x prefix (32 bytes little-endian)")
    if len(s) != FELT_HEX_LENGTH:
        raise CommitmentError(f"{what} must be {FELT_HEX_LENGTH} hex characters (32 bytes little-endian), got {len(s)}")
    if not _HEX_DIGITS(s):  # (bytes.fromhex alone would skip whitespace)
        raise CommitmentError(f"{what} is not a hex string: {value!r}")
    x = felt_to_int(s)
    if x >= FIELD_MODULUS:
        raise CommitmentError(f"{what} is outside the BN254 scalar field (value >= modulus {FIELD_MODULUS})")
    return s


def check_salt(salt: Any) -> str:
    """Validate a salt (a felt string); returns it normalised to lowercase."""
    return check_felt(salt, "salt")


def new_salt() -> str:
    """A fresh salt: a uniform element of the BN254 scalar field from :mod:`secrets`.

    Written as a felt (not a float): ezkl parses float inputs as 32-bit floats, which would throw
    away the salt's entropy (docs/design.md).
    """
    return int_to_felt(secrets.randbelow(FIELD_MODULUS))


def _check_scale(scale: int) -> int:
    if isinstance(scale, bool) or not isinstance(scale, int) or not 0 <= scale <= 24:
        raise CommitmentError(f"input scale must be an integer in [0, 24], got {scale!r}")
    return scale


def snap_bid(x: float, scale: int) -> float:
    """Round a bid to the circuit's fixed-point grid: ``round(x * 2^S) / 2^S`` (halves away from 0).

    Raises :class:`CommitmentError` for NaN, infinities, negative bids and bids too large for the grid.
    """
    return grid_index(x, scale) / 2**scale


def grid_index(x: float, scale: int) -> int:
    """The grid step :func:`snap_bid` rounds ``x`` to: ``round(x * 2^S)`` (same checks and errors)."""
    _check_scale(scale)
    try:
        x = float(x)
    except (TypeError, ValueError, OverflowError):  # (an int beyond float range overflows)
        raise CommitmentError(f"bid must be a finite number, got {str(x)[:40]!r}") from None
    if not math.isfinite(x):
        raise CommitmentError(f"bid must be finite, got {x}")
    if x < 0:
        raise CommitmentError(f"bid must be non-negative, got {x}")
    if x >= MAX_GRID_STEPS / 2**scale:  # (before x * 2^S, which overflows to inf near the float maximum)
        raise CommitmentError(f"bid {x} is too large for input scale {scale} (at most {MAX_GRID_STEPS} grid steps)")
    k = math.floor(x * 2**scale + 0.5)
    if k >= MAX_GRID_STEPS:
        raise CommitmentError(f"bid {x} is too large for input scale {scale} (at most {MAX_GRID_STEPS} grid steps)")
    return k


def snap_bids(bids: Sequence[float], scale: int) -> tuple[float, ...]:
    """:func:`snap_bid` on each of a bidder's bids (one per item)."""
    return tuple(snap_bid(b, scale) for b in bids)


def is_snapped(x: float, scale: int) -> bool:
    return snap_bid(x, scale) == float(x)


def bid_felts(bids: Sequence[float], scale: int) -> list[str]:
    """The felts ezkl quantises a bidder's (snapped) bids to: ``float_to_felt(b, S)``.

    Bids must already be on the grid (use :func:`snap_bids`); anything else is an error, since the
    commitment and the circuit input would otherwise depend on a float conversion.
    """
    out = []
    for j, b in enumerate(bids):
        k = grid_index(b, scale)
        if k / 2**scale != float(b):
            raise CommitmentError(
                f"bid for item {j} ({b!r}) is not on the fixed-point grid of scale {scale}; snap it first"
            )
        # ezkl's float_to_felt of a non-negative grid point is its integer grid index (tests pin it)
        out.append(k.to_bytes(32, "little").hex())
    return out


def commit(bids: Sequence[float], salt: str, scale: int) -> str:
    """The commitment to a bidder's snapped bids (one per item) under ``salt`` at input scale S.

    Equals public instance i of the audit proof for that bidder's input. Returns a felt string.
    """
    if len(bids) == 0:
        raise CommitmentError("a commitment needs at least one bid")
    salt = check_salt(salt)
    return poseidon.hash_felts(bid_felts(bids, scale) + [salt])


def commit_many(rows: Sequence[tuple[Sequence[float], str]], scale: int) -> list[str]:
    """:func:`commit` of each (snapped bids, salt) in one batched hash call (a block of rounds)."""
    messages = []
    for bids, salt in rows:
        if len(bids) == 0:
            raise CommitmentError("a commitment needs at least one bid")
        messages.append(bid_felts(bids, scale) + [check_salt(salt)])
    return poseidon.hash_many(messages)


@dataclass(frozen=True)
class Opening:
    """What a bidder reveals to open its commitment: its snapped bids (one per item) and salt."""

    bids: tuple[float, ...]
    salt: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "bids", tuple(float(b) for b in self.bids))
        object.__setattr__(self, "salt", check_salt(self.salt))

    def to_dict(self) -> dict[str, Any]:
        return {"bids": list(self.bids), "salt": self.salt}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Opening":
        if not isinstance(d, dict) or "bids" not in d or "salt" not in d:
            raise CommitmentError("an opening must be a dict with 'bids' and 'salt'")
        return cls(tuple(d["bids"]), d["salt"])


def make_commitment(bids: Sequence[float], scale: int, salt: str | None = None) -> tuple[str, Opening]:
    """Snap the bids, draw a fresh salt (unless given) and commit. Returns (commitment, opening).

    The opening holds the snapped bids: those are the bids from now on.
    """
    snapped = snap_bids(bids, scale)
    opening = Opening(snapped, new_salt() if salt is None else salt)
    return commit(opening.bids, opening.salt, scale), opening


def check_opening(commitment: str, opening: Opening, scale: int) -> None:
    """Raise :class:`CommitmentError` naming the problem unless ``opening`` opens ``commitment``."""
    commitment = check_felt(commitment, "commitment")
    if not isinstance(opening, Opening):
        raise CommitmentError(f"opening must be an Opening, got {type(opening).__name__}")
    recomputed = commit(opening.bids, opening.salt, scale)
    if recomputed != commitment:
        raise CommitmentError(
            f"opening does not match commitment {commitment[:16]}...: its bids and salt hash to {recomputed[:16]}..."
        )
