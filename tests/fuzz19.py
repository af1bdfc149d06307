"""The twenty-fifth review's tamper fuzzer (helpers for tests/test_review_attacks_19.py and
scratch/fuzz.py): seeded random sequences of 1-3 operations on a copy of a finished log's SQLite file,
then the two invariants of the offline verifiers (verify_log and the Auditor).

I1 (no framing): a copy of an HONEST log changed by what anyone holding the file can do is never
LOG INVALID (ok False and not damaged / another_log / usage), never carries penalty_due, and the
Auditor (not overdue) never says invalid.
I2 (no escape): a DISHONEST log whose breach a checkpoint KEPT pins, changed by what its HOST can do
(the same, plus signing with the auctioneer key), never passes verify_log(since=KEPT) nor the Auditor
with checkpoints=[KEPT] (valid / unconfirmed); overdue, the Auditor says invalid.
Any exception that is not a ZkAuctionError is a bug under both."""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from zkauction.errors import ZkAuctionError

COLS = ("seq", "round", "kind", "payload", "prev_hash", "hash", "signer", "signature")


# ------------------------------------------------------------------------------------------------
# Bases: a finished honest run, and a caught dishonest one (round 3 overcharges, KEPT pins it)


@dataclass
class Base:
    db: Path
    fn: Callable[..., Any]
    akey: Any  # the auctioneer's key (the host's; never used for I1 operations)
    kept: list[Any]  # checkpoints the verifier holds (bidders' saved ones)
    other_cps: list[str] = field(default_factory=list)  # checkpoint texts of other logs
    log_id: str = ""


def _kept_of(d: Path, n: int = 2) -> list[Any]:
    from zkauction.protocol.log import SignedCheckpoint

    out = []
    for i in range(n):
        p = d / f"bidder_{i}.checkpoint.json"
        if p.is_file():
            out.append(SignedCheckpoint.load(p))
    return out


def _other_log_checkpoints(akey: Any) -> list[str]:
    """Checkpoints of other logs: one of another auction announced by the same auctioneer key (an
    honest auctioneer may run two), one of another key's log."""
    from zkauction.protocol.log import Ledger, SignedCheckpoint, SigningKey

    out = []
    for key in (akey, SigningKey.generate()):
        led = Ledger.in_memory()
        led.append("announcement", {"other": "auction", "nonce": random.Random(1).random()}, key)
        led.append("note", {"x": 1}, key)
        out.append(SignedCheckpoint.sign(key, led.log_id, len(led), led.root()).to_json())
    return out


def honest_base(tmp: Path, rounds: int = 3, mode: str = "reveal") -> Base:
    from test_protocol import make_run

    from zkauction.protocol.audit import Auditor

    run = make_run(tmp, mode=mode, rounds=rounds, audits=1)
    fn = run.auctioneer.outcome
    run.play()
    run.answer_audit(run.reveal().rounds)
    run.auctioneer.checkpoint()
    assert Auditor(run.ledger, outcome=fn).audit().status == "valid"
    run.monitor.observe(run.ledger)
    db, d, akey, log_id = Path(run.db), run.dir, run.auctioneer.key, run.ledger.log_id
    final = run.ledger.latest_checkpoint()
    run.close()
    kept = _kept_of(d) + [final]
    return Base(db, fn, akey, kept, _other_log_checkpoints(akey), log_id)


def caught_base(tmp: Path, how: str = "overcharge") -> Base:
    from test_protocol import make_run
    from test_review_attacks_14 import _overcharge

    from zkauction.protocol.state import ProtocolError

    run = make_run(tmp, rounds=4, audits=1)
    fn = run.auctioneer.outcome
    if how == "overcharge":
        run.auctioneer.outcome = _overcharge(fn, 3)
        try:
            run.play()
            raise AssertionError("the bidders' own check should stop the overcharge")
        except ProtocolError:
            pass
    elif how == "false_rejection":
        from zkauction.protocol.local import play_round
        from zkauction.protocol.state import OPENING_REJECTED
        from zkauction.zk.commitments import CommitmentError

        real = run.auctioneer.receive_opening

        def exclude(round, bidder, signed):
            if round == 2 and bidder == 0:
                ev = {"bids": list(signed.opening.bids), "salt": signed.opening.salt, "signature": signed.signature}
                run.ledger.append(OPENING_REJECTED, {"bidder": 0, "reason": "opening_mismatch", "evidence": ev},
                                  run.auctioneer.key, round=2)
                raise CommitmentError("rejected")
            return real(round, bidder, signed)

        run.auctioneer.receive_opening = exclude
        play_round(run.auctioneer, run.bidders, 1, run.bids_of_round(1))
        play_round(run.auctioneer, run.bidders, 2, [[0.75, 0.5], [0.25, 0.5]])
        run.auctioneer.receive_opening = real
        run.play()
        run.reveal()
        run.auctioneer.checkpoint()
    else:
        raise ValueError(how)
    db, d, akey = Path(run.db), run.dir, run.auctioneer.key
    log_id = run.ledger.log_id
    final = run.ledger.latest_checkpoint()
    run.close()
    kept = _kept_of(d)
    if how == "false_rejection":
        kept = [final]  # (a monitor's: the breach is before the bidders' last checkpoints too)
    k = max(kept, key=lambda c: c.size)
    return Base(db, fn, akey, [k], _other_log_checkpoints(akey), log_id)


