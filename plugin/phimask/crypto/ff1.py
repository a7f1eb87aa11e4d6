"""FF1 format-preserving encryption, NIST SP 800-38G, on `cryptography`'s AES.

FF1 only: FF3/FF3-1 were broken and are dropped by the 2025 draft of Revision 1,
which also makes a domain of at least 1,000,000 (radix ** length) a requirement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
MIN_DOMAIN = 1_000_000
ROUNDS = 10


class DomainError(ValueError):
    """The message space is too small to encrypt safely (radix ** length < 10**6)."""


@dataclass(frozen=True)
class FF1:
    key: bytes = field(repr=False)  # 16, 24 or 32 bytes: AES-128/192/256
    radix: int = 10

    def __post_init__(self) -> None:
        if len(self.key) not in (16, 24, 32):
            raise ValueError("FF1 needs a 128, 192 or 256-bit AES key")
        if not 2 <= self.radix <= len(ALPHABET):
            raise ValueError(f"radix must be 2..{len(ALPHABET)}")

    def encrypt(self, numerals: str, tweak: bytes = b"") -> str:
        return self._run(numerals, tweak, decrypt=False)

    def decrypt(self, numerals: str, tweak: bytes = b"") -> str:
        return self._run(numerals, tweak, decrypt=True)

    def _run(self, numerals: str, tweak: bytes, *, decrypt: bool) -> str:
        radix, n, t = self.radix, len(numerals), len(tweak)
        if radix**n < MIN_DOMAIN:
            raise DomainError(f"{radix}**{n} is below the minimum domain of {MIN_DOMAIN:,}")
        digits = [ALPHABET.index(c) for c in numerals.lower()]
        if any(d >= radix for d in digits):
            raise ValueError(f"a numeral is outside radix {radix}")
        u = n // 2
        v = n - u
        a, b = digits[:u], digits[u:]
        bytes_b = math.ceil(math.ceil(v * math.log2(radix)) / 8)
        d = 4 * math.ceil(bytes_b / 4) + 4
        p = (bytes([1, 2, 1]) + radix.to_bytes(3, "big") + bytes([10, u % 256])
             + n.to_bytes(4, "big") + t.to_bytes(4, "big"))
        pad = bytes((-t - bytes_b - 1) % 16)
        cbc = Cipher(algorithms.AES(self.key), modes.CBC(bytes(16)))
        ecb = Cipher(algorithms.AES(self.key), modes.ECB())
        rounds = range(ROUNDS - 1, -1, -1) if decrypt else range(ROUNDS)
        for i in rounds:
            m = u if i % 2 == 0 else v
            # Decryption runs the rounds backwards: the half that fed round i is A.
            q = tweak + pad + bytes([i]) + _num(a if decrypt else b, radix).to_bytes(
                bytes_b, "big")
            encryptor = cbc.encryptor()
            r = (encryptor.update(p + q) + encryptor.finalize())[-16:]
            s = r
            block = ecb.encryptor()
            for j in range(1, math.ceil(d / 16)):
                s += block.update(bytes(x ^ y for x, y in zip(r, j.to_bytes(16, "big"),
                                                               strict=True)))
            y = int.from_bytes(s[:d], "big")
            if decrypt:
                c = (_num(b, radix) - y) % radix**m
                b = a
                a = _str(c, radix, m)
            else:
                c = (_num(a, radix) + y) % radix**m
                a, b = b, _str(c, radix, m)
        return "".join(ALPHABET[x] for x in a + b)


def _num(digits: list[int], radix: int) -> int:
    value = 0
    for digit in digits:
        value = value * radix + digit
    return value


def _str(value: int, radix: int, length: int) -> list[int]:
    out = [0] * length
    for k in range(length - 1, -1, -1):
        value, out[k] = divmod(value, radix)
    return out
