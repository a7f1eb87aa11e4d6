"""The vault: random tokens for values (one per value and field, across processes),
and the quarantine of records that could not be masked. Sealing and caching happen
here; a Store only keeps digests and sealed bytes."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from types import TracebackType

from ..keyring import Keyring
from .cache import TokenCache
from .errors import TokenShapeError, VaultUnavailable
from .sealing import Sealer, decode, encode, quarantine_aad, token_aad
from .shapes import TokenShape, new_token
from .store import QuarantineEntry, SealedRecord, Store, TokenRow

# Rounds of look up / insert before giving up on a value whose fresh tokens keep
# hitting taken ones: only a nearly full format-preserving space gets there.
MAX_ROUNDS = 12
_DRAWS_PER_ROUND = 4


class Vault:
    """Thread-safe. Each process opens its own (connections do not survive spawn)."""

    def __init__(self, store: Store, keys: Keyring, cache_size: int = 100_000) -> None:
        self._store = store
        self._sealer = Sealer(keys)
        self._cache = TokenCache(cache_size)
        self._closed = False

    @property
    def vault_kid(self) -> str:
        """The key id new values are sealed with (and `tok` tokens carry)."""
        return self._sealer.vault_kid

    def tokenize(self, field: str, value: str, shape: str = "tok") -> str:
        """The token for `value` in the domain `field` (a policy rule path): the stored
        one, else a new random one, stored before it is returned. A value keeps the
        token it first got in `field`, whatever shape later calls ask for."""
        return self.tokenize_many(field, (value,), shape)[0]

    def tokenize_many(self, field: str, values: Iterable[str], shape: str = "tok") -> list[str]:
        """Tokens for `values`, in order. Values the cache lacks cost one round trip
        when all are stored already, two when some are new; more only after a race
        with another writer or a taken format-preserving token."""
        self._check_open()
        _check_field(field)
        kind = TokenShape.parse(shape)
        values = list(values)
        digests = [self._sealer.digest(field, value) for value in values]
        tokens: dict[bytes, str] = {}
        missing: dict[bytes, str] = {}  # active digest -> value
        for digest, value in zip(digests, values, strict=True):
            if digest in tokens or digest in missing:
                continue
            token = self._cache.get(digest)
            if token is None:
                missing[digest] = value
            else:
                tokens[digest] = token
        if missing:
            tokens.update(self._resolve(field, missing, kind))
        return [tokens[digest] for digest in digests]

    def detokenize(self, token: str, field: str | None = None) -> str | None:
        """The value behind `token`; None when there is no such token or it belongs to
        another field than `field`."""
        self._check_open()
        row = self._store.sealed_value(token)
        if row is None or (field is not None and row.field != field):
            return None
        return decode(self._sealer.open(row.vault_kid, row.sealed, token_aad(token, row.field),
                                        "a vault value"))

    def quarantine_put(self, protocol: str, original: bytes, reason: str, rule: str) -> str:
        """Keep `original` (sealed) for review; returns its id."""
        self._check_open()
        entry = QuarantineEntry(id="q_" + secrets.token_hex(16), created_at=datetime.now(UTC),
                                protocol=protocol, reason=reason, rule=rule,
                                size=len(original), vault_kid=self._sealer.vault_kid)
        sealed = self._sealer.seal(bytes(original), quarantine_aad(entry.id, protocol, reason))
        self._store.quarantine_put(SealedRecord(entry, sealed))
        return entry.id

    def quarantine_list(self, limit: int = 100, offset: int = 0) -> list[QuarantineEntry]:
        """Entries, newest first; never the originals."""
        self._check_open()
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        return self._store.quarantine_list(limit, offset)

    def quarantine_get(self, entry_id: str) -> bytes | None:
        self._check_open()
        record = self._store.quarantine_get(entry_id)
        if record is None:
            return None
        entry = record.entry
        return self._sealer.open(entry.vault_kid, record.sealed,
                                 quarantine_aad(entry.id, entry.protocol, entry.reason),
                                 "a quarantined record")

    def quarantine_purge(self, ids: Sequence[str] | None = None,
                         older_than: datetime | None = None) -> int:
        """Delete the entries in `ids` and/or created before `older_than` (both given:
        entries matching both; neither: every entry). Returns how many went."""
        self._check_open()
        if older_than is not None and older_than.utcoffset() is None:
            raise ValueError("older_than must be timezone-aware")
        if ids is not None:
            if isinstance(ids, str):
                raise TypeError("ids is a sequence of ids, not one id")
            if not ids:
                return 0
        return self._store.quarantine_purge(None if ids is None else list(ids), older_than)

    def cache_counts(self) -> tuple[int, int]:
        """(hits, misses) of the token cache since the vault opened."""
        return self._cache.hits, self._cache.misses

    def describe(self) -> str:
        """Backend and location, for logs: no password, no values."""
        return self._store.describe()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._cache.clear()
            self._store.close()

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise VaultUnavailable(self._store.describe(), "the vault is closed")

    def _resolve(self, field: str, missing: dict[bytes, str], shape: TokenShape
                 ) -> dict[bytes, str]:
        """Stored or new tokens for values the cache lacks, by active digest."""
        alias: dict[bytes, bytes] = {}  # digest under any index key -> active digest
        for active, value in missing.items():
            alias[active] = active
            for digest in self._sealer.digests(field, value)[1:]:
                alias[digest] = active
        todo = dict(missing)
        found: dict[bytes, str] = {}
        for _ in range(MAX_ROUNDS):
            lookup = [digest for digest, active in alias.items() if active in todo]
            for digest, token in self._store.find_tokens(lookup).items():
                active = alias[digest]
                if todo.pop(active, None) is not None:
                    found[active] = token
            if not todo:
                break
            for active, token in self._store.put_tokens(self._new_rows(field, todo, shape)).items():
                todo.pop(active, None)
                found[active] = token
            if not todo:
                break
        if todo:
            raise TokenShapeError(f"vault: no free {shape} token for field {field!r} after "
                                  f"{MAX_ROUNDS} rounds; the shape's token space is nearly "
                                  "full (use shape tok)", "RESOURCE_EXHAUSTED")
        for active, token in found.items():
            self._cache.put(active, token)
        return found

    def _new_rows(self, field: str, todo: dict[bytes, str], shape: TokenShape) -> list[TokenRow]:
        sealer = self._sealer
        rows: list[TokenRow] = []
        taken: set[str] = set()
        for active in sorted(todo):  # one order in every writer: no insert deadlocks
            value = todo[active]
            for _ in range(_DRAWS_PER_ROUND):
                token = new_token(shape, value, sealer.vault_kid, field)
                if token not in taken:
                    break
            else:
                continue  # left for the next round
            taken.add(token)
            sealed = sealer.seal(encode(value), token_aad(token, field))
            rows.append(TokenRow(idx=active, token=token, field=field,
                                 index_kid=sealer.index_kid, vault_kid=sealer.vault_kid,
                                 sealed=sealed))
        return rows


def _check_field(field: str) -> None:
    if "\x00" in field:
        raise ValueError("vault: a field name must not contain NUL")
