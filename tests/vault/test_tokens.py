"""Tokenize and detokenize, on both backends."""

from __future__ import annotations

import re

import pytest

from phimask.vault import Vault, VaultIntegrityError, VaultUnavailable

from .conftest import NewUrl, OpenVault
from .helpers import make_keys, raw

NAMES = ["Zebediah Quux", "Ana María Ñúñez", "", "x" * 2000, "line\nbreak\x00nul", "\ud800lone"]


def test_one_value_gets_one_token(vault: Vault, url: str, open_at: OpenVault) -> None:
    first = vault.tokenize("patient.name", "Zebediah Quux")
    assert vault.tokenize("patient.name", "Zebediah Quux") == first
    # Another vault on the same store (another process, another replica): no cache shared.
    assert open_at(url).tokenize("patient.name", "Zebediah Quux") == first
    assert raw(url, "SELECT count(*) FROM phimask_tokens") == [(1,)]


def test_fields_are_separate_domains(vault: Vault) -> None:
    name = vault.tokenize("patient.name", "Jordan")
    alias = vault.tokenize("patient.alias", "Jordan")
    assert name != alias
    assert vault.detokenize(name, "patient.name") == "Jordan"
    assert vault.detokenize(alias, "patient.alias") == "Jordan"


def test_tokens_are_random_not_derived(new_url: NewUrl, open_at: OpenVault) -> None:
    keys = make_keys()
    one, two = open_at(new_url(), keys), open_at(new_url(), keys)
    value = "Zebediah Quux"
    token = one.tokenize("patient.name", value)
    assert token != two.tokenize("patient.name", value)  # same keys, fresh stores
    assert re.fullmatch(r"tok_v1_[A-Za-z0-9_-]{22,}", token), token
    assert value not in token and "Zebediah" not in token
    tokens = [one.tokenize("patient.name", f"patient {i}") for i in range(50)]
    assert len(set(tokens)) == 50


def test_detokenize_round_trip(vault: Vault, url: str, open_at: OpenVault) -> None:
    tokens = [vault.tokenize("patient.name", name) for name in NAMES]
    other = open_at(url)  # decrypts from the store, not from anything cached
    for name, token in zip(NAMES, tokens, strict=True):
        assert other.detokenize(token) == name
        assert other.detokenize(token, "patient.name") == name


def test_unknown_token_or_wrong_field_gives_none(vault: Vault) -> None:
    token = vault.tokenize("patient.name", "Zebediah Quux")
    assert vault.detokenize(token, "patient.address") is None
    assert vault.detokenize("tok_v1_AAAAAAAAAAAAAAAAAAAAAA") is None
    assert vault.detokenize(token + "x") is None


def test_tokenize_many_matches_tokenize(vault: Vault, url: str, open_at: OpenVault) -> None:
    known = vault.tokenize("patient.mrn", "MRN-1")
    values = ["MRN-2", "MRN-1", "MRN-3", "MRN-2", "MRN-4"]
    tokens = vault.tokenize_many("patient.mrn", values)
    assert tokens[1] == known
    assert tokens[0] == tokens[3]
    assert len(set(tokens)) == 4
    fresh = open_at(url, cache_size=0)
    assert [fresh.tokenize("patient.mrn", v) for v in values] == tokens
    assert fresh.tokenize_many("patient.mrn", iter(values)) == tokens
    assert vault.tokenize_many("patient.mrn", []) == []
    assert raw(url, "SELECT count(*) FROM phimask_tokens") == [(4,)]


def test_tampered_ciphertext_fails_without_the_value(vault: Vault, url: str) -> None:
    secret = "Zebediah Quux"
    token = vault.tokenize("patient.name", secret)
    other = vault.tokenize("patient.name", "Someone Else")
    (sealed,) = raw(url, "SELECT sealed FROM phimask_tokens WHERE token = ?", [token])[0]
    flipped = bytearray(sealed)
    flipped[-1] ^= 1
    raw(url, "UPDATE phimask_tokens SET sealed = ? WHERE token = ?", [bytes(flipped), token])
    with pytest.raises(VaultIntegrityError) as caught:
        vault.detokenize(token)
    assert caught.value.status == "DATA_LOSS"
    assert secret not in str(caught.value) and "Zebediah" not in repr(caught.value)
    # A valid ciphertext moved to another token's row fails too: the token is bound in.
    raw(url, "UPDATE phimask_tokens SET sealed = ? WHERE token = ?", [bytes(sealed), other])
    with pytest.raises(VaultIntegrityError):
        vault.detokenize(other)


def test_stored_rows_do_not_hold_the_value(vault: Vault, url: str) -> None:
    vault.tokenize("patient.name", "Zebediah Quux")
    for row in raw(url, "SELECT idx, token, field, index_kid, vault_kid, sealed "
                        "FROM phimask_tokens"):
        for column in row:
            data = column if isinstance(column, bytes) else str(column).encode()
            assert b"Zebediah" not in data


def test_cache_hit_skips_the_backend(open_at: OpenVault, url: str) -> None:
    vault = open_at(url, cache_size=2)
    a = vault.tokenize("patient.name", "Ann")
    b = vault.tokenize("patient.name", "Bob")
    assert all(isinstance(k, bytes) and len(k) == 32 for k in vault._cache._items)
    vault._store.close()  # the backend is gone; cached values must not need it
    assert vault.tokenize("patient.name", "Ann") == a
    assert vault.tokenize_many("patient.name", ["Bob", "Ann", "Bob"]) == [b, a, b]
    with pytest.raises(VaultUnavailable):
        vault.tokenize("patient.name", "Cy")  # not cached: needs the backend


def test_cache_evicts_least_recently_used(open_at: OpenVault, url: str) -> None:
    vault = open_at(url, cache_size=2)
    vault.tokenize_many("patient.name", ["Ann", "Bob"])
    vault.tokenize("patient.name", "Ann")  # Ann is now the most recent
    vault.tokenize("patient.name", "Cy")  # evicts Bob
    vault._store.close()
    vault.tokenize("patient.name", "Ann")
    vault.tokenize("patient.name", "Cy")
    with pytest.raises(VaultUnavailable):
        vault.tokenize("patient.name", "Bob")


def test_closed_vault_is_unavailable(vault: Vault) -> None:
    token = vault.tokenize("patient.name", "Ann")
    vault.close()
    vault.close()
    with pytest.raises(VaultUnavailable):
        vault.tokenize("patient.name", "Ann")
    with pytest.raises(VaultUnavailable):
        vault.detokenize(token)


def test_field_with_nul_is_refused(vault: Vault) -> None:
    with pytest.raises(ValueError):
        vault.tokenize("patient\x00name", "Ann")
