"""The append-only, hash-chained, signed ledger."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from zkauction.protocol.log import (
    GENESIS_HASH,
    ChainError,
    Ledger,
    LedgerError,
    SigningKey,
    canonical_json,
    entry_hash,
    verify_signature,
)


@pytest.fixture
def key():
    return SigningKey.generate()


def fill(ledger, key, n=10):
    for i in range(n):
        ledger.append("outcome", {"round": i, "payment": [0.25 * i, 0.1]}, key, round=i)


def test_known_answer_entry_hash():
    # Fixed vector: changing the hash recipe breaks every stored ledger, so it must be deliberate.
    h = entry_hash(0, 1, "outcome", canonical_json({"b": 1, "a": [0.5]}), GENESIS_HASH, "ab" * 32)
    assert canonical_json({"b": 1, "a": [0.5]}) == '{"a":[0.5],"b":1}'
    assert h == entry_hash(0, 1, "outcome", '{"a":[0.5],"b":1}', GENESIS_HASH, "ab" * 32)
    assert len(h) == 64 and h != entry_hash(0, None, "outcome", '{"a":[0.5],"b":1}', GENESIS_HASH, "ab" * 32)


def test_rfc8032_test_vector_1():
    # RFC 8032, section 7.1, TEST 1 (empty message).
    pub = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    sig = ("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
           "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
    assert verify_signature(pub, b"", sig)
    assert not verify_signature(pub, b"x", sig)


def test_append_and_verify(tmp_path, key):
    with Ledger.open(tmp_path / "l.db") as ledger:
        fill(ledger, key)
        check = ledger.verify_chain()
        assert check.n_entries == 10 and check.head == ledger.head()
        assert [e.round for e in ledger.entries(kind="outcome")] == list(range(10))
        assert ledger.entries(round=3)[0].data == {"round": 3, "payment": [0.75, 0.1]}
    with Ledger.open(tmp_path / "l.db") as again:  # reopened from the file
        assert again.verify_chain() == check
        assert len(again) == 10


def test_memory_ledger_and_bad_payload(key):
    ledger = Ledger.in_memory()
    fill(ledger, key, 3)
    assert ledger.verify_chain().n_entries == 3
    with pytest.raises(LedgerError, match="canonical JSON"):
        ledger.append("x", {"v": float("nan")}, key)
    with pytest.raises(LedgerError, match="canonical JSON"):
        ledger.append("x", {"v": object()}, key)


def _tamper(path, sql, *args):
    db = sqlite3.connect(path)
    # An attacker with the file can drop the append-only triggers: the chain must still catch them.
    db.execute("DROP TRIGGER entries_no_update")
    db.execute("DROP TRIGGER entries_no_delete")
    db.execute(sql, args)
    db.commit()
    db.close()


def test_triggers_refuse_updates(tmp_path, key):
    path = tmp_path / "l.db"
    with Ledger.open(path) as ledger:
        fill(ledger, key, 3)
    db = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE entries SET payload = '{}' WHERE seq = 1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM entries WHERE seq = 1")
    db.close()


@pytest.mark.parametrize(
    "sql,args,reason",
    [
        ("UPDATE entries SET payload = ? WHERE seq = 6", ('{"payment":[9.0,0.1],"round":6}',), "hash mismatch"),
        ("UPDATE entries SET round = 7 WHERE seq = 6", (), "hash mismatch"),
        ("UPDATE entries SET signature = ? WHERE seq = 6", ("00" * 64,), "signature"),
        ("DELETE FROM entries WHERE seq = 6", (), "sequence number"),
    ],
)
def test_edit_behind_the_ledgers_back_names_the_entry(tmp_path, key, sql, args, reason):
    path = tmp_path / "l.db"
    with Ledger.open(path) as ledger:
        fill(ledger, key)
        ledger.verify_chain()
    _tamper(path, sql, *args)
    with Ledger.open(path) as ledger:
        with pytest.raises(ChainError, match=reason) as err:
            ledger.verify_chain()
    assert err.value.seq == 6
    assert "ledger entry 6" in str(err.value)


def test_rehashed_and_resigned_forgery_is_caught_by_the_link_or_signature(tmp_path, key):
    """Recomputing the edited entry's hash (without the author's key) breaks the signature; recomputing
    and re-signing with another key breaks the next entry's link."""
    path = tmp_path / "l.db"
    with Ledger.open(path) as ledger:
        fill(ledger, key)
        e = ledger.entries()[4]
    payload = '{"payment":[5.0,0.1],"round":4}'
    forger = SigningKey.generate()
    h = entry_hash(4, 4, "outcome", payload, e.prev_hash, forger.public_hex)
    _tamper(path, "UPDATE entries SET payload=?, hash=?, signer=?, signature=? WHERE seq=4",
            payload, h, forger.public_hex, forger.sign(bytes.fromhex(h)))
    with Ledger.open(path) as ledger:
        with pytest.raises(ChainError, match="previous-hash link") as err:
            ledger.verify_chain()
    assert err.value.seq == 5


def test_append_refuses_a_taken_sequence_number(tmp_path, key):
    path = tmp_path / "l.db"
    a, b = Ledger.open(path), Ledger.open(path)
    a.append("x", {}, key)
    b.append("x", {}, key)  # b re-reads the head, so it appends after a
    assert a.verify_chain().n_entries == 2
    from zkauction.protocol.log import Entry

    stale = Entry(1, None, "x", "{}", GENESIS_HASH, "0" * 64, key.public_hex, "00")
    with pytest.raises(LedgerError, match="cannot append entry 1"):
        a.storage.append(stale)
    a.close()
    b.close()


def test_keys_round_trip(tmp_path, key):
    key.save(tmp_path / "k.pem")
    again = SigningKey.load(tmp_path / "k.pem")
    assert again.public_hex == key.public_hex
    assert verify_signature(key.public_hex, b"m", again.sign(b"m"))
    with pytest.raises(LedgerError, match="no such key file"):
        SigningKey.load(tmp_path / "missing.pem")
    (tmp_path / "bad.pem").write_text("not a key")
    with pytest.raises(LedgerError, match="Ed25519"):
        SigningKey.load(tmp_path / "bad.pem")


def test_not_a_database(tmp_path):
    p = tmp_path / "x.db"
    p.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LedgerError, match="not a ledger database"):
        Ledger.open(p)


WRITER = r"""
import sys
from zkauction.protocol.log import Ledger, SigningKey
ledger = Ledger.open(sys.argv[1])
key = SigningKey.generate()
i = len(ledger)
while True:
    ledger.append("outcome", {"i": i, "blob": "x" * 2000}, key, round=i)
    i += 1
    if i == 20:
        print("ready", flush=True)
"""


def test_kill_minus_9_of_a_writer_leaves_a_consistent_ledger(tmp_path):
    path = tmp_path / "l.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # mid-stream: appends are in flight
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with Ledger.open(path) as ledger:
        check = ledger.verify_chain()
        assert check.n_entries >= 20
        assert [e.data["i"] for e in ledger] == list(range(check.n_entries))
        # and it takes further appends
        ledger.append("outcome", {"i": check.n_entries}, SigningKey.generate(), round=check.n_entries)
        assert ledger.verify_chain().n_entries == check.n_entries + 1
