"""Random tokens, in the shapes a policy asks for. Never derived from the value:
the value only lends a format-preserving token its length and separators."""

from __future__ import annotations

import secrets
import string
from enum import StrEnum

from .errors import TokenShapeError

RANDOM_BYTES = 16  # 128 bits in every `tok` token


class TokenShape(StrEnum):
    TOK = "tok"  # tok_<vault kid>_<22 URL-safe chars>
    # Format-preserving: same length, non-alphanumerics kept in place.
    DIGITS = "digits"  # every letter and digit becomes a random digit
    ALNUM = "alnum"  # digits become random digits, letters random ASCII letters of the same case

    @classmethod
    def parse(cls, shape: str) -> TokenShape:
        try:
            return cls(shape)
        except ValueError:
            raise TokenShapeError(f"vault: unknown token shape {shape!r} (known: "
                                  f"{', '.join(s.value for s in cls)})") from None


# A format-preserving token equal to its value would read as unmasked; one in 10**n
# draws is, so a few redraws always find another.
_MAX_DRAWS = 64


def new_token(shape: TokenShape, value: str, kid: str, field: str) -> str:
    if shape is TokenShape.TOK:
        return f"tok_{kid}_{secrets.token_urlsafe(RANDOM_BYTES)}"
    if not any(c.isalnum() for c in value):
        raise TokenShapeError(f"vault: a {shape} token for field {field!r} needs a letter or "
                              "digit in the value to replace; the value has none")
    for _ in range(_MAX_DRAWS):
        token = "".join(_replace(c, shape) for c in value)
        if token != value:
            return token
    raise TokenShapeError(f"vault: no {shape} token for field {field!r} differs from its value",
                          "RESOURCE_EXHAUSTED")


def _replace(c: str, shape: TokenShape) -> str:
    if not c.isalnum():
        return c
    if shape is TokenShape.DIGITS or not c.isalpha():
        return secrets.choice(string.digits)
    return secrets.choice(string.ascii_uppercase if c.isupper() else string.ascii_lowercase)