# ------------------------------------------------------------------------------------------------
# Database helpers


def rows(c: sqlite3.Connection) -> list[list[Any]]:
    return [list(r) for r in c.execute(f"SELECT {', '.join(COLS)} FROM entries ORDER BY seq")]


def drop_triggers(c: sqlite3.Connection) -> None:
    for (t,) in c.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        c.execute(f'DROP TRIGGER "{t}"')


def rewrite(c: sqlite3.Connection, rs: list[list[Any]], relink_from: int | None = 0) -> None:
    """Replace every entry row by ``rs``; from ``relink_from`` on, renumber and re-chain (entry_hash
    with the new seq and prev: statements are signed without their place, so signatures still hold).
    Rows whose fields are not text are written as they are."""
    from zkauction.protocol.log import GENESIS_HASH, entry_hash

    if relink_from is not None:
        prev = GENESIS_HASH if relink_from == 0 else rs[relink_from - 1][5]
        for i in range(relink_from, len(rs)):
            r = rs[i]
            r[0], r[4] = i, prev
            try:
                r[5] = entry_hash(i, r[1], r[2], r[3], prev, r[6])
            except Exception:  # (a row of junk: kept as it is)
                pass
            prev = r[5]
    drop_triggers(c)
    c.execute("DELETE FROM entries")
    c.executemany(f"INSERT INTO entries ({', '.join(COLS)}) VALUES (?,?,?,?,?,?,?,?)", [tuple(r) for r in rs])


def cp_rows(c: sqlite3.Connection) -> list[tuple[Any, Any]]:
    try:
        return list(c.execute("SELECT size, checkpoint FROM checkpoints ORDER BY size"))
    except sqlite3.DatabaseError:
        return []


def put_cp(c: sqlite3.Connection, size: Any, text: Any) -> None:
    try:
        c.execute("INSERT OR REPLACE INTO checkpoints VALUES (?, ?)", (size, text))
    except sqlite3.DatabaseError:
        c.execute("CREATE TABLE IF NOT EXISTS checkpoints (size, checkpoint)")
        c.execute("INSERT INTO checkpoints VALUES (?, ?)", (size, text))


def current_view(path: Path) -> tuple[str, int, str] | None:
    """(log id, size, root) of the file as a reader builds it, or None if unreadable."""
    from zkauction.protocol.log import Ledger

    try:
        with Ledger.open(path, writer=False) as led:
            return led.log_id, len(led), led.root()
    except ZkAuctionError:
        return None


# ------------------------------------------------------------------------------------------------
# Operations. Each: op(c, ctx, rng) -> str (what it did). ctx: {"base": Base, "path": Path, "host": bool}


def _pick_seq(rs: list, rng: random.Random, lo: int = 1) -> int:
    return rng.randrange(lo, len(rs)) if len(rs) > lo else len(rs) - 1


def op_delete_row(c, ctx, rng):
    rs = rows(c)
    s = _pick_seq(rs, rng, 0 if rng.random() < 0.05 else 1)
    relink = rng.random() < 0.6
    del rs[s]
    rewrite(c, rs, s if relink else None)
    return f"delete entry {s}{' + relink' if relink else ''}"


