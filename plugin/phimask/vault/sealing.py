"""The vault's two keyed operations: the HMAC-SHA256 lookup digest of a value and
AES-256-GCM sealing of values and quarantined records."""

from __future__ import annotations

import hmac
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..keyring import Keyring
from .errors import VaultIntegrityError, VaultKeyMissing

NONCE_BYTES = 12


def encode(text: str) -> bytes:
    # surrogatepass: a lone surrogate (possible in JSON text) must round-trip, not fail.
    return text.encode("utf-8", "surrogatepass")


def decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


class Sealer:
    """Keys resolved once, at construction: a keyring makes missing local keys lazily,
    and two threads must never race to make different ones."""

    def __init__(self, keys: Keyring) -> None:
        vault = keys.keyset("vault")
        index = keys.keyset("vault-index")
        for key in vault.keys.values():
            if len(key.material) != 32:
                raise ValueError(f"vault key {key.kid!r} must be 32 bytes (AES-256)")
        self.vault_kid = vault.active.kid
        self.index_kid = index.active.kid
        self._aead = {kid: AESGCM(key.material) for kid, key in vault.keys.items()}
        # The active index key first: new rows use it, and the cache is keyed by it.
        self._index_keys = [index.active.material] + [
            key.material for kid, key in sorted(index.keys.items()) if kid != index.active.kid]

    def digest(self, field: str, value: str) -> bytes:
        """The lookup digest under the active index key."""
        return hmac.digest(self._index_keys[0], _index_message(field, value), "sha256")

    def digests(self, field: str, value: str) -> list[bytes]:
        """The lookup digest under every index key, the active one first: a value
        stored under a retired index key is still found."""
        message = _index_message(field, value)
        return [hmac.digest(key, message, "sha256") for key in self._index_keys]

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        """nonce || ciphertext || tag, under the active vault key."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + self._aead[self.vault_kid].encrypt(nonce, plaintext, aad)

    def open(self, kid: str, sealed: bytes, aad: bytes, what: str) -> bytes:
        aead = self._aead.get(kid)
        if aead is None:
            raise VaultKeyMissing(kid)
        try:
            return aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
        except (InvalidTag, ValueError):
            raise VaultIntegrityError(
                f"vault: {what} failed authenticated decryption (vault key {kid!r}): "
                "tampered, corrupt or moved to another row") from None


def _index_message(field: str, value: str) -> bytes:
    return encode(field) + b"\x00" + encode(value)


def token_aad(token: str, field: str) -> bytes:
    return encode(token) + b"\x00" + encode(field)


def quarantine_aad(entry_id: str, protocol: str, reason: str) -> bytes:
    return b"\x00".join((encode(entry_id), encode(protocol), encode(reason)))
