"""Shared fixtures: a state dir per test and a fixed HMAC key."""

from __future__ import annotations

from pathlib import Path

import pytest

HMAC_KEY = bytes(range(32))


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


@pytest.fixture(autouse=True)
def _isolate_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("PHIMASK_HMAC_KEY", "PHIMASK_CONFIG", "PHIMASK_POLICY", "PHIMASK_LISTEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
