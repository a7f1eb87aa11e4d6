"""Key rotation: retired keys stay loaded to find and decrypt what they made."""

from __future__ import annotations

import pytest

from phimask.vault import VaultKeyMissing

from .conftest import OpenVault
from .helpers import make_keys, raw


def test_rotated_keys_keep_old_tokens(open_at: OpenVault, url: str) -> None:
    before = open_at(url, make_keys(vault=["v1"], index=["i1"]))
    alice = before.tokenize("patient.name", "Alice Liddell")
    carol = before.tokenize("patient.name", "Carol")
    before.close()

    after = open_at(url, make_keys(vault=["v1", "v2"], index=["i1", "i2"]))
    # Stored under the retired index key: found by it, never given a second token.
    assert after.tokenize("patient.name", "Alice Liddell") == alice
    assert after.tokenize_many("patient.name", ["Carol", "Alice Liddell"]) == [carol, alice]
    assert after.detokenize(alice) == "Alice Liddell"  # sealed with the retired vault key
    bob = after.tokenize("patient.name", "Bob")
    assert bob.startswith("tok_v2_")
    assert after.detokenize(bob, "patient.name") == "Bob"
    rows = raw(url, "SELECT token, index_kid, vault_kid FROM phimask_tokens ORDER BY token")
    assert sorted(rows) == sorted([(alice, "i1", "v1"), (carol, "i1", "v1"), (bob, "i2", "v2")])


def test_retired_vault_key_must_stay_loaded(open_at: OpenVault, url: str) -> None:
    token = open_at(url, make_keys(vault=["v1"])).tokenize("patient.name", "Alice Liddell")
    without = open_at(url, make_keys(vault=["v2"]))
    with pytest.raises(VaultKeyMissing) as caught:
        without.detokenize(token)
    assert "v1" in str(caught.value) and "Alice" not in str(caught.value)
