"""Shared fixtures: a state dir per test and a fixed HMAC key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from phimask.keyring import Key, Keyring, KeySet

HMAC_KEY = bytes(range(32))


def fixed_keyring(**extra: bytes) -> Keyring:
    """Fixed keys for every symmetric purpose (kid `t1`); `extra` overrides by purpose."""
    materials = {"hmac": HMAC_KEY, "fpe": bytes(range(1, 33)), "vault": bytes(range(2, 34)),
                 "vault-index": bytes(range(3, 35)), "verify-hmac": bytes(range(4, 36)),
                 "audit": bytes(range(5, 37)), **extra}
    sets = {}
    for purpose, material in materials.items():
        key = Key("t1", purpose, material, "<test>")
        sets[purpose] = KeySet(purpose, key, {"t1": key})
    return Keyring(sets)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


@pytest.fixture(autouse=True)
def _isolate_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("PHIMASK_CONFIG", "PHIMASK_POLICY", "PHIMASK_LISTEN", "PHIMASK_KEYS_DIR",
                 "PHIMASK_VAULT_URL"):
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("PHIMASK_KEY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
