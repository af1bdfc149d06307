import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zkauction.zk.commitments import (
    FIELD_MODULUS,
    CommitmentError,
    Opening,
    check_opening,
    check_salt,
    commit,
    felt_to_int,
    int_to_felt,
    make_commitment,
    new_salt,
    snap_bid,
    snap_bids,
)

# Regression vectors (ezkl 23.0.5's Poseidon). That these hashes equal the proof's public instances
# is checked with real proving in test_circuit.py.
KNOWN_ANSWERS = [
    ((0.5, 0.25), 1, 12, "8f17a74ed535e4a60b2336ec2ffa79f49223b4e91d0640a7d71901979e97a812"),
    ((0.0, 1.0), FIELD_MODULUS - 1, 12, "184101c12320d2e35a21ddb5267f716421e42e16b68e1e08b13e9fb3b61a4d29"),
    ((0.123046875,), 12345, 10, "bac7d47f4710a3991f31931caaa0b05142815a448a1793e011473959f7fbb018"),
]


@pytest.mark.parametrize("bids, salt, scale, expected", KNOWN_ANSWERS)
def test_known_answer_vectors(bids, salt, scale, expected):
    assert commit(bids, int_to_felt(salt), scale) == expected


def test_field_modulus_is_bn254_scalar_field():
    # r = 36u^4 + 36u^3 + 18u^2 + 6u + 1 with the BN254 parameter u.
    u = 4965661367192848881
    assert FIELD_MODULUS == 36 * u**4 + 36 * u**3 + 18 * u**2 + 6 * u + 1


def test_salts_are_fresh_field_elements():
    salts = {new_salt() for _ in range(200)}
    assert len(salts) == 200
    assert all(0 <= felt_to_int(s) < FIELD_MODULUS and check_salt(s) == s for s in salts)
    # Uniform over ~2^254: the top byte is spread, never all small.
    assert max(felt_to_int(s) for s in salts) > FIELD_MODULUS // 2


@pytest.mark.parametrize(
    "salt, message",
    [
        (int_to_felt(0)[:-2], "64 hex characters"),
        ("0x" + int_to_felt(5)[2:], "0x prefix"),
        ("zz" * 32, "not a hex string"),
        (FIELD_MODULUS.to_bytes(32, "little").hex(), "outside the BN254 scalar field"),
        ((2**256 - 1).to_bytes(32, "little").hex(), "outside the BN254 scalar field"),
        (12345, "hex string"),
    ],
)
def test_bad_salts_are_rejected_before_ezkl(salt, message):
    with pytest.raises(CommitmentError, match=message):
        commit([0.5], salt, 12)
    with pytest.raises(CommitmentError, match=message):
        Opening((0.5,), salt)


def test_snap_bid_grid():
    assert snap_bid(0.3, 12) == round(0.3 * 4096) / 4096
    assert snap_bid(1.0, 12) == 1.0
    assert snap_bid(0.5 / 4096, 12) == 1 / 4096  # halves round away from zero
    assert snap_bids([0.1, 0.2], 7) == (13 / 128, 26 / 128)
    for bad, message in [(math.nan, "finite"), (math.inf, "finite"), (-0.1, "non-negative"), ("x", "number")]:
        with pytest.raises(CommitmentError, match=message):
            snap_bid(bad, 12)
    with pytest.raises(CommitmentError, match="too large"):
        snap_bid(2.0**13, 12)
    with pytest.raises(CommitmentError, match="scale"):
        snap_bid(0.5, -1)


def test_unsnapped_bids_cannot_be_committed():
    with pytest.raises(CommitmentError, match="not on the fixed-point grid"):
        commit([0.3], new_salt(), 12)


def test_opening_round_trip_and_mismatches():
    c, opening = make_commitment([0.3, 0.7], 12)
    assert opening.bids == snap_bids([0.3, 0.7], 12)
    check_opening(c, opening, 12)
    check_opening(c, Opening.from_dict(opening.to_dict()), 12)
    with pytest.raises(CommitmentError, match="does not match"):
        check_opening(c, Opening((opening.bids[0], opening.bids[1] + 1 / 4096), opening.salt), 12)
    with pytest.raises(CommitmentError, match="does not match"):
        check_opening(c, Opening(opening.bids, new_salt()), 12)
    with pytest.raises(CommitmentError, match="not on the fixed-point grid"):
        check_opening(c, opening, 10)  # scale mismatch: 0.300048828125 is not on the 2^-10 grid
    with pytest.raises(CommitmentError, match="commitment"):
        check_opening("nope", opening, 12)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 16, allow_nan=False), min_size=1, max_size=10), st.integers(0, FIELD_MODULUS - 1))
def test_commitment_binds_bids_and_salt(bids, salt_int):
    salt = int_to_felt(salt_int)
    c, opening = make_commitment(bids, 12, salt=salt)
    assert c == commit(opening.bids, salt, 12)
    other = int_to_felt((salt_int + 1) % FIELD_MODULUS)
    assert commit(opening.bids, other, 12) != c