def op_swap_rows(c, ctx, rng):
    rs = rows(c)
    a, b = _pick_seq(rs, rng), _pick_seq(rs, rng)
    rs[a], rs[b] = rs[b], rs[a]
    relink = rng.random() < 0.8
    if not relink:  # the contents swap places, each row keeps its place's seq
        rs[a][0], rs[b][0] = a, b
    rewrite(c, rs, min(a, b) if relink else None)
    return f"swap entries {a},{b}{' + relink' if relink else ''}"


def op_move_row(c, ctx, rng):
    rs = rows(c)
    a = _pick_seq(rs, rng)
    r = rs.pop(a)
    b = rng.randrange(1, len(rs) + 1)
    rs.insert(b, r)
    rewrite(c, rs, min(a, b))
    return f"move entry {a} to {b} + relink"


def op_duplicate_row(c, ctx, rng):
    rs = rows(c)
    a = _pick_seq(rs, rng)
    b = rng.randrange(1, len(rs) + 1)
    rs.insert(b, list(rs[a]))
    rewrite(c, rs, min(a, b))
    return f"duplicate entry {a} at {b} + relink"


def op_relink_all(c, ctx, rng):
    rs = rows(c)
    rewrite(c, rs, 0)
    return "relink all (no-op)"


def op_spoil_sig(c, ctx, rng):
    rs = rows(c)
    s = _pick_seq(rs, rng, 0)
    val = rng.choice(["00" * 64, "", "zz", rs[s][7][:-2] + ("00" if rs[s][7][-2:] != "00" else "11"), "b1.0.2." + "ab" * 64 + "."])
    drop_triggers(c)
    c.execute("UPDATE entries SET signature = ? WHERE seq = ?", (val, s))
    return f"spoil signature of entry {s} -> {val[:10]!r}"


def op_swap_sigs(c, ctx, rng):
    rs = rows(c)
    a, b = _pick_seq(rs, rng, 0), _pick_seq(rs, rng, 0)
    drop_triggers(c)
    c.execute("UPDATE entries SET signature = ? WHERE seq = ?", (rs[b][7], a))
    c.execute("UPDATE entries SET signature = ? WHERE seq = ?", (rs[a][7], b))
    return f"swap signatures {a},{b}"


def op_flip_payload(c, ctx, rng):
    rs = rows(c)
    s = _pick_seq(rs, rng, 0)
    p = rs[s][3]
    if not isinstance(p, str) or not p:
        return "flip payload: nothing"
    i = rng.randrange(len(p))
    ch = chr(rng.choice([ord(p[i]) ^ 1, ord('"'), ord("{"), ord("0"), 0x2028]))
    newp = p[:i] + ch + p[i + 1:]
    rehash = rng.random() < 0.3
    drop_triggers(c)
    c.execute("UPDATE entries SET payload = ? WHERE seq = ?", (newp, s))
    if rehash:  # the holder recomputes the hash (the leaf moves)
        rs = rows(c)
        rewrite(c, rs, s)
    return f"flip payload byte {i} of entry {s}{' + relink' if rehash else ''}"


def op_retype(c, ctx, rng):
    rs = rows(c)
    s = _pick_seq(rs, rng, 0)
    col, val = rng.choice([
        ("round", 1.5), ("round", "3x"), ("round", b"\x03"), ("round", 2 ** 62), ("round", -1),
        ("payload", "BLOB"), ("hash", "BLOB"), ("signature", "BLOB"), ("signer", "BLOB"), ("kind", "BLOB"),
        ("prev_hash", "BLOB"), ("payload", "BADUTF8"), ("kind", "BADUTF8"), ("signature", "BADUTF8"),
        ("hash", "UPPER"), ("signer", "UPPER"), ("signature", "UPPER"), ("payload", None), ("round", None),
    ])
    drop_triggers(c)
    if val == "BLOB":
        c.execute(f"UPDATE entries SET {col} = CAST({col} AS BLOB) WHERE seq = ?", (s,))
    elif val == "BADUTF8":
        c.execute(f"UPDATE entries SET {col} = CAST(X'ff' || CAST({col} AS BLOB) AS TEXT) WHERE seq = ?", (s,))
    elif val == "UPPER":
        c.execute(f"UPDATE entries SET {col} = upper({col}) WHERE seq = ?", (s,))
    elif val is None and col == "payload":
        _untyped_entries(c)
        c.execute("UPDATE entries SET payload = NULL WHERE seq = ?", (s,))
    else:
        c.execute(f"UPDATE entries SET {col} = ? WHERE seq = ?", (val, s))
    return f"entry {s}: {col} := {val!r}"


