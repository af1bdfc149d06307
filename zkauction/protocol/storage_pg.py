"""PostgreSQL behind the same :class:`~zkauction.protocol.storage.Storage` interface as SQLite, for
a log served to many readers; and :func:`open_storage`, which picks the backend from ``--db``.

``--db`` is a file path (SQLite, the embedded default) or a URL
``postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?log=NAME&...]`` (``postgres://`` too). One
database holds several logs: each is a **schema** named by the ``log`` query parameter (default
``zkauction``; lower-case letters, digits and ``_``, at most 63, not starting with a digit). Its
tables (``entries``, ``checkpoints``, as in SQLite) are created by the first writer. Every other
query parameter is libpq's (``sslmode``, ``host=/socket/dir``, ``connect_timeout``...).

The same guarantees as :class:`~zkauction.protocol.storage.SQLiteStorage`:

- **one writer per log**: a writer holds a session-level advisory lock (``pg_try_advisory_lock``
  on a key derived from the log's name) for as long as it is connected; a second writer gets
  :class:`LogLockedError` at once. :meth:`PostgresStorage.close` releases it; the server drops it
  when a killed writer's connection ends, so no stale lock is left behind;
- **check-and-append in one transaction**: ``append_many`` takes the table's write lock, checks the
  sequence numbers and inserts the entries (a taken uniqueness key is a UNIQUE violation:
  :class:`DuplicateEntryError`, nothing written) and the checkpoint, all or nothing;
- **readers** (``writer=False``) create and lock nothing and read one snapshot (a read-only
  REPEATABLE READ transaction held until :meth:`PostgresStorage.close`).

``durable=False`` sets ``synchronous_commit=off`` for the writer's session (a server crash may lose
the last transactions, never half of one). psycopg is imported only when a URL is opened.
"""

from __future__ import annotations

import hashlib
import re
import threading
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import unquote

from zkauction.protocol.storage import (
    DuplicateEntryError,
    Entry,
    LedgerError,
    LogLockedError,
    SQLiteStorage,
    Storage,
    entry_of_row,
)

__all__ = ["DEFAULT_LOG", "PostgresStorage", "is_postgres_url", "open_storage", "redact_url"]

DEFAULT_LOG = "zkauction"
_SCHEMES = ("postgresql", "postgres")
_LOG_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_COLUMNS = "seq, round, kind, payload, prev_hash, hash, signer, signature"
_CONNECT_TIMEOUT_S = 10


def is_postgres_url(db: Any) -> bool:
    """Is ``db`` a ``postgresql://`` or ``postgres://`` URL (a ``str``: a ``Path`` would have
    folded its ``//``)."""
    return isinstance(db, str) and db.split("://", 1)[0].lower() in _SCHEMES and "://" in db


def open_storage(db: str | Path, *, durable: bool = True, writer: bool = True) -> Storage:
    """The storage ``db`` names: :class:`PostgresStorage` for a ``postgresql://`` URL, else
    :class:`~zkauction.protocol.storage.SQLiteStorage` for a file path."""
    if is_postgres_url(db):
        return PostgresStorage(str(db), durable=durable, writer=writer)
    if isinstance(db, Path) and str(db).split(":/", 1)[0].lower() in _SCHEMES and ":/" in str(db):
        raise LedgerError(f"{db}: a PostgreSQL URL given as a path (its '//' is lost): pass it as a string")
    return SQLiteStorage(db, durable=durable, writer=writer)


def _parts(url: str) -> tuple[str, str, list[str], str]:
    """``(scheme://netloc, path, raw query items, #fragment)``, reassembled as given (``urlunsplit``
    would fold ``postgresql:///db`` and re-encoding would change what libpq decodes)."""
    rest, hash_, frag = url.partition("#")
    rest, _, query = rest.partition("?")
    scheme, sep, after = rest.partition("://")
    if not sep:
        raise LedgerError(f"{url.split('?', 1)[0]}: not a postgresql:// URL")
    netloc, slash, path = after.partition("/")
    return f"{scheme}://{netloc}", slash + path, [q for q in query.split("&") if q], hash_ + frag


