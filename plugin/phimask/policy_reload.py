"""Policy hot reload: on a changed file (polled) and on SIGHUP.

A new policy is compiled here first, in full, with the running keys and vault. Valid:
its exact text is kept as a snapshot (`<state-dir>/policies/<version>.yaml`) and every
batch submitted from then on is masked by it; batches already with a worker finish
on the old one, so none is ever half-masked by two. Invalid: the old one keeps
running, the error (file, line, key) is logged, counted and audited.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from .audit import audit
from .config import Settings
from .detect import PatternError
from .errors import CallError
from .keyring import KeyLoadError
from .pipeline import Masker
from .policy import PolicyError
from .runtime import VaultSource, build_masker

log = logging.getLogger("phimask.policy")


class PolicyReloader:
    def __init__(self, settings: Settings, vault: VaultSource, current: Masker,
                 on_swap: Callable[[Masker, Path], None],
                 on_failure: Callable[[], None] = lambda: None) -> None:
        assert settings.policy is not None, "the embedded policy does not change"
        self.settings = settings
        self.path: Path = settings.policy
        self._vault = vault
        self.masker = current
        self._on_swap = on_swap
        self._on_failure = on_failure
        self._seen = self._fingerprint()
        self._lock = asyncio.Lock()

    def _fingerprint(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    async def watch(self, interval: float) -> None:
        """Poll the file every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            seen = self._fingerprint()
            if seen is not None and seen != self._seen:
                self._seen = seen
                try:
                    await self.reload("file changed")
                except Exception as exc:  # the watch must outlive any one bad file
                    log.error("policy reload failed unexpectedly; still watching",
                              extra={"policy": str(self.path),
                                     "error_type": type(exc).__name__})

    async def reload(self, why: str) -> bool:
        """True when a new policy now masks new batches."""
        async with self._lock:
            return await asyncio.get_running_loop().run_in_executor(None, self._reload, why)

    def _reload(self, why: str) -> bool:
        old = self.masker.policy_version
        snapshot: Path | None = None
        try:
            snapshot = self._snapshot(self.path.read_bytes())
            masker = build_masker(dataclasses.replace(self.settings, policy=snapshot),
                                  keys=self._vault.keys, vault=self._vault)
        except (PolicyError, PatternError, KeyLoadError, CallError, OSError) as exc:
            problem = str(exc)
            if snapshot is not None:  # name the file the operator edits, not our copy
                problem = problem.replace(str(snapshot), str(self.path))
            log.error("policy reload failed; the running policy stays",
                      extra={"policy": str(self.path), "error": problem,
                             "policy_version": old, "trigger": why})
            audit("policy.reload_failed", policy=str(self.path), trigger=why,
                  policy_version=old, error=problem)
            self._on_failure()
            return False
        if masker.policy_version == old:
            return False  # touched, not changed
        self.masker = masker
        self._on_swap(masker, snapshot)
        log.info("policy reloaded", extra={"policy": str(self.path), "trigger": why,
                                           "old_version": old,
                                           "new_version": masker.policy_version})
        audit("policy.reload", policy=str(self.path), trigger=why, old_version=old,
              new_version=masker.policy_version)
        return True

    def _snapshot(self, text: bytes) -> Path:
        """The exact bytes that were validated, where workers read them: the file
        itself may change again while they switch."""
        directory = self.settings.state_dir / "policies"
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = directory / f"{hashlib.sha256(text).hexdigest()[:16]}{self.path.suffix}"
        if not path.exists():
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            tmp.write_bytes(text)
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        return path
