"""`fpe`: FF1 format-preserving encryption (NIST SP 800-38G) of a value's digits or
letters and digits; separators stay where they are.

`617-555-0142` -> `209-817-3365`: same length, same shape, so schemas and validators
downstream keep working. Reversible, but only through re-identification (the
Reidentify service): nothing else in phimask decrypts. The tweak is the field's path
unless the policy names one, so the same number in two fields encrypts differently.

FF1 needs a domain of at least 1,000,000 (radix ** numerals): `min_length` must reach
it (6 digits; 4 letters-or-digits), and a shorter value at run time is rejected, never
passed through. With `alphabet: alnum` letters come out in one case: upper when the
value had no lower-case letter, else lower (mixed case is not kept).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from ..crypto.ff1 import FF1, MIN_DOMAIN
from .base import (
    CompileContext,
    OperatorError,
    OptionError,
    Scalar,
    as_text,
    choice_option,
    keyring_of,
    reject_unknown,
    str_option,
)

ALPHABETS = {"digits": (10, frozenset(string.digits)),
             "alnum": (36, frozenset(string.digits + string.ascii_letters))}


def _min_numerals(radix: int) -> int:
    length = 1
    while radix**length < MIN_DOMAIN:
        length += 1
    return length


class FormatPreservingEncryption:
    name: ClassVar[str] = "fpe"
    __slots__ = ("_ciphers", "_keys", "alphabet", "kid", "min_length", "tweak")

    def __init__(self, keys: Mapping[str, bytes], kid: str, alphabet: str, tweak: bytes,
                 min_length: int) -> None:
        self._keys = dict(keys)
        self._ciphers: dict[str, FF1] = {}
        self.kid = kid
        self.alphabet = alphabet
        self.tweak = tweak
        self.min_length = min_length

    @classmethod
    def from_options(cls, options: Mapping[str, Any], ctx: CompileContext) -> Self:
        reject_unknown(options, {"alphabet", "tweak", "min_length"})
        alphabet = choice_option(options, "alphabet", "digits", tuple(ALPHABETS))
        radix = ALPHABETS[alphabet][0]
        least = _min_numerals(radix)
        min_length = options.get("min_length", least)
        if isinstance(min_length, bool) or not isinstance(min_length, int):
            raise OptionError("min_length", "must be an integer")
        if min_length < least:
            raise OptionError(
                "min_length", f"field {ctx.path}: {radix}**{min_length} values is below FF1's "
                f"minimum domain of {MIN_DOMAIN:,}; {alphabet} needs at least {least} "
                "characters (use hmac or tokenize for shorter values)")
        tweak = str_option(options, "tweak", ctx.path).encode()
        keyset = keyring_of(ctx).keyset("fpe")
        return cls({kid: key.material for kid, key in keyset.keys.items()}, keyset.active.kid,
                   alphabet, tweak, min_length)

    def apply(self, value: Scalar) -> Scalar:
        if value is None:
            return None
        return self._transform(as_text(value), self.kid, decrypt=False)

    def reveal(self, value: str, kid: str | None = None) -> str:
        """Decrypt a value this operator made (re-identification only). `kid` selects an
        older fpe key after a rotation; the active one by default."""
        return self._transform(value, kid or self.kid, decrypt=True)

    def _cipher(self, kid: str) -> FF1:
        cipher = self._ciphers.get(kid)
        if cipher is None:
            if kid not in self._keys:
                raise OperatorError("unknown_key")
            cipher = self._ciphers[kid] = FF1(self._keys[kid], ALPHABETS[self.alphabet][0])
        return cipher

    def _transform(self, text: str, kid: str, *, decrypt: bool) -> str:
        members = ALPHABETS[self.alphabet][1]
        positions = [i for i, ch in enumerate(text) if ch in members]
        if len(positions) < self.min_length:
            raise OperatorError("fpe_too_short")
        numerals = "".join(text[i] for i in positions)
        cipher = self._cipher(kid)
        out = cipher.decrypt(numerals, self.tweak) if decrypt else cipher.encrypt(
            numerals, self.tweak)
        if self.alphabet == "alnum" and not any(ch.islower() for ch in numerals):
            out = out.upper()
        chars = list(text)
        for i, ch in zip(positions, out, strict=True):
            chars[i] = ch
        return "".join(chars)