def _untyped_entries(c) -> None:
    """The entries table re-created without types, key or constraints (anyone with the file)."""
    drop_triggers(c)
    c.execute("ALTER TABLE entries RENAME TO entries_old")
    for (name,) in c.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'entries_old' "
                             "AND sql IS NOT NULL").fetchall():
        c.execute(f'DROP INDEX "{name}"')
    c.execute("CREATE TABLE entries (seq, round, kind, payload, prev_hash, hash, signer, signature, uniq)")
    c.execute("INSERT INTO entries SELECT * FROM entries_old")
    c.execute("DROP TABLE entries_old")


def op_dup_seq(c, ctx, rng):
    """Two rows with one seq (the table re-created without its key)."""
    rs = rows(c)
    s = _pick_seq(rs, rng, 0)
    _untyped_entries(c)
    r = list(rs[s])
    how = rng.choice(["same", "junk", "half", "text"])
    if how == "junk":
        r[3] = '{"junk":1}'
    elif how == "half":
        r[0] = s + 0.5
    elif how == "text":
        r[0] = f"{s}x"
    c.execute(f"INSERT INTO entries ({', '.join(COLS)}) VALUES (?,?,?,?,?,?,?,?)", tuple(r))
    return f"second row with seq {s} ({how})"


def op_junk_row(c, ctx, rng):
    rs = rows(c)
    last = rs[-1]
    where = rng.choice(["next", "gap", "neg", "big", "inside"])
    seq = {"next": last[0] + 1, "gap": last[0] + 3, "neg": -1, "big": 2 ** 62, "inside": None}[where]
    tmpl = list(rng.choice(rs))
    tmpl[4] = last[5]
    content = rng.choice(["copy", "badhash", "badhex", "text", "relinked"])
    if content == "badhash":
        tmpl[5] = "ab" * 32
    elif content == "badhex":
        tmpl[5] = "zz" * 32
    elif content == "text":
        tmpl[3] = "not json"
    drop_triggers(c)
    if where == "inside":
        s = _pick_seq(rs, rng)
        rs.insert(s, tmpl)
        rewrite(c, rs, s if content == "relinked" else None)
        if content != "relinked":  # rewrite renumbers nothing: give it its own place
            c.execute("DELETE FROM entries")
            for i, r in enumerate(rs):
                r = list(r)
                if i >= s:
                    r[0] = i
                c.execute(f"INSERT INTO entries ({', '.join(COLS)}) VALUES (?,?,?,?,?,?,?,?)", tuple(r))
        return f"junk row ({content}) inserted at {s}"
    if content == "relinked":
        from zkauction.protocol.log import entry_hash

        try:
            tmpl[5] = entry_hash(seq, tmpl[1], tmpl[2], tmpl[3], tmpl[4], tmpl[6])
        except Exception:
            pass
    tmpl[0] = seq
    c.execute(f"INSERT INTO entries ({', '.join(COLS)}) VALUES (?,?,?,?,?,?,?,?)", tuple(tmpl))
    return f"junk row ({content}) at seq {seq}"


def op_truncate_rows(c, ctx, rng):
    rs = rows(c)
    s = rng.randrange(1, len(rs))
    drop_triggers(c)
    c.execute("DELETE FROM entries WHERE seq >= ?", (s,))
    return f"truncate entries at {s}"


def op_renumber(c, ctx, rng):
    """The seq column of the rows from ``s`` on moved up by ``k`` (their order, hashes and the Merkle
    tree a reader builds unchanged; a gap in the numbers)."""
    rs = rows(c)
    s = _pick_seq(rs, rng)
    k = rng.choice([1, 2, 1000])
    drop_triggers(c)
    c.execute("UPDATE entries SET seq = seq + ? WHERE seq >= ?", (10 ** 6, s))
    c.execute("UPDATE entries SET seq = seq - ? WHERE seq >= ?", (10 ** 6 - k, 10 ** 6))
    return f"renumber entries from {s} by +{k}"


# checkpoint rows

def op_cp_delete(c, ctx, rng):
    cps = cp_rows(c)
    how = rng.choice(["all", "newest", "random", "above"])
    if not cps:
        return "cp delete: none"
    if how == "all":
        c.execute("DELETE FROM checkpoints")
    elif how == "newest":
        c.execute("DELETE FROM checkpoints WHERE size = ?", (cps[-1][0],))
    elif how == "random":
        c.execute("DELETE FROM checkpoints WHERE size = ?", (rng.choice(cps)[0],))
    else:
        s = rng.choice(cps)[0]
        c.execute("DELETE FROM checkpoints WHERE size > ?", (s,))
    return f"checkpoints: delete {how}"


