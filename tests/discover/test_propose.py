"""Proposals: the action fits what the values are, and never rejects a sample value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from phimask.config import Settings
from phimask.discover import discover_documents
from phimask.runtime import build_masker
from tests.conftest import fixed_keyring
from tests.discover import full_scanner

NAMES = ["Ann Lee", "Bob Stone", "Carla Diaz", "Dev Patel", "Erin Wu", "Farid Haddad",
         "Gina Rossi", "Hal Berg", "Ines Costa", "Jon Park", "Kira Ivanova", "Leo Marsh",
         "Mia Chen", "Nils Olsen", "Omar Aziz", "Pia Lund", "Quinn Hale", "Rosa Vega",
         "Sam Reed", "Tess Mori", "Uma Rao", "Vic Hall", "Wes Pike", "Yara Saleh"]


def _propose(records: list[dict[str, Any]], **kw: Any) -> dict[str, tuple[str, dict[str, Any]]]:
    found = discover_documents(({"payload": r} for r in records), scanner=full_scanner(), **kw)
    out = {}
    for rule in yaml.safe_load(found.policy)["fields"]:
        out[rule.pop("path")] = (rule.pop("action"), rule)
    return out


def test_actions_follow_the_detectors() -> None:
    records = [{"caller_phone": p, "callback": c, "chart": f"MRN: {m}", "seen": d,
                "member": f"MBR{m}", "where": ip}
               for p, c, m, d, ip in [
                   ("617-555-0142", "x12", "1234567", "2024-03-01", "10.0.0.1"),
                   ("(212) 555-0188", "617-555-0199", "7654321", "2024-03-02", "::1"),
                   ("+1 617 555 0166", "617-555-0177", "1122334", "2024-03-03", "10.0.0.3")]]
    rules = _propose(records)
    assert rules["caller_phone"] == ("fpe", {})  # hint phone, 6+ digits always
    assert rules["callback"] == ("redact", {"type": "PHONE"})  # `x12` is too short for fpe
    assert rules["chart"] == ("hmac", {})
    assert rules["seen"] == ("generalize", {"kind": "date"})
    assert rules["member"] == ("hmac", {})  # health_plan, whole
    assert rules["where"] == ("redact", {"type": "IP"})  # ipv4 and ipv6: one action


def test_an_operator_that_would_reject_a_sample_value_is_not_proposed() -> None:
    records = [{"dob": "1961-04-12", "zip": "02139", "admission_date": "yesterday",
                "visit": {"at": "2024-03-01"}},
               {"dob": "not given", "zip": "n/a", "admission_date": "2024-03-01",
                "visit": {"at": "2024-03-01"}},
               {"dob": "1970-01-02", "zip": "10001", "admission_date": "2024-03-02",
                "visit": {"at": {"date": "2024-03-02"}}}]
    rules = _propose(records)
    assert rules["dob"] == ("redact", {"type": "DOB"})
    assert rules["zip"] == ("redact", {"type": "ZIP"})
    assert rules["admission_date"] == ("redact", {"type": "DATE"})
    # sometimes an object: generalize would reach the values beneath it
    assert rules["visit.at"] == ("redact", {"type": "DATE"})
    assert rules["visit.at.date"] == ("generalize", {"kind": "date"})


def test_masking_the_sample_with_the_proposal_rejects_nothing(tmp_path: Path) -> None:
    records = [{"dob": d, "phone": p, "zip": z, "age": a}
               for d, p, z, a in [("4/12/1961", "617-555-0142", "02139", 93),
                                  ("unknown", "55", "021391234", "12"),
                                  ("1961", "617.555.0199", 2139, None)]]
    found = discover_documents(({"payload": r} for r in records), scanner=full_scanner())
    policy = tmp_path / "p.yaml"
    policy.write_text(found.policy)
    masker = build_masker(Settings(policy=policy, state_dir=tmp_path), keys=fixed_keyring())
    docs: list[Any] = [{"payload": dict(r)} for r in records]
    assert masker.mask_batch(docs) == [None, None, None]
    assert [d["payload"]["age"] for d in docs] == ["90+", "12", None]


def test_names_by_hint_or_by_detector(tmp_path: Path) -> None:
    records = [{"patient_name": n, "caller": n, "team": "Front Desk"} for n in NAMES]
    rules = _propose(records)
    assert rules["patient_name"] == ("tokenize", {})
    assert rules["caller"] == ("tokenize", {})  # the person_name detector, most values
    assert "team" not in rules  # one value: not a name field
    rules = _propose(records, names="redact")
    assert rules["caller"] == ("redact", {"type": "NAME"})
    found = discover_documents(({"payload": r} for r in records), scanner=full_scanner())
    assert "identifier: detectors are the whole value" in found.policy
    assert "person_name whole" in found.policy and "`caller`" in found.report
    for name in NAMES:
        assert name not in found.policy and name not in found.report


# Names in no census list: only their shape says what they are.
UNLISTED = [f"{a} {b}" for a in ("Xavo", "Yurel", "Zephyn", "Quonra", "Vexa", "Wulya")
            for b in ("Okonkwo", "Zbyszek", "Qarthen", "Vlonxa")]


def test_names_by_shape_when_no_detector_knows_them() -> None:
    records = [{"caller": n} for n in UNLISTED]
    assert _propose(records)["caller"] == ("tokenize", {})  # shaped like names, many distinct
    found = discover_documents(({"payload": r} for r in records), scanner=full_scanner())
    assert "shaped like personal names" in found.policy
    assert "`caller`" in found.report and "Review" in found.report
    for name in UNLISTED:
        assert name not in found.policy and name not in found.report


def test_min_hit_rate_decides_free_text() -> None:
    records = [{"note": "all fine, discharged"} for _ in range(199)]
    records.append({"note": "caller gave SSN 219-09-9999"})
    assert "note" not in _propose(records)  # 0.5% < 1%: judged non-PHI ...
    found = discover_documents(({"payload": r} for r in records), scanner=full_scanner())
    assert "under --min-hit-rate" in found.report  # ... and the report says why
    assert "unmapped_strings: scan" in found.report  # and that it is scanned anyway
    assert _propose(records, min_hit_rate=0.001)["note"] == ("scan", {})


def test_log_fields_are_kept_unless_they_carry_more_than_time() -> None:
    records = [{"ts": "2024-03-01T10:00:00Z", "time": "call 617-555-0142"},
               {"ts": "2024-03-01T10:00:01Z", "time": "ok"}]
    rules = _propose(records)
    assert rules["ts"] == ("keep", {})
    assert rules["time"] == ("scan", {})  # the profile would keep it unscanned


def test_several_hmac_detectors_keep_hmac() -> None:
    records = [{"ref": "MRN: 1234567"}, {"ref": "Account 123456789"},
               {"ref": "MRN: 7654321"}, {"ref": "Member ID 99887766"}]
    assert _propose(records)["ref"] == ("hmac", {})


@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_min_hit_rate_is_a_share(rate: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        _propose([{"a": "b"}], min_hit_rate=rate)
