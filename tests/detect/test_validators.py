from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phimask.detect import validators as v


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("123-45-6789", True),
        ("123456789", True),
        ("000-12-3456", False),
        ("666-12-3456", False),
        ("900-12-3456", False),
        ("999-12-3456", False),
        ("123-00-4567", False),
        ("123-45-0000", False),
        ("899-99-9999", True),
    ],
)
def test_ssn_rules(text: str, ok: bool) -> None:
    assert v.ssn_valid(text) is ok


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("4111111111111111", True),
        ("5500 0000 0000 0004", True),
        ("378282246310005", True),
        ("6011111111111117", True),
        ("4111111111111112", False),  # wrong check digit
        ("1234567812345670", False),  # Luhn-valid, no issuer starts with 1
        ("4111-1111-1111", False),  # 12 digits
    ],
)
def test_card(text: str, ok: bool) -> None:
    assert v.card_valid(text) is ok


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("555-234-5678", True),
        ("(555) 234-5678", True),
        ("+1 555 234 5678", True),
        ("1-555-234-5678", True),
        ("001-555-234-5678", True),
        ("555-234-5678 x123", True),
        ("155-234-5678", False),  # area code starts with 1
        ("555-123-4567", False),  # exchange starts with 1
        ("+44 20 7946 0958", True),
        ("+1 155 234 5678", False),  # +1 is NANP: area code rule applies
        ("+49 1234", False),  # too short for E.164
    ],
)
def test_phone(text: str, ok: bool) -> None:
    assert v.phone_valid(text) is ok


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("1961-04-12", True),
        ("1961-04-12T10:30:00Z", True),
        ("1961-02-30", False),
        ("1961-13-01", False),
        ("1961-04-12T24:00", False),
        ("2000-02-29", True),
        ("1900-02-29", False),
        ("4/12/1961", True),
        ("25/12/1961", True),  # day/month order
        ("13/13/1961", False),
        ("4/12/61", True),
        ("2/29/61", True),  # two-digit years never rule out Feb 29
        ("April 12, 1961", True),
        ("Apr. 12, 1961", True),
        ("12 April 1961", True),
        ("April 31, 1961", False),
        ("Foo 12, 1961", False),
        ("4/12/0061", False),  # year out of range
    ],
)
def test_date(text: str, ok: bool) -> None:
    assert v.date_valid(text) is ok


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("1HGCM82633A004352", True),
        ("1M8GDM9AXKP042788", True),
        ("1hgcm82633a004352", True),
        ("1HGCM82633A004353", False),  # last digit changed
        ("1HGCM82643A004352", False),  # check digit changed
        ("11111111111111111", False),  # no letter
        ("1HGCM8263OA004352", False),  # O is not a VIN character
    ],
)
def test_vin(text: str, ok: bool) -> None:
    assert v.vin_valid(text) is ok


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("10.0.0.1", True),
        ("255.255.255.255", True),
        ("256.1.1.1", False),
        ("2001:db8::1", True),
        ("::1", False),  # one group
        ("ad::be", False),  # no digit
        ("1:2:3:4:5:6:7:8:9", False),
    ],
)
def test_ip(text: str, ok: bool) -> None:
    validator = v.ipv4_valid if text.count(".") == 3 else v.ipv6_valid
    assert validator(text) is ok


@given(st.text(alphabet="0123456789 -./:()+xXTZ" + "abcéAprJan", max_size=30))
def test_validators_never_raise(text: str) -> None:
    for check in (
        v.ssn_valid,
        v.card_valid,
        v.phone_valid,
        v.ipv4_valid,
        v.ipv6_valid,
        v.date_valid,
        v.vin_valid,
    ):
        assert check(text) in (True, False)
