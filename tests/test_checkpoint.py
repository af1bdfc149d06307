"""Signed checkpoints and each party's view of the log (zkauction.protocol.checkpoint).

The auctioneer is the adversary: it hosts the log and may roll it back, fork it, rebuild it under
new keys or sign a checkpoint that its entries do not match. A party that kept the last checkpoint
it accepted refuses each of these."""

import dataclasses
import json
import shutil
import sqlite3
import stat

import pytest

from zkauction.protocol.checkpoint import (
    CHECKPOINT_HEADER,
    CheckpointError,
    CheckpointSignatureError,
    ForkError,
    LogIdentityError,
    LogView,
    RollbackError,
    SignedCheckpoint,
    check_extension,
    check_log_extends,
)
from zkauction.protocol.log import ChainError, Ledger, SigningKey, entry_hash, statement_hash


@pytest.fixture(scope="module")
def op():
    return SigningKey.from_seed(b"\x01" * 32)


@pytest.fixture(scope="module")
def other():
    return SigningKey.from_seed(b"\x02" * 32)


@pytest.fixture(scope="module")
def bidder():
    return SigningKey.from_seed(b"\x03" * 32)


@pytest.fixture(scope="module")
def forger():
    return SigningKey.from_seed(b"\x09" * 32)


def announce(ledger, op, bidder, *, extra=None):
    ledger.append("announcement", {"auctioneer": op.public_hex, "bidders": [bidder.public_hex], **(extra or {})}, op,
                  unique="announcement")


def grow(ledger, op, bidder, n, start=None, tag="a"):
    """n entries alternating a bidder's and the operator's, deterministic (Ed25519 is)."""
    start = len(ledger) if start is None else start
    for i in range(start, start + n):
        k = bidder if i % 2 else op
        ledger.append("note", {"i": i, "tag": tag}, k, round=i)


def make_log(op, bidder, n, path=None, tag="a"):
    ledger = Ledger.in_memory() if path is None else Ledger.open(path)
    announce(ledger, op, bidder)
    grow(ledger, op, bidder, n - 1, tag=tag)
    ledger.checkpoint(op)
    return ledger


def copy_db(src, dst):
    """A file-level copy of a (closed) SQLite log, with its -wal/-shm files if any."""
    for suffix in ("", "-wal", "-shm"):
        s, d = src.with_name(src.name + suffix), dst.with_name(dst.name + suffix)
        if d.exists():
            d.unlink()
        if s.exists():
            shutil.copy2(s, d)


def _tamper(path, sql, *args):
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER IF EXISTS entries_no_update")
    db.execute(sql, args)
    db.commit()
    db.close()


# --------------------------------------------------------------------------------------------------
# SignedCheckpoint


def test_sign_verify_and_round_trip(tmp_path, op, other):
    log_id, root = "ab" * 32, "cd" * 32
    cp = SignedCheckpoint.sign(op, log_id, 7, root)
    assert SignedCheckpoint.message(log_id, 7, root) == f"{CHECKPOINT_HEADER}\n{log_id}\n7\n{root}\n".encode()
    assert CHECKPOINT_HEADER == "zkauction-checkpoint-v1"
    assert (cp.log_id, cp.size, cp.root, cp.signer) == (log_id, 7, root, op.public_hex)
    cp.verify(op.public_hex)
    assert SignedCheckpoint.from_json(cp.to_json()) == cp
    assert SignedCheckpoint.from_dict(cp.to_dict()) == cp
    assert json.loads(cp.to_json()) == cp.to_dict()
    (tmp_path / "cp.json").write_text(cp.to_json())
    assert SignedCheckpoint.load(tmp_path / "cp.json") == cp
    # hex is read case-insensitively and kept lowercase: the signature still verifies
    upper = {**cp.to_dict(), "log_id": log_id.upper(), "root": root.upper(), "signer": op.public_hex.upper()}
    SignedCheckpoint.from_dict(upper).verify(op.public_hex)
    # another operator, another signer, or any signed field changed: refused
    with pytest.raises(CheckpointSignatureError, match="not by the announced auctioneer"):
        cp.verify(other.public_hex)
    forged = SignedCheckpoint(log_id, 7, root, op.public_hex, other.sign(SignedCheckpoint.message(log_id, 7, root)))
    with pytest.raises(CheckpointSignatureError, match="does not verify"):
        forged.verify(op.public_hex)
    for change in ({"size": 8}, {"root": "ce" * 32}, {"log_id": "aa" * 32}, {"signature": "00" * 64},
                   {"signature": "not hex"}):
        with pytest.raises(CheckpointSignatureError, match="does not verify"):
            SignedCheckpoint.from_dict({**cp.to_dict(), **change}).verify(op.public_hex)


