"""`generalize`: HIPAA Safe Harbor generalization of dates and ages.

Dates become their year (`"1961-04-12"` -> `"1961"`); ages over 89 become `"90+"`; a
birth date of someone over 89 (at `as_of`, default today) loses the year too: `"90+"`.

Options:
  kind   "auto" (default), "date", "birth_date" or "age".
         auto: an int or string of exactly 4 digits is a year; any other number, or a
         numeric string of up to 3 digits ("93", "93.5"), is an age; any other string is a
         date. If the field's key is a birth-date key (dob, date_of_birth, birthDate,
         birthday, birth_dt, ...) auto dates and years are birth dates.
         date / birth_date: strings and 4-digit ints only. age: numbers and numeric strings.
         An age of 89 or less is returned unchanged (same type); over 89 gives "90+".
  as_of  "YYYY-MM-DD" used as today for ages from birth dates and for the two-digit year
         window (tests, reproducible replays). Default: the real date at apply time.

Accepted dates (surrounding whitespace ignored, month names case-insensitive):
  ISO      1961-04-12, 1961/04/12, 1961-04-12T08:30:00Z, 1961-04-12 08:30
  US       4/12/1961, 04/12/1961, 4-12-1961, 4/12/61 (month first, never day first)
  names    April 12, 1961 / Apr 12, 1961 / Apr. 12 1961 / 12 April 1961 / 12-Apr-1961
           (also Sept, ordinals "12th", and two-digit years: 12-Apr-61)
  year     1961 (stays "1961")

Two-digit years: for a plain date, `yy` is the year ending in yy within
[today - 80, today + 19]. For a birth date both centuries can be real (`4/12/25` is a
toddler or a 101-year-old, and only one of them may keep the year), so the reading must
be the only one giving an age in 0..150; otherwise the value fails with
"ambiguous_date" rather than guess.

A Feb 29 birthday counts on Feb 28 in common years: the earlier reading, so "90+"
never comes a day late.

Errors (reason codes): unsupported_type (bool), invalid_age (negative, over 150, NaN,
or a non-number where an age is expected), unparseable_date, ambiguous_date.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple, Self

from .base import CompileContext, OperatorError, OptionError, Scalar, choice_option, reject_unknown

KINDS = ("auto", "date", "birth_date", "age")
BIRTH_KEYS = frozenset({"dob", "dateofbirth", "birthdate", "birthday", "birthdt"})
MAX_AGE = 89
ABSURD_AGE = 150
OVER_MAX = "90+"

# fmt: off
_MONTH_NAMES = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)
# fmt: on
_MONTHS = {name: i for i, name in enumerate(_MONTH_NAMES, start=1)}
_MONTHS |= {name[:3]: i for i, name in enumerate(_MONTH_NAMES, start=1)}
_MONTHS["sept"] = 9

_AS_OF = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_YEAR = re.compile(r"\d{4}", re.ASCII)
_AGE = re.compile(r"-?\d{1,3}(?:\.\d+)?", re.ASCII)
_AGE_ANY = re.compile(r"-?\d+(?:\.\d+)?", re.ASCII)
# Groups: year, month, day. The time part is checked for shape only; it is dropped.
_ISO = re.compile(
    r"(\d{4})([-/])(\d{1,2})\2(\d{1,2})"
    r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?",
    re.IGNORECASE | re.ASCII,
)
# Groups: month, day, year (2 or 4 digits).
_US = re.compile(r"(\d{1,2})([/-])(\d{1,2})\2(\d{4}|\d{2})", re.ASCII)
# "April 12, 1961", "Apr. 12 1961", "Apr 12th, 1961". Groups: month name, day, year.
_NAME_MDY = re.compile(
    r"([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4}|\d{2})", re.IGNORECASE | re.ASCII
)
# "12 April 1961", "12-Apr-1961", "12 Apr. 1961". Groups: day, month name, year.
_NAME_DMY = re.compile(
    r"(\d{1,2})(?:st|nd|rd|th)?(?:\s+|-)([a-z]+)\.?(?:,?\s+|-)(\d{4}|\d{2})",
    re.IGNORECASE | re.ASCII,
)


def is_birth_key(field_name: str) -> bool:
    """`date_of_birth`, `birthDate`, `DOB`, `birth-dt` -> True."""
    return field_name.lower().replace("_", "").replace("-", "") in BIRTH_KEYS


class _Parsed(NamedTuple):  # a tuple: built for every value, so cheap to build
    year: int  # the two last digits only when two_digit
    month: int = 0  # 0: a year-only value
    day: int = 0
    two_digit: bool = False


@dataclass(frozen=True, slots=True)
class Generalize:
    name: ClassVar[str] = "generalize"
    kind: str = "auto"
    as_of: dt.date | None = None
    birth_field: bool = False  # the field's key names a birth date (used by kind auto)
    birth: bool = field(init=False)  # dates here are birth dates

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise OptionError("kind", f"must be one of {', '.join(KINDS)}")
        birth = self.kind == "birth_date" or (self.kind == "auto" and self.birth_field)
        object.__setattr__(self, "birth", birth)

    @classmethod
    def from_options(cls, options: Mapping[str, Any], ctx: CompileContext) -> Self:
        reject_unknown(options, {"kind", "as_of"})
        return cls(
            kind=choice_option(options, "kind", "auto", KINDS),
            as_of=_as_of_option(options.get("as_of")),
            birth_field=is_birth_key(ctx.field_name),
        )

    def apply(self, value: Scalar) -> Scalar:
        if value is None:
            return None
        if isinstance(value, bool):
            raise OperatorError("unsupported_type")
        if self.kind == "age":
            return _age(value)
        if isinstance(value, str):
            text = value.strip()
            iso = _iso_date(text)
            if iso is not None:
                return self._date(iso)
            if self.kind == "auto" and _AGE.fullmatch(text):
                return _age(value)
            return self._date(_parse_date(text))
        if isinstance(value, int) and 1000 <= value <= 9999:
            return self._date(_Parsed(value))
        if self.kind == "auto":
            return _age(value)
        raise OperatorError("unparseable_date")

    def _date(self, parsed: _Parsed) -> str:
        if not self.birth:
            if parsed.two_digit:
                parsed = _window_century(parsed, self.as_of or _today())
            return f"{parsed.year:04d}"
        today = self.as_of or _today()
        if parsed.two_digit:
            parsed = _birth_century(parsed, today)
        age = today.year - parsed.year
        if parsed.month and _before_birthday(today, parsed.month, parsed.day):
            age -= 1
        return OVER_MAX if age > MAX_AGE else f"{parsed.year:04d}"


def _as_of_option(raw: object) -> dt.date | None:
    if raw is None:
        return None
    # A YAML policy's unquoted `as_of: 2024-06-01` arrives as a date already.
    if isinstance(raw, dt.date) and not isinstance(raw, dt.datetime):
        return raw
    if not isinstance(raw, str) or not _AS_OF.fullmatch(raw):
        raise OptionError("as_of", "must be a date written YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise OptionError("as_of", "is not a valid calendar date") from None


def _age(value: str | int | float) -> str | int | float:
    number: int | float
    if isinstance(value, str):
        text = value.strip()
        if not _AGE_ANY.fullmatch(text):
            raise OperatorError("invalid_age")
        number = float(text)
    else:
        number = value  # an int stays exact: float() of a huge int overflows
    if (isinstance(number, float) and math.isnan(number)) or number < 0 or number > ABSURD_AGE:
        raise OperatorError("invalid_age")
    return value if number <= MAX_AGE else OVER_MAX


def _iso_date(text: str) -> _Parsed | None:
    """The common shape, YYYY-MM-DD, by the C parser (3x faster than the grammar of
    `_parse_date`); None for anything else, which the grammar then reads or rejects."""
    if len(text) == 10 and text[4] == "-" and text[7] == "-" and text.isascii():
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            return None
        return _Parsed(day.year, day.month, day.day)
    return None


def _today() -> dt.date:
    """The local date, read at most once a second: date.today() costs as much as the
    rest of a generalization, and a second's lag at midnight changes no one's age."""
    global _TODAY
    now = time.monotonic()
    if now >= _TODAY[1]:
        _TODAY = (dt.date.today(), now + 1.0)
    return _TODAY[0]


_TODAY: tuple[dt.date, float] = (dt.date.min, 0.0)  # (the date, read again after)


def _parse_date(text: str) -> _Parsed:
    if _YEAR.fullmatch(text):
        year = int(text)
        if year < 1:
            raise OperatorError("unparseable_date")
        return _Parsed(year)
    if m := _ISO.fullmatch(text):
        return _valid(m[1], int(m[3]), int(m[4]))
    if m := _US.fullmatch(text):
        return _valid(m[4], int(m[1]), int(m[3]))
    if m := _NAME_MDY.fullmatch(text):
        return _valid(m[3], _month(m[1]), int(m[2]))
    if m := _NAME_DMY.fullmatch(text):
        return _valid(m[3], _month(m[2]), int(m[1]))
    raise OperatorError("unparseable_date")


def _month(name: str) -> int:
    month = _MONTHS.get(name.lower())
    if month is None:
        raise OperatorError("unparseable_date")
    return month


def _valid(year_text: str, month: int, day: int) -> _Parsed:
    two_digit = len(year_text) == 2
    year = int(year_text)
    try:
        # A two-digit year's century is chosen later; 2000 is a leap year, so Feb 29 passes.
        dt.date(2000 if two_digit else year, month, day)
    except ValueError:
        raise OperatorError("unparseable_date") from None
    return _Parsed(year, month, day, two_digit)


def _before_birthday(today: dt.date, month: int, day: int) -> bool:
    if month == 2 and day == 29 and not calendar.isleap(today.year):
        day = 28
    return (today.month, today.day) < (month, day)


def _window_century(parsed: _Parsed, today: dt.date) -> _Parsed:
    base = today.year - 80
    year = base + (parsed.year - base) % 100
    if parsed.month == 2 and parsed.day == 29 and not calendar.isleap(year):
        raise OperatorError("unparseable_date")
    return _Parsed(year, parsed.month, parsed.day)


def _birth_century(parsed: _Parsed, today: dt.date) -> _Parsed:
    readings = []
    for century in range(today.year // 100 - 2, today.year // 100 + 1):
        year = century * 100 + parsed.year
        if parsed.month == 2 and parsed.day == 29 and not calendar.isleap(year):
            continue
        age = today.year - year - _before_birthday(today, parsed.month, parsed.day)
        if 0 <= age <= ABSURD_AGE:
            readings.append(year)
    if not readings:
        raise OperatorError("unparseable_date")
    if len(readings) > 1:
        raise OperatorError("ambiguous_date")
    return _Parsed(readings[0], parsed.month, parsed.day)
