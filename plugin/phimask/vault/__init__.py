"""The token vault (random, reversible tokens: one per value and field, shared by
every process and replica) and the quarantine store, in one backend."""

from .core import Vault
from .errors import (
    TokenShapeError,
    VaultError,
    VaultIntegrityError,
    VaultKeyMissing,
    VaultUnavailable,
)
from .opener import open_vault
from .shapes import TokenShape
from .store import QuarantineEntry

__all__ = [
    "QuarantineEntry",
    "TokenShape",
    "TokenShapeError",
    "Vault",
    "VaultError",
    "VaultIntegrityError",
    "VaultKeyMissing",
    "VaultUnavailable",
    "open_vault",
]