GOOD = {"log_id": "ab" * 32, "size": 3, "root": "cd" * 32, "signer": "ef" * 32, "signature": "00" * 64}


@pytest.mark.parametrize("d,message", [
    ([1, 2], "must be a JSON object"),
    ("text", "must be a JSON object"),
    ({k: v for k, v in GOOD.items() if k != "root"}, "missing field.*root"),
    ({"size": 1}, "missing field.*log_id, root, signer, signature"),
    ({**GOOD, "size": -1}, "non-negative integer"),
    ({**GOOD, "size": True}, "non-negative integer"),
    ({**GOOD, "size": "3"}, "non-negative integer"),
    ({**GOOD, "size": 3.0}, "non-negative integer"),
    ({**GOOD, "size": None}, "non-negative integer"),
    ({**GOOD, "signature": 5}, "signature must be hex text"),
    ({**GOOD, "log_id": "ab" * 31}, "log_id must be 64 hex"),
    ({**GOOD, "log_id": 12}, "log_id must be 64 hex"),
    ({**GOOD, "log_id": "zz" * 32}, "log_id is not hex"),
    ({**GOOD, "root": "cd" * 33}, "root must be 64 hex"),
    ({**GOOD, "root": "gg" * 32}, "root is not hex"),
    ({**GOOD, "signer": None}, "signer must be 64 hex"),
    ({**GOOD, "signer": "x" * 64}, "signer is not hex"),
])
def test_malformed_checkpoints_are_refused(d, message):
    with pytest.raises(CheckpointError, match=message):
        SignedCheckpoint.from_dict(d)
    with pytest.raises(CheckpointError, match=message):
        SignedCheckpoint.from_json(json.dumps(d))


def test_malformed_checkpoint_text_and_files(tmp_path):
    with pytest.raises(CheckpointError, match="not valid JSON"):
        SignedCheckpoint.from_json("{")
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        SignedCheckpoint.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text(json.dumps({**GOOD, "size": -2}))
    with pytest.raises(CheckpointError, match=r"bad\.json: checkpoint size"):
        SignedCheckpoint.load(tmp_path / "bad.json")
    (tmp_path / "notjson.json").write_text("nope")
    with pytest.raises(CheckpointError, match=r"notjson\.json: checkpoint is not valid JSON"):
        SignedCheckpoint.load(tmp_path / "notjson.json")


# --------------------------------------------------------------------------------------------------
# check_extension and check_log_extends


def test_check_extension(op, bidder):
    log = make_log(op, bidder, 12)
    cp = {n: SignedCheckpoint.sign(op, log.log_id, n, log.root(n)) for n in range(1, 13)}
    for old in range(1, 13):
        for new in range(old, 13):
            check_extension(cp[old], cp[new], log.consistency_proof(old, new))
    # rolled back or truncated: smaller than the kept one
    with pytest.raises(RollbackError, match="fewer than the 9"):
        check_extension(cp[9], cp[5], [])
    # the same size with another root
    forked = SignedCheckpoint.sign(op, log.log_id, 9, "00" * 32)
    with pytest.raises(ForkError, match="fork"):
        check_extension(cp[9], forked, [])
    # a bad consistency proof: an element changed, one missing, one too many, none
    proof = log.consistency_proof(5, 12)
    for bad in ([("00" * 32)] + proof[1:], proof[:-1], proof + [proof[0]], [], ["not hex"]):
        with pytest.raises(ForkError, match="not an extension"):
            check_extension(cp[5], cp[12], bad)
    # a longer log that does not extend the kept one
    with pytest.raises(ForkError):
        check_extension(cp[5], SignedCheckpoint.sign(op, log.log_id, 12, "11" * 32), proof)
    # another log id wins over everything else
    for size in (3, 9, 12):
        with pytest.raises(LogIdentityError, match="another log"):
            check_extension(cp[9], SignedCheckpoint.sign(op, "ee" * 32, size, log.root(size)), [])


