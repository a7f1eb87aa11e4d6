"""What the vault raises. Messages name the backend, a field or a key id: never a
value, a token's clear text, a password or a database error's detail (which can quote
row contents)."""

from __future__ import annotations

from typing import Any

from ..errors import CallError


class VaultError(CallError):
    """Any vault failure a caller may want to catch as one."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Crosses process boundaries intact (a worker's error reaches the server):
        # the default reduce would call __init__ with the message alone.
        return _rebuild, (type(self), self.status, str(self), dict(self.__dict__))


class VaultUnavailable(VaultError):
    """The backing store cannot be reached or written: connection refused, database
    down, disk error, lock timeout, a closed vault."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__("UNAVAILABLE", f"vault unavailable ({where}): {reason}")
        self.where = where


class VaultIntegrityError(VaultError):
    """A stored ciphertext failed authenticated decryption (tampered or corrupt)."""

    def __init__(self, message: str) -> None:
        super().__init__("DATA_LOSS", message)


class VaultKeyMissing(VaultError):
    """A row was sealed with a vault key id the keyring no longer holds."""

    def __init__(self, kid: str) -> None:
        super().__init__("FAILED_PRECONDITION",
                         f"vault: no vault key with id {kid!r} in the keyring; keep retired "
                         "vault keys loaded for as long as their tokens must resolve")
        self.kid = kid


class TokenShapeError(VaultError):
    """No token of the asked shape can be made for a value: nothing in it to replace,
    or every attempt hit a token already in use."""

    def __init__(self, message: str, status: str = "INVALID_ARGUMENT") -> None:
        super().__init__(status, message)


def _rebuild(cls: type[VaultError], status: str, message: str,
             state: dict[str, Any]) -> VaultError:
    error = cls.__new__(cls)
    CallError.__init__(error, status, message)
    error.__dict__.update(state)
    return error
