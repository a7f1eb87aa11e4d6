"""What a backend stores, and the interface each backend (SQLite, PostgreSQL) offers
the vault. Backends hold sealed bytes and digests only; sealing happens above them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

TOKENS_TABLE = "phimask_tokens"
QUARANTINE_TABLE = "phimask_quarantine"


@dataclass(frozen=True)
class TokenRow:
    idx: bytes  # HMAC-SHA256 under the index key `index_kid`
    token: str
    field: str
    index_kid: str
    vault_kid: str
    sealed: bytes  # AES-256-GCM of the value; associated data: token, field


@dataclass(frozen=True)
class SealedValue:
    field: str
    vault_kid: str
    sealed: bytes


@dataclass(frozen=True)
class QuarantineEntry:
    id: str
    created_at: datetime  # UTC
    protocol: str
    reason: str
    rule: str
    size: int  # bytes of the original
    vault_kid: str


@dataclass(frozen=True)
class SealedRecord:
    entry: QuarantineEntry
    sealed: bytes  # AES-256-GCM of the original; associated data: id, protocol, reason


class Store(Protocol):
    """Every method raises VaultUnavailable for any backend failure."""

    def find_tokens(self, digests: Sequence[bytes]) -> dict[bytes, str]:
        """digest -> token for each digest that has a row."""
        ...

    def put_tokens(self, rows: Sequence[TokenRow]) -> dict[bytes, str]:
        """Insert the rows, skipping any whose idx or token is taken, atomically per row.
        Returns idx -> stored token for rows inserted and for rows whose idx was already
        taken (the existing token). A row missing from the result hit a taken token,
        or an idx another writer committed while this one ran: look it up again."""
        ...

    def sealed_value(self, token: str) -> SealedValue | None: ...

    def quarantine_put(self, record: SealedRecord) -> None: ...

    def quarantine_list(self, limit: int, offset: int) -> list[QuarantineEntry]:
        """Newest first."""
        ...

    def quarantine_get(self, entry_id: str) -> SealedRecord | None: ...

    def quarantine_purge(self, ids: Sequence[str] | None, older_than: datetime | None) -> int:
        """Delete entries matching both filters (a None filter matches all)."""
        ...

    def describe(self) -> str: ...

    def close(self) -> None: ...
