"""Audit events: one call per decision (authorization, re-identification, quarantine
access, key loads), carrying who, what and how many, never a value.

For now every event is a JSON log entry on the `phimask.audit` logger; the audit span
and the hash-chained audit log hang off this one function.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("phimask.audit")


def audit(event: str, **fields: Any) -> None:
    """Record `event` (e.g. `authz.denied`, `reidentify`). `fields` hold identities,
    counts, codes and ids only."""
    log.info(event, extra={"audit": event, **fields})