def test_check_log_extends(op, other, bidder):
    log = make_log(op, bidder, 8)
    kept = SignedCheckpoint.sign(op, log.log_id, 6, log.root(6))
    check_log_extends(log, kept)
    with pytest.raises(LogIdentityError, match="an empty log"):
        check_log_extends(Ledger.in_memory(), kept)
    with pytest.raises(LogIdentityError, match="not the log"):
        check_log_extends(make_log(other, bidder, 8), kept)
    short = Ledger.in_memory()
    for e in log.entries(stop=4):
        short.storage.append_many([(e, None)])
    with pytest.raises(RollbackError, match="4 entries, fewer than the 6"):
        check_log_extends(Ledger(short.storage), kept)
    with pytest.raises(ForkError, match="first 6 entries"):
        check_log_extends(log, SignedCheckpoint.sign(op, log.log_id, 6, log.root(5)))


# --------------------------------------------------------------------------------------------------
# LogView


def test_log_view_is_persisted_0600_and_reloaded(tmp_path, op, bidder):
    log = make_log(op, bidder, 5)
    path = tmp_path / "party" / "view.json"
    view = LogView(op.public_hex, path)
    assert view.kept is None and view.log_id is None
    first = view.observe(log)
    assert view.kept == first and view.log_id == log.log_id and view.checks == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SignedCheckpoint.load(path) == first
    grow(log, op, bidder, 4)
    second = log.checkpoint(op)
    again = LogView(op.public_hex, path)  # a restarted party reloads what it kept
    assert again.kept == first and again.log_id == log.log_id
    assert again.observe(log) == second and again.checks == 1
    # written to disk every PERSIST_EVERY entries, and on flush (before a reveal, when the party stops)
    assert SignedCheckpoint.load(path) == first
    again.flush()
    assert SignedCheckpoint.load(path) == second and stat.S_IMODE(path.stat().st_mode) == 0o600
    # a light client: accept a checkpoint given a consistency proof
    light = LogView(op.public_hex, log_id=log.log_id)
    light.accept(first, None)
    light.accept(second, log.consistency_proof(first.size, second.size))
    assert light.kept == second and light.checks == 1
    with pytest.raises(ForkError):
        light.accept(SignedCheckpoint.sign(op, log.log_id, 9, "00" * 32), [])
    assert light.kept == second
    # the same checkpoint again is fine (an extension by zero): the very one accepted, nothing to check
    assert again.observe(log) == second and again.checks == 1



def test_observe_needs_a_checkpoint(op, bidder):
    log = Ledger.in_memory()
    announce(log, op, bidder)
    with pytest.raises(CheckpointError, match="no signed checkpoint"):
        LogView(op.public_hex).observe(log)


def test_rollback_to_a_copy_of_the_file_is_refused(tmp_path, op, bidder):
    """(a) The auctioneer keeps a copy of its database, goes on, then restores the copy."""
    db, snap = tmp_path / "auction.db", tmp_path / "snapshot.db"
    view_file = tmp_path / "bidder.checkpoint.json"
    make_log(op, bidder, 6, path=db).close()
    copy_db(db, snap)
    with Ledger.open(db) as ledger:
        grow(ledger, op, bidder, 5)
        ledger.checkpoint(op)
    with Ledger.open(db, writer=False) as reader:
        assert LogView(op.public_hex, view_file).observe(reader).size == 11
    copy_db(snap, db)  # the rollback
    with Ledger.open(db) as ledger:  # the copy is a valid log on its own: it verifies and takes appends
        assert ledger.verify_chain().n_entries == 6
    with Ledger.open(db, writer=False) as reader:
        with pytest.raises(RollbackError, match="6 entries, fewer than the 11"):
            LogView(op.public_hex, view_file).observe(reader)
    assert SignedCheckpoint.load(view_file).size == 11  # the kept checkpoint is unchanged
    # a rollback followed by other entries (same count or more) is a fork
    with Ledger.open(db) as ledger:
        grow(ledger, op, bidder, 7, tag="rewritten")
        ledger.checkpoint(op)
    with Ledger.open(db, writer=False) as reader:
        with pytest.raises(ForkError, match="not an extension"):
            LogView(op.public_hex, view_file).observe(reader)


