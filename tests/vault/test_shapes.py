"""Format-preserving token shapes."""

from __future__ import annotations

import pytest

from phimask.vault import TokenShape, TokenShapeError, Vault
from phimask.vault.shapes import new_token


def _same_layout(value: str, token: str) -> None:
    assert len(token) == len(value)
    for v, t in zip(value, token, strict=True):
        if not v.isalnum():
            assert t == v  # separators stay in place
        else:
            assert t.isalnum() and t.isascii()


@pytest.mark.parametrize("value", ["123-45-6789", "(555) 010-2233", "7", "A1b2-C3d4 e5"])
def test_alnum_keeps_length_separators_and_case(value: str) -> None:
    for _ in range(20):
        token = new_token(TokenShape.ALNUM, value, "v1", "f")
        _same_layout(value, token)
        assert token != value
        for v, t in zip(value, token, strict=True):
            if v.isdigit():
                assert t.isdigit()
            elif v.isalpha():
                assert t.isalpha() and t.isupper() == v.isupper()


@pytest.mark.parametrize("value", ["123-45-6789", "MRN-00123", "ab.CD"])
def test_digits_turns_letters_and_digits_into_digits(value: str) -> None:
    token = new_token(TokenShape.DIGITS, value, "v1", "f")
    _same_layout(value, token)
    assert all(t.isdigit() for v, t in zip(value, token, strict=True) if v.isalnum())


def test_format_preserving_tokens_are_random() -> None:
    tokens = {new_token(TokenShape.DIGITS, "123-45-6789", "v1", "f") for _ in range(100)}
    assert len(tokens) > 95


@pytest.mark.parametrize("shape", ["digits", "alnum"])
def test_value_without_letters_or_digits_is_refused(vault: Vault, shape: str) -> None:
    with pytest.raises(TokenShapeError) as caught:
        vault.tokenize("patient.ssn", "--- ---", shape)
    assert "---" not in str(caught.value)


def test_unknown_shape_is_refused(vault: Vault) -> None:
    with pytest.raises(TokenShapeError, match="unknown token shape"):
        vault.tokenize("patient.ssn", "123", "hex")


def test_vault_round_trips_format_preserving_tokens(vault: Vault) -> None:
    ssn = "123-45-6789"
    token = vault.tokenize("patient.ssn", ssn, "digits")
    _same_layout(ssn, token)
    assert token != ssn
    assert vault.tokenize("patient.ssn", ssn, "digits") == token
    assert vault.tokenize_many("patient.ssn", [ssn, "987-65-4321"], "digits")[0] == token
    assert vault.detokenize(token, "patient.ssn") == ssn


def test_taken_tokens_are_redrawn_until_the_space_runs_out(vault: Vault) -> None:
    # One-digit values have ten possible tokens: eleven values cannot all get one.
    values = [str(d) for d in range(10)] + ["x"]
    tokens: dict[str, str] = {}
    errors = []
    for value in values:
        try:
            tokens[value] = vault.tokenize("patient.code", value, "digits")
        except TokenShapeError as exc:
            errors.append(exc)
    assert errors and all(e.status == "RESOURCE_EXHAUSTED" for e in errors)
    assert len(set(tokens.values())) == len(tokens) >= 5  # unique, found past collisions
    assert all(token != value and token.isdigit() for value, token in tokens.items())
    for value, token in tokens.items():
        assert vault.detokenize(token, "patient.code") == value