def _key(item: str) -> str:
    return unquote(item.partition("=")[0])


def _join(base: str, path: str, items: list[str], frag: str) -> str:
    return base + path + ("?" + "&".join(items) if items else "") + frag


def redact_url(url: str) -> str:
    """``url`` without its password (in the user part or a ``password=`` parameter), for messages."""
    try:
        base, path, items, frag = _parts(url)
    except LedgerError:
        return url.split("://", 1)[0] + "://..."
    scheme, _, netloc = base.partition("://")
    userinfo, at, hosts = netloc.rpartition("@")
    netloc = (userinfo.split(":", 1)[0] + "@" + hosts) if at else hosts
    return _join(f"{scheme}://{netloc}", path, [q for q in items if _key(q) != "password"], frag)


def parse_url(url: str) -> tuple[str, str]:
    """``(libpq URL without the log parameter, log name)``."""
    base, path, items, frag = _parts(url)
    names = [unquote(q.partition("=")[2]) for q in items if _key(q) == "log"]
    if len(names) > 1:
        raise LedgerError(f"{redact_url(url)}: more than one log= parameter")
    log = names[0] if names else DEFAULT_LOG
    if not _LOG_NAME.fullmatch(log):
        raise LedgerError(f"{redact_url(url)}: log name {log!r} must be 1-63 lower-case letters, digits or _ "
                          "and not start with a digit")
    return _join(base, path, [q for q in items if _key(q) != "log"], frag), log


def lock_key(log: str) -> int:
    """The advisory lock's key of log ``log`` (advisory locks are per database): a signed 64-bit int."""
    return int.from_bytes(hashlib.sha256(b"zkauction-log\x00" + log.encode()).digest()[:8], "big", signed=True)


def _schema_sql(s: str) -> list[str]:
    return [
        f"""CREATE TABLE {s}.entries (
            seq BIGINT PRIMARY KEY, round BIGINT, kind TEXT NOT NULL, payload TEXT NOT NULL,
            prev_hash TEXT NOT NULL, hash TEXT NOT NULL, signer TEXT NOT NULL, signature TEXT NOT NULL,
            uniq TEXT UNIQUE)""",
        f"CREATE INDEX entries_kind_round ON {s}.entries (kind, round)",
        f"CREATE INDEX entries_round ON {s}.entries (round)",
        f"CREATE TABLE {s}.checkpoints (size BIGINT PRIMARY KEY, checkpoint TEXT NOT NULL)",
        # Defence in depth, as in SQLite: honest tools cannot rewrite history.
        f"""CREATE FUNCTION {s}.append_only() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION 'the log is append-only'; END $$""",
        f"""CREATE TRIGGER entries_no_update BEFORE UPDATE OR DELETE ON {s}.entries
            FOR EACH ROW EXECUTE FUNCTION {s}.append_only()""",
        f"""CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON {s}.entries
            FOR EACH STATEMENT EXECUTE FUNCTION {s}.append_only()""",
    ]