def test_serving_an_older_checkpoint_is_refused(op, bidder):
    log = make_log(op, bidder, 4)
    old = log.latest_checkpoint()
    grow(log, op, bidder, 3)
    log.checkpoint(op)
    view = LogView(op.public_hex)
    assert view.observe(log).size == 7
    log.storage._checkpoints.pop(7)  # the host drops its newest checkpoint and serves the old one
    assert log.latest_checkpoint() == old
    with pytest.raises(RollbackError, match="4 entries, fewer than the 7"):
        view.observe(log)


def test_a_fork_is_refused(op, bidder):
    """(b) Two logs with the same first entries that then differ, each checkpointed."""
    a, b = make_log(op, bidder, 5), make_log(op, bidder, 5)
    assert [e.hash for e in a] == [e.hash for e in b] and a.log_id == b.log_id
    grow(a, op, bidder, 3, tag="shown to bidder 0")
    grow(b, op, bidder, 3, tag="shown to bidder 1")
    cpa, cpb = a.checkpoint(op), b.checkpoint(op)
    assert cpa.size == cpb.size == 8 and cpa.root != cpb.root and a.root(5) == b.root(5)
    view = LogView(op.public_hex)
    view.observe(a)
    with pytest.raises(ForkError, match="not an extension"):
        view.observe(b)
    grow(b, op, bidder, 4)
    b.checkpoint(op)
    with pytest.raises(ForkError, match="not an extension"):
        view.observe(b)  # longer is no better
    # a party that kept only the common prefix accepts either: the fork starts after it
    common = LogView(op.public_hex)
    common.accept(SignedCheckpoint.sign(op, a.log_id, 5, a.root(5)), None)
    common.observe(b)
    # and the two signed checkpoints are the evidence: same log, same size, different roots
    cpa.verify(op.public_hex)
    cpb8 = SignedCheckpoint.sign(op, b.log_id, 8, b.root(8))
    assert (cpa.log_id, cpa.size) == (cpb8.log_id, cpb8.size) and cpa.root != cpb8.root


def test_a_rekeyed_log_is_refused(tmp_path, op, other, bidder):
    """(c) The same entries rebuilt from entry 0 under a new auctioneer key."""
    path = tmp_path / "view.json"
    log = make_log(op, bidder, 6)
    LogView(op.public_hex, path).observe(log)
    rebuilt = Ledger.in_memory()
    for e in log:
        rebuilt.append(e.kind, json.loads(e.payload.replace(op.public_hex, other.public_hex)),
                       other if e.signer == op.public_hex else bidder, round=e.round)
    rebuilt.checkpoint(other)
    assert rebuilt.log_id != log.log_id and rebuilt.verify_chain().n_entries == 6
    # the party that knows the announced auctioneer: the checkpoint is not its signature
    with pytest.raises(CheckpointSignatureError, match="not by the announced auctioneer"):
        LogView(op.public_hex, path).observe(rebuilt)
    # a party restarting and taking the operator from the rewritten announcement: its kept
    # checkpoint names another log
    with pytest.raises(LogIdentityError, match="another log"):
        LogView(other.public_hex, path, log_id=rebuilt.log_id).observe(rebuilt)
    with pytest.raises(LogIdentityError, match="rebuilt or re-keyed"):
        LogView(other.public_hex, path).observe(rebuilt)
    # the same operator key, but entry 0 rewritten (e.g. other bidders' keys): another log id
    same_key = Ledger.in_memory()
    announce(same_key, op, other)
    grow(same_key, op, bidder, 5)
    same_key.checkpoint(op)
    with pytest.raises(LogIdentityError, match="not the log"):
        LogView(op.public_hex, path).observe(same_key)
    # a checkpoint signed by another key is refused before anything else
    view = LogView(op.public_hex, path)
    with pytest.raises(CheckpointSignatureError, match="not by the announced auctioneer"):
        view.accept(SignedCheckpoint.sign(other, log.log_id, 6, log.root()), [])
    fake = SignedCheckpoint(log.log_id, 6, log.root(), op.public_hex, other.sign(b"whatever"))
    with pytest.raises(CheckpointSignatureError, match="does not verify"):
        view.accept(fake, [])
    assert SignedCheckpoint.load(path).signer == op.public_hex  # nothing refused was kept


