"""What happened to one batch, in counts and codes only: what its span, metrics and
audit entries are made of. Built on a worker, sent back with the result."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class BatchStats:
    records_in: int = 0
    records_out: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # reason -> records
    quarantined: int = 0
    rule_hits: Counter[str] = field(default_factory=Counter)  # rule id -> values masked
    rule_actions: dict[str, str] = field(default_factory=dict)  # rule id -> action
    detections: Counter[str] = field(default_factory=Counter)  # detector -> matches
    integrity: Counter[str] = field(default_factory=Counter)  # verified, failed, unsigned
    residual: Counter[tuple[str, str]] = field(default_factory=Counter)  # (detector, path)
    unmapped: Counter[str] = field(default_factory=Counter)  # path no rule names -> values
    unmapped_phi: Counter[str] = field(default_factory=Counter)  # ... of them a detector hit
    vault_cache: Counter[str] = field(default_factory=Counter)  # hit, miss
    audit: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    policy_version: str = ""

    def merge(self, other: BatchStats) -> BatchStats:
        """Add the counts of another slice of the same request."""
        self.records_in += other.records_in
        self.records_out += other.records_out
        self.rejected.update(other.rejected)
        self.quarantined += other.quarantined
        self.rule_hits.update(other.rule_hits)
        self.rule_actions.update(other.rule_actions)
        self.detections.update(other.detections)
        self.integrity.update(other.integrity)
        self.residual.update(other.residual)
        self.unmapped.update(other.unmapped)
        self.unmapped_phi.update(other.unmapped_phi)
        self.vault_cache.update(other.vault_cache)
        self.audit.extend(other.audit)
        self.policy_version = self.policy_version or other.policy_version
        return self
