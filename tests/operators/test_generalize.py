from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phimask.operators.base import CompileContext, OperatorError, OptionError, Scalar
from phimask.operators.generalize import Generalize

AS_OF = dt.date(2026, 6, 1)
CODES = {"unsupported_type", "invalid_age", "unparseable_date", "ambiguous_date"}
# fmt: off
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)
# fmt: on


def gen(field: str = "visit_date", **options: Any) -> Generalize:
    ctx = CompileContext(path=f"patient.{field}", field_name=field, state_dir=Path("/nonexistent"))
    return Generalize.from_options({"as_of": AS_OF.isoformat(), **options}, ctx)


def fails(op: Generalize, value: Scalar, code: str) -> None:
    with pytest.raises(OperatorError) as info:
        op.apply(value)
    assert info.value.reason == code
    assert str(info.value) == code
    assert info.value.__cause__ is None
    text = str(value).strip()
    if text:
        assert text not in str(info.value)


# -- dates -------------------------------------------------------------------------------

DATE_FORMATS: list[Callable[[dt.date], str]] = [
    lambda d: d.isoformat(),
    lambda d: f"{d.year:04d}/{d.month:02d}/{d.day:02d}",
    lambda d: f"{d.isoformat()}T08:30:00Z",
    lambda d: f"{d.isoformat()}T08:30:00.123+05:30",
    lambda d: f"{d.isoformat()} 08:30",
    lambda d: f"{d.month}/{d.day}/{d.year:04d}",
    lambda d: f"{d.month:02d}/{d.day:02d}/{d.year:04d}",
    lambda d: f"{d.month}-{d.day}-{d.year:04d}",
    lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year:04d}",
    lambda d: f"{MONTHS[d.month - 1][:3]} {d.day}, {d.year:04d}",
    lambda d: f"{MONTHS[d.month - 1][:3]}. {d.day} {d.year:04d}",
    lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year:04d}",
    lambda d: f"{d.day}-{MONTHS[d.month - 1][:3]}-{d.year:04d}",
    lambda d: f"{d.day} {MONTHS[d.month - 1][:3].upper()}. {d.year:04d}",
]


@pytest.mark.parametrize(
    "value",
    [
        "1961-04-12",
        "1961/04/12",
        "1961-04-12T08:30:00Z",
        "1961-04-12t08:30:00z",
        "1961-04-12T08:30:00-05:00",
        "1961-04-12 08:30",
        "4/12/1961",
        "04/12/1961",
        "4-12-1961",
        "4/12/61",
        "April 12, 1961",
        "april 12 1961",
        "Apr 12, 1961",
        "Apr. 12 1961",
        "Apr 12th, 1961",
        "12 April 1961",
        "12-Apr-1961",
        "12-APR-61",
        "12 Apr. 1961",
        "1961",
        "  1961-04-12  ",
        "\t4/12/1961\n",
        " April 12, 1961 ",
        " 1961 ",
    ],
)
def test_every_date_format_gives_the_year(value: str) -> None:
    assert gen().apply(value) == "1961"
    assert gen(kind="date").apply(value) == "1961"


def test_four_digit_int_is_a_year() -> None:
    assert gen().apply(1961) == "1961"
    assert gen(kind="date").apply(1961) == "1961"


def test_sept_abbreviation() -> None:
    assert gen().apply("Sept. 5, 2001") == "2001"


def test_leap_day() -> None:
    assert gen().apply("2/29/1960") == "1960"
    assert gen().apply("2000-02-29") == "2000"
    fails(gen(), "1961-02-29", "unparseable_date")
    fails(gen(), "1900-02-29", "unparseable_date")


@pytest.mark.parametrize(
    "value",
    [
        "2/30/1961",
        "1961-02-30",
        "1961-04-31",
        "1961-13-01",
        "1961-00-10",
        "1961-04-00",
        "13/12/1961",
        "February 30, 1961",
        "31-Apr-1961",
        "Smarch 12, 1961",
        "12 Foo 1961",
        "1961-04-12T",
        "1961-04/12",
        "4/12-1961",
        "04121961",
        "12/1961",
        "0000",
        "0000-01-01",
        "yesterday",
        "",
        "   ",
        "12345",
        "4/12/961",
    ],
)
def test_invalid_dates(value: str) -> None:
    fails(gen(), value, "unparseable_date")
    fails(gen(kind="birth_date"), value, "unparseable_date")