def test_a_checkpoint_that_the_entries_do_not_match_is_refused(tmp_path, op, bidder, forger):
    """(d) A checkpoint whose root is not the entries' root, or that covers more than the log."""
    log = make_log(op, bidder, 6)
    wrong = SignedCheckpoint.sign(op, log.log_id, 6, log.root(5))
    log.storage.put_checkpoint(6, wrong.to_json())
    with pytest.raises(ForkError, match="do not hash to its own checkpoint"):
        LogView(op.public_hex).observe(log)
    beyond = SignedCheckpoint.sign(op, log.log_id, 9, log.root())
    log.storage.put_checkpoint(9, beyond.to_json())
    with pytest.raises(RollbackError, match="covers 9 entries but the log has 6"):
        LogView(op.public_hex).observe(log)
    # an entry rewritten in the file under a checkpoint (hash recomputed, signed by a forger)
    db = tmp_path / "l.db"
    make_log(op, bidder, 6, path=db).close()
    with Ledger.open(db, writer=False) as reader:
        e, log_id = reader.get(3), reader.log_id
    payload = '{"i":3,"tag":"forged"}'
    h = entry_hash(3, e.round, e.kind, payload, e.prev_hash, forger.public_hex)
    _tamper(db, "UPDATE entries SET payload=?, hash=?, signer=?, signature=? WHERE seq=3",
            payload, h, forger.public_hex, forger.sign(bytes.fromhex(statement_hash(log_id, e.round, e.kind, payload, forger.public_hex))))
    with Ledger.open(db, writer=False) as reader:
        with pytest.raises(ForkError, match="do not hash to its own checkpoint"):
            LogView(op.public_hex).observe(reader)


def test_a_tail_resigned_by_another_key_verifies_as_a_chain_but_not_against_the_kept_checkpoint(op, other, bidder):
    log = make_log(op, bidder, 8)
    view = LogView(op.public_hex)
    view.observe(log)
    rewritten = Ledger.in_memory()
    for e in log.entries(stop=4):
        rewritten.storage.append_many([(e, None)])
    rewritten = Ledger(rewritten.storage)
    grow(rewritten, other, other, 4, tag="forged")  # every later entry re-signed: a valid chain
    assert rewritten.verify_chain().n_entries == 8
    rewritten.checkpoint(op)  # even signed by the operator itself
    with pytest.raises(ForkError):
        view.observe(rewritten)


def test_check_included(tmp_path, op, bidder, forger):
    db = tmp_path / "l.db"
    make_log(op, bidder, 9, path=db).close()
    view = LogView(op.public_hex)
    with Ledger.open(db, writer=False) as reader:
        with pytest.raises(CheckpointError, match="not covered"):
            view.check_included(reader, 0)  # nothing kept yet
        view.observe(reader)
        for seq in range(9):
            view.check_included(reader, seq)
    with Ledger.open(db) as ledger:
        grow(ledger, op, bidder, 2)
    with Ledger.open(db, writer=False) as reader:
        with pytest.raises(CheckpointError, match="entry 9 is not covered"):
            view.check_included(reader, 9)
    # the payload changed, its stored hash kept: the content does not hash to the leaf
    _tamper(db, "UPDATE entries SET payload = ? WHERE seq = 4", '{"i":4,"tag":"changed"}')
    with Ledger.open(db, writer=False) as reader:
        with pytest.raises(ChainError, match="ledger entry 4: hash mismatch"):
            view.check_included(reader, 4)
        view.check_included(reader, 3)
    # the hash recomputed too (and re-signed by a forger): not the leaf of the kept tree
    with Ledger.open(db, writer=False) as reader:
        e, log_id = reader.get(4), reader.log_id
    h = entry_hash(4, e.round, e.kind, e.payload, e.prev_hash, forger.public_hex)
    _tamper(db, "UPDATE entries SET hash=?, signer=?, signature=? WHERE seq=4",
            h, forger.public_hex, forger.sign(bytes.fromhex(statement_hash(log_id, e.round, e.kind, e.payload, forger.public_hex))))
    with Ledger.open(db, writer=False) as reader:
        with pytest.raises(ForkError, match="entry 4 is not in the log of the checkpoint kept"):
            view.check_included(reader, 4)


