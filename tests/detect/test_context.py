"""New formats and the context cues around matches, on every engine."""

from __future__ import annotations

import pytest

from phimask.detect import Scanner
from tests.detect.conftest import found


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # phone: "(0)" trunk prefix after the country code
        ("call +44(0)207 9460958 now", [("phone", "+44(0)207 9460958")]),
        ("call +49(0) 301234567 now", [("phone", "+49(0) 301234567")]),
        ("call +33 (0)6 12 34 56 78 now", [("phone", "+33 (0)6 12 34 56 78")]),
        # national numbers: only after a phone cue
        ("tel: (0201) 2345678", [("phone", "(0201) 2345678")]),
        ("fax sent to 06 12 34 56 78, 3 pages", [("phone", "06 12 34 56 78")]),
        ("mobile 03-1234-5678", [("phone", "03-1234-5678")]),
        ("ref 06 12 34 56 78", []),
        ("value 03-1234-5678 seen", []),
        # phone negatives: bare digit runs named as references or quantities
        ("order #5552345678 shipped", []),
        ("invoice 5552345678 paid", []),
        ("uploaded 5552345678 bytes", []),
        ("phone 5552345678", [("phone", "5552345678")]),
        ("order 555-234-5678", [("phone", "555-234-5678")]),
        # SSN negatives: undashed 9-digit order numbers
        ("order #123456789 shipped", []),
        ("order 123456789 shipped", []),
        ("ticket 123456789", []),
        ("ssn=123456789", [("ssn", "123456789")]),
        ("SSN ref #123456789", [("ssn", "123456789")]),
        ("order 123-45-6789", [("ssn", "123-45-6789")]),
        # IPv4 negatives: 4-part versions
        ("upgraded agent to version 10.2.3.4", []),
        ("build 1.0.0.12 deployed", []),
        ("login from 10.2.3.4 ok", [("ipv4", "10.2.3.4")]),
    ],
)
def test_phone_ssn_ip_context(scanner: Scanner, text: str, expected: list[tuple[str, str]]) -> None:
    assert found(scanner, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mrn=12345678 ok", [("mrn", "mrn=12345678")]),
        ("MRN=1234567 ok", [("mrn", "MRN=1234567")]),
        ("see MR #123456", [("mrn", "MR #123456")]),
        ("see Med Rec # 1234567", [("mrn", "Med Rec # 1234567")]),
        ("see Med. Rec. No. 12345678", [("mrn", "Med. Rec. No. 12345678")]),
        ('{"mrn": "12345678"}', [("mrn", 'mrn": "12345678')]),
        ("MRN: A1234567", [("mrn", "MRN: A1234567")]),
        ("deployed MR #12345 to staging", []),  # a merge request, too short for an MRN
        ("MRN lookup returned 3 results", []),
    ],
)
def test_mrn_formats(scanner: Scanner, text: str, expected: list[tuple[str, str]]) -> None:
    assert found(scanner, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("DOB: 12-Apr-1961", [("date", "12-Apr-1961")]),
        ("DOB: 12-APR-61", [("date", "12-APR-61")]),
        ("DOB: 12.04.1961", [("date", "12.04.1961")]),
        ("DOB: 1961/04/12", [("date", "1961/04/12")]),
        ("DOB: 19610412", [("date", "19610412")]),
        ("dob=19610412", [("date", "19610412")]),
        ("PID|1||19610412|", [("date", "19610412")]),
        ("seen in April 1961", [("date", "April 1961")]),
        ("seen on March 3rd for follow-up", [("date", "March 3rd")]),
        ("the 3rd of March", [("date", "3rd of March")]),
        ("April 12, 1961", [("date", "April 12, 1961")]),
        ("12 April 1961", [("date", "12 April 1961")]),
        # negatives
        ("id 19610412 closed", []),  # a bare yyyymmdd needs a cue
        ("DOB: 19611342", []),  # no 13th month
        ("DOB: 31-Feb-1961", []),
        ("DOB: 45.04.1961", []),
        ("March 12 checkout", []),  # no year and no ordinal
        ("12 April checkout", []),
        ("Foo 1961", []),
    ],
)
def test_date_formats(scanner: Scanner, text: str, expected: list[tuple[str, str]]) -> None:
    assert found(scanner, text) == expected