def _size_for(cps, rng):
    top = max([s for s, _ in cps if isinstance(s, int)], default=0)
    return rng.choice([top + 1, top + 1000, 10 ** 9, 2 ** 62, -1, 0, rng.randrange(0, top + 2)])


def op_cp_junk(c, ctx, rng):
    cps = cp_rows(c)
    text = rng.choice(["garbage", "{}", "[]", "null", "1", '"x"', '{"log_id": 1}', "[" * 200 + "]" * 200, "1" * 5000])
    size = _size_for(cps, rng)
    put_cp(c, size, text)
    return f"checkpoint row {size}: junk {text[:12]!r}"


def op_cp_unsigned(c, ctx, rng):
    cps = [(s, t) for s, t in cp_rows(c) if isinstance(t, str)]
    if not cps:
        return "cp unsigned: none"
    s, t = rng.choice(cps)
    try:
        d = json.loads(t)
        d["signature"] = rng.choice(["00" * 64, "", d["signature"][:-2] + "00"])
    except Exception:
        return "cp unsigned: unreadable"
    size = rng.choice([s, _size_for(cp_rows(c), rng)])
    put_cp(c, size, json.dumps(d))
    return f"checkpoint row {size}: {s}'s, signature spoiled"


def op_cp_other_log(c, ctx, rng):
    text = rng.choice(ctx["base"].other_cps)
    size = _size_for(cp_rows(c), rng)
    put_cp(c, size, text)
    return f"checkpoint row {size}: another log's"


def op_cp_fresh_key(c, ctx, rng):
    from zkauction.protocol.log import SignedCheckpoint, SigningKey

    view = _commit_view(c, ctx)
    if view is None:
        return "cp fresh key: unreadable"
    log_id, size, root = view
    cp = SignedCheckpoint.sign(SigningKey.generate(), log_id, size, root)
    put_cp(c, rng.choice([size, _size_for(cp_rows(c), rng)]), cp.to_json())
    return f"checkpoint of size {size} signed by a fresh key"


def op_cp_resize(c, ctx, rng):
    cps = cp_rows(c)
    if not cps:
        return "cp resize: none"
    s, t = rng.choice(cps)
    new = _size_for(cps, rng)
    c.execute("DELETE FROM checkpoints WHERE size = ?", (s,))
    put_cp(c, new, t)
    return f"checkpoint row {s} moved to size column {new}"


def op_cp_dup_old(c, ctx, rng):
    cps = cp_rows(c)
    if not cps:
        return "cp dup: none"
    s, t = rng.choice(cps)
    new = _size_for(cps, rng)
    put_cp(c, new, t)
    return f"checkpoint row {s} copied to size column {new}"


def op_cp_nontext(c, ctx, rng):
    """The checkpoints table re-created without types; a NULL, integer, real or BLOB checkpoint."""
    cps = cp_rows(c)
    c.execute("DROP TABLE IF EXISTS checkpoints")
    c.execute("CREATE TABLE checkpoints (size, checkpoint)")
    c.executemany("INSERT INTO checkpoints VALUES (?, ?)", cps)
    top = max([s for s, _ in cps if isinstance(s, int)], default=0)
    val = rng.choice([None, 7, 1.5, b"\xff\xfe", b"{}", cps[-1][1].encode() if cps else b"x", "BADUTF8"])
    size = rng.choice([top + 1, 10 ** 9, "big", 1.5])
    if val == "BADUTF8":
        c.execute("INSERT INTO checkpoints VALUES (?, CAST(X'ff7b' AS TEXT))", (size,))
    else:
        c.execute("INSERT INTO checkpoints VALUES (?, ?)", (size, val))
    return f"checkpoints untyped; row {size!r}: {val!r:.20}"


def op_drop(c, ctx, rng):
    what = rng.choice(["triggers", "indexes", "checkpoints", "entries_round", "entries_kind_round", "vacuum"])
    if what == "triggers":
        drop_triggers(c)
    elif what == "indexes":
        for (n,) in c.execute("SELECT name FROM sqlite_master WHERE type='index' AND sql IS NOT NULL").fetchall():
            c.execute(f'DROP INDEX "{n}"')
    elif what == "checkpoints":
        c.execute("DROP TABLE IF EXISTS checkpoints")
    elif what == "vacuum":
        c.commit()
        c.execute("VACUUM")
    else:
        c.execute(f"DROP INDEX IF EXISTS {what}")
    return f"drop {what}"