def test_a_reader_open_while_the_writer_checkpoints_sees_no_false_rollback(tmp_path, op, bidder):
    """A verifier reading the log while the auctioneer writes must not accuse it: the reader's
    entries, tree and newest checkpoint are of one snapshot."""
    db = tmp_path / "l.db"
    writer = make_log(op, bidder, 4, path=db)
    reader = Ledger.open(db, writer=False)
    grow(writer, op, bidder, 5)
    writer.checkpoint(op)
    view = LogView(op.public_hex)
    assert view.observe(reader).size == 4
    reader.close()
    with Ledger.open(db, writer=False) as fresh:
        assert view.observe(fresh).size == 9 and view.checks == 1
    writer.close()


# --------------------------------------------------------------------------------------------------
# A block's entries checked in one pass (LogView.check_tail, merkle.root_with_tail)


def test_root_with_tail_equals_the_tree_root_for_every_split():
    from zkauction.protocol import merkle

    leaves = [merkle.leaf_hash(bytes([i % 256, i // 256])) for i in range(70)]
    tree = merkle.MerkleTree.from_leaf_hashes(leaves)
    for size in range(1, 71):
        for start in range(0, size + 1):
            got = merkle.root_with_tail(start, tree.frontier(start), leaves[start:size])
            assert got == tree.root(size), (start, size)
    with pytest.raises(merkle.MerkleError, match="frontier"):
        merkle.root_with_tail(5, tree.frontier(4), leaves[5:9])


def test_check_tail_checks_a_block_in_one_pass_and_names_a_forged_one(op, bidder, forger):
    log = make_log(op, bidder, 9)
    grow(log, op, bidder, 8)
    log.checkpoint(op)
    view = LogView(op.public_hex, log_id=log.log_id)
    view.observe(log)
    tail = log.entries(start=9)
    assert view.check_tail(log, tail)
    calls = []
    real = log.inclusion_proof
    log.inclusion_proof = lambda *a: calls.append(a) or real(*a)
    for e in tail:
        view.check_included(log, e.seq, e)  # no proof needed: checked in the pass
    assert calls == []
    view.check_included(log, 3, log.get(3))  # any other entry still by its proof
    assert calls
    # not a tail (a gap, or not ending at the kept size): nothing checked, the caller falls back
    assert not view.check_tail(log, tail[:-1]) and not view.check_tail(log, tail[:3] + tail[4:])
    # another entry of the same shape in its place: the root differs
    fake = dataclasses.replace(tail[2], payload='{"i":11,"tag":"b"}')
    with pytest.raises(ChainError):  # its hash no longer matches its content
        view.check_tail(log, tail[:2] + [fake] + tail[3:])
    other = make_log(op, bidder, 17, tag="z")
    swapped = [other.get(e.seq) for e in tail]  # well-formed, signed, but entries of another history
    with pytest.raises((ForkError, ChainError)):
        view.check_tail(log, swapped)
    # a host lying about the frontier of the log before the tail
    real_frontier = log.frontier
    log.frontier = lambda size: ["00" * 32] * len(real_frontier(size))
    with pytest.raises(ForkError, match="not the end of the log"):
        view.check_tail(log, tail)
    log.frontier = lambda size: ["zz"]
    with pytest.raises(ForkError, match="frontier is malformed"):
        view.check_tail(log, tail)


def test_an_entry_the_host_does_not_serve_is_named(op, bidder):
    log = make_log(op, bidder, 5)
    view = LogView(op.public_hex, log_id=log.log_id)
    view.observe(log)

    class Withholding:  # a host that answers nothing for an entry its checkpoint covers
        def __getattr__(self, name):
            return getattr(log, name)

        def get(self, seq):
            return None

    with pytest.raises(ForkError, match="entry 3 is covered by the checkpoint kept, but the host does not serve it"):
        view.check_included(Withholding(), 3)
