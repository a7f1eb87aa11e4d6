"""The built-in detectors, end to end through the scanner, on every engine."""

from __future__ import annotations

import pytest

from phimask.detect import BUILTIN_NAMES, Scanner, builtin_detectors
from phimask.detect.safety import UnsafePatternError
from tests.detect.conftest import found


def test_hyperscan_is_available_here() -> None:
    from phimask.detect import available_engines

    assert available_engines() == ["hyperscan", "re"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SSN 123-45-6789.", [("ssn", "123-45-6789")]),
        ("SSN 123 45 6789.", [("ssn", "123 45 6789")]),
        ("ssn=123456789;", [("ssn", "123456789")]),
        ("SSN 000-12-3456", []),
        ("SSN 666-12-3456", []),
        ("SSN 900-12-3456 and 987-65-4321", []),
        ("SSN 123-00-4567", []),
        ("SSN 123-45-0000", []),
        ("ref 1123-45-67890", []),  # inside a longer digit run
        ("ref 1234567890", []),  # 10 digits: no SSN (and no NANP phone)
        ("id 12345678901234", []),
    ],
)
def test_ssn(scanner: Scanner, text: str, expected: list[tuple[str, str]]) -> None:
    assert found(scanner, text) == expected


@pytest.mark.parametrize(
    "number",
    [
        "4111111111111111",
        "5500 0000 0000 0004",
        "378282246310005",
        "4111-1111-1111-1111",
        "3782 822463 10005",
    ],
)
def test_card_found(scanner: Scanner, number: str) -> None:
    assert found(scanner, f"paid with {number} today") == [("credit_card", number)]


@pytest.mark.parametrize("number", ["4111111111111112", "5500 0000 0000 0005", "41111111111111111"])
def test_card_rejected(scanner: Scanner, number: str) -> None:
    assert [name for name, _ in found(scanner, f"paid with {number} today")] == []


@pytest.mark.parametrize(
    "number",
    [
        "555-234-5678",
        "(555) 234-5678",
        "555.234.5678",
        "+1 555 234 5678",
        "+1-555-234-5678",
        "1-555-234-5678",
        "5552345678",
        "(555)234-5678",
        "555-234-5678 x204",
        "+44 20 7946 0958",
        "+33 1 23 45 67 89",
    ],
)
def test_phone_found(scanner: Scanner, number: str) -> None:
    assert found(scanner, f"call {number} now") == [("phone", number)]


@pytest.mark.parametrize(
    "text",
    ["call 555-123-4567", "call 155-234-5678", "call 55523456789", "id b5552345678c", "sum 1+2"],
)
def test_phone_rejected(scanner: Scanner, text: str) -> None:
    assert [n for n, _ in found(scanner, text) if n == "phone"] == []


def test_email_and_url(scanner: Scanner) -> None:
    text = (
        "mail <john.doe+x@mail.example.co.uk>, see https://portal.example.com/a?b=1. "
        "or www.foo.org)"
    )
    assert found(scanner, text) == [
        ("email", "john.doe+x@mail.example.co.uk"),
        ("url", "https://portal.example.com/a?b=1"),
        ("url", "www.foo.org"),
    ]


def test_url_wins_over_what_it_contains(scanner: Scanner) -> None:
    text = "GET http://10.0.0.1/users/jane@example.com/1961-04-12"
    assert found(scanner, text) == [("url", "http://10.0.0.1/users/jane@example.com/1961-04-12")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("from 192.168.1.20 ok", [("ipv4", "192.168.1.20")]),
        ("at 10.0.0.1.", [("ipv4", "10.0.0.1")]),
        ("version 1.2.3.4.5", []),
        ("Chrome/120.0.0.0 Safari/537.36", []),
        ("bad 256.1.1.1", []),
        ("v6 2001:db8::1 up", [("ipv6", "2001:db8::1")]),
        ("v6 fe80::1ff:fe23:4567:890a%eth0", [("ipv6", "fe80::1ff:fe23:4567:890a")]),
        (
            "v6 [2001:0db8:85a3:0000:0000:8a2e:0370:7334]:443",
            [("ipv6", "2001:0db8:85a3:0000:0000:8a2e:0370:7334")],
        ),
        ("mapped ::ffff:192.0.2.1", [("ipv6", "::ffff:192.0.2.1")]),
        ("std::vector Bad::add at 10:30:45", []),
    ],
)
def test_ip(scanner: Scanner, text: str, expected: list[tuple[str, str]]) -> None:
    assert found(scanner, text) == expected


