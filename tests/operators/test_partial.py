from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phimask.operators.base import CompileContext, OperatorError, OptionError, Scalar
from phimask.operators.partial import Partial

CTX = CompileContext(path="patient.phone", field_name="phone", state_dir=Path("/nonexistent"))


def partial(**options: Any) -> Partial:
    return Partial.from_options(options, CTX)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("555-123-4567", "***-***-4567"),
        ("123456789", "*****6789"),
        ("123-45-6789", "***-**-6789"),
        ("(555) 123 4567", "(***) *** 4567"),
        ("12345", "*2345"),
        ("", ""),
        ("---", "---"),
    ],
)
def test_examples(value: str, expected: str) -> None:
    assert partial().apply(value) == expected


@pytest.mark.parametrize("value", ["ab", "1234", "a-b-c", "9"])
def test_no_more_than_keep_alphanumerics_masks_everything(value: str) -> None:
    out = partial().apply(value)
    assert isinstance(out, str)
    assert not any(ch.isalnum() for ch in out)
    assert len(out) == len(value)


def test_keep_zero_masks_all() -> None:
    assert partial(keep=0).apply("555-123-4567") == "***-***-****"


def test_keep_and_mask_options() -> None:
    assert partial(keep=2, mask="#").apply("AB-1234") == "##-##34"
    assert partial(mask="X").apply("123-45-6789") == "XXX-XX-6789"


def test_none_passes_through() -> None:
    assert partial().apply(None) is None


def test_unicode_letters_are_alphanumerics() -> None:
    assert partial().apply("Zoë Ångström") == "*** ****tröm"
    assert partial(keep=1).apply("東京都") == "**都"


def test_combining_mark_of_a_masked_letter_is_masked() -> None:
    decomposed = unicodedata.normalize("NFD", "José García")
    out = partial().apply(decomposed)
    assert isinstance(out, str)
    assert len(out) == len(decomposed)
    # The accent on José's "é" goes with the masked letter; the one on "í" is kept with it.
    assert out == "***** **rci\u0301a"


def test_int_and_float_masked_through_text() -> None:
    assert partial().apply(5551234567) == "******4567"
    assert partial().apply(1234.5) == "*234.5"
    assert partial().apply(12.0) == "**"


@pytest.mark.parametrize("value", [True, False, float("nan"), float("inf")])
def test_unsupported_values_raise(value: Scalar) -> None:
    with pytest.raises(OperatorError) as info:
        partial().apply(value)
    assert info.value.reason == "unsupported_type"
    assert str(value) not in str(info.value)


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"keep": 4, "show": 2}, "show"),
        ({"keep": "4"}, "keep"),
        ({"keep": True}, "keep"),
        ({"keep": 2.0}, "keep"),
        ({"keep": -1}, "keep"),
        ({"mask": "**"}, "mask"),
        ({"mask": ""}, "mask"),
        ({"mask": 0}, "mask"),
        ({"mask": "\n"}, "mask"),
    ],
)
def test_bad_options(options: dict[str, Any], option: str) -> None:
    with pytest.raises(OptionError) as info:
        partial(**options)
    assert info.value.option == option
    assert repr(option) in str(info.value)


MASKS = st.sampled_from(["*", "#", "•", "_"])


@given(st.text(), st.integers(min_value=0, max_value=12), MASKS)
def test_never_reveals_more_than_keep(value: str, keep: int, mask: str) -> None:
    out = partial(keep=keep, mask=mask).apply(value)
    assert isinstance(out, str)
    assert len(out) == len(value)
    alnum = [i for i, ch in enumerate(value) if ch.isalnum()]
    revealed = [i for i in alnum if out[i] == value[i]]
    if len(alnum) <= keep:
        assert revealed == []
    else:
        assert revealed == alnum[len(alnum) - keep :]
    assert all(out[i] == mask for i in alnum if i not in revealed)
    for i, ch in enumerate(value):
        if not ch.isalnum() and unicodedata.category(ch)[0] != "M":
            assert out[i] == ch  # separators stay where they are
    assert sum(ch.isalnum() for ch in out) <= keep


@given(st.integers(), st.integers(min_value=0, max_value=12))
def test_ints_return_masked_strings(value: int, keep: int) -> None:
    out = partial(keep=keep).apply(value)
    assert isinstance(out, str)
    assert len(out) == len(str(value))
    assert sum(ch.isdigit() for ch in out) <= keep
