"""The native Poseidon hash (zkauction/zk/_poseidon.c) against ezkl.poseidon_hash, the reference, and
the plain-Python definition: bit for bit on random, edge and real commitment inputs."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import ezkl
import pytest

from zkauction.zk import commitments, poseidon

ROOT = Path(__file__).resolve().parents[1]
P = poseidon.P


def felt(x: int) -> str:
    return x.to_bytes(32, "little").hex()


def messages(seed: int, count: int) -> list[list[int]]:
    rng = random.Random(seed)
    edge = [0, 1, 2, P - 1, P - 2, 2**64, 2**64 - 1, 2**128, 2**253]
    out = []
    for k in range(count):
        length = rng.choice([1, 2, 3, 4, 6, 11, 33])
        msg = [rng.randrange(P) if rng.random() < 0.7 else rng.choice(edge) for _ in range(length)]
        out.append(msg)
    return out


def test_the_native_extension_is_built_and_used():
    """setup.py builds it where a C compiler and Python's headers exist (CI: required); elsewhere the
    fall-back to ezkl gives the same hashes about 15 times slower."""
    if poseidon._poseidon is None and not os.environ.get("CI"):
        pytest.skip("the C extension is not built here (no C compiler or Python headers at install time)")
    assert poseidon._poseidon is not None, "zkauction/zk/_poseidon.c was not built: run bash scripts/setup.sh"
    assert poseidon.BACKEND == "native"


def test_native_hash_equals_ezkl_bit_for_bit():
    msgs = messages(1, 300)
    ours = poseidon.hash_many([[felt(x) for x in m] for m in msgs])
    theirs = [ezkl.poseidon_hash([felt(x) for x in m])[0] for m in msgs]
    mismatches = [k for k, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    assert mismatches == []


def test_plain_python_definition_equals_ezkl():
    for m in messages(2, 12):
        assert felt(poseidon.reference_hash(m)) == ezkl.poseidon_hash([felt(x) for x in m])[0]


def test_a_batch_equals_one_call_per_message_in_any_order():
    msgs = [[felt(x) for x in m] for m in messages(3, 40)]
    one_by_one = [poseidon.hash_felts(m) for m in msgs]
    assert poseidon.hash_many(msgs) == one_by_one
    assert poseidon.hash_many(msgs[::-1]) == one_by_one[::-1]


def test_commitments_equal_ezkls_on_the_grid_and_float_to_felt_is_the_grid_index():
    rng = random.Random(4)
    for scale in (0, 7, 8, 16, 24):
        for _ in range(6):
            bids = [rng.randrange(2**24) / 2**scale if rng.random() < 0.8 else 0.0 for _ in range(rng.choice([1, 2, 10]))]
            salt = commitments.new_salt()
            felts = [ezkl.float_to_felt(b, scale) for b in bids]
            assert commitments.bid_felts(bids, scale) == felts
            assert commitments.commit(bids, salt, scale) == ezkl.poseidon_hash(felts + [salt])[0]
    rows = [([0.25, 0.5], commitments.new_salt()), ([1.0, 0.0, 0.125], commitments.new_salt())]
    assert commitments.commit_many(rows, 8) == [commitments.commit(b, s, 8) for b, s in rows]


def test_an_element_outside_the_field_is_refused_by_the_extension():
    if poseidon._poseidon is None:
        pytest.skip("no native extension")
    with pytest.raises(ValueError, match="element 1 is not below"):
        poseidon._poseidon.hash_batch(bytes(32) + P.to_bytes(32, "little"), 2)
    with pytest.raises(ValueError, match="whole number"):
        poseidon._poseidon.hash_batch(bytes(40), 1)
    with pytest.raises(ValueError, match="at least one"):
        poseidon._poseidon.hash_batch(b"", 0)


def test_forcing_the_ezkl_backend_gives_the_same_commitment():
    code = ("from zkauction.zk import commitments, poseidon; "
            "print(poseidon.BACKEND, commitments.commit([0.5, 0.25], '0b' + '0' * 62, 8))")
    env = dict(os.environ, ZKAUCTION_POSEIDON="ezkl")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    backend, com = out.stdout.split()
    assert backend == "ezkl"
    assert com == commitments.commit([0.5, 0.25], "0b" + "0" * 62, 8)


def test_the_c_header_matches_the_python_constants():
    r = subprocess.run([sys.executable, "scripts/poseidon_header.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
