"""A twenty-fifth review: a seeded tamper fuzzer against the offline verifiers (`verify_log`, the
`zkauction log verify` command, and `Auditor.audit`), and the holes it found, each shrunk by hand to a
minimal deterministic test that asserts the DEFENCE (it fails while the hole is open; the comment
marked "(now:" says what happens without the defence).

I1 (no framing): a copy of an honest finished log changed by what anyone holding the file can do is
never LOG INVALID (ok False and not damaged / another_log / usage), never carries penalty_due, and the
Auditor (not overdue) never says invalid. I2 (no escape): a caught host's database (round 3 overcharges,
KEPT pins it) changed by what its host can do never passes verify_log(since=KEPT) or the Auditor with
checkpoints=[KEPT]; overdue, the Auditor says invalid. Under both, any exception that is not a
ZkAuctionError is a bug (a crash is no verdict). The operations and checks are in tests/fuzz19.py."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from test_review_attacks_16 import _breach_named, _doctored, caught  # noqa: F401  (caught: a fixture)

from zkauction.cli.log import verify_log
from zkauction.errors import ZkAuctionError
from zkauction.protocol.audit import Auditor
from zkauction.protocol.log import Ledger

COLS = "seq, round, kind, payload, prev_hash, hash, signer, signature"


@pytest.fixture(scope="module")
def honest(tmp_path_factory):
    """A finished honest run (reveal mode, 3 rounds): its database, the auction, and the size of a
    checkpoint row the auctioneer stored well before the end (one the holder keeps as the newest)."""
    import fuzz19

    base = fuzz19.honest_base(tmp_path_factory.mktemp("honest19"))
    with Ledger.open(base.db, writer=False) as led:
        n = len(led)
    c = sqlite3.connect(base.db)
    try:
        sizes = [s for (s,) in c.execute("SELECT size FROM checkpoints ORDER BY size")]
    finally:
        c.close()
    mid = max(s for s in sizes if s <= n - 3)
    return base.db, base.fn, mid, n


def _untyped_entries(c: sqlite3.Connection) -> None:
    """The entries table re-created without its key, types or constraints (anyone with the file can)."""
    for (t,) in c.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        c.execute(f"DROP TRIGGER {t}")
    c.execute("ALTER TABLE entries RENAME TO old")
    c.execute("DROP INDEX IF EXISTS entries_kind_round")
    c.execute("DROP INDEX IF EXISTS entries_round")
    c.execute("CREATE TABLE entries (seq, round, kind, payload, prev_hash, hash, signer, signature, uniq)")
    c.execute("INSERT INTO entries SELECT * FROM old")
    c.execute("DROP TABLE old")


def _copy_with(src: Path, dest: Path, edit) -> Path:
    _doctored(src, dest)
    c = sqlite3.connect(dest)
    try:
        edit(c)
        c.commit()
    finally:
        c.close()
    return dest


def _verdicts_or_crash(led, fn=None, checkpoints=(), overdue=False):
    """(verify_log's report or the exception, the Auditor's report or the exception)."""
    out = []
    for f in (lambda: verify_log(led, checkpoints[0] if checkpoints else None),
              lambda: Auditor(led, outcome=fn, checkpoints=list(checkpoints)).audit(overdue=overdue)):
        try:
            out.append(f())
        except Exception as e:  # noqa: BLE001
            out.append(e)
    return out


# ------------------------------------------------------------------------------------------------
# 1. (framing, I1) A second row with the seq of the last entry a checkpoint pins. The holder re-creates
#    the entries table without its key (seq is then any value) and adds a copy of row K-1 after it,
#    where K is the newest stored checkpoint's size (it deletes the newer checkpoint rows, or K is a
#    bidder's kept checkpoint). The reader builds the Merkle tree from the rows by POSITION (the honest
#    K leaves, then the copy), so K still pins the honest entries; but checkpoint.vouched_prefix reads
#    "the first K entries" as `ledger.entries(stop=K)`, a scan by seq VALUE (storage.scan: seq < K), which
#    returns K + 1 rows. The replica fails at position K ("sequence number is K-1, expected K"), and
#    verify_log (step 4) and Auditor._audit ask entries.pinned_failure about `ledger.storage.get(e.seq)`:
#    the honest row K, a different row, whose content hashes to its leaf -- "pinned", so the chain
#    failure is the auctioneer's own: LOG INVALID, the Auditor invalid, the penalty due.


def _dup_after(k: int):
    def edit(c):
        c.execute("DELETE FROM checkpoints WHERE size > ?", (k,))
        _untyped_entries(c)
        row = c.execute(f"SELECT {COLS} FROM entries WHERE seq = ?", (k - 1,)).fetchone()
        c.execute(f"INSERT INTO entries ({COLS}) VALUES (?,?,?,?,?,?,?,?)", row)
    return edit


def test_a_second_row_with_a_pinned_seq_does_not_frame_the_honest_auctioneer(tmp_path, honest):
    db, fn, k, _ = honest
    copy = _copy_with(db, tmp_path / "dup.db", _dup_after(k))
    with Ledger.open(copy, writer=False) as led:
        rep, report = _verdicts_or_crash(led, fn)
    # (now: ok False, no "damaged": "chain: ledger entry K: sequence number is K-1, expected K (entry missing
    #  or reordered)" -- LOG INVALID)
    assert isinstance(rep, dict) and (rep["ok"] or rep.get("damaged")), rep
    # (now: "invalid: the log does not verify: ledger entry K: sequence number ...", the penalty due)
    assert not isinstance(report, Exception) and report.status != "invalid", report.to_dict()


# ------------------------------------------------------------------------------------------------
# 2. (crash, I1 and I2) The same mismatch the other way: the seq column of the rows from some entry on
#    moved up (a gap; trigger dropped, the key kept). The tree, by position, is untouched, so every
#    checkpoint still pins; `entries(stop=K)` returns fewer than K rows, vouched_prefix returns them as
#    "the first K entries" without a word, and Auditor._audit compares checkpoints against that shorter
#    replica: equivocation -> log.root(K) raises merkle.MerkleError ("tree size K > current tree size"),
#    a ValueError, out of Auditor.audit (overdue or not). The host does it to its own database: round 3's
#    overcharge, which KEPT pins, gets a traceback, not a verdict. verify_log (which compares against the
#    full ledger) says "public checks: ... in the first K entries" having judged only the rows before the
#    gap, and COPY DAMAGED where the twenty-second review made a pinned breach LOG INVALID.


def _renumber_from(seq: int, by: int = 1000):
    def edit(c):
        c.execute("UPDATE entries SET seq = seq + ? WHERE seq >= ?", (10 ** 6, seq))
        c.execute("UPDATE entries SET seq = seq - ? WHERE seq >= ?", (10 ** 6 - by, 10 ** 6))
    return edit


def test_a_gap_in_the_seq_column_does_not_crash_the_auditor_on_the_host_that_made_it(tmp_path, caught):
    db, kept, _, bad = caught

    def edit(c):  # (and one row after the last: the replica path needs rows beyond what is pinned)
        _renumber_from(bad)(c)
        row = list(c.execute(f"SELECT {COLS} FROM entries ORDER BY seq DESC LIMIT 1").fetchone())
        row[0], row[4], row[5] = row[0] + 1, row[5], "ab" * 32
        c.execute(f"INSERT INTO entries ({COLS}) VALUES (?,?,?,?,?,?,?,?)", row)

    copy = _copy_with(db, tmp_path / "gap.db", edit)
    with Ledger.open(copy, writer=False) as led:
        assert led.root(kept.size) == kept.root  # KEPT still pins every entry, round 3's outcome included
        rep, report = _verdicts_or_crash(led, checkpoints=[kept], overdue=True)
    # (now: MerkleError: tree size K > current tree size <bad>, a traceback)
    assert not isinstance(report, Exception) or isinstance(report, ZkAuctionError), repr(report)
    assert not isinstance(report, Exception) and report.status == "invalid", report
    # (now: COPY DAMAGED, "public checks: ... in the first K entries" passed: the breach KEPT pins unread)
    assert _breach_named(rep), rep


def test_a_gap_in_the_seq_column_of_an_honest_copy_is_not_a_crash(tmp_path, honest):
    db, fn, k, _ = honest
    copy = _copy_with(db, tmp_path / "gap.db", lambda c: (c.execute("DELETE FROM checkpoints WHERE size > ?", (k,)),
                                                         _renumber_from(2)(c)))
    with Ledger.open(copy, writer=False) as led:
        rep, report = _verdicts_or_crash(led, fn)
    assert isinstance(rep, dict) and (rep["ok"] or rep.get("damaged")), rep
    # (now: MerkleError out of Auditor.audit)
    assert not isinstance(report, Exception) and report.status == "pending", repr(report)


# ------------------------------------------------------------------------------------------------
# 3. (escape, I2) A row whose seq is K - 0.5 (the table re-created without types), K the size KEPT pins.
#    The reader stops there (Ledger.unreadable, the twenty-third review), so KEPT pins; but vouched_prefix's
#    `entries(stop=K)` reaches that row (K - 0.5 < K) and storage.entry_of_row raises LedgerError, not
#    ChainError: neither verify_log nor Auditor._audit catches it, so both raise -- `log verify --since
#    KEPT` prints "error: stored entry 11.5: ..." (exit 2, as a usage error), and the Auditor has no verdict
#    even overdue, where the breach KEPT pins is the host's (invalid).


def _half_row(k: int):
    def edit(c):
        _untyped_entries(c)
        row = list(c.execute(f"SELECT {COLS} FROM entries WHERE seq = ?", (k - 1,)).fetchone())
        row[0] = k - 0.5
        c.execute(f"INSERT INTO entries ({COLS}) VALUES (?,?,?,?,?,?,?,?)", row)
    return edit


def test_a_fractional_seq_row_does_not_leave_the_breach_kept_pins_without_a_verdict(tmp_path, caught):
    db, kept, _, _ = caught
    copy = _copy_with(db, tmp_path / "half.db", _half_row(kept.size))
    with Ledger.open(copy, writer=False) as led:
        assert led.root(kept.size) == kept.root
        rep, report = _verdicts_or_crash(led, checkpoints=[kept], overdue=True)
    # (now: LedgerError "stored entry 11.5: a value of another type than the log writes" from both)
    assert isinstance(rep, dict) and _breach_named(rep), repr(rep)
    assert not isinstance(report, Exception) and report.status == "invalid", repr(report)


# ------------------------------------------------------------------------------------------------
# 4. (crash, I1 and I2) A checkpoint row whose value is not text (the checkpoints table re-created
#    without types: NULL, an integer, a real). storage.recent_checkpoints returns it as it is;
#    SignedCheckpoint.from_json hands it to parse_json -> json.loads, which raises TypeError ("the JSON
#    object must be str, bytes or bytearray"); from_json catches only JSONDecodeError, so the TypeError
#    leaves checkpoint.stored_checkpoint (and Ledger.latest_checkpoint): verify_log, the Auditor and `log
#    checkpoint` crash on an honest copy, and the host's own database escapes every verdict.


@pytest.mark.parametrize("value", [None, 7, 1.5], ids=["NULL", "integer", "real"])
def test_a_checkpoint_row_that_is_not_text_is_no_crash(tmp_path, caught, value):
    db, kept, _, _ = caught

    def edit(c):
        rows = c.execute("SELECT size, checkpoint FROM checkpoints").fetchall()
        c.execute("DROP TABLE checkpoints")
        c.execute("CREATE TABLE checkpoints (size, checkpoint)")
        c.executemany("INSERT INTO checkpoints VALUES (?, ?)", rows + [(10 ** 9, value)])

    copy = _copy_with(db, tmp_path / "cp.db", edit)
    with Ledger.open(copy, writer=False) as led:
        rep, report = _verdicts_or_crash(led, checkpoints=[kept], overdue=True)
        try:
            led.latest_checkpoint()  # (`log checkpoint` and the networked server read it)
        except ZkAuctionError:
            pass
    # (now: TypeError: the JSON object must be str, bytes or bytearray, not int -- from both)
    assert isinstance(rep, dict) and _breach_named(rep), repr(rep)
    assert not isinstance(report, Exception) and report.status == "invalid", repr(report)


# ------------------------------------------------------------------------------------------------
# 5. (crash, I1 and I2; and a pinned breach not named) Text that is not UTF-8 in an entry's column
#    (`UPDATE entries SET signature = CAST(X'ff' || signature AS TEXT)`). SQLiteStorage.get and .last run
#    their query unguarded: sqlite3.OperationalError ("Could not decode to UTF-8 column ...") leaves
#    read_announcement (entry 0), Ledger.log_id and verify_log's _pinned (`storage.get(err.seq)`): a
#    traceback from verify_log and the Auditor. On any other row, storage.scan fetches every row at once
#    (fetchall), so the decode error of one row after every checkpoint makes the whole scan fail: the
#    reader holds 0 entries, nothing is pinned, and `log verify --since KEPT` says COPY DAMAGED where the
#    breach KEPT pins is the auctioneer's (the twenty-third review: "a reader now stops at the first row it
#    cannot read and judges what the checkpoints pin before it").


def _bad_utf8(seq_of):
    def edit(c):
        (top,) = c.execute("SELECT MAX(seq) FROM entries").fetchone()
        c.execute("UPDATE entries SET signature = CAST(X'ff' || CAST(signature AS BLOB) AS TEXT) WHERE seq = ?",
                  (seq_of(top),))
    return edit


@pytest.mark.parametrize("where", ["entry 0", "after every checkpoint"])
def test_text_that_is_not_utf8_is_no_crash_and_hides_no_pinned_breach(tmp_path, caught, where):
    db, kept, _, _ = caught
    if where == "after every checkpoint":
        def edit(c):  # one junk row after the last entry, its signature not UTF-8
            row = list(c.execute(f"SELECT {COLS} FROM entries ORDER BY seq DESC LIMIT 1").fetchone())
            row[0], row[4] = row[0] + 1, row[5]
            c.execute(f"INSERT INTO entries ({COLS}) VALUES (?,?,?,?,?,?,?,?)", row)
            _bad_utf8(lambda top: top)(c)
    else:
        edit = _bad_utf8(lambda top: 0)
    copy = _copy_with(db, tmp_path / "utf8.db", edit)
    with Ledger.open(copy, writer=False) as led:
        rep, report = _verdicts_or_crash(led, checkpoints=[kept], overdue=True)
    # (now, entry 0: sqlite3.OperationalError from both; after every checkpoint: COPY DAMAGED, the Auditor
    #  overdue invalid only as "silent")
    assert isinstance(rep, dict) and _breach_named(rep), repr(rep)
    assert not isinstance(report, Exception) and report.status == "invalid", repr(report)


# ------------------------------------------------------------------------------------------------
# 6. (left) Entry 0's payload damaged (one byte; its stored hash, the log id, kept): the offline Auditor
#    raises ProtocolError ("the announcement does not verify") even overdue, since nothing names the
#    penalty; verify_log says COPY DAMAGED. Only the networked parties run the Auditor overdue, on
#    replicas they read with every entry checked, so they take such a log for no answer (silent).


# ------------------------------------------------------------------------------------------------
# The fuzzer itself: seeded, bounded (FUZZ19_CASES cases per invariant; the review ran 400 + 300 + 150
# + 200 with seeds 3, 4, 5, 6). Fails while any hole above (or a new one) is open.


CASES = int(os.environ.get("FUZZ19_CASES", "60"))


@pytest.mark.parametrize("which,seed", [("i1", 3), ("i2", 4)])
def test_tamper_fuzzer(tmp_path, which, seed):
    import fuzz19

    host = which == "i2"
    base = fuzz19.caught_base(tmp_path / "c") if host else fuzz19.honest_base(tmp_path / "h")
    found, stats = fuzz19.fuzz(base, tmp_path, CASES, seed, host, which)
    assert stats["cases"] == CASES
    assert not found, "\n".join(f"case {k}: {done}: {probs[0][:300]}" for k, _, done, probs in found[:10])
