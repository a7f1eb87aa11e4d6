"""FF1 against NIST's published sample vectors (SP 800-38G examples, AES-128/192/256)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phimask.crypto.ff1 import FF1, DomainError

K128 = "2B7E151628AED2A6ABF7158809CF4F3C"
K192 = K128 + "EF4359D8D580AA4F"
K256 = K192 + "7F036D6F04FC6A94"
T10 = "39383736353433323130"
T36 = "3737373770717273373737"

VECTORS = [
    (K128, 10, "", "0123456789", "2433477484"),
    (K128, 10, T10, "0123456789", "6124200773"),
    (K128, 36, T36, "0123456789abcdefghi", "a9tv40mll9kdu509eum"),
    (K192, 10, "", "0123456789", "2830668132"),
    (K192, 10, T10, "0123456789", "2496655549"),
    (K192, 36, T36, "0123456789abcdefghi", "xbj3kv35jrawxv32ysr"),
    (K256, 10, "", "0123456789", "6657667009"),
    (K256, 10, T10, "0123456789", "1001623463"),
    (K256, 36, T36, "0123456789abcdefghi", "xs8a0azh2avyalyzuwd"),
]


@pytest.mark.parametrize(("key", "radix", "tweak", "plain", "cipher"), VECTORS)
def test_nist_sample(key: str, radix: int, tweak: str, plain: str, cipher: str) -> None:
    ff1 = FF1(bytes.fromhex(key), radix)
    assert ff1.encrypt(plain, bytes.fromhex(tweak)) == cipher
    assert ff1.decrypt(cipher, bytes.fromhex(tweak)) == plain


@settings(max_examples=100, deadline=None)
@given(digits=st.text("0123456789", min_size=6, max_size=30), tweak=st.binary(max_size=20))
def test_round_trip_and_format(digits: str, tweak: bytes) -> None:
    ff1 = FF1(bytes(range(32)))
    cipher = ff1.encrypt(digits, tweak)
    assert len(cipher) == len(digits) and cipher.isdigit()
    assert ff1.decrypt(cipher, tweak) == digits


def test_small_domains_and_bad_input_are_refused() -> None:
    ff1 = FF1(bytes(16))
    with pytest.raises(DomainError):
        ff1.encrypt("12345")  # 10**5 < 10**6
    with pytest.raises(ValueError, match="radix"):
        ff1.encrypt("12345a")
    with pytest.raises(ValueError, match="AES key"):
        FF1(bytes(10))
    assert FF1(bytes(16)).encrypt("123456") != FF1(bytes(16)).encrypt("123456", b"other")