@pytest.mark.parametrize(
    "date",
    [
        "1961-04-12",
        "1961-04-12T10:30:00Z",
        "1961-04-12 10:30",
        "1961-04-12T10:30:00.123+05:30",
        "4/12/1961",
        "04-12-1961",
        "4/12/61",
        "April 12, 1961",
        "Apr 12 1961",
        "Apr. 12, 1961",
        "12 April 1961",
        "12th of April 1961",
        "SEPT 3, 2001",
    ],
)
def test_dates_in_prose(scanner: Scanner, date: str) -> None:
    assert found(scanner, f"seen on {date} for a follow-up") == [("date", date)]


@pytest.mark.parametrize(
    "text", ["on 1961-02-30", "on 13/13/1961", "on April 31, 1961", "build 12-34-5678"]
)
def test_impossible_dates(scanner: Scanner, text: str) -> None:
    assert found(scanner, text) == []


def test_vin(scanner: Scanner) -> None:
    text = "cars 1HGCM82633A004352, 1M8GDM9AXKP042788 and 1HGCM82643A004352"
    assert found(scanner, text) == [("vin", "1HGCM82633A004352"), ("vin", "1M8GDM9AXKP042788")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("MRN: 00123456 admitted", [("mrn", "MRN: 00123456")]),
        ("mrn#1234567", [("mrn", "mrn#1234567")]),
        ("MRN 12345", []),  # too short
        ("XMRN 1234567", []),
        ("Member ID: W123456789", [("health_plan", "Member ID: W123456789")]),
        ("HPN-1234567", [("health_plan", "HPN-1234567")]),
        ("Acct #12345678901", [("account", "Acct #12345678901")]),
        ("account number 1234567", [("account", "account number 1234567")]),
    ],
)
def test_identifiers(scanner: Scanner, text: str, expected: list[tuple[str, str]]) -> None:
    assert found(scanner, text) == expected


def test_configured_patterns(engine: str) -> None:
    detectors = builtin_detectors(
        mrn_pattern=r"PAT-\d{8}", account_pattern=r"AC\d{6}", enabled=["mrn", "account", "ssn"]
    )
    assert [d.name for d in detectors] == ["ssn", "mrn", "account"]
    scanner = Scanner.build(detectors, engine)
    assert found(scanner, "pat-12345678 MRN 1234567 ac123456 123-45-6789") == [
        ("mrn", "pat-12345678"),
        ("account", "ac123456"),
        ("ssn", "123-45-6789"),
    ]


def test_configured_pattern_is_checked() -> None:
    with pytest.raises(UnsafePatternError, match=r"detector 'mrn'.*nested unbounded"):
        builtin_detectors(mrn_pattern=r"(\d+)+")


def test_unknown_enabled_name() -> None:
    with pytest.raises(ValueError, match="unknown detector 'zip'"):
        builtin_detectors(enabled=["ssn", "zip"])


def test_labels() -> None:
    labels = {d.name: d.label for d in builtin_detectors()}
    assert set(labels) == set(BUILTIN_NAMES)
    assert labels["ssn"] == "SSN" and labels["health_plan"] == "HEALTH_PLAN"
    assert labels["ipv6"] == "IP" and labels["credit_card"] == "CREDIT_CARD"


def test_no_builtin_pattern_matches_the_separator() -> None:
    from phimask.detect.patterns import parse, union_charset

    for d in builtin_detectors():
        for pattern in filter(None, (d.pattern, d.prefilter)):
            chars = union_charset(list(parse(pattern).data))
            assert chars is not None and not chars[0] & 1, d.name
