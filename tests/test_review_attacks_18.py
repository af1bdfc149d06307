"""A twenty-fourth review: the networked and honest paths against the twenty-first to twenty-third
reviews' changes (the auctioneer's field sets, ttp verdicts naming the outcome, log verify around the
pinned prefix, Ledger.unreadable, stored_checkpoint). Each test plays an attack and asserts the
DEFENCE: it fails while the hole is open (the comment marked "(now:" says what happens without it)."""

from __future__ import annotations

import sqlite3

import pytest
from test_protocol import make_run
from test_review_attacks_2 import opened_round_1
from test_review_attacks_4 import verdict_or_crash

from zkauction.protocol.log import Ledger, LedgerError
from zkauction.protocol.state import OUTCOME, read_state


def _junk_after_last(con: sqlite3.Connection) -> None:
    """One row after the last entry whose stored hash is not hex: a read-only Ledger stops there
    (Ledger.unreadable) since the twenty-third review."""
    row = list(con.execute("SELECT seq, round, kind, payload, prev_hash, hash, signer, signature FROM entries "
                           "ORDER BY seq DESC LIMIT 1").fetchone())
    row[0], row[4], row[5] = row[0] + 1, row[5], "zz" * 32
    for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        con.execute(f"DROP TRIGGER {t}")
    con.execute("INSERT INTO entries (seq, round, kind, payload, prev_hash, hash, signer, signature) "
                "VALUES (?,?,?,?,?,?,?,?)", row)


# ------------------------------------------------------------------------------------------------
# 1. (cheating host) The twelfth review's doctored round index, behind one junk row. Ledger.entries
#    checks a lookup by kind or round against the full read (count, order, Merkle leaf) only on its
#    unfiltered-stop path; since the twenty-third review a reader that met an unreadable row sets
#    `stop = len(self)` (log.py Ledger.entries: "if self.unreadable is not None and stop is None"),
#    which sends EVERY lookup down the `stop is not None` branch: a plain storage.scan, unchecked.
#    So one junk row after the last entry switches the doctored-index defence off: `log show
#    --round 1` and `verify --db` (round_state: lookups) call round 1 clean while the replay (log
#    verify, the Auditor) names a second outcome for round 1.


def test_one_junk_row_does_not_switch_off_the_doctored_index_check(tmp_path):
    from zkauction.cli.log import round_summary

    with make_run(tmp_path, rounds=2, audits=1) as run:
        a = run.auctioneer
        opened_round_1(run)
        honest = a.close_round(1)
        lie = {**honest.data, "payment": [1.9, honest.data["payment"][1]]}
        hidden = run.ledger.append(OUTCOME, lie, a.key, round=1, checkpoint_key=a.key)
        db = run.db
        rows = [(e.round, e.seq) for e in run.ledger.entries(start=1) if e.round is not None and e.seq != hidden.seq]
    fake = sorted(rows + [rows[0]])
    con = sqlite3.connect(str(db))
    _junk_after_last(con)
    con.execute("CREATE TABLE fake (round INTEGER, k INTEGER, seq INTEGER, PRIMARY KEY (round, k)) WITHOUT ROWID")
    con.executemany("INSERT INTO fake VALUES (?, ?, ?)", [(r, k, s) for k, (r, s) in enumerate(fake)])
    con.commit()
    (root,) = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'fake'").fetchone()
    con.execute("PRAGMA writable_schema = ON")
    con.execute("UPDATE sqlite_master SET rootpage = ? WHERE name = 'entries_round'", (root,))
    con.commit()
    con.close()
    with Ledger.open(db, writer=False) as ledger:
        assert ledger.unreadable is not None  # (the junk row: the reader stops before it)
        replay = [b.reason for b in read_state(ledger).breaches]
        assert any("a second outcome for round 1" in x for x in replay), replay
        # (now: [] -- "all hold": the lookup of round 1 returns the doctored index's entries, unchecked)
        got = verdict_or_crash(lambda: round_summary(ledger, 1)["public_checks"])
        assert got != [], "log show (lookups) calls round 1 clean behind one junk row; the replay names: " + replay[0]
