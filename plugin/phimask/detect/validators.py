"""Pure checks run on the text a detector pattern matched.

Each takes the matched text and returns whether it is a plausible identifier; none of
them raises on malformed input, logs, or keeps the text.
"""

from __future__ import annotations

import calendar
import ipaddress
import re

_NON_DIGIT = re.compile(r"[^0-9]")


def digits_of(text: str) -> str:
    return _NON_DIGIT.sub("", text)


def ssn_valid(text: str) -> bool:
    """SSA rules: area not 000, 666 or 9xx; group not 00; serial not 0000."""
    d = digits_of(text)
    if len(d) != 9:
        return False
    area, group, serial = d[:3], d[3:5], d[5:]
    return area not in ("000", "666") and d[0] != "9" and group != "00" and serial != "0000"


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = ord(ch) - 48
        if i % 2:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def _card_brand_ok(d: str) -> bool:
    n = len(d)
    p2, p4, p6 = int(d[:2]), int(d[:4]), int(d[:6])
    if d[0] == "4":  # Visa
        return n in (13, 16, 19)
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:  # Mastercard
        return n == 16
    if p2 in (34, 37):  # American Express
        return n == 15
    if p4 == 6011 or p2 == 65 or 644 <= p4 // 10 <= 649 or 622126 <= p6 <= 622925:  # Discover
        return 16 <= n <= 19
    if p2 == 62:  # UnionPay
        return 16 <= n <= 19
    if 3528 <= p4 <= 3589:  # JCB
        return 16 <= n <= 19
    if 300 <= p4 // 10 <= 305 or p2 in (36, 38, 39):  # Diners Club
        return 14 <= n <= 19
    if p4 in (5018, 5020, 5038, 5893, 6304, 6759, 6761, 6762, 6763):  # Maestro
        return 13 <= n <= 19
    return False


def card_valid(text: str) -> bool:
    """13-19 digits, a known issuer prefix for that length, and a Luhn check digit."""
    d = digits_of(text)
    return 13 <= len(d) <= 19 and _card_brand_ok(d) and luhn_valid(d)


def _nanp_ok(ten: str) -> bool:
    return len(ten) == 10 and ten[0] >= "2" and ten[3] >= "2"


_EXTENSION = re.compile(r" ?(?:x|ext\.?) ?\d+$", re.ASCII | re.IGNORECASE)


def phone_valid(text: str) -> bool:
    """NANP (area code and exchange start with 2-9, optionally after 1, +1 or 001), or,
    after a `+` and a country code other than 1, 8 to 15 digits (E.164; a "(0)" trunk
    prefix written after the country code, as in +44 (0)20 ..., is not counted)."""
    d = digits_of(_EXTENSION.sub("", text).replace("(0)", ""))
    if text.startswith("00"):
        d = d[2:]
    elif text.startswith("+") and d[:1] != "1":
        return 8 <= len(d) <= 15
    if len(d) == 11 and d[0] == "1":
        d = d[1:]
    return _nanp_ok(d)


def national_phone_valid(text: str) -> bool:
    """A number without a country code as other countries write it: a leading trunk 0,
    9 to 12 digits, and not four dotted groups of at most three digits (an address)."""
    body = _EXTENSION.sub("", text)
    d = digits_of(body)
    if not 9 <= len(d) <= 12 or d[0] != "0":
        return False
    parts = body.split(".")
    return not (len(parts) == 4 and all(len(p) <= 3 for p in parts))


def ipv4_valid(text: str) -> bool:
    parts = text.split(".")
    return len(parts) == 4 and all(p.isdigit() and int(p) <= 255 for p in parts)


def ipv6_valid(text: str) -> bool:
    """A parseable IPv6 address with at least two groups and a digit.

    The digit and group rules keep C++-style `Foo::bar` and a bare `::` out.
    """
    groups = [g for g in text.split(":") if g]
    if len(groups) < 2 or not any(c.isdigit() for c in text):
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


_MONTHS = {
    name: i
    for i, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}

