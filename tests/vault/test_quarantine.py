"""The quarantine: sealed originals, listed newest first, purged on demand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from phimask.vault import Vault, VaultIntegrityError

from .conftest import NewUrl, OpenVault
from .helpers import raw

ORIGINAL = b'{"patient": {"name": "Zebediah Quux", "ssn": "555-12-3456"}}'


def _put(vault: Vault, n: int) -> list[str]:
    return [vault.quarantine_put(f"proto{i}", ORIGINAL + bytes([i]), f"reason {i}",
                                 f"rule.{i}") for i in range(n)]


def test_put_list_get(vault: Vault) -> None:
    start = datetime.now(UTC)
    ids = _put(vault, 3)
    assert all(i.startswith("q_") for i in ids) and len(set(ids)) == 3
    entries = vault.quarantine_list()
    assert [e.id for e in entries] == ids[::-1]  # newest first
    newest = entries[0]
    assert (newest.protocol, newest.reason, newest.rule) == ("proto2", "reason 2", "rule.2")
    assert newest.size == len(ORIGINAL) + 1 and newest.vault_kid == "v1"
    assert start - timedelta(seconds=1) <= newest.created_at <= datetime.now(UTC)
    assert newest.created_at.utcoffset() == timedelta(0)
    assert [e.id for e in vault.quarantine_list(limit=1, offset=1)] == [ids[1]]
    assert vault.quarantine_get(ids[0]) == ORIGINAL + b"\x00"
    assert vault.quarantine_get("q_nope") is None


def test_purge(vault: Vault) -> None:
    ids = _put(vault, 4)
    assert vault.quarantine_purge(ids=[ids[0], "q_nope"]) == 1
    assert vault.quarantine_purge(ids=[]) == 0
    assert vault.quarantine_get(ids[0]) is None
    assert vault.quarantine_purge(older_than=datetime.now(UTC) - timedelta(hours=1)) == 0
    cutoff = vault.quarantine_list()[0].created_at  # the newest survives `< cutoff`
    assert vault.quarantine_purge(ids=[ids[1]], older_than=cutoff) == 1
    assert vault.quarantine_purge(older_than=cutoff) == 1
    assert [e.id for e in vault.quarantine_list()] == [ids[3]]
    assert vault.quarantine_purge() == 1
    assert vault.quarantine_list() == []
    with pytest.raises(ValueError, match="timezone"):
        vault.quarantine_purge(older_than=datetime.now())


def test_stored_record_is_sealed(vault: Vault, url: str) -> None:
    (entry_id,) = _put(vault, 1)
    ((sealed,),) = raw(url, "SELECT sealed FROM phimask_quarantine WHERE id = ?", [entry_id])
    assert b"Zebediah" not in bytes(sealed) and b"555-12-3456" not in bytes(sealed)
    # The reason is bound in: changing it breaks the seal instead of relabelling the record.
    raw(url, "UPDATE phimask_quarantine SET reason = 'other' WHERE id = ?", [entry_id])
    with pytest.raises(VaultIntegrityError) as caught:
        vault.quarantine_get(entry_id)
    assert "Zebediah" not in str(caught.value)


def test_sqlite_file_never_holds_clear_values(sqlite_new_url: NewUrl,
                                              open_at: OpenVault) -> None:
    url = sqlite_new_url()
    vault = open_at(url)
    _put(vault, 2)
    vault.tokenize("patient.name", "Zebediah Quux")
    path = Path(url.removeprefix("sqlite://"))
    files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
    assert len(files) >= 2  # the database and its write-ahead log
    for file in files:
        data = file.read_bytes()
        assert b"Zebediah" not in data and b"555-12-3456" not in data
