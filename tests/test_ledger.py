"""The append-only, hash-chained, signed log (zkauction.protocol.log) over its storage
(zkauction.protocol.storage): chain checks that name the bad entry, the writer's lock, uniqueness
keys, atomic batches, crash safety, the Merkle tree and the stored checkpoints."""

import fcntl
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zkauction.protocol import merkle
from zkauction.protocol.log import (
    GENESIS_HASH,
    ChainError,
    DuplicateEntryError,
    Entry,
    Ledger,
    LedgerError,
    LogLockedError,
    SigningKey,
    statement_hash,
    canonical_json,
    check_entry,
    entry_hash,
    leaf_hash_of,
    verify_signature,
)
from zkauction.protocol.private import private_folder, write_private
from zkauction.protocol.storage import MemoryStorage, SQLiteStorage, lock_path

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def key():
    return SigningKey.from_seed(bytes(range(32)))


def fill(ledger, key, n=10, start=0):
    for i in range(start, start + n):
        ledger.append("outcome", {"round": i, "payment": [0.25 * i, 0.1]}, key, round=i)


def snapshot(ledger):
    """Everything that must stay the same when an append is refused."""
    return len(ledger), ledger.head(), ledger.root(), ledger.storage.last(), [e.hash for e in ledger]


def child_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


# --------------------------------------------------------------------------------------------------
# Known answers


def test_known_answer_entry_hash():
    # Fixed vector: changing the hash recipe breaks every stored log, so it must be deliberate.
    assert canonical_json({"b": 1, "a": [0.5]}) == '{"a":[0.5],"b":1}'
    h = entry_hash(0, 1, "outcome", '{"a":[0.5],"b":1}', GENESIS_HASH, "ab" * 32)
    assert h == "fba409bbaf5e8780ef55051d3ce6803470d3a1187bfb8ba7745c6d02813fea4e"
    assert h != entry_hash(0, None, "outcome", '{"a":[0.5],"b":1}', GENESIS_HASH, "ab" * 32)
    # length prefixes: moving a character from one field to the next changes the hash
    assert entry_hash(0, 1, "ab", "c", GENESIS_HASH, "00") != entry_hash(0, 1, "a", "bc", GENESIS_HASH, "00")


