"""Build the running core from settings: keys, vault, policy, scanner -> Masker."""

from __future__ import annotations

from collections.abc import Sequence

from .config import Settings
from .detect import Scanner
from .integrity import build_verifier
from .keyring import Keyring
from .pipeline import Masker
from .policy import load_policy


def load_keyring(settings: Settings, *, create: bool = True) -> Keyring:
    """The configured key directory, or local keys in the state directory (made on
    first use when `create`; throwaway ones otherwise, for `phimask check`)."""
    keys = Keyring.load(settings.keys_dir, local_dir=settings.state_dir / "keys",
                        create_missing=create)
    return keys if create else keys.with_ephemeral_fallback()


def build_masker(
    settings: Settings,
    *,
    create_key: bool = True,
    roots: Sequence[str] = ("payload", "attributes"),
    keys: Keyring | None = None,
) -> Masker:
    """Raises PolicyError, KeyLoadError or PatternError with a message fit for the user.

    `create_key=False` (for `phimask check`) writes nothing to the state directory.
    """
    keys = keys or load_keyring(settings, create=create_key)
    plan = load_policy(settings.policy, state_dir=settings.state_dir, keys=keys, roots=roots)
    return Masker(plan, Scanner.build(plan.detectors, engine=settings.scanner),
                  build_verifier(plan.integrity, keys))