HOLDER_OPS = [op_delete_row, op_swap_rows, op_move_row, op_duplicate_row, op_relink_all, op_spoil_sig, op_swap_sigs,
              op_flip_payload, op_retype, op_dup_seq, op_renumber, op_junk_row, op_truncate_rows, op_cp_delete, op_cp_junk,
              op_cp_unsigned, op_cp_other_log, op_cp_fresh_key, op_cp_resize, op_cp_dup_old, op_cp_nontext, op_drop]


# host-only: the auctioneer's key

def _commit_view(c, ctx):
    c.commit()
    return current_view(ctx["path"])


def op_host_checkpoint(c, ctx, rng):
    from zkauction.protocol.log import SignedCheckpoint

    view = _commit_view(c, ctx)
    if view is None:
        return "host checkpoint: unreadable"
    log_id, size, root = view
    cp = SignedCheckpoint.sign(ctx["base"].akey, log_id, size, root)
    put_cp(c, size if rng.random() < 0.7 else 10 ** 9, cp.to_json())
    return f"host signs checkpoint of size {size}"


def _host_append(c, ctx, kind, payload, rnd):
    from zkauction.protocol.log import Statement, entry_hash

    view = _commit_view(c, ctx)
    if view is None:
        return False
    log_id = view[0]
    rs = rows(c)
    st = Statement.sign(ctx["base"].akey, log_id, kind, payload, rnd)
    seq, prev = len(rs), rs[-1][5]
    h = entry_hash(seq, rnd, kind, st.payload, prev, st.signer)
    drop_triggers(c)
    c.execute(f"INSERT INTO entries ({', '.join(COLS)}) VALUES (?,?,?,?,?,?,?,?)",
              (seq, rnd, kind, st.payload, prev, h, st.signer, st.signature))
    return True


def op_host_append(c, ctx, rng):
    """The host appends an entry it signs (and a checkpoint of the log with it, half the time)."""
    rs = rows(c)
    outs = [r for r in rs if r[2] == "outcome" and isinstance(r[3], str)]
    choice = rng.choice(["outcome3", "outcome_next", "reveals_closed", "close_next", "rejection", "openings", "proof", "junk"])
    kind, payload, rnd = "note", {"x": 1}, None
    if choice == "outcome3" and outs:
        d = json.loads(outs[-1][3])
        d["payment"] = [0.0 for _ in d["payment"]]
        kind, payload, rnd = "outcome", d, outs[-1][1]
    elif choice == "outcome_next" and outs:
        d = json.loads(outs[-1][3])
        kind, payload, rnd = "outcome", d, (outs[-1][1] or 0) + 1
    elif choice == "reveals_closed":
        kind, payload = "reveals_closed", {}
    elif choice == "close_next" and outs:
        kind, payload, rnd = "commitments_closed", {"commitments": [None, None]}, (outs[-1][1] or 0) + 1
    elif choice == "rejection" and outs:
        kind, payload, rnd = "opening_rejected", {"bidder": 0, "reason": "no_opening"}, outs[-1][1]
    elif choice == "openings" and outs:
        kind, payload, rnd = "openings", {"bids": [[0.5, 0.5], [0.5, 0.5]], "salts": ["1", "2"]}, outs[-1][1]
    elif choice == "proof" and outs:
        kind, payload, rnd = "proof", {"format": "x", "round_id": outs[-1][1]}, outs[-1][1]
    ok = _host_append(c, ctx, kind, payload, rnd)
    if ok and rng.random() < 0.5:
        op_host_checkpoint(c, ctx, rng)
    return f"host appends {kind} (round {rnd}){'' if ok else ' FAILED'}"