_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,]\d{1,9})?)?(?:[Zz]|[+-]\d{2}:?\d{2})?)?",
    re.ASCII,
)
_NUMERIC = re.compile(r"(\d{1,2})([/.-])(\d{1,2})\2(\d{2}|\d{4})", re.ASCII)
_YMD = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})|(\d{4})(\d{2})(\d{2})", re.ASCII)
_DAY_MON_YEAR = re.compile(r"(\d{1,2})-([A-Za-z]{3,9})\.?-(\d{2}|\d{4})", re.ASCII)
_MONTH_YEAR = re.compile(r"([A-Za-z]+)\.? +(\d{4})", re.ASCII)
_NAME_DAY = re.compile(r"([A-Za-z]+)\.? +(\d{1,2})(?:st|nd|rd|th)", re.ASCII | re.I)
_DAY_NAME = re.compile(r"(\d{1,2})(?:st|nd|rd|th) +(?:of +)?([A-Za-z]+)\.?", re.ASCII | re.I)
_NAME_FIRST = re.compile(r"([A-Za-z]+)\.? +(\d{1,2})", re.ASCII)
_DAY_FIRST = re.compile(r"(\d{1,2})(?:st|nd|rd|th)? +(?:of +)?([A-Za-z]+)", re.ASCII | re.I)
_YEAR = re.compile(r"(\d{4})$", re.ASCII)

MIN_YEAR, MAX_YEAR = 1800, 2199
# calendar.monthrange's day counts, without the weekday it also works out
_MONTH_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _ymd_ok(year: int, month: int, day: int) -> bool:
    if not 1 <= month <= 12 or day < 1:
        return False
    # A two-digit year is checked against a leap year so 2/29/xx is never rejected.
    leap_year = year if year >= 100 else 2000
    return day <= _MONTH_DAYS[month] + (month == 2 and calendar.isleap(leap_year))


def _year_ok(year_text: str) -> bool:
    return len(year_text) == 2 or MIN_YEAR <= int(year_text) <= MAX_YEAR


def date_valid(text: str) -> bool:
    """Month and day in range (both M/D and D/M orders count for numeric dates)."""
    if m := _ISO.fullmatch(text):
        y, mo, d = int(m[1]), int(m[2]), int(m[3])
        if not (_year_ok(m[1]) and _ymd_ok(y, mo, d)):
            return False
        if m[4] is None:
            return True
        return int(m[4]) <= 23 and int(m[5]) <= 59 and (m[6] is None or int(m[6]) <= 60)
    if m := _NUMERIC.fullmatch(text):
        a, b, y = int(m[1]), int(m[3]), int(m[4])
        return _year_ok(m[4]) and (_ymd_ok(y, a, b) or _ymd_ok(y, b, a))
    if m := _YMD.fullmatch(text):
        y_text, mo_text, d_text = (m[1], m[2], m[3]) if m[1] else (m[4], m[5], m[6])
        return _year_ok(y_text) and _ymd_ok(int(y_text), int(mo_text), int(d_text))
    if m := _DAY_MON_YEAR.fullmatch(text):
        month = _MONTHS.get(m[2].lower())
        return month is not None and _year_ok(m[3]) and _ymd_ok(int(m[3]), month, int(m[1]))
    if m := _MONTH_YEAR.fullmatch(text):
        return m[1].lower() in _MONTHS and _year_ok(m[2])
    if m := _NAME_DAY.fullmatch(text):  # no year: any day the month can have
        month = _MONTHS.get(m[1].lower())
        return month is not None and _ymd_ok(2000, month, int(m[2]))
    if m := _DAY_NAME.fullmatch(text):
        month = _MONTHS.get(m[2].lower())
        return month is not None and _ymd_ok(2000, month, int(m[1]))
    year = _YEAR.search(text)
    if year is None or not _year_ok(year[1]):
        return False
    if m := _NAME_FIRST.match(text):
        month, day = _MONTHS.get(m[1].lower()), int(m[2])
    elif m := _DAY_FIRST.match(text):
        month, day = _MONTHS.get(m[2].lower()), int(m[1])
    else:
        return False
    return month is not None and _ymd_ok(int(year[1]), month, day)


_VIN_VALUES = {
    **{str(i): i for i in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def vin_valid(text: str) -> bool:
    """ISO 3779 VIN with the North American check digit (position 9).

    Also: model year (position 10) is not 0, U or Z, and the last three characters (the
    serial part every manufacturer keeps numeric) are digits and there is a letter,
    which keeps random 17-character tokens and long numbers out.
    """
    vin = text.upper()
    if len(vin) != 17 or vin[9] in "0UZ" or not vin[14:].isdigit() or vin.isdigit():
        return False
    try:
        total = sum(_VIN_VALUES[c] * w for c, w in zip(vin, _VIN_WEIGHTS, strict=True))
    except KeyError:
        return False
    check = total % 11
    return vin[8] == ("X" if check == 10 else str(check))
