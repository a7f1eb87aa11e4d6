"""open_vault: where the store goes and what it says about itself."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from phimask.vault import open_vault
from phimask.vault.sqlite import sqlite_path

from .conftest import NewUrl
from .helpers import make_keys


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_default_is_a_private_sqlite_file(tmp_path: Path) -> None:
    state = tmp_path / "new" / "state"
    with open_vault(None, state, make_keys()) as vault:
        vault.tokenize("patient.name", "Ann")
        assert vault.describe() == f"sqlite {state / 'vault.db'}"
        assert _mode(state) == 0o700
        assert _mode(state / "vault.db") == 0o600
        assert _mode(state / "vault.db-wal") == 0o600
        assert _mode(state / "vault.db-shm") == 0o600


def test_existing_file_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "vault.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    open_vault(f"sqlite://{path}", tmp_path, make_keys()).close()
    assert _mode(path) == 0o600


@pytest.mark.parametrize(("url", "path"), [
    ("sqlite:///var/lib/phimask/vault.db", "/var/lib/phimask/vault.db"),
    ("sqlite:////var/lib/phimask/vault.db", "/var/lib/phimask/vault.db"),
    ("sqlite://localhost/srv/vault.db", "/srv/vault.db"),
    ("sqlite:vault.db", "vault.db"),
])
def test_sqlite_urls(url: str, path: str) -> None:
    assert sqlite_path(url) == Path(path)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite://db-host/vault.db"])
def test_bad_sqlite_urls(url: str) -> None:
    with pytest.raises(ValueError):
        sqlite_path(url)


def test_unknown_scheme(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sqlite:///PATH or postgresql"):
        open_vault("mysql://db/vault", tmp_path, make_keys())


def test_malformed_postgres_url_hides_the_password(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as caught:
        open_vault("postgresql://u:hunter2@[::1/vault", tmp_path, make_keys())
    assert "hunter2" not in str(caught.value)


def test_postgres_describe_hides_the_password(pg_new_url: NewUrl, tmp_path: Path) -> None:
    url = pg_new_url()
    with_password = url.replace("://postgres@", "://postgres:hunter2@")
    if with_password == url:
        pytest.skip("PHIMASK_TEST_PG_DSN has no postgres@ to add a password to")
    with open_vault(with_password, tmp_path, make_keys()) as vault:  # trust auth ignores it
        description = vault.describe()
    assert description.startswith("postgresql host=") and "dbname=" in description
    assert "hunter2" not in description
