"""The keyring: every key phimask uses, each with an id and exactly one purpose.

Keys live in a directory, one file per key, as a mounted Kubernetes Secret does it:

    <purpose>.<kid>.key      the key: hex for symmetric keys; PEM or hex for Ed25519
    <purpose>.active         optional: the kid that is active for new work

One key per purpose is active (named by `<purpose>.active`, else the greatest kid:
`phimask keys generate` makes kids from the UTC time, so the newest wins); the others
stay loaded for verifying and decrypting what older keys made (rotation).
`PHIMASK_KEY_<PURPOSE>` (purpose upper-cased, `-` as `_`) holds `kid:hex[,kid:hex...]`,
the first active, and replaces the directory's keys of that purpose.

Without a configured directory phimask keeps local keys in `<state-dir>/keys` and
makes each one the first time a policy needs it; with one, a missing key stops the
start with a message naming the purpose and the path it was looked for at.
"""

from __future__ import annotations

import binascii
import logging
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

log = logging.getLogger("phimask.keys")

PURPOSES = ("hmac", "fpe", "vault", "vault-index", "verify-hmac", "verify-ed25519", "sign",
            "audit")
# What each purpose's key is for, shown by `phimask keys generate --help`.
PURPOSE_HELP = {
    "hmac": "keyed hashes (action: hmac)",
    "fpe": "FF1 format-preserving encryption (action: fpe)",
    "vault": "AES-256-GCM encryption of vault values and quarantined records",
    "vault-index": "the vault's lookup index (one token per value)",
    "verify-hmac": "verifying HMAC-SHA256 signatures of incoming records and batches",
    "verify-ed25519": "verifying Ed25519 signatures (the public half of a shipper's sign key)",
    "sign": "signing masked output for the next hop (Ed25519)",
    "audit": "the HMAC chain of the audit log",
}
SYMMETRIC_SIZES: dict[str, tuple[int, ...]] = {
    "hmac": (), "vault-index": (), "verify-hmac": (), "audit": (),  # () = at least MIN_BYTES
    "fpe": (16, 24, 32),  # AES-128/192/256
    "vault": (32,),  # AES-256-GCM
}
MIN_BYTES = 32
KID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,40}")
# Purposes a local state directory may make a key for on first use.
LOCAL_PURPOSES = ("hmac", "fpe", "vault", "vault-index", "audit")


class KeyLoadError(Exception):
    """A missing, short or unreadable key; the message names purpose and path, never
    the key."""


@dataclass(frozen=True)
class Key:
    kid: str
    purpose: str
    material: bytes = field(repr=False)  # symmetric key, or raw Ed25519 private/public bytes
    source: str = ""  # the file or variable it came from

    def ed25519_private(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.material)

    def ed25519_public(self) -> Ed25519PublicKey:
        if self.purpose == "sign":
            return self.ed25519_private().public_key()
        return Ed25519PublicKey.from_public_bytes(self.material)


@dataclass(frozen=True)
class KeySet:
    purpose: str
    active: Key
    keys: Mapping[str, Key]  # kid -> key, the active one included

    def get(self, kid: str) -> Key | None:
        return self.keys.get(kid)


