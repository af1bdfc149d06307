"""The log's storage behaves the same on SQLite (the embedded default) and PostgreSQL (the server
option): every test here runs on both. PostgreSQL tests use the server at $ZKAUCTION_TEST_PG_URL
(``scripts/pg.sh start`` prints one); without it they are skipped, unless $CI or
ZKAUCTION_REQUIRE_PG=1 is set, when they fail (CI must not skip them silently). Each test gets a
log of its own (a fresh ``?log=`` name), dropped afterwards."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from zkauction.protocol.log import ChainError, Ledger, SigningKey
from zkauction.protocol.storage import (
    DuplicateEntryError,
    Entry,
    LedgerError,
    LogLockedError,
    MemoryStorage,
    SQLiteStorage,
)
from zkauction.protocol.storage_pg import (
    DEFAULT_LOG,
    PostgresStorage,
    is_postgres_url,
    lock_key,
    open_storage,
    parse_url,
    redact_url,
)

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("ZKAUCTION_TEST_PG_URL", "").strip()
REQUIRE_PG = (os.environ.get("ZKAUCTION_REQUIRE_PG") == "1"
              or os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"))


def pg_url() -> str:
    """The test server's URL, or skip (fail under CI / ZKAUCTION_REQUIRE_PG=1)."""
    if not PG_URL:
        why = "PostgreSQL tests need ZKAUCTION_TEST_PG_URL (a server: `scripts/pg.sh start` prints its URL)"
        if REQUIRE_PG:
            pytest.fail(why + "; $CI or ZKAUCTION_REQUIRE_PG=1 is set, so they may not be skipped", pytrace=False)
        pytest.skip(why)
    return PG_URL


def with_log(url: str, name: str) -> str:
    return url + ("&" if "?" in url else "?") + f"log={name}"


def pg_admin():
    import psycopg

    conn = psycopg.connect(parse_url(pg_url())[0], autocommit=True)
    conn.execute("SET lock_timeout = '20s'")
    return conn


class Backend:
    """One log on one backend: ``db`` is what ``--db`` would be."""

    def __init__(self, name: str, db: str | Path, log: str | None = None):
        self.name, self.db, self.log = name, db, log

    def open(self, **kw) -> SQLiteStorage | PostgresStorage:
        return open_storage(self.db, **kw)

    def ledger(self, **kw) -> Ledger:
        return Ledger.open(self.db, **kw)

    def exists(self) -> bool:
        if self.name == "sqlite":
            return Path(self.db).exists()
        with pg_admin() as conn:
            return conn.execute("SELECT to_regnamespace(%s)", (self.log,)).fetchone()[0] is not None

    def drop(self) -> None:
        if self.name == "postgres":
            with pg_admin() as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{self.log}" CASCADE')


def make_backend(name: str, tmp_path: Path) -> Backend:
    if name == "sqlite":
        return Backend(name, tmp_path / "log.db")
    log = "t_" + uuid.uuid4().hex[:20]
    return Backend(name, with_log(pg_url(), log), log)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path):
    b = make_backend(request.param, tmp_path)
    yield b
    b.drop()


@pytest.fixture(scope="module")
def key():
    return SigningKey.from_seed(bytes(range(32)))


