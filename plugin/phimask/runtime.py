"""Build the running core from settings: keys, vault, policy, scanner -> Masker."""

from __future__ import annotations

from collections.abc import Sequence

from .config import Settings
from .detect import Scanner
from .integrity import build_verifier
from .keyring import Keyring
from .monitor import ResidualMonitor
from .pipeline import Masker
from .policy import load_policy
from .vault import Vault, open_vault


def load_keyring(settings: Settings, *, create: bool = True) -> Keyring:
    """The configured key directory, or local keys in the state directory (made on
    first use when `create`; throwaway ones otherwise, for `phimask check`)."""
    keys = Keyring.load(settings.keys_dir, local_dir=settings.state_dir / "keys",
                        create_missing=create)
    return keys if create else keys.with_ephemeral_fallback()


class VaultSource:
    """The process's vault, opened the first time a policy needs it (a tokenize rule,
    `on_error: quarantine`) and shared by every masker of the process. `dry` (for
    `phimask check`) never opens anything and answers None."""

    def __init__(self, settings: Settings, keys: Keyring, *, dry: bool = False) -> None:
        self._settings = settings
        self.keys = keys
        self._dry = dry
        self._vault: Vault | None = None

    def __call__(self) -> Vault | None:
        """Raises VaultUnavailable or KeyLoadError when the vault cannot be opened."""
        if self._dry:
            return None
        if self._vault is None:
            s = self._settings
            self._vault = open_vault(s.vault_url, s.state_dir, self.keys, s.vault_cache_size)
        return self._vault

    @property
    def opened(self) -> Vault | None:
        return self._vault

    def close(self) -> None:
        if self._vault is not None:
            self._vault.close()
            self._vault = None


def build_masker(
    settings: Settings,
    *,
    create_key: bool = True,
    roots: Sequence[str] = ("payload", "attributes"),
    keys: Keyring | None = None,
    vault: VaultSource | None = None,
) -> Masker:
    """Raises PolicyError, KeyLoadError, PatternError or VaultError with a message fit
    for the user.

    `create_key=False` (for `phimask check`) writes nothing and opens no vault.
    """
    keys = keys or load_keyring(settings, create=create_key)
    vault = vault or VaultSource(settings, keys, dry=not create_key)
    plan = load_policy(settings.policy, state_dir=settings.state_dir, keys=keys, roots=roots,
                       vault=vault)
    quarantine = vault() if plan.on_error == "quarantine" else None
    monitor = (ResidualMonitor(plan.detectors, settings.monitor_sample_rate,
                               settings.monitor_mode, settings.scanner)
               if settings.monitor_sample_rate > 0 else None)
    return Masker(plan, Scanner.build(plan.detectors, engine=settings.scanner),
                  build_verifier(plan.integrity, keys), quarantine=quarantine, monitor=monitor)
