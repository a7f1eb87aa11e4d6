"""tokenize in the pipeline: one vault round trip per rule and batch, failures only
where they belong, and a vault that is down fails the batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from phimask.detect import Scanner
from phimask.pipeline import Document, Masker, Rejection
from phimask.policy import compile_policy, load_yaml
from phimask.vault import Vault, VaultUnavailable, open_vault
from tests.conftest import fixed_keyring

POLICY = """\
version: 1
profile: none
unmapped_strings: keep
fields:
  - {path: name, action: tokenize}
  - {path: code, action: tokenize, shape: digits}
  - {path: dob, action: generalize, kind: date}
"""


class CountingVault:
    """The real vault, counting the batched calls the pipeline makes."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.calls: list[tuple[str, int]] = []

    def tokenize_many(self, field: str, values: list[str], shape: str = "tok") -> list[str]:
        self.calls.append((field, len(values)))
        return self.vault.tokenize_many(field, values, shape)

    def detokenize(self, token: str, field: str | None = None) -> str | None:
        return self.vault.detokenize(token, field)


@pytest.fixture
def vault(tmp_path: Path) -> Any:
    real = open_vault(None, tmp_path, fixed_keyring())
    yield CountingVault(real)
    real.close()


def masker(vault: Any) -> Masker:
    plan = compile_policy(load_yaml(POLICY, "p.yaml"), state_dir=Path("/x"),
                          keys=fixed_keyring(), vault=lambda: vault)
    return Masker(plan, Scanner.build(plan.detectors))


def doc(**payload: Any) -> Document:
    return {"payload": payload, "attributes": {}}


def test_one_round_trip_per_rule_and_consistent_tokens(vault: Any) -> None:
    docs: list[Document | Rejection] = [doc(name=f"Ann {i % 5}", code=f"AB-{i:04d}")
                                        for i in range(40)]
    assert masker(vault).mask_batch(docs) == [None] * 40
    assert sorted(vault.calls) == [("code", 40), ("name", 40)]
    names = [d["payload"]["name"] for d in docs if isinstance(d, dict)]
    assert len(set(names)) == 5 and all(n.startswith("tok_t1_") for n in names)
    codes = [d["payload"]["code"] for d in docs if isinstance(d, dict)]
    assert all(len(c) == 7 and c[2] == "-" and c[:2].isdigit() for c in codes)
    assert vault.detokenize(names[0], "name") == "Ann 0"


def test_rejected_records_are_not_tokenized_and_bad_values_reject_only_theirs(
        vault: Any) -> None:
    docs: list[Document | Rejection] = [
        doc(name="Bo", dob="not a date"),  # generalize fails: no token for Bo
        doc(name="Cy", code="--"),  # nothing a digits token could replace
        doc(name="Di", code="12"),
    ]
    results = masker(vault).mask_batch(docs)
    assert results[0] == Rejection("operator_error", "dob")
    assert results[1] == Rejection("operator_error", "code")
    assert results[2] is None
    # Only Di's values reach the vault: a record rejected while it is walked (Bo by its
    # date, Cy by a code with nothing to replace) leaves no token behind.
    assert sorted(vault.calls) == [("code", 1), ("name", 1)]


def test_a_vault_that_is_down_fails_the_batch(vault: Any) -> None:
    m = masker(vault)
    vault.vault.close()
    docs: list[Document | Rejection] = [doc(name="Ed")]
    with pytest.raises(VaultUnavailable):
        m.mask_batch(docs)


def test_the_token_cache_counts_hits_and_misses(tmp_path: Path) -> None:
    real = open_vault(None, tmp_path, fixed_keyring())
    try:
        real.tokenize("name", "Ann")
        real.tokenize("name", "Ann")
        real.tokenize("name", "Bo")
        assert real.cache_counts() == (1, 2)
    finally:
        real.close()
