"""Open the vault a URL names: SQLite by default, PostgreSQL when replicas share one."""

from __future__ import annotations

from pathlib import Path

from ..keyring import Keyring
from .core import Vault
from .sqlite import SqliteStore, sqlite_path
from .store import Store

DEFAULT_FILE = "vault.db"


def open_store(url: str | None, state_dir: Path) -> Store:
    if url is None:
        return SqliteStore(state_dir / DEFAULT_FILE)
    if url.startswith("sqlite:"):
        return SqliteStore(sqlite_path(url))
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore  # psycopg loads only when it is used

        return PostgresStore(url)
    raise ValueError("vault: the vault URL must be sqlite:///PATH or postgresql://...")


def open_vault(url: str | None, state_dir: Path, keys: Keyring,
               cache_size: int = 100_000) -> Vault:
    """The vault at `url` (None: `<state_dir>/vault.db`), its tables made if missing.
    Raises VaultUnavailable when the store cannot be reached or created."""
    store = open_store(url, state_dir)
    try:
        return Vault(store, keys, cache_size)
    except BaseException:
        store.close()
        raise