class PostgresStorage:
    """A log in schema ``log`` of a PostgreSQL database (see the module's documentation)."""

    def __init__(self, url: str, *, durable: bool = True, writer: bool = True):
        try:
            import psycopg
        except ImportError:
            raise LedgerError("a postgresql:// log needs psycopg: pip install 'psycopg[binary]'") from None
        self._pg = psycopg
        self.url = redact_url(url)
        self.writer = writer
        conninfo, self.log = parse_url(url)
        self._s = f'"{self.log}"'  # a checked name: quoted so that it is never a keyword
        self._lock = threading.Lock()
        self._closed = False
        self._locked = False
        kwargs: dict[str, Any] = {"application_name": "zkauction"}
        if "connect_timeout" not in [_key(q) for q in _parts(conninfo)[2]]:
            kwargs["connect_timeout"] = _CONNECT_TIMEOUT_S
        try:
            self._db = psycopg.connect(conninfo, autocommit=writer, **kwargs)
        except psycopg.Error as e:
            raise LedgerError(f"{self.url}: cannot connect to the PostgreSQL server: {_first_line(e, url)}") from None
        try:
            if writer:
                self._open_writer(durable)
            else:
                self._open_reader()
        except BaseException:
            self.close()
            raise

    def _where(self) -> str:
        return self.url if "log=" in self.url else f"{self.url} (log {self.log})"

    def _open_writer(self, durable: bool) -> None:
        try:
            (got,) = self._db.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(self.log),)).fetchone()
            if not got:
                raise LogLockedError(f"{self._where()}: another process is writing to this log "
                                     f"(it holds advisory lock {lock_key(self.log)})")
            self._locked = True
            if not durable:
                self._db.execute("SET synchronous_commit TO off")
            if self._exists() is None:
                with self._db.transaction():
                    (has_schema,) = self._db.execute(
                        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %s)", (self.log,)).fetchone()
                    if not has_schema:
                        self._db.execute(f"CREATE SCHEMA {self._s}")
                    for sql in _schema_sql(self._s):
                        self._db.execute(sql)
            self._check_tables()
        except self._pg.Error as e:
            raise LedgerError(f"{self._where()}: cannot open the log: {_first_line(e)}") from None

    def _open_reader(self) -> None:
        try:
            self._db.isolation_level = self._pg.IsolationLevel.REPEATABLE_READ
            self._db.read_only = True
            if self._exists() is None:  # this first statement starts the snapshot, held until close
                raise LedgerError(f"{self._where()}: no such log (nothing was created)")
            self._check_tables()
        except self._pg.Error as e:
            raise LedgerError(f"{self._where()}: cannot open the log: {_first_line(e)}") from None

    def _exists(self) -> Any:
        return self._db.execute("SELECT to_regclass(%s)", (f"{self._s}.entries",)).fetchone()[0]

    def _check_tables(self) -> None:
        try:
            self._db.execute(f"SELECT {_COLUMNS}, uniq FROM {self._s}.entries LIMIT 0")
            self._db.execute(f"SELECT size, checkpoint FROM {self._s}.checkpoints LIMIT 0")
            types = dict(self._db.execute("SELECT column_name, data_type FROM information_schema.columns "
                                          "WHERE table_schema = %s AND table_name = 'entries'", (self.log,)).fetchall())
        except self._pg.Error as e:
            raise LedgerError(f"{self._where()}: not a zkauction log ({_first_line(e)})") from None
        want = {"seq": "bigint", "round": "bigint", **{c: "text" for c in ("kind", "payload", "prev_hash", "hash", "signer", "signature")}}
        wrong = {c: types.get(c) for c, t in want.items() if types.get(c) != t}
        if wrong:  # (a NUMERIC round of 1.5 escapes every round = 1 lookup; every row is type-checked too)
            raise LedgerError(f"{self._where()}: not a zkauction log (column types {wrong}, expected {want})")

    _row = staticmethod(entry_of_row)

    def append_many(self, entries: Sequence[tuple[Entry, str | None]],
                    checkpoint: tuple[int, str] | None = None) -> None:
        """Append ``entries`` and, in the same transaction, the checkpoint ``(size, text)`` that
        covers them (all or nothing)."""
        if not self.writer:
            raise LedgerError(f"{self._where()}: opened read-only")
        if not entries:
            return
        pg = self._pg
        with self._lock:
            try:
                with self._db.transaction():
                    # like SQLite's BEGIN IMMEDIATE: no other writer between the check and the insert
                    self._db.execute(f"LOCK TABLE {self._s}.entries IN EXCLUSIVE MODE")
                    (top,) = self._db.execute(f"SELECT MAX(seq) FROM {self._s}.entries").fetchone()
                    n = 0 if top is None else int(top) + 1
                    for i, (e, _) in enumerate(entries):
                        if e.seq != n + i:
                            raise LedgerError(f"cannot append entry {e.seq}: the log has {n + i} entries (another writer?)")
                    with self._db.cursor() as cur:
                        cur.executemany(
                            f"INSERT INTO {self._s}.entries ({_COLUMNS}, uniq) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                            [(e.seq, e.round, e.kind, e.payload, e.prev_hash, e.hash, e.signer, e.signature, k)
                             for e, k in entries],
                        )
                    if checkpoint is not None:
                        self._upsert_checkpoint(*checkpoint)
            except pg.IntegrityError as e:
                raise DuplicateEntryError(f"{self._where()}: an entry with the same key is already in the log "
                                          f"({_first_line(e)})") from None
            except pg.Error as e:
                raise LedgerError(f"{self._where()}: append of entry {entries[0][0].seq} failed: {_first_line(e)}") from None

    def _upsert_checkpoint(self, size: int, text: str) -> None:
        self._db.execute(f"INSERT INTO {self._s}.checkpoints VALUES (%s, %s) "
                         "ON CONFLICT (size) DO UPDATE SET checkpoint = EXCLUDED.checkpoint", (size, text))

    def _fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except self._pg.Error as e:
                raise LedgerError(f"{self._where()}: cannot read entries: {_first_line(e)}") from None

    def last(self) -> Entry | None:
        rows = self._fetch(f"SELECT {_COLUMNS} FROM {self._s}.entries ORDER BY seq DESC LIMIT 1")
        return self._row(rows[0]) if rows else None

    def get(self, seq: int) -> Entry | None:
        rows = self._fetch(f"SELECT {_COLUMNS} FROM {self._s}.entries WHERE seq = %s", (seq,))
        return self._row(rows[0]) if rows else None

    def scan(self, start: int = 0, kind: str | None = None, round: int | None = None,
             stop: int | None = None) -> Iterator[Entry]:
        sql = f"SELECT {_COLUMNS} FROM {self._s}.entries WHERE seq >= %s"
        args: list[Any] = [start]
        for col, val in (("kind", kind), ("round", round)):
            if val is not None:
                sql += f" AND {col} = %s"
                args.append(val)
        if stop is not None:
            sql += " AND seq < %s"
            args.append(stop)
        for r in self._fetch(sql + " ORDER BY seq", args):
            yield self._row(r)

    def put_checkpoint(self, size: int, text: str) -> None:
        if not self.writer:
            raise LedgerError(f"{self._where()}: opened read-only")
        with self._lock:
            try:
                self._upsert_checkpoint(size, text)
            except self._pg.Error as e:
                raise LedgerError(f"{self._where()}: cannot store the checkpoint of size {size}: {_first_line(e)}") from None

    def recent_checkpoints(self, limit: int) -> list[str]:
        return [r[0] for r in self._fetch(f"SELECT checkpoint FROM {self._s}.checkpoints ORDER BY size DESC LIMIT {int(limit)}")]

    def close(self) -> None:
        """Release the writer's lock (before returning, so the log can be reopened at once) and close
        the connection (which ends a reader's snapshot)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                try:
                    if self._locked and not self._db.closed:  # at once: the server ends a closed session later
                        self._db.execute("SELECT pg_advisory_unlock(%s)", (lock_key(self.log),))
                except self._pg.Error:
                    pass  # a lost connection: the server drops its session's lock
                finally:
                    self._db.close()


def _first_line(e: BaseException, url: str | None = None) -> str:
    text = (str(e).strip().splitlines() or [type(e).__name__])[0]
    if url is not None:  # libpq does not echo passwords; make sure of it
        userinfo = _parts(url)[0].partition("://")[2].rpartition("@")[0]
        passwords = [userinfo.partition(":")[2]] + [q.partition("=")[2] for q in _parts(url)[2] if _key(q) == "password"]
        for p in passwords:
            for form in {p, unquote(p)} - {""}:
                text = text.replace(form, "***")
    return text
