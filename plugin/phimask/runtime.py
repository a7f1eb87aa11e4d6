"""Build the running core from settings: key, policy, scanner -> Masker."""

from __future__ import annotations

from collections.abc import Sequence

from .config import Settings
from .detect import Scanner
from .keys import load_hmac_key
from .pipeline import Masker
from .policy import load_policy


def build_masker(
    settings: Settings,
    *,
    create_key: bool = True,
    roots: Sequence[str] = ("payload", "attributes"),
) -> Masker:
    """Raises PolicyError, KeyLoadError or PatternError with a message fit for the user.

    `create_key=False` (for `phimask check`) writes nothing to the state directory.
    """
    key = load_hmac_key(settings.hmac_key_file, settings.state_dir, create=create_key)
    plan = load_policy(settings.policy, state_dir=settings.state_dir, hmac_key=key, roots=roots)
    return Masker(plan, Scanner.build(plan.detectors, engine=settings.scanner))

