"""Vault errors carry a gRPC status and survive a trip between processes."""

from __future__ import annotations

import pickle

import pytest

from phimask.errors import CallError
from phimask.vault import (
    TokenShapeError,
    VaultError,
    VaultIntegrityError,
    VaultKeyMissing,
    VaultUnavailable,
)


@pytest.mark.parametrize(("error", "status"), [
    (VaultUnavailable("sqlite /x/vault.db", "database is locked"), "UNAVAILABLE"),
    (VaultIntegrityError("vault: a vault value failed"), "DATA_LOSS"),
    (VaultKeyMissing("v1"), "FAILED_PRECONDITION"),
    (TokenShapeError("vault: no free token", "RESOURCE_EXHAUSTED"), "RESOURCE_EXHAUSTED"),
])
def test_status_and_pickling(error: VaultError, status: str) -> None:
    assert isinstance(error, CallError) and error.status == status
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert (copy.status, str(copy), copy.__dict__) == (status, str(error), error.__dict__)
