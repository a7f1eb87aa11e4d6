"""Audit events: one call per decision (authorization, re-identification, quarantine
access, integrity failures, key loads, policy reloads), carrying who, what and how
many, never a value.

`audit()` hands each event to the process's sinks: in the server process the JSON
log, the hash-chained audit log and an audit span; in a masking worker a buffer whose
events travel back with the batch's result, so one process writes the chain.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger("phimask.audit")
Sink = Callable[[str, Mapping[str, Any]], None]


def log_sink(event: str, fields: Mapping[str, Any]) -> None:
    log.info(event, extra={"audit": event, **fields})


_sinks: tuple[Sink, ...] = (log_sink,)


def audit(event: str, **fields: Any) -> None:
    """Record `event` (e.g. `authz.denied`, `reidentify`). `fields` hold identities,
    counts, codes and ids only."""
    for sink in _sinks:
        sink(event, fields)


def set_sinks(*sinks: Sink) -> None:
    global _sinks
    _sinks = sinks


class AuditBuffer:
    """A worker's sink: events wait here until the batch's result carries them home."""

    def __init__(self) -> None:
        self._events: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def __call__(self, event: str, fields: Mapping[str, Any]) -> None:
        with self._lock:
            self._events.append((event, dict(fields)))

    def take(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            events, self._events = self._events, []
        return events
