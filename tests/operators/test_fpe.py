"""`fpe`: FF1 on a value's numerals, shape kept, reversible only by reveal()."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phimask.crypto.ff1 import FF1
from phimask.keyring import Key, Keyring, KeySet
from phimask.operators.base import CompileContext, OperatorError, OptionError
from phimask.operators.fpe import FormatPreservingEncryption
from phimask.policy import PolicyError, compile_policy, load_yaml
from tests.conftest import fixed_keyring

KEYS = fixed_keyring()


def fpe(path: str = "patient.phone", keys: Keyring = KEYS, **options: Any
        ) -> FormatPreservingEncryption:
    ctx = CompileContext(path=path, field_name=path.rsplit(".", 1)[-1],
                         state_dir=Path("/nonexistent"), extra={"keys": keys})
    return FormatPreservingEncryption.from_options(options, ctx)


def test_is_ff1_of_the_numerals_with_the_path_as_tweak() -> None:
    out = fpe().apply("617-555-0142")
    expected = FF1(KEYS.active("fpe").material).encrypt("6175550142", b"patient.phone")
    assert out == f"{expected[:3]}-{expected[3:6]}-{expected[6:]}"
    assert out != "617-555-0142"


@pytest.mark.parametrize("value", ["617-555-0142", "(617) 555 0142", "123-45-6789",
                                   "+1 212 555 0188", "MRN 00123456", "6175550142"])
def test_shape_is_kept_and_reveal_inverts(value: str) -> None:
    op = fpe()
    out = op.apply(value)
    assert isinstance(out, str) and len(out) == len(value)
    assert [c.isdigit() for c in out] == [c.isdigit() for c in value]
    assert [c for c in out if not c.isdigit()] == [c for c in value if not c.isdigit()]
    assert op.reveal(out) == value


def test_tweak_separates_fields_and_is_configurable() -> None:
    assert fpe("a.phone").apply("6175550142") != fpe("b.phone").apply("6175550142")
    assert fpe("a.phone", tweak="shared").apply("6175550142") == fpe(
        "b.phone", tweak="shared").apply("6175550142")


def test_alnum_keeps_upper_case_and_separators() -> None:
    op = fpe(alphabet="alnum")
    out = op.apply("AB12-CD34")
    assert isinstance(out, str) and out[4] == "-" and out == out.upper() and len(out) == 9
    assert op.reveal(out) == "AB12-CD34"
    lower = op.apply("ab12-cd34")
    assert isinstance(lower, str) and lower == lower.lower()
    assert op.reveal(lower) == "ab12-cd34"


def test_domain_below_a_million_is_a_policy_error_naming_the_field() -> None:
    with pytest.raises(OptionError, match=r"field patient\.pin: 10\*\*4 .* at least 6"):
        fpe("patient.pin", min_length=4)
    policy = "version: 1\nfields:\n  - {path: patient.pin, action: fpe, min_length: 5}\n"
    with pytest.raises(PolicyError) as info:
        compile_policy(load_yaml(policy, "p.yaml"), state_dir=Path("/x"), keys=KEYS)
    assert "fields[0].min_length" in str(info.value) and "patient.pin" in str(info.value)
    assert "line 3" in str(info.value)
    fpe(alphabet="alnum", min_length=4)  # 36**4 > 10**6


def test_short_values_are_rejected_not_passed() -> None:
    with pytest.raises(OperatorError) as info:
        fpe().apply("12-34")
    assert info.value.reason == "fpe_too_short" and "12" not in str(info.value)
    with pytest.raises(OperatorError):
        fpe(min_length=8).apply("1234567")


def test_rotation_reveals_with_the_old_key() -> None:
    old = Key("k1", "fpe", bytes(range(32)))
    new = Key("k2", "fpe", bytes(range(1, 33)))
    before = Keyring({"fpe": KeySet("fpe", old, {"k1": old})})
    after = Keyring({"fpe": KeySet("fpe", new, {"k1": old, "k2": new})})
    out = fpe(keys=before).apply("6175550142")
    assert isinstance(out, str)
    rotated = fpe(keys=after)
    assert rotated.apply("6175550142") != out
    assert rotated.reveal(out, "k1") == "6175550142"
    with pytest.raises(OperatorError, match="unknown_key"):
        rotated.reveal(out, "k9")


def test_ints_are_encrypted_through_their_text() -> None:
    out = fpe().apply(6175550142)
    assert isinstance(out, str) and len(out) == 10 and out.isdigit()


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="0123456789-() .", min_size=6, max_size=24).filter(
    lambda s: sum(c.isdigit() for c in s) >= 6))
def test_round_trip(value: str) -> None:
    op = fpe()
    assert op.reveal(str(op.apply(value))) == value
