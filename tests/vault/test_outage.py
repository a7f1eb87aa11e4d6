"""A store that cannot be reached or written is VaultUnavailable, quickly, and no
token is handed out that was not stored."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from phimask.vault import Vault, VaultUnavailable, open_vault
from phimask.vault.postgres import PostgresStore
from phimask.vault.sqlite import SqliteStore

from .conftest import NewUrl
from .helpers import TcpProxy, make_keys, raw


def test_postgres_closed_port(tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(VaultUnavailable) as caught:
        open_vault("postgresql://postgres:hunter2@127.0.0.1:1/test", tmp_path, make_keys())
    assert time.monotonic() - start < 5
    assert caught.value.status == "UNAVAILABLE"
    assert "host=127.0.0.1 port=1 dbname=test" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_postgres_going_down_mid_run(pg_new_url: NewUrl) -> None:
    direct = pg_new_url()
    params = conninfo_to_dict(direct)
    host, port = str(params.get("host", "")), str(params.get("port", "5432"))
    proxy = TcpProxy(host, int(port))
    proxied = direct.replace(f"@{host}:{port}/", f"@127.0.0.1:{proxy.port}/")
    if proxied == direct:
        pytest.skip("PHIMASK_TEST_PG_DSN is not a URL with user@host:port/")
    vault = Vault(PostgresStore(proxied, timeout=1.0), make_keys())
    try:
        ann = vault.tokenize("patient.name", "Ann")
        proxy.stop()
        start = time.monotonic()
        with pytest.raises(VaultUnavailable) as caught:
            vault.tokenize("patient.name", "Bob")
        assert time.monotonic() - start < 4
        assert f"port={proxy.port}" in str(caught.value) and "Bob" not in str(caught.value)
        with pytest.raises(VaultUnavailable):
            vault.detokenize(ann)
        assert vault.tokenize("patient.name", "Ann") == ann  # from the cache
    finally:
        vault.close()
    assert raw(direct, "SELECT token FROM phimask_tokens") == [(ann,)]


def test_postgres_survives_dropped_connections(pg_new_url: NewUrl, pg_dsn: str) -> None:
    url = pg_new_url() + "&application_name=phimask_t_drop"
    with open_vault(url, Path("/nonexistent"), make_keys()) as vault:
        ann = vault.tokenize("patient.name", "Ann")
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'phimask_t_drop'").fetchone()
        assert killed is not None and killed[0] >= 1
        # A database restart looks like this to the pool: the next call reconnects.
        assert vault.detokenize(ann) == "Ann"
        bob = vault.tokenize("patient.name", "Bob")
        assert vault.detokenize(bob) == "Bob"


def test_sqlite_unwritable_path(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    start = time.monotonic()
    with pytest.raises(VaultUnavailable) as caught:
        open_vault(None, blocker / "state", make_keys())
    assert time.monotonic() - start < 1
    assert caught.value.status == "UNAVAILABLE"
    assert str(blocker / "state" / "vault.db") in str(caught.value)


def test_sqlite_lock_timeout(tmp_path: Path) -> None:
    path = tmp_path / "vault.db"
    vault = Vault(SqliteStore(path, busy_timeout=0.2), make_keys())
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        start = time.monotonic()
        with pytest.raises(VaultUnavailable, match="locked") as caught:
            vault.tokenize("patient.name", "Bob")
        assert time.monotonic() - start < 2
        assert "Bob" not in str(caught.value)
        other.execute("ROLLBACK")
        bob = vault.tokenize("patient.name", "Bob")
        assert vault.detokenize(bob) == "Bob"
        assert raw(f"sqlite://{path}", "SELECT token FROM phimask_tokens") == [(bob,)]
    finally:
        other.close()
        vault.close()
