"""ezkl 23's Poseidon hash, natively: the commitment hash of every round, at C speed.

ezkl hashes a circuit's hashed input with halo2_gadgets' Poseidon over the BN254 scalar field:
width 2, rate 1, 8 full and 56 partial rounds, S-box x^5, the constants of
:mod:`zkauction.zk.poseidon_params`, and the ``VariableLength`` domain (capacity element 2^64; at
rate 1 it adds no padding). A message of L field elements costs L permutations.

Three implementations that must agree bit for bit (tests/test_poseidon.py checks all three on
random, edge and real commitment inputs):

- ``_poseidon`` (C, zkauction/zk/_poseidon.c, built by ``pip install``): batched, GIL released (a
  batch of at least 64 messages is split over the cores); about 25 us a permutation on this 2-core
  machine against about 160 us through ``ezkl.poseidon_hash``;
- ``ezkl.poseidon_hash``: the reference, used when the C extension is not built (no compiler at
  install time) or ``ZKAUCTION_POSEIDON=ezkl`` is set;
- :func:`reference_hash`: plain Python integers, the readable definition (tests only).

Field elements are ezkl's felt strings: 64 hex characters of the 32-byte little-endian integer.

Public API: :data:`BACKEND`, :func:`hash_felts`, :func:`hash_many`, :func:`reference_hash`.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from zkauction.zk.poseidon_params import MDS, ROUND_CONSTANTS

P = 21888242871839275222246405745257275088548364400416034343698204186575808495617
FULL_ROUNDS, PARTIAL_ROUNDS = 8, 56
CAPACITY = 1 << 64  # VariableLength's initial capacity element (output length 1)

try:
    from zkauction.zk import _poseidon  # type: ignore[attr-defined]
except ImportError:  # built without a C compiler: ezkl computes the same hashes, more slowly
    _poseidon = None

BACKEND = "native" if _poseidon is not None and os.environ.get("ZKAUCTION_POSEIDON", "") != "ezkl" else "ezkl"
"""Which implementation :func:`hash_felts` and :func:`hash_many` use: ``native`` or ``ezkl``."""


def reference_hash(message: Sequence[int]) -> int:
    """The Poseidon hash of ``message`` (integers below p), in plain Python: the definition."""
    half = FULL_ROUNDS // 2
    s0, s1 = 0, CAPACITY
    for x in message:
        s0 = (s0 + x) % P
        for r in range(FULL_ROUNDS + PARTIAL_ROUNDS):
            s0, s1 = (s0 + ROUND_CONSTANTS[2 * r]) % P, (s1 + ROUND_CONSTANTS[2 * r + 1]) % P
            s0 = pow(s0, 5, P)
            if r < half or r >= half + PARTIAL_ROUNDS:
                s1 = pow(s1, 5, P)
            s0, s1 = (MDS[0] * s0 + MDS[1] * s1) % P, (MDS[2] * s0 + MDS[3] * s1) % P
    return s0


def hash_many(messages: Sequence[Sequence[str]]) -> list[str]:
    """The hash (a felt) of each message (felts, each already checked): one native call per message
    length, so a block of rounds' commitments costs one call."""
    out: list[str | None] = [None] * len(messages)
    if BACKEND == "ezkl":
        import ezkl

        try:
            return [ezkl.poseidon_hash(list(msg))[0] for msg in messages]
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # ezkl panics (pyo3's PanicException is a BaseException) on a bad felt
            raise ValueError(f"ezkl's Poseidon refused the message ({type(e).__name__}: {str(e)[:100]})") from None
    by_length: dict[int, list[int]] = {}
    for k, msg in enumerate(messages):
        if len(msg) == 0:
            raise ValueError("a Poseidon message needs at least one field element")
        by_length.setdefault(len(msg), []).append(k)
    for length, idx in by_length.items():
        data = bytes.fromhex("".join("".join(messages[k]) for k in idx))
        hashes = _hash_batch(data, length, len(idx)).hex()
        for j, k in enumerate(idx):
            out[k] = hashes[64 * j: 64 * j + 64]
    return out  # type: ignore[return-value]


PARALLEL_MIN = 32  # messages: below this one thread is faster than handing work to the pool
_pool: Any = None


def _hash_batch(data: bytes, length: int, count: int) -> bytes:
    """The C call, split over the cores for a large batch (the extension releases the GIL)."""
    global _pool
    workers = min(os.cpu_count() or 1, 8, count // PARALLEL_MIN)
    if workers < 2:
        return _poseidon.hash_batch(data, length)
    if _pool is None:
        from concurrent.futures import ThreadPoolExecutor

        _pool = ThreadPoolExecutor(max_workers=min(os.cpu_count() or 1, 8), thread_name_prefix="poseidon")
    step = -(-count // workers) * 32 * length
    return b"".join(_pool.map(lambda k: _poseidon.hash_batch(data[k: k + step], length), range(0, len(data), step)))


def hash_felts(message: Sequence[str]) -> str:
    """The hash (a felt) of one message of felts."""
    return hash_many([message])[0]