def sample(key, n: int = 9) -> list[Entry]:
    """``n`` chained, signed entries of a few kinds and rounds (and no round)."""
    source = Ledger.in_memory()
    for i in range(n):
        kind = ("commit", "outcome", "note")[i % 3]
        source.append(kind, {"i": i, "v": [0.5 * i, "é"]}, key, round=None if kind == "note" else i // 3)
    return list(source)


# --------------------------------------------------------------------------------------------------
# Storage level


def test_append_scan_get_last_agree_with_the_reference(backend, key):
    es = sample(key)
    ref = MemoryStorage()
    s = backend.open()
    try:
        assert s.last() is None and s.get(0) is None and list(s.scan()) == [] and s.recent_checkpoints(1) == []
        s.append_many([])  # nothing to do
        for batch in ([(e, None) for e in es[:4]], [(e, f"k/{e.seq}") for e in es[4:]]):
            s.append_many(batch)
            ref.append_many(batch)
        assert list(s.scan()) == es and s.last() == es[-1]
        assert [s.get(i) for i in range(-1, len(es) + 1)] == [None] + es + [None]
        for start in (0, 2, 9):
            for stop in (None, 0, 5, 20):
                for kind in (None, "commit", "note", "absent"):
                    for rnd in (None, 0, 2, 7):
                        got = list(s.scan(start, kind, rnd, stop))
                        assert got == list(ref.scan(start, kind, rnd, stop)), (start, kind, rnd, stop)
                        assert [e.seq for e in got] == sorted(e.seq for e in got)
        assert [e.seq for e in s.scan(kind="note")] == [2, 5, 8] and all(e.round is None for e in s.scan(kind="note"))
    finally:
        s.close()
    s = backend.open(writer=False)
    try:
        assert list(s.scan()) == es  # and the text round-trips exactly (the hashes are over it)
    finally:
        s.close()


def test_a_taken_uniqueness_key_is_refused_with_nothing_written(backend, key):
    es = sample(key, 5)
    s = backend.open()
    try:
        s.append_many([(es[0], "outcome/0")])
        with pytest.raises(DuplicateEntryError, match="same key"):
            s.append_many([(es[1], None), (es[2], "outcome/0")], checkpoint=(3, "cp-3"))
        with pytest.raises(DuplicateEntryError):  # twice in one batch
            s.append_many([(es[1], "a"), (es[2], "a")])
        assert list(s.scan()) == es[:1] and s.last() == es[0] and s.recent_checkpoints(1) == []
        s.append_many([(es[1], "outcome/1"), (es[2], None)])  # the log goes on
        assert list(s.scan()) == es[:3]
    finally:
        s.close()
    s = backend.open()  # and the key is still taken after reopening
    try:
        with pytest.raises(DuplicateEntryError):
            s.append_many([(es[3], "outcome/1")])
        assert s.last() == es[2]
    finally:
        s.close()


def test_a_batch_is_all_or_nothing_with_its_checkpoint(backend, key):
    es = sample(key, 6)
    s = backend.open()
    try:
        s.append_many([(es[0], None), (es[1], None)])
        with pytest.raises(LedgerError, match="cannot append entry 1"):  # taken (a stale writer)
            s.append_many([(es[1], None)], checkpoint=(2, "x"))
        gap = Entry(**{**es[3].to_dict(), "seq": 4})
        with pytest.raises(LedgerError, match="cannot append entry 4: the log has 3"):  # a gap inside a batch
            s.append_many([(es[2], "k2"), (gap, None)], checkpoint=(4, "x"))
        assert list(s.scan()) == es[:2] and s.recent_checkpoints(1) == []
        s.append_many([(es[2], "k2"), (es[3], None)])  # k2 was not kept by the refused batch
        assert list(s.scan()) == es[:4]
    finally:
        s.close()


def test_a_checkpoint_is_stored_in_the_same_transaction_and_the_newest_wins(backend, key):
    es = sample(key, 6)
    s = backend.open()
    try:
        s.append_many([(e, None) for e in es[:3]], checkpoint=(3, "cp-3"))
        assert s.recent_checkpoints(1) == ["cp-3"]
        s.put_checkpoint(3, "cp-3b")  # the same size again: replaced
        s.put_checkpoint(2, "cp-2")  # an older size: stored, not the latest
        assert s.recent_checkpoints(1) == ["cp-3b"]
        s.append_many([(e, None) for e in es[3:]], checkpoint=(6, "cp-6"))
        assert s.recent_checkpoints(1) == ["cp-6"]
    finally:
        s.close()
    r = backend.open(writer=False)
    try:
        assert r.recent_checkpoints(1) == ["cp-6"] and list(r.scan()) == es
    finally:
        r.close()


def test_a_second_writer_is_refused_until_the_first_closes(backend, key):
    w = backend.open()
    try:
        with pytest.raises(LogLockedError, match="another process is writing"):
            backend.open()
        r = backend.open(writer=False)  # readers are not
        r.close()
        w.append_many([(sample(key, 1)[0], None)])
    finally:
        w.close()
    w = backend.open(durable=False)  # free again, at once
    try:
        assert w.last().seq == 0
    finally:
        w.close()


WRITER_CHILD = """
import sys, time
from zkauction.protocol.storage_pg import open_storage
s = open_storage(sys.argv[1])
print("ready", flush=True)
time.sleep(120)
"""


def test_a_writer_in_another_process_holds_the_lock_and_a_killed_one_leaves_none(backend):
    backend.open().close()  # the log exists
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    child = subprocess.Popen([sys.executable, "-c", WRITER_CHILD, str(backend.db)], env=env,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        with pytest.raises(LogLockedError):
            backend.open()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    deadline = time.monotonic() + 20  # the server notices the dead connection (at once on a local one)
    while True:
        try:
            backend.open().close()
            break
        except LogLockedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_a_reader_creates_nothing_cannot_write_and_sees_one_snapshot(backend, key):
    es = sample(key, 7)
    with pytest.raises(LedgerError, match="no such log"):
        backend.open(writer=False)
    assert not backend.exists()
    w = backend.open()
    try:
        w.append_many([(e, None) for e in es[:3]], checkpoint=(3, "cp-3"))
        r = backend.open(writer=False)
        try:
            with pytest.raises(LedgerError, match="read-only"):
                r.append_many([(es[3], None)])
            with pytest.raises(LedgerError, match="read-only"):
                r.put_checkpoint(3, "x")
            w.append_many([(e, None) for e in es[3:]], checkpoint=(7, "cp-7"))
            # the reader's entries and checkpoint are all of the log it opened
            assert list(r.scan()) == es[:3] and r.last() == es[2] and r.get(3) is None
            assert r.recent_checkpoints(1) == ["cp-3"]
        finally:
            r.close()
        r = backend.open(writer=False)  # reopening gives the newer view
        try:
            assert list(r.scan()) == es and r.recent_checkpoints(1) == ["cp-7"]
        finally:
            r.close()
    finally:
        w.close()


# --------------------------------------------------------------------------------------------------
# Ledger level


def fill(ledger: Ledger, key, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        ledger.append("outcome", {"round": i, "payment": [0.25 * i, 0.1]}, key, round=i, unique=f"outcome/{i}")


def test_a_ledger_run_appends_checkpoints_reopens_and_verifies(backend, key):
    with backend.ledger() as ledger:
        assert isinstance(ledger.storage, PostgresStorage if backend.name == "postgres" else SQLiteStorage)
        ledger.append("announcement", {"auction": "x"}, key)
        fill(ledger, key, 4)
        cp = ledger.checkpoint(key)
        ledger.append_many([("commit", {"b": 0}, key, 4, "commit/4/0"), ("commit", {"b": 1}, key, 4, "commit/4/1")],
                           checkpoint_key=key)
        with pytest.raises(DuplicateEntryError):
            ledger.append("outcome", {}, key, round=2, unique="outcome/2")
        root, n = ledger.root(), len(ledger)
    with backend.ledger() as ledger:  # a writer replays (verifies) the chain on open
        assert len(ledger) == n == 7 and ledger.root() == root
        chain = ledger.verify_chain()
        assert chain.n_entries == 7 and chain.root == root
        latest = ledger.latest_checkpoint()
        assert latest.size == 7 and latest.root == root and latest.log_id == ledger.log_id
        assert ledger.consistency_proof(cp.size) == ledger.consistency_proof(cp.size, 7)
        fill(ledger, key, 2, start=5)
    with backend.ledger(writer=False) as reader:
        assert reader.verify_chain().n_entries == 9 and len(reader.entries(kind="outcome")) == 6


def test_proofs_are_the_same_on_every_backend(tmp_path, key):
    ledgers = {"memory": Ledger.in_memory()}
    backends = [make_backend("sqlite", tmp_path), make_backend("postgres", tmp_path)]
    try:
        for b in backends:
            ledgers[b.name] = b.ledger()
        for ledger in ledgers.values():
            ledger.append("announcement", {"auction": "same"}, key)
            fill(ledger, key, 12)
        for b in backends:  # the trees rebuilt from what each backend stored
            ledgers[b.name].close()
            ledgers[b.name] = b.ledger(writer=False)
        views = {}
        for name, ledger in ledgers.items():
            n = len(ledger)
            views[name] = (
                [e.to_dict() for e in ledger], [ledger.root(m) for m in range(1, n + 1)],
                [ledger.inclusion_proof(i, m) for m in range(1, n + 1) for i in range(m)],
                [ledger.consistency_proof(a, m) for m in range(1, n + 1) for a in range(1, m + 1)],
            )
        assert views["sqlite"] == views["memory"] and views["postgres"] == views["memory"]
    finally:
        for ledger in ledgers.values():
            ledger.close()
        for b in backends:
            b.drop()


def test_the_read_only_log_commands_take_either_backend(backend, key):
    import json

    from typer.testing import CliRunner

    from zkauction.cli import app

    from zkauction.protocol.announcement import DEFAULT_DEADLINES, Announcement

    ann = Announcement(rounds=2, audits=1, penalty=1.0, mode="reveal", n=1, m=1, input_scale=12, support=[[[0.0, 1.0]]],
                       auction={"name": "x"}, auctioneer=key.public_hex, bidders=[SigningKey.generate().public_hex],
                       third_party=None, deadlines=dict(DEFAULT_DEADLINES), exclusion="void", nonce="ab" * 16)
    with backend.ledger() as ledger:  # (`log checkpoint` prints a checkpoint its announced auctioneer signed)
        ledger.append("announcement", ann.to_dict(), key)
        fill(ledger, key, 3)
        cp = ledger.checkpoint(key)
    cli = CliRunner()
    res = cli.invoke(app, ["log", "checkpoint", "--db", str(backend.db)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == cp.to_dict()
    res = cli.invoke(app, ["log", "ls", "--db", str(backend.db), "--kind", "outcome", "--json"])
    assert res.exit_code == 0, res.output
    assert [json.loads(line)["seq"] for line in res.output.splitlines()] == [1, 2, 3]


# --------------------------------------------------------------------------------------------------
# PostgreSQL only: several logs per database, the append-only triggers


def test_logs_in_one_database_are_independent(tmp_path, key):
    a, b = make_backend("postgres", tmp_path), make_backend("postgres", tmp_path)
    try:
        with a.ledger() as la, b.ledger() as lb:  # two writers at once: one per log
            fill(la, key, 3)
            fill(lb, key, 1)
            fill(lb, key, 1, start=1)
            assert len(la) == 3 and len(lb) == 2
        with a.ledger(writer=False) as la, b.ledger(writer=False) as lb:
            assert [e.hash for e in la][:2] == [e.hash for e in lb] and la.verify_chain().n_entries == 3
    finally:
        a.drop()
        b.drop()


def test_postgres_tables_are_append_only(tmp_path, key):
    import psycopg

    b = make_backend("postgres", tmp_path)
    try:
        with b.ledger() as ledger:
            fill(ledger, key, 2)
        with pg_admin() as conn:
            for sql in (f'UPDATE "{b.log}".entries SET payload = %s', f'DELETE FROM "{b.log}".entries WHERE seq > %s',
                        f'TRUNCATE "{b.log}".entries'):
                with pytest.raises(psycopg.Error, match="append-only"):
                    conn.execute(sql, ("{}",) if "UPDATE" in sql else (0,) if "DELETE" in sql else ())
        with b.ledger() as ledger:
            assert ledger.verify_chain().n_entries == 2
    finally:
        b.drop()


def test_a_round_stored_as_another_type_is_refused_not_hidden_from_lookups(backend, key):
    """The eleventh review: the host stored an outcome with round 1.5 (SQLite: a REAL in the INTEGER
    column; PostgreSQL: the column altered to NUMERIC). A full replay read it as round 1 (int(1.5)),
    hash, signature and Merkle root intact, while every ``round = 1`` lookup missed it: `zkauction
    verify --db` (lookups) said valid where `log verify` (a replay) named a second outcome. A stored
    value of another type than the log writes is refused, never coerced."""
    with backend.ledger() as ledger:
        fill(ledger, key, 4)
    if backend.name == "sqlite":
        import sqlite3

        con = sqlite3.connect(str(backend.db))
        con.execute("DROP TRIGGER entries_no_update")
        con.execute("UPDATE entries SET round = 1.5 WHERE seq = 1")
        con.commit()
        con.close()
        why = "stored entry 1: a value of another type than the log writes .*round float"
    else:
        with pg_admin() as conn:
            conn.execute(f'ALTER TABLE "{backend.log}".entries ALTER COLUMN round TYPE NUMERIC')
        why = "not a zkauction log \\(column types \\{'round': 'numeric'\\}"
    if backend.name == "sqlite":  # a reader stops before the row (replay and lookups alike), and names it
        with backend.ledger(writer=False) as reader:
            assert len(reader) == 1 and [e.seq for e in reader.entries()] == [0] and reader.entries(round=1) == []
            with pytest.raises(ChainError, match=why):
                reader.verify_chain()
    else:
        with pytest.raises(LedgerError, match=why):
            backend.ledger(writer=False)
    with pytest.raises(LedgerError, match=why):
        backend.ledger()


def test_an_entry_a_doctored_index_hides_from_lookups_is_not_missed(tmp_path, key):
    """The host doctors the SQLite indexes: each is created partial (``WHERE seq <> 4``), then
    ``PRAGMA writable_schema`` rewrites its definition to the full one, so the planner uses it and
    every lookup by round or kind misses entry 4 (a second outcome for round 2), while the table scan
    (replay, Merkle root, checkpoints) holds it: `zkauction verify --db` (lookups) would have called
    round 2 clean. Every lookup is checked against the counts of the full read made on open."""
    import sqlite3

    db = tmp_path / "a.db"
    with Ledger.open(db) as ledger:
        fill(ledger, key, 4)
        ledger.append("outcome", {"round": 2, "payment": [9.0, 9.0]}, key, round=2)  # entry 4
    con = sqlite3.connect(str(db))
    for name, cols in (("entries_round", "round"), ("entries_kind_round", "kind, round")):
        con.execute(f"DROP INDEX {name}")
        con.execute(f"CREATE INDEX {name} ON entries ({cols}) WHERE seq <> 4")
    con.commit()
    con.execute("PRAGMA writable_schema = ON")
    for name, cols in (("entries_round", "round"), ("entries_kind_round", "kind, round")):
        con.execute("UPDATE sqlite_master SET sql = ? WHERE name = ?", (f"CREATE INDEX {name} ON entries ({cols})", name))
    con.commit()
    con.close()
    con = sqlite3.connect(str(db))
    assert [r for r, in con.execute("SELECT seq FROM entries WHERE round = 2")] == [2]  # the index hides entry 4
    assert [r for r, in con.execute("SELECT seq FROM entries ORDER BY seq")] == [0, 1, 2, 3, 4]
    con.close()
    for writer in (False, True):
        with Ledger.open(db, writer=writer) as ledger:
            assert len(ledger) == 5 and ledger.verify_chain().n_entries == 5
            with pytest.raises(LedgerError, match="lookup of round 2 returned 1 of its first 5 entries, its full read "
                                                  "holds 2: a damaged or doctored index"):
                ledger.entries(round=2)
            with pytest.raises(LedgerError, match="lookup of round 2 returned 1 of"):
                ledger.entries(kind="outcome", round=2)
            with pytest.raises(LedgerError, match="lookup of kind 'outcome' returned 4 of its first 5 entries, its full "
                                                  "read holds 5"):
                ledger.entries(kind="outcome")
            assert [e.seq for e in ledger.entries(round=1)] == [1]  # a round the index does not hide answers
            assert [e.seq for e in ledger.entries(kind="outcome", start=1, stop=3)] == [1, 2]


def test_a_lookup_is_checked_against_the_full_read_on_every_backend(backend, key):
    """The same check on any storage: a scan that drops or adds an entry to a lookup is named, and
    entries appended by this writer after the full read are counted too."""
    with backend.ledger() as ledger:
        fill(ledger, key, 3)
        ledger.append("outcome", {"round": 1, "payment": [1.0, 1.0]}, key, round=1)
        assert [e.seq for e in ledger.entries(round=1)] == [1, 3]
        assert len(ledger.entries(kind="outcome")) == 4
        # a writer keeps the rounds it looked up (checked) until it appends to them
        ledger.append("dispute", {"round": 1}, key, round=1)
        assert [e.seq for e in ledger.entries(round=1)] == [1, 3, 4]
        assert [e.seq for e in ledger.entries(kind="dispute", round=1)] == [4]
        ledger._rounds_seen.clear()  # the doctored scans below meet a fresh lookup
        real = ledger.storage.scan

        def hiding(start=0, kind=None, round=None, stop=None):
            return (e for e in real(start, kind, round, stop) if e.seq != 3)

        def adding(start=0, kind=None, round=None, stop=None):
            extra = [ledger.get(2)] if round == 1 else []
            return iter(list(real(start, kind, round, stop)) + extra)

        ledger.storage.scan = hiding
        with pytest.raises(LedgerError, match="lookup of round 1 returned 2 of its first 5 entries, its full read holds 3"):
            ledger.entries(round=1)
        ledger.storage.scan = adding
        with pytest.raises(LedgerError, match="lookup of round 1 returned entry 2 of round 2"):
            ledger.entries(round=1)
        ledger.storage.scan = real


# --------------------------------------------------------------------------------------------------
# Choosing the backend; URLs (no server needed)


def test_open_storage_picks_the_backend_from_db(tmp_path):
    for db in (tmp_path / "a.db", str(tmp_path / "b.db")):
        s = open_storage(db)
        assert isinstance(s, SQLiteStorage)
        s.close()
    assert is_postgres_url("postgresql://h/db") and is_postgres_url("POSTGRES://h/db")
    assert not is_postgres_url("auction.db") and not is_postgres_url(Path("postgresql://h/db"))
    with pytest.raises(LedgerError, match="pass it as a string"):
        open_storage(Path("postgresql://h/db"))
    assert not (Path.cwd() / "postgresql:").exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_server_is_a_ledger_error_naming_the_url_without_its_password():
    port = free_port()
    for url in (f"postgresql://alice:s3cret@127.0.0.1:{port}/auctions?log=main",
                f"postgres://alice@127.0.0.1:{port}/auctions?password=s3cret&log=main"):
        for writer in (True, False):
            with pytest.raises(LedgerError, match="cannot connect to the PostgreSQL server") as e:
                Ledger.open(url, writer=writer)
            assert "s3cret" not in str(e.value)
            assert f"://alice@127.0.0.1:{port}/auctions" in str(e.value) and "log=main" in str(e.value)


def test_urls_name_the_log_and_keep_libpq_parameters():
    assert parse_url("postgresql://u@h/db") == ("postgresql://u@h/db", DEFAULT_LOG)
    assert parse_url("postgresql://u:p@h:5/db?sslmode=require&log=run_2&connect_timeout=3") == (
        "postgresql://u:p@h:5/db?sslmode=require&connect_timeout=3", "run_2")
    assert parse_url("postgresql:///db?host=%2Ftmp%2Fx&log=a") == ("postgresql:///db?host=%2Ftmp%2Fx", "a")
    assert parse_url("postgres://h?options=-c%20x%3Dy+z&log=a") == ("postgres://h?options=-c%20x%3Dy+z", "a")  # as given
    for bad in ("Main", "1st", "a-b", "", "x" * 64, "a;drop"):
        with pytest.raises(LedgerError, match="log name"):
            parse_url(f"postgresql://h/db?log={bad}")
    with pytest.raises(LedgerError, match="more than one"):
        parse_url("postgresql://h/db?log=a&log=b")
    assert redact_url("postgresql://u:p4ss@h:5/db?log=a&password=p4ss") == "postgresql://u@h:5/db?log=a"
    assert lock_key("a") != lock_key("b") and -2**63 <= lock_key("a") < 2**63


def test_the_storage_modules_do_not_import_psycopg_until_a_url_is_opened():
    code = ("import sys, zkauction.protocol.storage, zkauction.protocol.storage_pg, zkauction.protocol.log; "
            "assert not [m for m in sys.modules if m.startswith('psycopg')], 'psycopg imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