def test_rfc8032_test_vector_1():
    # RFC 8032, section 7.1, TEST 1 (empty message): verification, and the key from its seed.
    pub = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    sig = ("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
           "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
    assert verify_signature(pub, b"", sig)
    assert not verify_signature(pub, b"x", sig)
    assert not verify_signature(pub, b"", "00" * 64)
    assert not verify_signature("zz", b"", sig)
    k = SigningKey.from_seed(bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
    assert k.public_hex == pub and k.sign(b"") == sig
    with pytest.raises(LedgerError, match="32 bytes"):
        SigningKey.from_seed(b"short")


# --------------------------------------------------------------------------------------------------
# Appending and reading


def test_append_and_verify(tmp_path, key):
    with Ledger.open(tmp_path / "l.db") as ledger:
        fill(ledger, key)
        check = ledger.verify_chain()
        assert check.n_entries == 10 and check.head == ledger.head() and check.root == ledger.root()
        assert [e.round for e in ledger.entries(kind="outcome")] == list(range(10))
        assert ledger.entries(round=3)[0].data == {"round": 3, "payment": [0.75, 0.1]}
        assert [e.seq for e in ledger.entries(start=4, stop=7)] == [4, 5, 6]
        assert ledger.get(0).prev_hash == GENESIS_HASH and ledger.log_id == ledger.get(0).hash
        with pytest.raises(LedgerError, match="no entry 10"):
            ledger.get(10)
    with Ledger.open(tmp_path / "l.db") as again:  # reopened from the file (the lock was released)
        assert again.verify_chain() == check
        assert len(again) == 10 and again.root() == check.root and again.head() == check.head


def test_memory_ledger_and_bad_payload(key):
    ledger = Ledger.in_memory()
    with pytest.raises(LedgerError, match="empty"):
        _ = ledger.log_id
    fill(ledger, key, 3)
    assert ledger.verify_chain().n_entries == 3
    before = snapshot(ledger)
    for bad in ({"v": float("nan")}, {"v": float("inf")}, {"v": object()}, {"v": "\ud800"}):
        with pytest.raises(LedgerError, match="canonical JSON"):
            ledger.append("x", bad, key)
    with pytest.raises(LedgerError, match="kind"):
        ledger.append("", {}, key)
    for bad_round in (True, 1.0, "1"):
        with pytest.raises(LedgerError, match="round must be an integer"):
            ledger.append("x", {}, key, round=bad_round)
    assert snapshot(ledger) == before


def test_a_stored_hash_that_is_not_hex_is_named_when_the_log_is_read(key):
    # A log file written by someone else (the adversary) must be refused naming the entry, not crash.
    good = Ledger.in_memory()
    fill(good, key, 3)
    entries = list(good)
    storage = MemoryStorage()
    storage.append_many([(entries[0], None), (entries[1], None),
                         (Entry(**{**entries[2].to_dict(), "hash": "zz" * 32}), None)])
    with pytest.raises(ChainError, match="ledger entry 2: "):
        Ledger(storage, verify=True)  # a writer refuses it
    reader = Ledger(storage)  # a reader stops before it and names it, as damage at its place
    assert "ledger entry 2: the stored hash is not 32 bytes of hex" in str(reader.unreadable)
    assert len(reader) == 2 and len(reader.entries()) == 2
    with pytest.raises(ChainError, match="ledger entry 2: "):
        reader.verify_chain()
    # and a payload that is not Unicode text (a lone surrogate from a JSON file) is a chain error too
    e = entries[1]
    with pytest.raises(ChainError, match="ledger entry 1: .*surrogate"):
        check_entry(Entry(**{**e.to_dict(), "payload": '{"x":"\ud800"}'}), log_id="")


def test_entry_round_trips_through_its_dict(key):
    ledger = Ledger.in_memory()
    fill(ledger, key, 2)
    for e in ledger:
        assert Entry.from_dict(e.to_dict()) == e
    with pytest.raises(LedgerError, match="an entry must be an object"):
        Entry.from_dict({"seq": 0})
    with pytest.raises(LedgerError, match="an entry must be an object"):
        Entry.from_dict([1, 2])


# --------------------------------------------------------------------------------------------------
# Editing the file behind the log's back


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
    with Ledger.open(path, writer=False) as ledger:
        assert ledger.verify_chain().n_entries == 3


EDITS = [
    ("UPDATE entries SET payload = ? WHERE seq = 6", ('{"payment":[9.0,0.1],"round":6}',), "hash mismatch"),
    ("UPDATE entries SET payload = ? WHERE seq = 6", ("{not json",), "not valid JSON"),
    ("UPDATE entries SET round = 7 WHERE seq = 6", (), "hash mismatch"),
    ("UPDATE entries SET kind = 'dispute' WHERE seq = 6", (), "hash mismatch"),
    ("UPDATE entries SET signature = ? WHERE seq = 6", ("00" * 64,), "signature"),
    ("UPDATE entries SET prev_hash = ? WHERE seq = 6", ("11" * 32,), "previous-hash link"),
    ("DELETE FROM entries WHERE seq = 6", (), "sequence number"),
]
EDIT_IDS = ["payload", "payload-not-json", "round", "kind", "signature", "link", "deleted"]


@pytest.mark.parametrize("sql,args,reason", EDITS, ids=EDIT_IDS)
def test_edit_behind_the_logs_back_names_the_entry(tmp_path, key, sql, args, reason):
    path = tmp_path / "l.db"
    with Ledger.open(path) as ledger:
        fill(ledger, key)
        ledger.verify_chain()
    _tamper(path, sql, *args)
    with Ledger.open(path, writer=False) as ledger:  # a reader opens it (no check at open) and replays it
        with pytest.raises(ChainError, match=reason) as err:
            ledger.verify_chain()
    assert err.value.seq == 6
    assert str(err.value).startswith("ledger entry 6: ")


@pytest.mark.parametrize("sql,args,reason", EDITS, ids=EDIT_IDS)
def test_a_writer_refuses_to_open_a_tampered_log(tmp_path, key, sql, args, reason):
    path = tmp_path / "l.db"
    with Ledger.open(path) as ledger:
        fill(ledger, key)
    _tamper(path, sql, *args)
    with pytest.raises(ChainError, match=reason) as err:
        Ledger.open(path)
    assert err.value.seq == 6 and "ledger entry 6" in str(err.value)
    # the refused writer released its lock (and closed the file): another one gets the same answer
    with pytest.raises(ChainError):
        Ledger.open(path)
    # unless told not to check (a tool that only reads it)
    with Ledger.open(path, writer=False) as ledger:
        assert len(ledger) == (9 if reason == "sequence number" else 10)


def test_rehashed_forgery_without_the_authors_key_is_caught_by_the_signature(tmp_path, key):
    path = tmp_path / "l.db"
    with Ledger.open(path) as ledger:
        fill(ledger, key)
        e = ledger.get(4)
    payload = '{"payment":[5.0,0.1],"round":4}'
    h = entry_hash(4, 4, "outcome", payload, e.prev_hash, e.signer)  # the hash recomputed, the old signature kept
    _tamper(path, "UPDATE entries SET payload=?, hash=? WHERE seq=4", payload, h)
    with Ledger.open(path, writer=False) as ledger:
        with pytest.raises(ChainError, match="signature") as err:
            ledger.verify_chain()
    assert err.value.seq == 4


def test_rehashed_and_resigned_forgery_is_caught_by_the_next_link(tmp_path, key):
    """Recomputing the edited entry's hash and re-signing it with another key breaks the next
    entry's link (re-signing the whole tail is another log: the kept checkpoints catch that,
    tests/test_checkpoint.py)."""
    path = tmp_path / "l.db"
    with Ledger.open(path) as ledger:
        fill(ledger, key)
        e, log_id = ledger.get(4), ledger.log_id
    payload = '{"payment":[5.0,0.1],"round":4}'
    forger = SigningKey.from_seed(b"\x07" * 32)
    h = entry_hash(4, 4, "outcome", payload, e.prev_hash, forger.public_hex)
    _tamper(path, "UPDATE entries SET payload=?, hash=?, signer=?, signature=? WHERE seq=4",
            payload, h, forger.public_hex, forger.sign(bytes.fromhex(statement_hash(log_id, 4, "outcome", payload, forger.public_hex))))
    with Ledger.open(path, writer=False) as ledger:
        with pytest.raises(ChainError, match="previous-hash link") as err:
            ledger.verify_chain()
    assert err.value.seq == 5
    with pytest.raises(ChainError, match="ledger entry 5: previous-hash link"):
        Ledger.open(path)


# --------------------------------------------------------------------------------------------------
# One writer per log


LOCK_HOLDER = r"""
import sys
from zkauction.protocol.log import Ledger
ledger = Ledger.open(sys.argv[1])
print("ready", flush=True)
sys.stdin.read()  # hold the lock until the parent closes our stdin
ledger.close()
"""


def test_a_second_writer_in_the_same_process_is_refused_at_once(tmp_path, key):
    path = tmp_path / "l.db"
    a = Ledger.open(path)
    fill(a, key, 2)
    t = time.monotonic()
    with pytest.raises(LogLockedError, match="another process is writing"):
        Ledger.open(path)
    assert time.monotonic() - t < 1.0  # at once: no waiting on a busy database
    # a symlink to the same file is the same log (one lock per file)
    (tmp_path / "link.db").symlink_to(path)
    with pytest.raises(LogLockedError):
        Ledger.open(tmp_path / "link.db")
    # readers take no lock, and see the log as it was when they opened it
    with Ledger.open(path, writer=False) as reader:
        assert reader.verify_chain().n_entries == 2
    a.close()
    with Ledger.open(path) as b:  # released on close
        fill(b, key, 1, start=2)
        assert b.verify_chain().n_entries == 3


def test_a_writer_in_another_process_holds_the_lock_until_it_closes(tmp_path, key):
    path = tmp_path / "l.db"
    with Ledger.open(path) as ledger:
        fill(ledger, key, 2)
    proc = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=child_env())
    try:
        assert proc.stdout.readline().strip() == "ready"
        t = time.monotonic()
        with pytest.raises(LogLockedError, match=r"l\.db\.lock is held"):
            Ledger.open(path)
        assert time.monotonic() - t < 1.0
        with Ledger.open(path, writer=False) as reader:
            assert len(reader) == 2
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    assert proc.returncode == 0
    with Ledger.open(path) as ledger:  # the other process closed: the lock is free
        fill(ledger, key, 1, start=2)
        assert len(ledger) == 3


def test_the_lock_is_an_flock_on_the_lock_file(tmp_path):
    path = tmp_path / "l.db"
    ledger = Ledger.open(path)
    lp = lock_path(path)
    assert lp == tmp_path / "l.db.lock" and stat.S_IMODE(lp.stat().st_mode) == 0o600
    fd = os.open(lp, os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        ledger.close()
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free after close
        with pytest.raises(LogLockedError):  # and a writer cannot take it from us
            Ledger.open(path)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------------
# Uniqueness keys and atomic batches


@pytest.fixture(params=["memory", "sqlite"])
def any_ledger(request, tmp_path):
    ledger = Ledger.in_memory() if request.param == "memory" else Ledger.open(tmp_path / "l.db")
    yield ledger
    ledger.close()


def test_a_duplicate_uniqueness_key_is_refused_and_leaves_the_log_unchanged(any_ledger, key):
    ledger = any_ledger
    ledger.append("outcome", {"payment": 1}, key, round=7, unique="outcome/7")
    fill(ledger, key, 2, start=8)
    before = snapshot(ledger)
    with pytest.raises(DuplicateEntryError):
        ledger.append("outcome", {"payment": 2}, key, round=7, unique="outcome/7")
    assert snapshot(ledger) == before
    # twice in one batch
    with pytest.raises(DuplicateEntryError):
        ledger.append_many([("x", {}, key, None, "k"), ("y", {}, key, None, "k")])
    assert snapshot(ledger) == before
    # the log goes on: other keys (and no key) are fine
    ledger.append("outcome", {"payment": 3}, key, round=8, unique="outcome/8")
    ledger.append("note", {}, key)
    assert ledger.verify_chain().n_entries == len(before[4]) + 2
    with pytest.raises(DuplicateEntryError):
        ledger.append("outcome", {}, key, round=8, unique="outcome/8")


def test_a_duplicate_key_in_the_file_survives_reopening(tmp_path, key):
    path = tmp_path / "l.db"
    with Ledger.open(path) as ledger:
        ledger.append("registration", {"bidder": 0}, key, unique="registration/0")
    with Ledger.open(path) as ledger:
        with pytest.raises(DuplicateEntryError, match="same key"):
            ledger.append("registration", {"bidder": 0}, key, unique="registration/0")
        assert len(ledger) == 1 and ledger.verify_chain().n_entries == 1


def test_append_many_is_all_or_nothing(any_ledger, key):
    ledger = any_ledger
    fill(ledger, key, 3)
    before = snapshot(ledger)
    # a bad payload in the middle: nothing is signed into the log
    with pytest.raises(LedgerError, match="canonical JSON"):
        ledger.append_many([("a", {}, key, 1, None), ("b", {"v": float("nan")}, key, 1, None), ("c", {}, key, 1, None)])
    assert snapshot(ledger) == before
    # a taken key at the end of a batch: the first entries are not kept either
    ledger.append("outcome", {}, key, round=5, unique="outcome/5")
    before = snapshot(ledger)
    with pytest.raises(DuplicateEntryError):
        ledger.append_many([("a", {}, key, 5, "a/5"), ("b", {}, key, 5, "b/5"), ("outcome", {}, key, 5, "outcome/5")])
    assert snapshot(ledger) == before
    assert not ledger.entries(kind="a")
    # and a good batch goes in whole, in order, chained
    got = ledger.append_many([("a", {}, key, 5, "a/5"), ("b", {}, key, 5, "b/5")])
    assert [e.seq for e in got] == [len(before[4]), len(before[4]) + 1] and got[1].prev_hash == got[0].hash
    assert ledger.verify_chain().n_entries == len(ledger) == len(before[4]) + 2


@pytest.mark.parametrize("which", ["memory", "sqlite"])
def test_storage_refuses_a_sequence_number_that_is_not_the_next(tmp_path, key, which):
    storage = MemoryStorage() if which == "memory" else SQLiteStorage(tmp_path / "s.db")
    try:
        source = Ledger.in_memory()
        fill(source, key, 4)
        e = list(source)
        storage.append_many([(e[0], None), (e[1], None)])
        with pytest.raises(LedgerError, match="cannot append entry 1"):  # taken (a stale writer)
            storage.append_many([(e[1], None)])
        with pytest.raises(LedgerError, match="cannot append entry 4: the log has 3"):  # a gap inside a batch
            storage.append_many([(e[2], None), (Entry(**{**e[3].to_dict(), "seq": 4}), None)])
        assert [x.seq for x in storage.scan()] == [0, 1]
        storage.append_many([(e[2], None), (e[3], None)])
        assert Ledger(storage, verify=True).verify_chain().n_entries == 4
    finally:
        storage.close()


def test_a_writer_whose_file_changed_under_it_refuses_to_append(tmp_path, key):
    # Two writers cannot coexist (lock), but the file can still change under one (restored from a
    # backup, replaced by the adversary): the writer notices before signing anything onto it.
    path = tmp_path / "l.db"
    ledger = Ledger.open(path)
    fill(ledger, key, 3)
    extra = Ledger.in_memory()
    fill(extra, key, 4)
    ledger.storage.append_many([(list(extra)[3], None)])  # entry 3 appended behind the Ledger's back
    with pytest.raises(LedgerError, match="changed under this writer"):
        ledger.append("x", {}, key)
    ledger.close()


def test_a_read_only_ledger_cannot_append_or_checkpoint(tmp_path, key):
    path = tmp_path / "l.db"
    with pytest.raises(LedgerError, match="no such log file"):
        Ledger.open(path, writer=False)
    assert not path.exists() and not lock_path(path).exists()  # a reader creates nothing
    with Ledger.open(path) as ledger:
        fill(ledger, key, 2)
    with Ledger.open(path, writer=False) as reader:
        with pytest.raises(LedgerError, match="read-only"):
            reader.append("x", {}, key)
        with pytest.raises(LedgerError, match="read-only"):
            reader.checkpoint(key)
        assert len(reader) == 2 and reader.latest_checkpoint() is None
    with Ledger.open(path) as ledger:
        assert ledger.verify_chain().n_entries == 2


def test_a_reader_sees_one_snapshot_while_the_writer_appends(tmp_path, key):
    path = tmp_path / "l.db"
    writer = Ledger.open(path)
    fill(writer, key, 3)
    writer.checkpoint(key)
    reader = Ledger.open(path, writer=False)
    fill(writer, key, 4, start=3)
    writer.checkpoint(key)
    # the reader's tree, entries and checkpoint are all of the log it opened
    assert len(reader) == 3 and len(reader.entries()) == 3 and reader.storage.last().seq == 2
    assert reader.verify_chain().n_entries == 3 and reader.latest_checkpoint().size == 3
    reader.close()
    with Ledger.open(path, writer=False) as fresh:  # reopening gives the newer view
        assert len(fresh) == 7 and fresh.latest_checkpoint().size == 7
    writer.close()


# --------------------------------------------------------------------------------------------------
# Keys and private files


def test_keys_round_trip_and_key_files_are_private(tmp_path, key):
    old = os.umask(0)  # even with a permissive umask
    try:
        (tmp_path / "k.pem").write_text("old")
        (tmp_path / "k.pem").chmod(0o644)
        key.save(tmp_path / "k.pem")  # overwriting a world-readable file
        key.save(tmp_path / "new" / "k.pem")
    finally:
        os.umask(old)
    for p in (tmp_path / "k.pem", tmp_path / "new" / "k.pem"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
        again = SigningKey.load(p)
        assert again.public_hex == key.public_hex
        assert verify_signature(key.public_hex, b"m", again.sign(b"m"))
    assert SigningKey.from_pem(key.to_pem()).public_hex == key.public_hex
    assert not [p for p in tmp_path.rglob("*.tmp")]  # the temporary files are gone
    with pytest.raises(LedgerError, match="no such key file"):
        SigningKey.load(tmp_path / "missing.pem")
    (tmp_path / "bad.pem").write_text("not a key")
    with pytest.raises(LedgerError, match="Ed25519"):
        SigningKey.load(tmp_path / "bad.pem")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    with pytest.raises(LedgerError, match="Ed25519"):
        SigningKey(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(LedgerError, match="public key only"):
        SigningKey(ed25519.Ed25519PrivateKey.generate().public_key())
    p256 = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with pytest.raises(LedgerError, match="not an Ed25519 private key"):
        SigningKey.from_pem(p256)


def test_private_folder_and_files(tmp_path):
    old = os.umask(0)
    try:
        d = private_folder(tmp_path / "a" / "b")
        write_private(d / "secret", "s3cret\n")
        (tmp_path / "open").mkdir(mode=0o755)
        private_folder(tmp_path / "open")  # an existing folder is narrowed
    finally:
        os.umask(old)
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "open").stat().st_mode) == 0o700
    assert stat.S_IMODE((d / "secret").stat().st_mode) == 0o600 and (d / "secret").read_text() == "s3cret\n"
    write_private(d / "secret", "new")  # atomic replace keeps the mode
    assert stat.S_IMODE((d / "secret").stat().st_mode) == 0o600 and (d / "secret").read_text() == "new"


def test_not_a_database(tmp_path):
    p = tmp_path / "x.db"
    p.write_bytes(b"this is not sqlite" * 100)
    for writer in (True, False):
        with pytest.raises(LedgerError, match="not a zkauction log database"):
            Ledger.open(p, writer=writer)
    with pytest.raises(LedgerError, match="not a zkauction log database"):  # not LogLockedError: released
        Ledger.open(p)
    other = tmp_path / "other.db"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    with pytest.raises(LedgerError, match="not a zkauction log database"):
        Ledger.open(other, writer=False)
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(LedgerError, match="not a file"):
        Ledger.open(tmp_path / "dir.db")


# --------------------------------------------------------------------------------------------------
# Crash safety


WRITER = r"""
import sys
from zkauction.protocol.log import Ledger, SigningKey
ledger = Ledger.open(sys.argv[1])
key = SigningKey.generate()
i = len(ledger)
while True:
    ledger.append_many([("outcome", {"i": i, "blob": "x" * 2000}, key, i, f"outcome/{i}"),
                        ("note", {"i": i}, key, i, None)])
    i += 1
    if i % 5 == 0:
        ledger.checkpoint(key)
    if i == 20:
        print("ready", flush=True)
"""


def test_kill_minus_9_of_a_writer_leaves_a_consistent_log(tmp_path):
    path = tmp_path / "l.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True,
                            env=child_env())
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # mid-stream: appends are in flight
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with Ledger.open(path) as ledger:  # the dead writer's lock went with it; the chain verifies at open
        check = ledger.verify_chain()
        assert check.n_entries >= 40 and check.n_entries % 2 == 0  # whole batches only
        assert [e.data["i"] for e in ledger.entries(kind="outcome")] == list(range(check.n_entries // 2))
        cp = ledger.latest_checkpoint()
        assert cp is not None and cp.size <= len(ledger) and ledger.root(cp.size) == cp.root
        cp.verify(ledger.get(0).signer)
        # and it takes further appends, keys still enforced
        n = check.n_entries // 2
        with pytest.raises(DuplicateEntryError):
            ledger.append("outcome", {}, SigningKey.generate(), round=0, unique="outcome/0")
        ledger.append("outcome", {"i": n}, SigningKey.generate(), round=n, unique=f"outcome/{n}")
        assert ledger.verify_chain().n_entries == check.n_entries + 1


# --------------------------------------------------------------------------------------------------
# The Merkle tree and the checkpoints


def test_tree_agrees_with_the_rfc9162_reference_on_the_stored_leaves(tmp_path, key):
    path = tmp_path / "l.db"
    with Ledger.open(path) as ledger:
        fill(ledger, key, 13)
    with Ledger.open(path, writer=False) as ledger:  # the tree rebuilt from the stored hashes
        leaves = [leaf_hash_of(e) for e in ledger]
        assert leaves == [merkle.leaf_hash(bytes.fromhex(e.hash)) for e in ledger]
        assert ledger.root() == ledger.verify_chain().root
        for size in range(14):
            assert ledger.root(size) == merkle.root_from_leaf_hashes(leaves[:size]).hex()
            for i in range(size):
                proof = ledger.inclusion_proof(i, size)
                assert proof == [h.hex() for h in merkle.inclusion_proof(leaves, i, size)]
                merkle.verify_inclusion(leaves[i], i, size, [bytes.fromhex(h) for h in proof],
                                        bytes.fromhex(ledger.root(size)))
            for old in range(1, size + 1):
                proof = ledger.consistency_proof(old, size)
                assert proof == [h.hex() for h in merkle.consistency_proof(leaves, old, size)]
                merkle.verify_consistency(old, size, bytes.fromhex(ledger.root(old)), bytes.fromhex(ledger.root(size)),
                                          [bytes.fromhex(h) for h in proof])
        assert ledger.inclusion_proof(3) == ledger.inclusion_proof(3, 13)
        assert ledger.consistency_proof(5) == ledger.consistency_proof(5, 13)
    assert Ledger.in_memory().root() == merkle.EMPTY_ROOT.hex()


def test_checkpoint_is_stored_and_latest_checkpoint_returns_it(tmp_path, key):
    path = tmp_path / "l.db"
    with Ledger.open(path) as ledger:
        with pytest.raises(LedgerError, match="empty"):
            ledger.checkpoint(key)
        assert ledger.latest_checkpoint() is None
        fill(ledger, key, 3)
        cp3 = ledger.checkpoint(key)
        assert (cp3.log_id, cp3.size, cp3.root, cp3.signer) == (ledger.log_id, 3, ledger.root(), key.public_hex)
        cp3.verify(key.public_hex)
        assert ledger.latest_checkpoint() == cp3
        fill(ledger, key, 2, start=3)
        assert ledger.latest_checkpoint() == cp3  # not newer than the last one signed
        cp5 = ledger.checkpoint(key)
        assert ledger.latest_checkpoint() == cp5 and cp5.size == 5
    with Ledger.open(path, writer=False) as reader:
        assert reader.latest_checkpoint() == cp5
        assert reader.root(3) == cp3.root
    mem = Ledger.in_memory()
    fill(mem, key, 2)
    cp = mem.checkpoint(key)
    assert mem.latest_checkpoint() == cp and cp.size == 2


# Statements: an author signs what it says and in which log, not where it lands (a remote party
# submits before it can know the position; the operator places it).

def test_a_statement_signed_elsewhere_is_placed_and_verifies_at_any_position(key):
    from zkauction.protocol.log import Statement

    ledger = Ledger.in_memory()
    fill(ledger, key, 3)
    bidder = SigningKey.from_seed(b"\x05" * 32)
    early = Statement.sign(bidder, ledger.log_id, "bid_commitment", {"bidder": 0, "commitment": "00" * 32}, round=1)
    fill(ledger, key, 2, start=3)  # others came in meanwhile: the statement does not care
    (e,) = ledger.append_signed([early])
    assert (e.seq, e.signer, e.signature) == (5, bidder.public_hex, early.signature)
    assert ledger.verify_chain().n_entries == 6
    assert Statement.from_dict(early.to_dict()) == early


def test_a_forged_replayed_or_non_canonical_statement_is_refused_and_nothing_is_written(key):
    from zkauction.protocol.log import Statement

    a, b = Ledger.in_memory(), Ledger.in_memory()
    fill(a, key, 2)
    b.append("announcement", {"other": True}, key)
    bidder = SigningKey.from_seed(b"\x05" * 32)
    st = Statement.sign(bidder, a.log_id, "bid_commitment", {"bidder": 0, "commitment": "00" * 32}, round=1)
    with pytest.raises(LedgerError, match="signature .* does not verify"):
        b.append_signed([st])  # signed for log a: not a statement in log b
    for bad in (Statement(**{**st.__dict__, "payload": st.payload.replace("00", "01", 1)}),
                Statement(**{**st.__dict__, "round": 2}),
                Statement(**{**st.__dict__, "signer": key.public_hex})):
        with pytest.raises(LedgerError, match="does not verify"):
            a.append_signed([bad])
    spaced = Statement.sign(bidder, a.log_id, "x", {"b": 1}, round=1)
    with pytest.raises(LedgerError, match="not canonical JSON"):
        a.append_signed([Statement(**{**spaced.__dict__, "payload": '{"b": 1}'})])
    with pytest.raises(LedgerError, match="must be an object"):
        Statement.from_dict({"kind": "x", "round": "1", "payload": "{}", "signer": "a", "signature": "b"})
    assert len(a) == 2 and len(b) == 1 and a.verify_chain().n_entries == 2


def test_an_entry_moved_into_another_log_does_not_verify_there(key):
    """A bidder's signed entry of one auction replayed into another (same keys): the statement
    names its log, so the signature fails in the other log."""
    a, b = Ledger.in_memory(), Ledger.in_memory()
    a.append("announcement", {"auction": "a"}, key)
    b.append("announcement", {"auction": "b"}, key)
    bidder = SigningKey.from_seed(b"\x05" * 32)
    e = a.append("registration", {"bidder": 0}, bidder)
    moved = Entry(1, e.round, e.kind, e.payload, b.head(), entry_hash(1, e.round, e.kind, e.payload, b.head(), e.signer),
                  e.signer, e.signature)
    b.storage.append_many([(moved, None)])
    with pytest.raises(ChainError, match="ledger entry 1: signature"):
        Ledger(b.storage).verify_chain()


def test_a_replica_takes_only_the_next_entry_of_the_same_log(key):
    """Ledger.replicate (monitors, bidders' verified copies): another log's entries, checked one by
    one; a gap, a changed payload or an entry of another log is named and nothing after it added."""
    src = Ledger.in_memory()
    src.append("announcement", {"auction": "a"}, key)
    fill(src, key, 5)
    entries = src.entries()
    replica = Ledger.in_memory()
    assert replica.replicate(entries[:3]) == 3
    with pytest.raises(ChainError, match="ledger entry 3: sequence number is 4, expected 3"):
        replica.replicate(entries[4:])
    bad = Entry(**{**entries[3].to_dict(), "payload": '{"forged":1}'})
    with pytest.raises(ChainError, match="ledger entry 3: hash mismatch"):
        replica.replicate([bad, entries[4]])
    assert len(replica) == 3 and replica.replicate(entries[3:]) == 3
    assert (replica.root(), replica.head()) == (src.root(), src.head())
    other = Ledger.in_memory()
    other.append("announcement", {"auction": "b"}, key)
    moved = Entry(1, entries[1].round, entries[1].kind, entries[1].payload, other.head(),
                  entry_hash(1, entries[1].round, entries[1].kind, entries[1].payload, other.head(), entries[1].signer),
                  entries[1].signer, entries[1].signature)
    with pytest.raises(ChainError, match="ledger entry 1: signature"):
        other.replicate([moved])
    assert len(other) == 1
