"""Integrity before anything else: verify what a shipper signed, sign what we emit.

What is signed (the canonical bytes):

* native record: the exact `Record.payload` bytes; signature in `Record.signature`,
  key id in `Record.key_id`.
* OTLP log record / Vector log event: phimask's JSON form of the record with the
  signature and key-id attributes (`phimask.sig`, `phimask.kid` by default) removed:
  keys sorted, no whitespace, UTF-8, bytes values as base64 text. OTLP:
  `{"attributes": {...}, "body": ...}` (no "body" when the record has none); Vector:
  the event's fields. The attributes carry the signature as base64 text (or OTLP
  bytes) and the key id as text. A record signature covers that record only; its
  resource and scope are covered by a batch signature.
* a batch: the exact serialized request message (after gRPC decompression); the
  signature travels in the call's metadata, `x-phimask-batch-signature` (base64) and
  `x-phimask-key-id`. A valid batch signature covers every record in it.

The key id picks the algorithm: a `verify-hmac` key -> HMAC-SHA256 (32 bytes), a
`verify-ed25519` key -> Ed25519 (64 bytes), the reserved id `sha256` -> a SHA-256
checksum (integrity without authentication; only where the policy accepts it).
A failure is the rejection `bad_signature` with a detail in its rule field
(`integrity:mismatch`, `integrity:missing`, `integrity:unknown_key`, ...).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .keyring import KeyLoadError, Keyring
from .pipeline import Rejection
from .policy import IntegritySpec

CHECKSUM_KID = "sha256"
BATCH_SIGNATURE_HEADER = "x-phimask-batch-signature"
BATCH_KEY_ID_HEADER = "x-phimask-key-id"
REASON = "bad_signature"


def _failure(detail: str) -> Rejection:
    return Rejection(REASON, f"integrity:{detail}")


MISSING = _failure("missing")


class BatchVerdict:
    """What a batch signature says about every record of the batch."""

    VERIFIED = "verified"  # valid: no record needs checking
    ABSENT = "absent"  # none given: each record is checked by itself


def canonical_json(fields: Any) -> bytes:
    return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
                        default=_bytes_as_base64)


def _bytes_as_base64(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    raise TypeError


def decode_signature(text: Any) -> bytes | None:
    """A signature attribute as bytes: OTLP bytes as they are, text as base64."""
    if isinstance(text, bytes):
        return text
    if not isinstance(text, str):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


class Signer:
    """Makes the signatures a Verifier checks: the reference for shippers (`phimask
    sign`) and phimask's own output signing."""

    def __init__(self, algorithm: str, kid: str, material: bytes = b"") -> None:
        if algorithm not in ("hmac-sha256", "ed25519", "sha256"):
            raise ValueError(f"unknown algorithm {algorithm!r}")
        self.algorithm = algorithm
        self.kid = CHECKSUM_KID if algorithm == "sha256" else kid
        self._material = material
        self._ed25519 = (Ed25519PrivateKey.from_private_bytes(material)
                         if algorithm == "ed25519" else None)

    def sign(self, data: bytes) -> bytes:
        if self._ed25519 is not None:
            return self._ed25519.sign(data)
        if self.algorithm == "sha256":
            return hashlib.sha256(data).digest()
        return hmac.digest(self._material, data, "sha256")

    def signature_fields(self, record: Any, spec: IntegritySpec) -> dict[str, str]:
        """The two attributes that sign `record` (an OTLP record's JSON form, or a Vector
        event's fields, without signature attributes): add them to its attributes, or
        to the event's fields."""
        signature = base64.b64encode(self.sign(canonical_json(record))).decode()
        return {spec.signature_attribute: signature, spec.key_id_attribute: self.kid}