class Keyring:
    """Keys by purpose. `create_missing` makes local keys on first use (state dir only);
    `ephemeral` stands in throwaway keys for missing ones (`phimask check`)."""

    def __init__(self, sets: Mapping[str, KeySet], *, directory: Path | None = None,
                 create_missing: bool = False, ephemeral: bool = False) -> None:
        self._sets = dict(sets)
        self.directory = directory
        self._create = create_missing
        self._ephemeral = ephemeral

    @classmethod
    def load(cls, directory: Path | None, *, env: Mapping[str, str] | None = None,
             local_dir: Path | None = None, create_missing: bool = False) -> Keyring:
        """Load `directory` (a configured key directory) or, when it is None, the local
        `local_dir`. Raises KeyLoadError for anything unreadable or malformed."""
        env = os.environ if env is None else env
        configured = directory is not None
        where = directory if configured else local_dir
        sets: dict[str, KeySet] = {}
        if where is not None:
            if configured and not where.is_dir():
                raise KeyLoadError(f"key directory {where} does not exist or is not a directory")
            if where.is_dir():
                sets = _load_directory(where)
        for purpose in PURPOSES:
            value = env.get(env_name(purpose))
            if value:
                sets[purpose] = _load_env(purpose, value)
        return cls(sets, directory=where, create_missing=create_missing and not configured,
                   ephemeral=False)

    @classmethod
    def throwaway(cls) -> Keyring:
        """Random keys for every purpose, made on demand and never written anywhere."""
        return cls({}, ephemeral=True)

    def with_ephemeral_fallback(self) -> Keyring:
        """This keyring, with throwaway keys where one is missing (for `phimask check`)."""
        return Keyring(self._sets, directory=self.directory, ephemeral=True)

    def has(self, purpose: str) -> bool:
        return purpose in self._sets

    def keyset(self, purpose: str) -> KeySet:
        if purpose not in PURPOSES:
            raise ValueError(f"unknown key purpose {purpose!r}")
        if purpose not in self._sets:
            self._sets[purpose] = self._missing(purpose)
        return self._sets[purpose]

    def active(self, purpose: str) -> Key:
        return self.keyset(purpose).active

    def get(self, purpose: str, kid: str) -> Key | None:
        if purpose not in self._sets:
            return None
        return self._sets[purpose].get(kid)

    def summary(self) -> dict[str, dict[str, object]]:
        """Purposes, kids and sources, for the startup log: never key material."""
        return {p: {"active": s.active.kid, "kids": sorted(s.keys), "source": s.active.source}
                for p, s in sorted(self._sets.items())}

    def _missing(self, purpose: str) -> KeySet:
        if self._ephemeral:
            key = Key("ephemeral", purpose, _random_material(purpose), "<throwaway>")
            return KeySet(purpose, key, {key.kid: key})
        if self._create and self.directory is not None and purpose in LOCAL_PURPOSES:
            path = create_key_file(self.directory, purpose, kid="local", activate=False,
                                   exist_ok=True)
            log.warning("created a local key; configure --keys-dir in production",
                        extra={"purpose": purpose, "path": str(path)})
            return _load_directory(self.directory)[purpose]
        where = self.directory or Path("<no --keys-dir configured>")
        raise KeyLoadError(
            f"no {purpose} key: expected {where}/{purpose}.<kid>.key or "
            f"{env_name(purpose)}; make one with `phimask keys generate --purpose {purpose}"
            f" --dir {where}`"
        )


def env_name(purpose: str) -> str:
    return "PHIMASK_KEY_" + purpose.upper().replace("-", "_")


def new_kid(now: datetime | None = None) -> str:
    """A sortable id from the UTC time: the newest key sorts last."""
    return (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")


def create_key_file(directory: Path, purpose: str, *, kid: str | None = None,
                    activate: bool = True, exist_ok: bool = False) -> Path:
    """Write a new random key file (mode 0600) and, with `activate`, point
    `<purpose>.active` at it. Two processes racing to make the same file: one wins,
    the other reads the winner's complete key (`exist_ok`)."""
    if purpose not in PURPOSES:
        raise KeyLoadError(f"unknown key purpose {purpose!r} (known: {', '.join(PURPOSES)})")
    if purpose == "verify-ed25519":
        raise KeyLoadError("a verify-ed25519 key is the public half of a signer's key: make a "
                           "sign key with `phimask keys generate --purpose sign` and copy the "
                           "public key it prints")
    kid = kid or new_kid()
    if not KID_PATTERN.fullmatch(kid):
        raise KeyLoadError(f"key id {kid!r} must be 1-40 of A-Z a-z 0-9 _ -")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"{purpose}.{kid}.key"
    material = _random_material(purpose)
    text = (_private_pem(material) if purpose == "sign" else material.hex() + "\n").encode()
    tmp = directory / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(text)
    try:
        os.link(tmp, path)  # fails if it exists: never overwrite a key
    except FileExistsError:
        if not exist_ok:
            raise KeyLoadError(f"{path} already exists; keys are never overwritten") from None
    finally:
        tmp.unlink()
    if activate:
        _write_atomically(directory / f"{purpose}.active", kid + "\n")
    return path


def public_key_pem(key: Key) -> str:
    return key.ed25519_public().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _random_material(purpose: str) -> bytes:
    return secrets.token_bytes(32)  # AES-256, HMAC-SHA256, an Ed25519 seed: all 32 bytes


def _private_pem(seed: bytes) -> str:
    return Ed25519PrivateKey.from_private_bytes(seed).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()


def _load_directory(directory: Path) -> dict[str, KeySet]:
    found: dict[str, dict[str, Key]] = {}
    try:
        names = sorted(p.name for p in directory.iterdir())
    except OSError as exc:
        raise KeyLoadError(f"key directory {directory}: {exc.strerror}") from None
    for name in names:
        if name.startswith(".") or not name.endswith(".key"):
            continue  # Kubernetes' ..data links, `.active` pointers, temporary files
        purpose, _, kid = name[: -len(".key")].partition(".")
        path = directory / name
        if purpose not in PURPOSES:
            raise KeyLoadError(f"{path}: unknown key purpose {purpose!r} "
                               f"(file names are <purpose>.<kid>.key; purposes: "
                               f"{', '.join(PURPOSES)})")
        if not KID_PATTERN.fullmatch(kid):
            raise KeyLoadError(f"{path}: key id {kid!r} must be 1-40 of A-Z a-z 0-9 _ -")
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise KeyLoadError(f"{purpose} key {path}: {exc.strerror}") from None
        found.setdefault(purpose, {})[kid] = Key(kid, purpose, decode_key(purpose, raw, str(path)),
                                                  str(path))
    sets: dict[str, KeySet] = {}
    for purpose, keys in found.items():
        pointer = directory / f"{purpose}.active"
        if pointer.exists():
            try:
                active_kid = pointer.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError):
                raise KeyLoadError(f"{pointer}: unreadable") from None
            if active_kid not in keys:
                raise KeyLoadError(f"{pointer} names key id {active_kid!r}, but there is no "
                                   f"{directory}/{purpose}.{active_kid}.key")
        else:
            active_kid = max(keys)
        sets[purpose] = KeySet(purpose, keys[active_kid], keys)
    return sets


