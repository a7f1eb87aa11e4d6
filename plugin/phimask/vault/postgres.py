"""The PostgreSQL backend: one vault shared by every replica. `INSERT ... ON CONFLICT
DO NOTHING` on the unique index column makes get-or-create atomic across processes;
a small pool with short timeouts turns an unreachable database into VaultUnavailable
within seconds rather than a hang."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from .errors import VaultUnavailable
from .store import (
    QUARANTINE_TABLE,
    TOKENS_TABLE,
    QuarantineEntry,
    SealedRecord,
    SealedValue,
    TokenRow,
)

T = TypeVar("T")
Conn = psycopg.Connection[TupleRow]

# Serializes schema creation among processes opening at once (CREATE TABLE IF NOT
# EXISTS alone can still collide on the catalog). Any fixed 64-bit number.
_SCHEMA_LOCK = 0x7068_696D_6173_6B01
_SCHEMA = (
    f"""CREATE TABLE IF NOT EXISTS {TOKENS_TABLE} (
        idx BYTEA PRIMARY KEY,
        token TEXT NOT NULL UNIQUE,
        field TEXT NOT NULL,
        index_kid TEXT NOT NULL,
        vault_kid TEXT NOT NULL,
        sealed BYTEA NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
    f"""CREATE TABLE IF NOT EXISTS {QUARANTINE_TABLE} (
        id TEXT PRIMARY KEY,
        created_at TIMESTAMPTZ NOT NULL,
        protocol TEXT NOT NULL,
        reason TEXT NOT NULL,
        rule TEXT NOT NULL,
        size BIGINT NOT NULL,
        vault_kid TEXT NOT NULL,
        sealed BYTEA NOT NULL)""",
    f"CREATE INDEX IF NOT EXISTS {QUARANTINE_TABLE}_created_at ON {QUARANTINE_TABLE} (created_at)",
)
# Inserted rows, plus rows already there under the same idx. A row skipped because of
# a taken token, or of an idx committed by another writer after this statement's
# snapshot, is in neither: the vault looks it up again.
_PUT_TOKENS = f"""
WITH inserted AS (
    INSERT INTO {TOKENS_TABLE} (idx, token, field, index_kid, vault_kid, sealed)
    SELECT * FROM unnest(%s::bytea[], %s::text[], %s::text[], %s::text[], %s::text[],
                         %s::bytea[])
    ON CONFLICT DO NOTHING
    RETURNING idx, token)
SELECT idx, token FROM inserted
UNION ALL
SELECT idx, token FROM {TOKENS_TABLE} WHERE idx = ANY(%s::bytea[])"""
# Defaults for settings the URL leaves out: fail fast, notice a vanished server.
_CONNECT_DEFAULTS = {
    "connect_timeout": "5",
    "application_name": "phimask",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
    "tcp_user_timeout": "15000",
}
_SESSION = ("SET statement_timeout = '15s'", "SET lock_timeout = '5s'")


