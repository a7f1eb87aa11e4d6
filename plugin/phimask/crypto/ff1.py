"""FF1 format-preserving encryption, NIST SP 800-38G, on `cryptography`'s AES.

FF1 only: FF3/FF3-1 were broken and are dropped by the 2025 draft of Revision 1,
which also makes a domain of at least 1,000,000 (radix ** length) a requirement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
MIN_DOMAIN = 1_000_000
ROUNDS = 10


class DomainError(ValueError):
    """The message space is too small to encrypt safely (radix ** length < 10**6)."""


@dataclass(frozen=True)
class FF1:
    """One key and radix. Not thread-safe (it keeps one AES context): one per thread."""

    key: bytes = field(repr=False)  # 16, 24 or 32 bytes: AES-128/192/256
    radix: int = 10
    _aes: CipherContext = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.key) not in (16, 24, 32):
            raise ValueError("FF1 needs a 128, 192 or 256-bit AES key")
        if not 2 <= self.radix <= len(ALPHABET):
            raise ValueError(f"radix must be 2..{len(ALPHABET)}")
        # ECB on single blocks is the raw AES permutation; FF1's PRF (CBC-MAC with a zero
        # IV) is built on it by hand so one context serves every round: 5x faster than a
        # new CBC context per round.
        object.__setattr__(self, "_aes", Cipher(algorithms.AES(self.key), modes.ECB()).encryptor())

    def encrypt(self, numerals: str, tweak: bytes = b"") -> str:
        return self._run(numerals, tweak, decrypt=False)

    def decrypt(self, numerals: str, tweak: bytes = b"") -> str:
        return self._run(numerals, tweak, decrypt=True)

    def _cbc_mac(self, data: bytes, y: bytes = bytes(16)) -> bytes:
        aes = self._aes
        for k in range(0, len(data), 16):
            block = int.from_bytes(y, "big") ^ int.from_bytes(data[k:k + 16], "big")
            y = aes.update(block.to_bytes(16, "big"))
        return y

    def _run(self, numerals: str, tweak: bytes, *, decrypt: bool) -> str:
        radix, n, t = self.radix, len(numerals), len(tweak)
        if radix**n < MIN_DOMAIN:
            raise DomainError(f"{radix}**{n} is below the minimum domain of {MIN_DOMAIN:,}")
        digits = [ALPHABET.index(c) for c in numerals.lower()]
        if any(d >= radix for d in digits):
            raise ValueError(f"a numeral is outside radix {radix}")
        u = n // 2
        v = n - u
        # The halves are kept as the integers NUM(A), NUM(B): STR and NUM only at the ends.
        a, b = _num(digits[:u], radix), _num(digits[u:], radix)
        mod_u, mod_v = radix**u, radix**v
        bytes_b = math.ceil(math.ceil(v * math.log2(radix)) / 8)
        d = 4 * math.ceil(bytes_b / 4) + 4
        p = (bytes([1, 2, 1]) + radix.to_bytes(3, "big") + bytes([10, u % 256])
             + n.to_bytes(4, "big") + t.to_bytes(4, "big"))
        prefix = p + tweak + bytes((-t - bytes_b - 1) % 16)
        # The whole blocks of P || T || pad are the same in every round: MAC them once.
        whole = len(prefix) // 16 * 16
        state = self._cbc_mac(prefix[:whole])
        tail = prefix[whole:]
        extra_blocks = range(1, math.ceil(d / 16))
        rounds = range(ROUNDS - 1, -1, -1) if decrypt else range(ROUNDS)
        for i in rounds:
            mod = mod_u if i % 2 == 0 else mod_v
            # Decryption runs the rounds backwards: the half that fed round i is A.
            q = bytes([i]) + (a if decrypt else b).to_bytes(bytes_b, "big")
            r = self._cbc_mac(tail + q, state)
            s = r
            r_int = int.from_bytes(r, "big")
            for j in extra_blocks:
                s += self._aes.update((r_int ^ j).to_bytes(16, "big"))
            y = int.from_bytes(s[:d], "big")
            if decrypt:
                a, b = (b - y) % mod, a
            else:
                a, b = b, (a + y) % mod
        return "".join(ALPHABET[x] for x in _str(a, radix, u) + _str(b, radix, v))


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