class Verifier:
    """Checks signatures against the keyring's verify keys. Pure: no I/O."""

    def __init__(self, spec: IntegritySpec, keys: Keyring) -> None:
        self.spec = spec
        self._hmac = {k: key.material for k, key in _keys(keys, "verify-hmac").items()}
        self._ed25519 = {k: key.ed25519_public() for k, key in
                         _keys(keys, "verify-ed25519").items()}
        sign_key = keys.active("sign") if spec.sign_output else None
        self._signer = (Signer("ed25519", sign_key.kid, sign_key.material)
                        if sign_key is not None else None)

    @property
    def required(self) -> bool:
        return self.spec.mode == "require"

    @property
    def checks(self) -> bool:
        """Incoming signatures are checked (the verifier may exist only to sign)."""
        return self.spec.mode != "off"

    @property
    def signs(self) -> bool:
        return self._signer is not None

    def verify(self, data: bytes, signature: bytes, kid: str) -> Rejection | None:
        """None when `signature` made by key `kid` matches `data`."""
        if not signature:
            return MISSING if self.required or kid else None
        if kid in self._hmac:
            if "hmac-sha256" not in self.spec.accept:
                return _failure("algorithm_not_accepted")
            expected = hmac.digest(self._hmac[kid], data, "sha256")
            return None if hmac.compare_digest(expected, signature) else _failure("mismatch")
        if kid in self._ed25519:
            if "ed25519" not in self.spec.accept:
                return _failure("algorithm_not_accepted")
            try:
                self._ed25519[kid].verify(signature, data)
            except InvalidSignature:
                return _failure("mismatch")
            return None
        if kid == CHECKSUM_KID:
            if "sha256" not in self.spec.accept:
                return _failure("algorithm_not_accepted")
            ok = hmac.compare_digest(hashlib.sha256(data).digest(), signature)
            return None if ok else _failure("mismatch")
        return _failure("unknown_key" if kid else "no_key_id")

    def check_batch(self, data: bytes, batch: tuple[str, str] | None
                    ) -> str | Rejection:
        """A batch signature from call metadata ((base64 signature, key id) or None):
        VERIFIED, ABSENT, or the Rejection every record of the batch gets."""
        if batch is None or not batch[0]:
            return BatchVerdict.ABSENT
        signature = decode_signature(batch[0])
        if signature is None:
            return _failure("malformed")
        failure = self.verify(data, signature, batch[1])
        return BatchVerdict.VERIFIED if failure is None else failure

    def check_fields(self, fields: dict[str, Any], canonical: Callable[[], bytes],
                     verified: bool) -> Rejection | None:
        """Take the signature attributes out of a record's `fields` (the OTLP attributes
        or the Vector event's fields), then check the record's canonical bytes.
        `verified`: a batch signature already covers it."""
        raw_sig = fields.pop(self.spec.signature_attribute, None)
        raw_kid = fields.pop(self.spec.key_id_attribute, None)
        if verified:
            return None
        if raw_sig is None:
            return MISSING if self.required else None
        signature = decode_signature(raw_sig)
        if signature is None or not signature or not isinstance(raw_kid, str):
            return _failure("malformed")
        return self.verify(canonical(), signature, raw_kid)

    def signature_fields(self, record: Any) -> dict[str, str] | None:
        """The attributes that sign a masked OTLP record or Vector event for the next
        hop (same canonical form as incoming ones), when output signing is on."""
        if self._signer is None:
            return None
        return self._signer.signature_fields(record, self.spec)

    def sign(self, data: bytes) -> tuple[bytes, str] | None:
        """(signature, key id) over `data` with the active sign key, when output signing
        is on."""
        if self._signer is None:
            return None
        return self._signer.sign(data), self._signer.kid


def _keys(keys: Keyring, purpose: str) -> Mapping[str, Any]:
    return keys.keyset(purpose).keys if keys.has(purpose) else {}


def build_verifier(spec: IntegritySpec, keys: Keyring) -> Verifier | None:
    """None when integrity is off and nothing is signed. Raises KeyLoadError when a mode
    that verifies has no key to verify with."""
    if spec.mode == "off" and not spec.sign_output:
        return None
    verifier = Verifier(spec, keys)
    if spec.mode != "off" and not (verifier._hmac or verifier._ed25519) and (
            "sha256" not in spec.accept):
        where = keys.directory or "<no --keys-dir configured>"
        raise KeyLoadError(
            f"integrity.mode {spec.mode} needs a verify-hmac or verify-ed25519 key in "
            f"{where} (verify-hmac.<kid>.key, verify-ed25519.<kid>.key)")
    return verifier
