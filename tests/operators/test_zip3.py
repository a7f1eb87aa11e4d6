from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phimask.operators.base import CompileContext, OperatorError, OptionError, Scalar
from phimask.operators.zip3 import RESTRICTED_ZIP3, Zip3

CTX = CompileContext(path="patient.zip", field_name="zip", state_dir=Path("/nonexistent"))

# fmt: off
HHS_2000 = {"036", "059", "063", "102", "203", "556", "692", "790", "821", "823", "830", "831",
            "878", "879", "884", "890", "893"}
HHS_2010 = {"036", "059", "102", "203", "205", "369", "556", "692", "821", "823", "878", "879",
            "884", "893"}
# fmt: on


def zip3(**options: Any) -> Zip3:
    return Zip3.from_options(options, CTX)


def test_tables_are_the_hhs_lists() -> None:
    assert RESTRICTED_ZIP3["2000"] == HHS_2000
    assert RESTRICTED_ZIP3["2010"] == HHS_2010
    assert RESTRICTED_ZIP3["union"] == HHS_2000 | HHS_2010
    with pytest.raises(TypeError):
        RESTRICTED_ZIP3["2020"] = frozenset()  # type: ignore[index]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("02139", "021"),
        ("02139-1234", "021"),
        ("021391234", "021"),
        ("  02139\n", "021"),
        ("90210", "902"),
        ("00501", "005"),
        (2139, "021"),
        (501, "005"),
        (90210, "902"),
        (21391234, "021"),  # ZIP+4 that lost its leading zero
        (902101234, "902"),
        (5011234, "005"),
        (0, "000"),
    ],
)
def test_first_three_digits(value: Scalar, expected: str) -> None:
    assert zip3().apply(value) == expected


@pytest.mark.parametrize("table", ["2000", "2010", "union"])
def test_restricted_prefixes_per_table(table: str) -> None:
    op = zip3(table=table)
    for prefix in sorted(HHS_2000 | HHS_2010):
        expected = "000" if prefix in RESTRICTED_ZIP3[table] else prefix
        assert op.apply(prefix + "01") == expected
        assert op.apply(prefix + "01-0001") == expected
        assert op.apply(int(prefix + "01")) == expected
        assert op.apply(int(prefix + "010001")) == expected


def test_tables_differ_where_hhs_lists_differ() -> None:
    assert zip3(table="2000").apply("06390") == "000"
    assert zip3(table="2010").apply("06390") == "063"
    assert zip3(table="2000").apply("36901") == "369"
    assert zip3(table="2010").apply("36901") == "000"
    assert zip3().apply("06390") == "000"
    assert zip3().apply("36901") == "000"


def test_yaml_int_table() -> None:
    assert zip3(table=2010).table == "2010"
    assert zip3(table=2000).restricted == HHS_2000


def test_suffix() -> None:
    assert zip3(suffix="**").apply("02139-1234") == "021**"
    assert zip3(suffix="XX").apply("03601") == "000XX"


def test_none_passes_through() -> None:
    assert zip3().apply(None) is None


@pytest.mark.parametrize(
    "value",
    [
        "2139",
        "021",
        "0213912",
        "02139-123",
        "02139-12345",
        "02139 1234",
        "0213a",
        "ABCDE",
        "",
        "٠٢١٣٩",  # non-ASCII digits
        "02139\n1234",
        -2139,
        1_000_000_000,
        2139.0,
        float("nan"),
    ],
)
def test_invalid(value: Scalar) -> None:
    with pytest.raises(OperatorError) as info:
        zip3().apply(value)
    assert info.value.reason == "invalid_zip"
    text = str(value).strip()
    if text:
        assert text not in str(info.value)


@pytest.mark.parametrize("value", [True, False])
def test_bool(value: bool) -> None:
    with pytest.raises(OperatorError) as info:
        zip3().apply(value)
    assert info.value.reason == "unsupported_type"


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"table": "2020"}, "table"),
        ({"table": 2020}, "table"),
        ({"table": True}, "table"),
        ({"table": None}, "table"),
        ({"suffix": 5}, "suffix"),
        ({"suffix": None}, "suffix"),
        ({"digits": 3}, "digits"),
    ],
)
def test_bad_options(options: dict[str, Any], option: str) -> None:
    with pytest.raises(OptionError) as info:
        zip3(**options)
    assert info.value.option == option
    assert repr(option) in str(info.value)


def test_direct_construction_validates_table() -> None:
    with pytest.raises(OptionError):
        Zip3(table="1990")


@given(st.integers(min_value=0, max_value=999_999_999), st.sampled_from(["2000", "2010", "union"]))
def test_any_int_zip(value: int, table: str) -> None:
    out = zip3(table=table).apply(value)
    assert isinstance(out, str)
    assert re.fullmatch(r"\d{3}", out)
    assert out not in RESTRICTED_ZIP3[table]


@given(st.text(max_size=12))
def test_any_text_gives_three_digits_or_invalid_zip(value: str) -> None:
    try:
        out = zip3().apply(value)
    except OperatorError as exc:
        assert str(exc) == "invalid_zip"
        return
    assert isinstance(out, str)
    assert re.fullmatch(r"\d{3}", out)
    assert out not in RESTRICTED_ZIP3["union"]