def test_two_digit_year_window_for_plain_dates() -> None:
    # [as_of - 80, as_of + 19] = [1946, 2045]
    assert gen().apply("4/12/46") == "1946"
    assert gen().apply("4/12/45") == "2045"
    assert gen().apply("4/12/99") == "1999"
    assert gen().apply("4/12/00") == "2000"
    assert gen().apply("12-Apr-61") == "1961"


def test_two_digit_birth_year_unique_plausible_century() -> None:
    birth = gen(kind="birth_date")
    assert birth.apply("4/12/61") == "1961"  # 1861 is 165 years ago, 2061 not yet
    assert birth.apply("4/12/30") == "90+"  # only 1930 is possible
    assert birth.apply("2/29/00") == "2000"  # 1900 had no Feb 29
    fails(birth, "4/12/25", "ambiguous_date")  # 1925 or 2025
    fails(birth, "4/12/76", "ambiguous_date")  # 1876 (150) or 1976


def test_two_digit_year_uses_as_of() -> None:
    later = Generalize(kind="date", as_of=dt.date(2090, 1, 1))
    assert later.apply("4/12/05") == "2105"
    assert later.apply("4/12/10") == "2010"


# -- birth dates -------------------------------------------------------------------------


def test_birth_date_around_the_90th_birthday() -> None:
    birth = gen(kind="birth_date")
    assert birth.apply("1936-06-02") == "1936"  # 89 until tomorrow
    assert birth.apply("1936-06-01") == "90+"  # 90 today
    assert birth.apply("1936-05-31") == "90+"
    assert birth.apply("1937-06-01") == "1937"
    assert birth.apply("6/1/1936") == "90+"
    assert birth.apply("June 2, 1936") == "1936"
    assert birth.apply("1900-01-01") == "90+"


def test_birth_feb_29() -> None:
    # In a common year a Feb 29 birthday counts on Feb 28, so 90+ never comes late.
    on = Generalize(kind="birth_date", as_of=dt.date(2026, 2, 28))
    before = Generalize(kind="birth_date", as_of=dt.date(2026, 2, 27))
    assert on.apply("1936-02-29") == "90+"
    assert before.apply("1936-02-29") == "1936"
    assert on.apply("1936-03-01") == "1936"  # only Feb 29 moves
    # Born on Feb 29, the 90th birthday always falls in a common year (90 is not a multiple
    # of 4), so the leap-year branch never decides 90+; it only keeps ages exact.


def test_birth_year_only() -> None:
    birth = gen(kind="birth_date")
    assert birth.apply("1936") == "90+"  # 2026 - 1936 = 90
    assert birth.apply("1937") == "1937"
    assert birth.apply(1936) == "90+"
    assert birth.apply(1937) == "1937"


def test_birth_date_in_the_future_keeps_its_year() -> None:
    assert gen(kind="birth_date").apply("2030-01-01") == "2030"


@pytest.mark.parametrize(
    "field",
    [
        "dob",
        "DOB",
        "date_of_birth",
        "dateOfBirth",
        "birthDate",
        "birth-date",
        "birthday",
        "birth_dt",
        "Birth_DT",
    ],
)
def test_auto_on_birth_keys_is_birth_date(field: str) -> None:
    op = gen(field)
    assert op.birth
    assert op.apply("1930-01-01") == "90+"
    assert op.apply(1930) == "90+"
    assert op.apply("1980-01-01") == "1980"
    assert op.apply("93") == "90+"  # still an age


@pytest.mark.parametrize("field", ["visit_date", "admitted", "dob_verified", "birthplace", ""])
def test_auto_on_other_keys_is_plain_date(field: str) -> None:
    op = gen(field)
    assert not op.birth
    assert op.apply("1930-01-01") == "1930"


def test_explicit_kind_date_on_birth_key_is_plain() -> None:
    assert gen("dob", kind="date").apply("1930-01-01") == "1930"


def test_default_as_of_is_today() -> None:
    ctx = CompileContext(path="dob", field_name="dob", state_dir=Path("/nonexistent"))
    op = Generalize.from_options({"kind": "birth_date"}, ctx)
    assert op.as_of is None
    year = dt.date.today().year
    assert op.apply(f"{year - 95}-01-01") == "90+"
    assert op.apply(f"{year - 30}-01-01") == str(year - 30)


def test_as_of_may_be_a_yaml_date() -> None:
    ctx = CompileContext(path="dob", field_name="dob", state_dir=Path("/nonexistent"))
    op = Generalize.from_options({"as_of": AS_OF}, ctx)
    assert op.as_of == AS_OF


