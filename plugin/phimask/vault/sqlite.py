"""The SQLite backend: one file (mode 0600) for one host's processes. WAL lets readers
run beside the writer; `BEGIN IMMEDIATE` takes the write lock before the look-up that
decides an insert, so two processes never store two tokens for one value."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .errors import VaultUnavailable
from .store import (
    QUARANTINE_TABLE,
    TOKENS_TABLE,
    QuarantineEntry,
    SealedRecord,
    SealedValue,
    TokenRow,
)

_SCHEMA = (
    f"""CREATE TABLE IF NOT EXISTS {TOKENS_TABLE} (
        idx BLOB PRIMARY KEY,
        token TEXT NOT NULL UNIQUE,
        field TEXT NOT NULL,
        index_kid TEXT NOT NULL,
        vault_kid TEXT NOT NULL,
        sealed BLOB NOT NULL,
        created_at INTEGER NOT NULL)""",
    f"""CREATE TABLE IF NOT EXISTS {QUARANTINE_TABLE} (
        id TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        protocol TEXT NOT NULL,
        reason TEXT NOT NULL,
        rule TEXT NOT NULL,
        size INTEGER NOT NULL,
        vault_kid TEXT NOT NULL,
        sealed BLOB NOT NULL)""",
    f"CREATE INDEX IF NOT EXISTS {QUARANTINE_TABLE}_created_at ON {QUARANTINE_TABLE} (created_at)",
)
_CHUNK = 500  # bound parameters per statement, well under SQLite's limit
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class SqliteStore:
    """One connection behind a lock: SQLite has one writer at a time anyway, and the
    vault's cache keeps repeated values away from it."""

    def __init__(self, path: Path, *, busy_timeout: float = 5.0) -> None:
        self.path = path
        self._where = f"sqlite {path}"
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        try:
            _create_private(path)
            conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None,
                                   check_same_thread=False)
        except OSError as exc:
            raise VaultUnavailable(self._where, exc.strerror or type(exc).__name__) from None
        except sqlite3.Error as exc:
            raise VaultUnavailable(self._where, _reason(exc)) from None
        self._conn = conn
        try:
            with self._guard() as c:
                c.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
                c.execute("PRAGMA journal_mode = WAL")
                # FULL: a token already handed out downstream must survive a power cut.
                c.execute("PRAGMA synchronous = FULL")
            with self._write() as c:
                for statement in _SCHEMA:
                    c.execute(statement)
        except BaseException:
            self.close()
            raise

    def find_tokens(self, digests: Sequence[bytes]) -> dict[bytes, str]:
        with self._guard() as conn:
            return _select_tokens(conn, digests)

    def put_tokens(self, rows: Sequence[TokenRow]) -> dict[bytes, str]:
        if not rows:
            return {}
        now = _micros(datetime.now(UTC))
        with self._write() as conn:
            conn.executemany(
                f"INSERT INTO {TOKENS_TABLE} (idx, token, field, index_kid, vault_kid, sealed, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(r.idx, r.token, r.field, r.index_kid, r.vault_kid, r.sealed, now)
                 for r in rows])
            return _select_tokens(conn, [r.idx for r in rows])

    def sealed_value(self, token: str) -> SealedValue | None:
        with self._guard() as conn:
            row = conn.execute(f"SELECT field, vault_kid, sealed FROM {TOKENS_TABLE} "
                               "WHERE token = ?", (token,)).fetchone()
        return None if row is None else SealedValue(row[0], row[1], bytes(row[2]))

    def quarantine_put(self, record: SealedRecord) -> None:
        e = record.entry
        with self._write() as conn:
            conn.execute(
                f"INSERT INTO {QUARANTINE_TABLE} (id, created_at, protocol, reason, rule, size, "
                "vault_kid, sealed) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (e.id, _micros(e.created_at), e.protocol, e.reason, e.rule, e.size, e.vault_kid,
                 record.sealed))

    def quarantine_list(self, limit: int, offset: int) -> list[QuarantineEntry]:
        with self._guard() as conn:
            rows = conn.execute(
                f"SELECT id, created_at, protocol, reason, rule, size, vault_kid "
                f"FROM {QUARANTINE_TABLE} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
                (limit, offset)).fetchall()
        return [_entry(row) for row in rows]

    def quarantine_get(self, entry_id: str) -> SealedRecord | None:
        with self._guard() as conn:
            row = conn.execute(
                f"SELECT id, created_at, protocol, reason, rule, size, vault_kid, sealed "
                f"FROM {QUARANTINE_TABLE} WHERE id = ?", (entry_id,)).fetchone()
        return None if row is None else SealedRecord(_entry(row[:7]), bytes(row[7]))

    def quarantine_purge(self, ids: Sequence[str] | None, older_than: datetime | None) -> int:
        age = "" if older_than is None else " AND created_at < ?"
        age_args: tuple[int, ...] = () if older_than is None else (_micros(older_than),)
        deleted = 0
        with self._write() as conn:
            if ids is None:
                return conn.execute(f"DELETE FROM {QUARANTINE_TABLE} WHERE 1{age}",
                                    age_args).rowcount
            for start in range(0, len(ids), _CHUNK):
                chunk = tuple(ids[start:start + _CHUNK])
                marks = ",".join("?" * len(chunk))
                deleted += conn.execute(
                    f"DELETE FROM {QUARANTINE_TABLE} WHERE id IN ({marks}){age}",
                    chunk + age_args).rowcount
        return deleted

    def describe(self) -> str:
        return self._where

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    @contextmanager
    def _guard(self) -> Iterator[sqlite3.Connection]:
        """The connection, held alone; any SQLite failure becomes VaultUnavailable."""
        with self._lock:
            if self._conn is None:
                raise VaultUnavailable(self._where, "the vault is closed")
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise VaultUnavailable(self._where, _reason(exc)) from None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, its lock taken up front (waiting up to busy_timeout)."""
        with self._guard() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with suppress(sqlite3.Error):  # the first failure is the one to report
                        conn.execute("ROLLBACK")
                raise


def sqlite_path(url: str) -> Path:
    """`sqlite:///var/lib/phimask/vault.db` (also `sqlite:////var/...`) is an absolute
    path; `sqlite:vault.db` a relative one."""
    rest = url.removeprefix("sqlite:")
    if rest.startswith("//"):
        authority, _, path = rest[2:].partition("/")
        if authority not in ("", "localhost"):
            raise ValueError("vault: a sqlite URL names a local file: sqlite:///PATH")
        rest = "/" + path.lstrip("/")
    if rest in ("", "/"):
        raise ValueError("vault: a sqlite URL needs a file path: sqlite:///PATH")
    return Path(rest).expanduser()


def _create_private(path: Path) -> None:
    """The directory (0700 when made here) and the file (0600) before SQLite opens it;
    SQLite gives its -wal and -shm files the database file's mode."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
    except OSError:
        pass  # not ours to change: SQLite still works, with the owner's mode
    finally:
        os.close(fd)


def _select_tokens(conn: sqlite3.Connection, digests: Sequence[bytes]) -> dict[bytes, str]:
    found: dict[bytes, str] = {}
    for start in range(0, len(digests), _CHUNK):
        chunk = tuple(digests[start:start + _CHUNK])
        marks = ",".join("?" * len(chunk))
        for idx, token in conn.execute(
                f"SELECT idx, token FROM {TOKENS_TABLE} WHERE idx IN ({marks})", chunk):
            found[bytes(idx)] = token
    return found


def _entry(row: Sequence[object]) -> QuarantineEntry:
    entry_id, created, protocol, reason, rule, size, kid = row
    assert isinstance(created, int) and isinstance(size, int)
    return QuarantineEntry(str(entry_id), _EPOCH + created * _MICROSECOND, str(protocol),
                           str(reason), str(rule), size, str(kid))


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _reason(exc: sqlite3.Error) -> str:
    # SQLite's messages name the condition and at most a table or column, never a row.
    return (str(exc) or type(exc).__name__)[:200]
