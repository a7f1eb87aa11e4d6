"""Vault locations: SQLite files in tmp_path and, when it is reachable, the real
PostgreSQL (PHIMASK_TEST_PG_DSN), each test in fresh schemas dropped afterwards.
Unreachable PostgreSQL skips its tests, except under CI=true, where it fails them."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from phimask.keyring import Keyring
from phimask.vault import Vault, open_vault

from .helpers import make_keys, with_search_path

PG_DSN = os.environ.get("PHIMASK_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")

NewUrl = Callable[[], str]
OpenVault = Callable[..., Vault]


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    try:
        psycopg.connect(PG_DSN, connect_timeout=3).close()
    except psycopg.Error as exc:
        where = {k: v for k, v in conninfo_to_dict(PG_DSN).items() if k != "password"}
        message = f"PostgreSQL for the vault tests is unreachable ({where}): {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return PG_DSN


@pytest.fixture
def pg_new_url(pg_dsn: str) -> Iterator[NewUrl]:
    """Makes a fresh schema per call; the URL's search_path points the vault at it."""
    schemas: list[str] = []

    def new() -> str:
        schema = f"phimask_t_{secrets.token_hex(6)}"
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        schemas.append(schema)
        return with_search_path(pg_dsn, schema)

    yield new
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(schema)))


@pytest.fixture
def sqlite_new_url(tmp_path: Path) -> NewUrl:
    count = iter(range(1_000_000))
    return lambda: f"sqlite://{tmp_path}/vault-{next(count)}.db"


@pytest.fixture(params=["sqlite", "postgresql"])
def new_url(request: pytest.FixtureRequest) -> NewUrl:
    """A fresh, empty vault location per call, for each backend."""
    name = "sqlite_new_url" if request.param == "sqlite" else "pg_new_url"
    factory: NewUrl = request.getfixturevalue(name)
    return factory


@pytest.fixture
def url(new_url: NewUrl) -> str:
    return new_url()


@pytest.fixture
def keys() -> Keyring:
    return make_keys()


@pytest.fixture
def open_at(tmp_path: Path) -> Iterator[OpenVault]:
    """open_vault(url, keys=..., cache_size=...), closing every vault it opened."""
    opened: list[Vault] = []

    def open_(url: str, keys: Keyring | None = None, cache_size: int = 100_000) -> Vault:
        vault = open_vault(url, tmp_path / "state", keys or make_keys(), cache_size)
        opened.append(vault)
        return vault

    yield open_
    for vault in opened:
        vault.close()


@pytest.fixture
def vault(open_at: OpenVault, url: str) -> Vault:
    return open_at(url)