# -- ages --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (45, 45),
        (89, 89),
        (90, "90+"),
        (150, "90+"),
        (89.0, 89.0),
        (45.5, 45.5),
        (89.5, "90+"),
        (149.9, "90+"),
        ("45", "45"),
        ("089", "089"),
        ("93", "90+"),
        ("93.5", "90+"),
        ("89.0", "89.0"),
        (" 45 ", " 45 "),
    ],
)
def test_ages(value: Scalar, expected: Scalar) -> None:
    for op in (gen(), gen(kind="age"), gen("dob")):
        out = op.apply(value)
        assert out == expected
        assert type(out) is type(expected)


@pytest.mark.parametrize("value", [-1, 151, 150.5, -0.5, "-1", "151", "200", 12345, 10**400])
def test_invalid_ages(value: Scalar) -> None:
    fails(gen(), value, "invalid_age")
    fails(gen(kind="age"), value, "invalid_age")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers(value: float) -> None:
    fails(gen(), value, "invalid_age")
    fails(gen(kind="age"), value, "invalid_age")
    fails(gen(kind="date"), value, "unparseable_date")


@pytest.mark.parametrize("value", ["1961-04-12", "ninety", "", "4 5", "1e2", 1961])
def test_kind_age_rejects_non_ages(value: Scalar) -> None:
    fails(gen(kind="age"), value, "invalid_age")


@pytest.mark.parametrize("value", [45, 45.5, "45", 12345])
def test_kind_date_rejects_non_dates(value: Scalar) -> None:
    fails(gen(kind="date"), value, "unparseable_date")
    fails(gen(kind="birth_date"), value, "unparseable_date")


@pytest.mark.parametrize("kind", ["auto", "date", "birth_date", "age"])
def test_bool_and_none(kind: str) -> None:
    op = gen(kind=kind)
    assert op.apply(None) is None
    fails(op, True, "unsupported_type")
    fails(op, False, "unsupported_type")


# -- options -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"kind": "date", "format": "%Y"}, "format"),
        ({"kind": "dates"}, "kind"),
        ({"kind": 1}, "kind"),
        ({"kind": None}, "kind"),
        ({"as_of": "2024-13-01"}, "as_of"),
        ({"as_of": "06/01/2024"}, "as_of"),
        ({"as_of": "20240601"}, "as_of"),
        ({"as_of": 20240601}, "as_of"),
        ({"as_of": dt.datetime(2024, 6, 1)}, "as_of"),
    ],
)
def test_bad_options(options: dict[str, Any], option: str) -> None:
    ctx = CompileContext(path="x", field_name="x", state_dir=Path("/nonexistent"))
    with pytest.raises(OptionError) as info:
        Generalize.from_options(options, ctx)
    assert info.value.option == option
    assert repr(option) in str(info.value)


# -- properties --------------------------------------------------------------------------

FORMATS = st.sampled_from(DATE_FORMATS)
PAD = st.sampled_from(["", " ", "  ", "\t", "\n"])


def exact_age(born: dt.date, today: dt.date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


@given(st.dates(), FORMATS, PAD, PAD)
def test_any_valid_date_gives_its_year(
    day: dt.date, fmt: Callable[[dt.date], str], left: str, right: str
) -> None:
    assert gen(kind="date").apply(left + fmt(day) + right) == f"{day.year:04d}"


@given(st.dates(), st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2200, 1, 1)), FORMATS)
def test_any_valid_birth_date_gives_year_or_90_plus(
    born: dt.date, today: dt.date, fmt: Callable[[dt.date], str]
) -> None:
    out = Generalize(kind="birth_date", as_of=today).apply(fmt(born))
    assert isinstance(out, str)
    assert re.fullmatch(r"\d{4}|90\+", out)
    age = exact_age(born, today)
    # A Feb 29 birthday may count a day early (Feb 28), never late: 89 may show as 90+.
    if age >= 90:
        assert out == "90+"
    if age <= 88:
        assert out == f"{born.year:04d}"


@given(st.dates(min_value=dt.date(1946, 1, 1), max_value=dt.date(2045, 12, 31)))
def test_two_digit_years_inside_the_window(day: dt.date) -> None:
    assert gen().apply(f"{day.month}/{day.day}/{day.year % 100:02d}") == f"{day.year}"


@given(st.text(max_size=40))
def test_any_text_gives_a_safe_result_or_a_code(value: str) -> None:
    for op in (gen(), gen(kind="birth_date"), gen(kind="age")):
        try:
            out = op.apply(value)
        except OperatorError as exc:
            assert str(exc) in CODES
            continue
        assert isinstance(out, str)
        # A year, 90+, or an age of 89 or less left as it was.
        assert re.fullmatch(r"\d{4}|90\+", out) or (out == value and float(out) <= 89)