def op_host_rewrite(c, ctx, rng):
    """The host re-signs one of its own entries (an outcome: honest-looking payment), re-links everything
    after it and signs a checkpoint of the new history."""
    from zkauction.protocol.log import Statement

    view = _commit_view(c, ctx)
    if view is None:
        return "host rewrite: unreadable"
    log_id = view[0]
    rs = rows(c)
    mine = [i for i, r in enumerate(rs) if i > 0 and r[6] == ctx["base"].akey.public_hex and isinstance(r[3], str)]
    if not mine:
        return "host rewrite: nothing"
    outs = [i for i in mine if rs[i][2] == "outcome"]
    i = rng.choice(outs if outs and rng.random() < 0.7 else mine)
    r = rs[i]
    try:
        d = json.loads(r[3])
    except ValueError:
        return "host rewrite: unreadable payload"
    if r[2] == "outcome":
        d["payment"] = [0.0 for _ in d["payment"]]
    elif r[2] == "opening_rejected":
        d = {"bidder": d.get("bidder"), "reason": "no_opening"}
    st = Statement.sign(ctx["base"].akey, log_id, r[2], d, r[1])
    r[3], r[7] = st.payload, st.signature
    rewrite(c, rs, i)
    op_host_checkpoint(c, ctx, rng)
    return f"host rewrites entry {i} ({r[2]}) + relink + checkpoint"


def op_host_truncate(c, ctx, rng):
    rs = rows(c)
    s = rng.randrange(1, len(rs))
    drop_triggers(c)
    c.execute("DELETE FROM entries WHERE seq >= ?", (s,))
    c.execute("DELETE FROM checkpoints")
    op_host_checkpoint(c, ctx, rng)
    return f"host truncates at {s} + checkpoint"


def op_host_reannounce(c, ctx, rng):
    """The host re-signs its announcement (a new log id), re-signs every entry it wrote for it, and
    copies the bidders' entries (their signatures are for the old log id: they fail)."""
    from zkauction.protocol.log import Statement

    rs = rows(c)
    d = json.loads(rs[0][3])
    d["nonce"] = "cd" * 16
    st = Statement.sign(ctx["base"].akey, "", rs[0][2], d, rs[0][1])
    rs[0][3], rs[0][7] = st.payload, st.signature
    rewrite(c, rs, 0)
    op_host_checkpoint(c, ctx, rng)
    return "host re-announces (new log id) + checkpoint"


HOST_OPS = [op_host_checkpoint, op_host_append, op_host_rewrite, op_host_truncate, op_host_reannounce]


# ------------------------------------------------------------------------------------------------
# Cases and verdicts


def make_copy(base: Base, dest: Path) -> Path:
    shutil.copy(base.db, dest)
    for suf in ("-wal", "-shm"):
        p = Path(str(base.db) + suf)
        if p.exists():
            shutil.copy(p, Path(str(dest) + suf))
    return dest


def apply(base: Base, dest: Path, ops: list[tuple[Callable, int]], host: bool) -> list[str]:
    """Apply ``ops`` [(op, seed)] to a copy of ``base`` at ``dest``; returns what each did."""
    make_copy(base, dest)
    done = []
    ctx = {"base": base, "path": dest, "host": host}
    for op, seed in ops:
        c = sqlite3.connect(dest)
        try:
            done.append(op(c, ctx, random.Random(seed)))
            c.commit()
        except sqlite3.DatabaseError as e:
            done.append(f"{op.__name__}: sqlite refused ({e})")
        except Exception as e:  # noqa: BLE001  (an operation that does not apply to this file: skipped)
            c.rollback()
            done.append(f"{op.__name__}: not applicable ({type(e).__name__})")
        finally:
            c.close()
    return done


