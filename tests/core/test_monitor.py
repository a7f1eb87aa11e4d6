"""The residual-PHI monitor finds what a policy let through, never what operators made."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest

from phimask.detect import Scanner
from phimask.monitor import ResidualMonitor
from phimask.pipeline import Document, Masker, Rejection
from phimask.policy import compile_policy, load_yaml
from tests.conftest import fixed_keyring

GAP_POLICY = """\
version: 1
profile: none
unmapped_strings: keep
fields:
  - {path: patient.phone, action: fpe}
  - {path: patient.mrn, action: hmac}
  - {path: note, action: scan}
detectors: {disabled: [email]}
"""


def masker(mode: str = "alert", rate: float = 1.0) -> Masker:
    plan = compile_policy(load_yaml(GAP_POLICY, "gap.yaml"), state_dir=Path("/x"),
                          keys=fixed_keyring())
    return Masker(plan, Scanner.build(plan.detectors),
                  monitor=ResidualMonitor(plan.detectors, rate, mode, rng=random.Random(7)))


def batch() -> list[Document | Rejection]:
    return [{"payload": {"patient": {"ssn": "123-45-6789", "phone": "617-555-0142",
                                     "mrn": "MRN-00123456"},
                         "note": "mail ann.lee@example.org or call 212-555-0188"},
             "attributes": {}},
            {"payload": {"patient": {"phone": "617-555-0199"}, "note": "fine"},
             "attributes": {}}]


def test_a_missing_rule_is_found_by_detector_and_path_within_one_batch(
        caplog: pytest.LogCaptureFixture) -> None:
    m = masker()
    with caplog.at_level(logging.WARNING, logger="phimask.pipeline"):
        assert m.mask_batch(batch()) == [None, None]  # alert mode: emitted, but known
    residual = m.take_stats().residual
    # The SSN no rule names, and the e-mail the policy's scan had disabled; not the
    # fpe'd phone (looks like a phone on purpose), not the hmac, not the redacted phone.
    assert residual == {("ssn", "payload.patient.ssn"): 1, ("email", "payload.note"): 1}
    logged = [r for r in caplog.records if r.getMessage().startswith("residual PHI")]
    assert {(r.__dict__["detector"], r.__dict__["path"]) for r in logged} == set(residual)
    assert "123-45-6789" not in caplog.text and "ann.lee" not in caplog.text


def test_block_mode_rejects_the_record() -> None:
    results = masker("block").mask_batch(batch())
    assert isinstance(results[0], Rejection) and results[0].reason == "residual_phi"
    assert results[1] is None


def test_sampling_rate_is_honoured() -> None:
    monitor = ResidualMonitor((), 0.25, "alert", rng=random.Random(1))
    share = sum(monitor.sampled() for _ in range(4000)) / 4000
    assert 0.2 < share < 0.3
    never = ResidualMonitor((), 0.0, "alert")
    assert not any(never.sampled() for _ in range(100))
    unsampled = masker(rate=0.0)
    unsampled.mask_batch(batch())
    assert not unsampled.take_stats().residual


def test_drift_counts_values_at_paths_no_rule_names_with_their_detector_hits() -> None:
    m = masker()
    m.mask_batch(batch())
    stats = m.take_stats()
    # patient.phone and patient.mrn are named; note has a scan rule; the rest is drift
    assert stats.unmapped == {"payload.patient.ssn": 1}
    assert stats.unmapped_phi == {"payload.patient.ssn": 1}
    assert m.names(("payload", "patient", "phone")) and not m.names(("payload", "x"))
    assert m.names(("payload", "note"))


def test_kept_values_are_a_decision_not_a_finding() -> None:
    policy = ("version: 1\nprofile: none\nunmapped_strings: keep\n"
              "fields:\n  - {path: audit.when, action: keep}\n  - {path: meta, action: keep}\n")
    plan = compile_policy(load_yaml(policy, "keep.yaml"), state_dir=Path("/x"),
                          keys=fixed_keyring())
    m = Masker(plan, Scanner.build(plan.detectors),
               monitor=ResidualMonitor(plan.detectors, 1.0, "alert"))
    docs: list[Document | Rejection] = [{"payload": {
        "audit": {"when": "2024-03-01"}, "meta": {"contact": "bo@example.org"},
        "other": "call 617-555-0142"}, "attributes": {}}]
    m.mask_batch(docs)
    assert m.take_stats().residual == {("phone", "payload.other"): 1}