def _load_env(purpose: str, value: str) -> KeySet:
    name = env_name(purpose)
    keys: dict[str, Key] = {}
    for i, item in enumerate(value.split(",")):
        kid, sep, text = item.strip().partition(":")
        if not sep or not KID_PATTERN.fullmatch(kid):
            raise KeyLoadError(f"{name}: entry {i + 1} must be kid:hex (kid of A-Z a-z 0-9 _ -)")
        if kid in keys:
            raise KeyLoadError(f"{name}: key id {kid!r} appears twice")
        keys[kid] = Key(kid, purpose, decode_key(purpose, text.encode(), name), name)
    first = next(iter(keys.values()))
    return KeySet(purpose, first, keys)


def decode_key(purpose: str, raw: bytes, source: str) -> bytes:
    text = raw.strip()
    if purpose in ("sign", "verify-ed25519"):
        return _decode_ed25519(purpose, text, source)
    material = _hex(text)
    if material is None:
        raise KeyLoadError(f"{purpose} key {source}: not hex text "
                           "(`phimask keys generate` writes the right form)")
    sizes = SYMMETRIC_SIZES[purpose]
    if sizes and len(material) not in sizes:
        raise KeyLoadError(f"{purpose} key {source}: {len(material)} bytes; must be "
                           f"{' or '.join(str(s) for s in sizes)} bytes")
    if not sizes and len(material) < MIN_BYTES:
        raise KeyLoadError(f"{purpose} key {source}: {len(material)} bytes is shorter than "
                           f"{MIN_BYTES}")
    return material


def _hex(text: bytes) -> bytes | None:
    try:
        return binascii.unhexlify(text) if text else None
    except (binascii.Error, ValueError):
        return None


def _decode_ed25519(purpose: str, text: bytes, source: str) -> bytes:
    private = purpose == "sign"
    if text.startswith(b"-----BEGIN"):
        try:
            if private:
                key = serialization.load_pem_private_key(text, password=None)
                if isinstance(key, Ed25519PrivateKey):
                    return key.private_bytes_raw()
            else:
                pub = serialization.load_pem_public_key(text)
                if isinstance(pub, Ed25519PublicKey):
                    return pub.public_bytes_raw()
        except ValueError:
            pass
        raise KeyLoadError(f"{purpose} key {source}: not an Ed25519 "
                           f"{'private' if private else 'public'} key in PEM")
    material = _hex(text)
    if material is None or len(material) != 32:
        raise KeyLoadError(f"{purpose} key {source}: must be PEM or 32 bytes of hex")
    return material