def _call(f: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", f()
    except ZkAuctionError as e:
        return "zkerror", f"{type(e).__name__}: {e}"
    except Exception as e:  # noqa: BLE001  (the finding: a crash is no verdict)
        return "crash", f"{type(e).__name__}: {e}\n" + traceback.format_exc(limit=-4)


def _open(path: Path):
    from zkauction.protocol.log import Ledger

    return Ledger.open(path, writer=False)


def check_i1(base: Base, path: Path) -> list[str]:
    """Every way a verifier could say the honest auctioneer cheated (or crash) on this copy."""
    from zkauction.cli.log import verify_log
    from zkauction.protocol.audit import Auditor

    problems = []
    how, led = _call(lambda: _open(path))
    if how == "crash":
        return [f"Ledger.open crashed: {led}"]
    if how == "zkerror":
        return []
    try:
        for since in [None] + base.kept:
            how, rep = _call(lambda: verify_log(led, since))
            tag = f"verify_log(since={'None' if since is None else since.size})"
            if how == "crash":
                problems.append(f"{tag} crashed: {rep}")
            elif how == "ok":
                if rep.get("penalty_due"):
                    problems.append(f"{tag}: penalty_due: {rep.get('failure')}")
                if not rep["ok"] and not (rep.get("damaged") or rep.get("another_log") or rep.get("usage")):
                    problems.append(f"{tag}: LOG INVALID: {rep.get('failure')}")
        for cps in ([], base.kept[-1:], base.kept):
            how, r = _call(lambda: Auditor(led, outcome=base.fn, checkpoints=cps).audit())
            tag = f"Auditor(checkpoints={[c.size for c in cps]})"
            if how == "crash":
                problems.append(f"{tag} crashed: {r}")
            elif how == "ok" and r.status == "invalid":
                problems.append(f"{tag}: invalid: {r.reason}; {[str(b) for b in r.breaches][:2]}")
    finally:
        led.close()
    return problems


def check_i2(base: Base, path: Path) -> tuple[list[str], list[str]]:
    """(violations, notes): the host escaping the breach KEPT pins; notes are no-verdict outcomes."""
    from zkauction.cli.log import verify_log
    from zkauction.protocol.audit import Auditor

    problems, notes = [], []
    kept = base.kept[0]
    how, led = _call(lambda: _open(path))
    if how == "crash":
        return [f"Ledger.open crashed: {led}"], notes
    if how == "zkerror":
        notes.append(f"Ledger.open: {led}")
        return problems, notes
    try:
        how, rep = _call(lambda: verify_log(led, kept))
        if how == "crash":
            problems.append(f"verify_log crashed: {rep}")
        elif how == "zkerror":
            notes.append(f"verify_log raised {rep}")
        else:
            if rep["ok"]:
                problems.append(f"verify_log(since=KEPT) ok True: {rep['checks']}")
            elif rep.get("damaged") or rep.get("another_log") or rep.get("usage"):
                notes.append(f"verify_log not LOG INVALID: {rep.get('failure')}")
        for overdue in (False, True):
            how, r = _call(lambda: Auditor(led, outcome=base.fn, checkpoints=[kept]).audit(overdue=overdue))
            tag = f"Auditor(KEPT, overdue={overdue})"
            if how == "crash":
                problems.append(f"{tag} crashed: {r}")
            elif how == "zkerror":
                try:
                    same = led.log_id == kept.log_id
                except Exception:  # noqa: BLE001  (no entry 0 at all: not the log KEPT names either)
                    same = False
                # (a file whose log id is not KEPT's is another log: refused as no evidence, by design)
                (problems if overdue and same else notes).append(f"{tag} raised {r}")
            elif not overdue and r.status in ("valid", "unconfirmed"):
                problems.append(f"{tag}: {r.status}: {r.reason}")
            elif overdue and r.status != "invalid":
                problems.append(f"{tag}: {r.status}: {r.reason}")
    finally:
        led.close()
    return problems, notes


def gen_case(rng: random.Random, host: bool) -> list[tuple[Callable, int]]:
    pool = HOLDER_OPS + (HOST_OPS * 3 if host else [])
    n = rng.randint(1, 3)
    ops = [(rng.choice(pool), rng.randrange(2 ** 31)) for _ in range(n)]
    if host and rng.random() < 0.4:
        ops.append((op_host_checkpoint, rng.randrange(2 ** 31)))
    return ops


def fuzz(base: Base, tmp: Path, cases: int, seed: int, host: bool, label: str = "") -> tuple[list, dict]:
    """Run ``cases`` seeded cases; returns ([(case, ops done, problems)], stats)."""
    rng = random.Random(seed)
    found, stats = [], {"cases": 0, "notes": 0, "note_kinds": {}}
    for k in range(cases):
        ops = gen_case(rng, host)
        dest = tmp / f"{label}{k}.db"
        done = apply(base, dest, ops, host)
        if host:
            probs, notes = check_i2(base, dest)
            stats["notes"] += bool(notes)
            for nt in notes:
                key = nt.split(":")[0][:60]
                stats["note_kinds"][key] = stats["note_kinds"].get(key, 0) + 1
        else:
            probs = check_i1(base, dest)
        stats["cases"] += 1
        if probs:
            found.append((k, [(op.__name__, s) for op, s in ops], done, probs))
        for suf in ("", "-wal", "-shm"):
            Path(str(dest) + suf).unlink(missing_ok=True)
    return found, stats
