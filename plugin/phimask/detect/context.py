"""Checks of the words around a detector match: `check(text, start, end) -> bool`.

Some shapes are identifiers only in the right company: a bare 9-digit run after
"order #" is no SSN, a 10-digit run before "bytes" no phone number, `10.2.3.4` after
"version" no address, and a national phone number without its country code (or an
HL7-style `yyyymmdd`) is taken only after a cue such as "tel" or "DOB". Each check
looks at a short window on either side of the match; all are pure and cheap (a slice
and one small regex), and see only the text they are given.
"""

from __future__ import annotations

import re

from phimask.detect import validators as v

WINDOW = 32  # characters looked at before a match for a cue
_AFTER = 16  # and after it

_FLAGS = re.ASCII | re.IGNORECASE

# A word right before a bare number that makes it a reference, not PHI.
_REFERENCE_BEFORE = re.compile(
    r"(?:\b(?:order|invoice|inv|ticket|tkt|ref|reference|po|tracking|confirmation|conf"
    r"|receipt|transaction|txn|batch|job|build|request|req|item|sku|part|case|incident"
    r"|shipment|size|count|total|offset)\b[^A-Za-z0-9]{0,4}|#\s?)$",
    _FLAGS,
)
# A unit right after a bare number.
_UNIT_AFTER = re.compile(
    r"\s?(?:bytes?|[kmgt]i?b|b|ms|us|ns|sec|secs|seconds?|mins?|minutes?|rows|records"
    r"|items|pages|requests|times|tokens)\b",
    _FLAGS,
)
_SSN_CUE = re.compile(r"\b(?:ssn|ss#|ss ?no|social security|soc\.? ?sec|ssa|taxpayer)", _FLAGS)
_PHONE_CUE = re.compile(
    r"\b(?:tel|telephone|phone|ph|fax|mobile|mob|cell|call|callback|sms|contact"
    r"|reach|reached|dial|dialed|whatsapp|landline|hotline)",
    _FLAGS,
)
_VERSION_BEFORE = re.compile(
    r"\b(?:version|ver|v|release|rel|build|firmware|fw|rev|revision)"
    r"\b[^A-Za-z0-9]{0,3}$",
    _FLAGS,
)
_DATE_CUE = re.compile(
    r"(?:(?:\b(?:dob|d\.o\.b|birth|born|birthdate|date|dt|admit|admitted|admission"
    r"|discharged?|seen|visit|performed|scheduled|rescheduled|appointment|appt|deceased"
    r"|death|died|expires?|expiry|on|since|until|effective)\b[^A-Za-z0-9]{0,4})|[|^])$",
    _FLAGS,
)


def _before(text: str, start: int) -> str:
    return text[max(0, start - WINDOW) : start]


def _is_bare(text: str, start: int, end: int) -> bool:
    return text[start:end].isdigit()


def _reference(text: str, start: int, end: int) -> bool:
    """A bare number named as a reference or a quantity by the words around it."""
    return (
        _REFERENCE_BEFORE.search(_before(text, start)) is not None
        or _UNIT_AFTER.match(text, end, min(len(text), end + _AFTER)) is not None
    )


def ssn_context(text: str, start: int, end: int) -> bool:
    """An undashed 9-digit SSN is not taken when a reference word or "#" comes right
    before it (or a unit after it), unless an SSN cue is nearby."""
    if not _is_bare(text, start, end) or not _reference(text, start, end):
        return True
    return _SSN_CUE.search(_before(text, start)) is not None


def phone_context(text: str, start: int, end: int) -> bool:
    """NANP and +country numbers unless bare digits named as a reference or quantity;
    a national number (no country code, not NANP) only after a phone cue."""
    matched = text[start:end]
    before = _before(text, start)
    if v.phone_valid(matched):
        if not _is_bare(text, start, end) or not _reference(text, start, end):
            return True
        return _PHONE_CUE.search(before) is not None
    return v.national_phone_valid(matched) and _PHONE_CUE.search(before) is not None


def ipv4_context(text: str, start: int, end: int) -> bool:
    """Not a version number named as one ("version 10.2.3.4", "build 1.0.0.12")."""
    return _VERSION_BEFORE.search(_before(text, start)) is None


def date_context(text: str, start: int, end: int) -> bool:
    """A bare `yyyymmdd` only after a date cue (DOB, date, admitted, ...) or an HL7 field
    separator; every other date shape stands on its own."""
    if not _is_bare(text, start, end):
        return True
    return _DATE_CUE.search(_before(text, start)) is not None