class PostgresStore:
    def __init__(self, url: str, *, max_connections: int = 4, timeout: float = 5.0) -> None:
        try:
            params: dict[str, Any] = conninfo_to_dict(url)
        except psycopg.Error:
            # psycopg's message quotes the URL, password and all.
            raise ValueError("vault: the postgresql URL is not a valid libpq URL") from None
        for name, value in _CONNECT_DEFAULTS.items():
            params.setdefault(name, value)
        self._where = "postgresql " + _location(params)
        self._timeout = timeout
        try:
            with psycopg.connect(**params, autocommit=True) as conn:
                _configure(conn)
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                    for statement in _SCHEMA:
                        conn.execute(statement)
        except psycopg.Error as exc:
            raise VaultUnavailable(self._where, _reason(exc)) from None
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            kwargs={**params, "autocommit": True}, min_size=1, max_size=max_connections,
            open=False, configure=_configure, timeout=timeout, name="phimask-vault")
        try:
            self._pool.open(wait=True, timeout=timeout)
        except (PoolTimeout, psycopg.Error) as exc:
            self._pool.close()
            raise VaultUnavailable(self._where, _reason(exc)) from None

    def find_tokens(self, digests: Sequence[bytes]) -> dict[bytes, str]:
        if not digests:
            return {}

        def work(conn: Conn) -> dict[bytes, str]:
            rows = conn.execute(f"SELECT idx, token FROM {TOKENS_TABLE} WHERE idx = ANY(%s)",
                                (list(digests),)).fetchall()
            return {bytes(idx): token for idx, token in rows}

        return self._run(work)

    def put_tokens(self, rows: Sequence[TokenRow]) -> dict[bytes, str]:
        if not rows:
            return {}
        idx = [r.idx for r in rows]
        args = (idx, [r.token for r in rows], [r.field for r in rows],
                [r.index_kid for r in rows], [r.vault_kid for r in rows],
                [r.sealed for r in rows], idx)

        def work(conn: Conn) -> dict[bytes, str]:
            return {bytes(i): token for i, token in conn.execute(_PUT_TOKENS, args).fetchall()}

        return self._run(work)

    def sealed_value(self, token: str) -> SealedValue | None:
        def work(conn: Conn) -> SealedValue | None:
            row = conn.execute(f"SELECT field, vault_kid, sealed FROM {TOKENS_TABLE} "
                               "WHERE token = %s", (token,)).fetchone()
            return None if row is None else SealedValue(row[0], row[1], bytes(row[2]))

        return self._run(work)

    def quarantine_put(self, record: SealedRecord) -> None:
        e = record.entry

        def work(conn: Conn) -> None:
            # DO NOTHING: a retry after a lost reply finds its own row already there.
            conn.execute(
                f"INSERT INTO {QUARANTINE_TABLE} (id, created_at, protocol, reason, rule, size, "
                "vault_kid, sealed) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (id) DO NOTHING",
                (e.id, e.created_at, e.protocol, e.reason, e.rule, e.size, e.vault_kid,
                 record.sealed))

        self._run(work)

    def quarantine_list(self, limit: int, offset: int) -> list[QuarantineEntry]:
        def work(conn: Conn) -> list[QuarantineEntry]:
            rows = conn.execute(
                f"SELECT id, created_at, protocol, reason, rule, size, vault_kid "
                f"FROM {QUARANTINE_TABLE} ORDER BY created_at DESC, id DESC "
                "LIMIT %s OFFSET %s", (limit, offset)).fetchall()
            return [_entry(row) for row in rows]

        return self._run(work)

    def quarantine_get(self, entry_id: str) -> SealedRecord | None:
        def work(conn: Conn) -> SealedRecord | None:
            row = conn.execute(
                f"SELECT id, created_at, protocol, reason, rule, size, vault_kid, sealed "
                f"FROM {QUARANTINE_TABLE} WHERE id = %s", (entry_id,)).fetchone()
            return None if row is None else SealedRecord(_entry(row[:7]), bytes(row[7]))

        return self._run(work)

    def quarantine_purge(self, ids: Sequence[str] | None, older_than: datetime | None) -> int:
        args = {"ids": None if ids is None else list(ids), "before": older_than}

        def work(conn: Conn) -> int:
            cursor = conn.execute(
                f"DELETE FROM {QUARANTINE_TABLE} "
                "WHERE (%(ids)s::text[] IS NULL OR id = ANY(%(ids)s::text[])) "
                "AND (%(before)s::timestamptz IS NULL OR created_at < %(before)s::timestamptz)",
                args)
            return cursor.rowcount

        return self._run(work)

    def describe(self) -> str:
        return self._where

    def close(self) -> None:
        self._pool.close()

    def _run(self, work: Callable[[Conn], T]) -> T:
        """`work` on a pooled connection. Every statement the vault sends is idempotent,
        so one retry covers a pooled connection that died with a database restart or a
        deadlock victim; anything else, or a second failure, is VaultUnavailable."""
        for attempt in (1, 2):
            try:
                with self._pool.connection() as conn:
                    return work(conn)
            except PoolTimeout:
                raise VaultUnavailable(self._where, f"no connection within {self._timeout:g}s"
                                       ) from None
            except PoolClosed:
                raise VaultUnavailable(self._where, "the vault is closed") from None
            except (psycopg.OperationalError, pg_errors.DeadlockDetected) as exc:
                if attempt == 2:
                    raise VaultUnavailable(self._where, _reason(exc)) from None
            except psycopg.Error as exc:
                raise VaultUnavailable(self._where, _reason(exc)) from None
        raise AssertionError("unreachable")


def _configure(conn: Conn) -> None:
    for statement in _SESSION:
        conn.execute(statement)


def _location(params: dict[str, Any]) -> str:
    host = params.get("host") or params.get("hostaddr") or "localhost"
    port = params.get("port") or "5432"
    dbname = params.get("dbname") or params.get("user") or "postgres"
    return f"host={host} port={port} dbname={dbname}"


def _reason(exc: BaseException) -> str:
    """A failure's class and SQLSTATE; for a failed connection, libpq's own words (which
    name the server and the user, never the password). Server messages are left out:
    their DETAIL can quote a row."""
    if isinstance(exc, PoolTimeout):
        return "no connection within the pool timeout"
    if isinstance(exc, psycopg.OperationalError) and not getattr(exc, "sqlstate", None):
        first = (str(exc).strip().splitlines() or [""])[0]
        return f"{type(exc).__name__}: {first[:200]}"
    sqlstate = getattr(exc, "sqlstate", None)
    return type(exc).__name__ + (f" (SQLSTATE {sqlstate})" if sqlstate else "")


def _entry(row: Sequence[Any]) -> QuarantineEntry:
    entry_id, created, protocol, reason, rule, size, kid = row
    return QuarantineEntry(entry_id, created.astimezone(UTC), protocol, reason, rule, int(size),
                           kid)
