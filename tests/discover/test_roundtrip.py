"""The round trip: a policy discover proposes from a sample, used by `phimask mask` on the
same sample, leaves no original PHI value, and the full detector set finds nothing in
what no value operator produced. The policy and the report never hold a sample value."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from bench.corpus import generate_records, msg_phi, planted_phi
from phimask.adapters.native import Limits
from phimask.adapters.otlp import OTLP_ROOTS, transform_export
from phimask.cli import main
from phimask.config import Settings
from phimask.discover import any_value, otlp_documents
from phimask.discover.sources import key_values
from phimask.runtime import build_masker
from tests.conftest import fixed_keyring
from tests.discover import (
    LOG_FIELDS,
    discover,
    full_scanner,
    generic_path,
    residual_hits,
    write_ndjson,
)

REPO = Path(__file__).resolve().parents[2]
# bench/corpus.py writes names in messages as two capitalized words.
_NAME = re.compile(r"[A-Z][A-Za-z'-]+ [A-Z][A-Za-z'-]+")


def _fields(policy: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    data = yaml.safe_load(policy.read_text())
    out = {}
    for rule in data["fields"]:
        options = {k: v for k, v in rule.items() if k not in ("path", "action")}
        out[rule["path"]] = (rule["action"], options)
    return out


def _assert_nothing_leaks(texts: dict[str, str], values: set[str]) -> None:
    for name, text in texts.items():
        for value in values:
            assert value not in text, f"a sample value is in the {name}"


def _check(policy: Path, state: Path) -> int:
    return main(["check", str(policy), "--state-dir", str(state)])


# -- the seeded bench corpus, through the real `phimask mask` ----------------------

@pytest.fixture(scope="module")
def corpus() -> list[dict[str, Any]]:
    return generate_records(3000, seed=11)


def test_corpus_round_trip_leaves_no_phi(corpus: list[dict[str, Any]], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    sample = write_ndjson(tmp_path / "sample.ndjson", corpus)
    policy, report = tmp_path / "policy.yaml", tmp_path / "coverage.md"
    assert discover(str(sample), "--out", str(policy), "--report", str(report)) == 0
    assert "3000 records" in capsys.readouterr().err
    state = tmp_path / "state"
    assert _check(policy, state) == 0  # `phimask check` passes
    capsys.readouterr()

    assert _fields(policy) == {
        "ts": ("keep", {}),
        "trace_id": ("keep", {}),
        "msg": ("scan", {}),
        "http.path": ("scan", {}),  # MRNs inside the URL path
        "patient.name": ("tokenize", {}),
        "patient.first_name": ("tokenize", {}),
        "patient.ssn": ("redact", {"type": "SSN"}),
        "patient.mrn": ("hmac", {}),
        "patient.dob": ("generalize", {"kind": "birth_date"}),
        "patient.phone": ("fpe", {}),
        "patient.email": ("redact", {"type": "EMAIL"}),
        "http.client_ip": ("redact", {"type": "IP"}),
        "patient.address.street": ("redact", {"type": "ADDRESS"}),
        "patient.address.city": ("redact", {"type": "ADDRESS"}),
        "patient.address.zip": ("zip3", {}),
    }

    env = {**os.environ, "PHIMASK_STATE_DIR": str(state),
           "PYTHONPATH": os.pathsep.join([str(REPO / "plugin"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "phimask", "mask", "--policy", str(policy),
                           str(sample)], capture_output=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    masked = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert len(masked) == len(corpus)

    # No original PHI value is left in its record: every planted value, personal names
    # inside the free-text `msg` included (the person_name detector finds them).
    names_in_text = 0
    for original, out in zip(corpus, masked, strict=True):
        text = orjson.dumps(out).decode()
        for value in planted_phi(original):
            assert value not in text, "a planted PHI value survived masking"
        names_in_text += sum(1 for v in msg_phi(original) if _NAME.fullmatch(v))
        assert out["patient"]["ssn"] == "[REDACTED:SSN]"
        assert out["patient"]["mrn"].startswith("hmac:")
        assert out["patient"]["name"].startswith("tok_")
        assert re.fullmatch(r"\d{4}|90\+", out["patient"]["dob"])
    assert names_in_text > 100  # the sample does put names in prose, and none survived

    # The full detector set finds nothing in strings no value operator produced (keep,
    # scan, unmapped paths, keys), except the log's own timestamp the profile keeps.
    plan = build_masker(Settings(policy=policy, state_dir=state), keys=fixed_keyring()).plan
    hits = residual_hits(plan, [{"payload": m} for m in masked], full_scanner())
    assert {generic_path(keys) for _, keys, _, _ in hits} <= {"ts"}
    assert all(rule == "ts" and keys[0] in LOG_FIELDS for _, keys, _, rule in hits)

    # Neither the policy nor the report holds a value of the sample.
    values = set().union(*(planted_phi(r) for r in corpus))
    _assert_nothing_leaks({"policy": policy.read_text(), "report": report.read_text()}, values)
    text = report.read_text()
    assert "personal names" in text and "`msg`" in text  # what scan on `msg` masks


# -- a hand-written sample: nested arrays, dotted and quoted keys, keys that are PHI ------

HAND: list[dict[str, Any]] = [
    {"ts": "2024-05-01T10:00:00Z", "event": "visit.update",
     "visit": {"admission_date": "03/14/2024",
               "notes": [{"author": "dr-7", "text": "Pt called from (617) 555-0142 about SSN "
                                                   "219-09-9999, mail ann.lee@example.org"},
                         {"author": "rn-2",
                          "text": "follow-up booked with Dr. Maria Lopez, nothing else"}],
               "history": [["2019-01-02", "flu"], ["2020-03-04", "MRN: 7654321 transferred"]]},
     "contacts": [{"kind": "email", "value": "ann.lee@example.org"},
                  {"kind": "phone", "value": "617-555-0142"}],
     "phones": ["+1 212 555 0188", "(617) 555-0142"],
     "k8s": {"app.kubernetes.io/name": "ehr-api", "pod_name": "ehr-7f9c"},
     "user.email": "bob@corp.example.com",
     "visits_by_email": {"ann.lee@example.org": 3, "bob@corp.example.com": 1},
     "attributes": {"caller ip": "10.1.2.3"},
     "born": "1944-02-29",
     'say "hi"': "please call 517-555-0199 tomorrow morning"},
    {"ts": "2024-05-01T10:00:01Z", "event": "visit.read",
     "visit": {"admission_date": "2024-03-15", "notes": [],
               "history": [["2021-06-07", "asthma"]]},
     "contacts": [{"kind": "email", "value": "carl.diaz@example.net"}],
     "phones": ["212-555-0143"],
     "k8s": {"app.kubernetes.io/name": "ehr-api", "pod_name": "ehr-7f9d"},
     "user": {"email": "dana.ng@example.com"},
     "visits_by_email": {"carl.diaz@example.net": 2},
     "attributes": {"caller ip": "10.1.2.4"},
     "born": None,
     'say "hi"': "nothing to report"},
    {"ts": "2024-05-01T10:00:02Z", "event": "visit.close",
     "visit": {"admission_date": "April 2, 2024",
               "notes": [{"author": "dr-7", "text": "discharged; fax 617-555-0177 to GP"}],
               "history": []},
     "contacts": [{"kind": "phone", "value": "+1 617 555 0166"}],
     "phones": [],
     "k8s": {"app.kubernetes.io/name": "scheduler", "pod_name": "sch-1"},
     "user.email": "erin.wu@example.org",
     "attributes": {"caller ip": "192.168.7.9"},
     "born": "12/31/1950",
     'say "hi"': "ok"},
]
HAND_PHI = {"(617) 555-0142", "219-09-9999", "ann.lee@example.org", "7654321",
            "617-555-0142", "+1 212 555 0188", "bob@corp.example.com", "10.1.2.3",
            "1944-02-29", "517-555-0199", "03/14/2024", "carl.diaz@example.net", "212-555-0143",
            "dana.ng@example.com", "10.1.2.4", "2024-03-15", "April 2, 2024", "617-555-0177",
            "+1 617 555 0166", "erin.wu@example.org", "192.168.7.9", "12/31/1950",
            "2019-01-02", "2020-03-04", "2021-06-07", "Maria Lopez"}


def test_hand_written_sample_round_trip(tmp_path: Path,
                                        capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    sample = write_ndjson(tmp_path / "hand.ndjson", HAND)
    policy, report = tmp_path / "policy.yaml", tmp_path / "coverage.md"
    assert discover(str(sample), "--out", str(policy), "--report", str(report)) == 0
    state = tmp_path / "state"
    assert _check(policy, state) == 0
    capsysbinary.readouterr()

    fields = _fields(policy)
    assert fields == {
        "ts": ("keep", {}),
        '"user.email"': ("redact", {"type": "EMAIL"}),  # a dotted key, before user.email
        "born": ("generalize", {"kind": "date"}),  # no hint: the date detector
        "phones[*]": ("fpe", {}),  # every value has 6+ digits
        "visits_by_email": ("drop", {}),  # its keys are e-mail addresses
        '"say \\"hi\\""': ("scan", {}),  # a key with quotes and a space
        "visit.admission_date": ("generalize", {"kind": "date"}),  # the hint
        "user.email": ("redact", {"type": "EMAIL"}),
        'payload.attributes."caller ip"': ("redact", {"type": "IP"}),
        "contacts[*].value": ("redact", {}),  # e-mails and phones: one action fits both
        "visit.notes[*].text": ("scan", {}),
        "visit.history[*][*]": ("scan", {}),  # dates and text mixed
    }
    assert list(fields)[:2] == ["ts", '"user.email"']

    assert main(["mask", "--policy", str(policy), "--state-dir", str(state), str(sample)]) == 0
    out = capsysbinary.readouterr().out
    masked = [orjson.loads(line) for line in out.splitlines()]
    assert len(masked) == len(HAND)
    for value in HAND_PHI:
        assert value.encode() not in out
    assert "visits_by_email" not in masked[0]
    assert masked[0]["k8s"] == HAND[0]["k8s"]  # non-PHI left alone
    assert masked[0]["born"] == "1944" and masked[2]["born"] == "1950"
    assert masked[0]["phones"][1].startswith("(") and masked[0]["phones"][1][4:6] == ") "

    plan = build_masker(Settings(policy=policy, state_dir=state), keys=fixed_keyring()).plan
    hits = residual_hits(plan, [{"payload": m} for m in masked], full_scanner())
    assert {generic_path(keys) for _, keys, _, _ in hits} <= {"ts"}

    _assert_nothing_leaks({"policy": policy.read_text(), "report": report.read_text()},
                          HAND_PHI)


# -- OTLP/JSON, as the Collector's file exporter writes it, through the OTLP adapter ----

def _any(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": [{"key": k, "value": _any(v)}
                                           for k, v in value.items()]}}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_any(v) for v in value]}}
    return {}


def _otlp_lines(records: list[dict[str, Any]], per_line: int) -> list[bytes]:
    lines = []
    for start in range(0, len(records), per_line):
        log_records = []
        for i, rec in enumerate(records[start:start + per_line], start):
            body = orjson.loads(orjson.dumps(rec))  # a deep copy: the record stays whole
            attributes = {"user.email": body["patient"].pop("email"),
                          "http.client_ip": body["http"].pop("client_ip"),
                          "service.name": body.pop("service")}
            log_record: dict[str, Any] = {"timeUnixNano": "1714557600000000000",
                                          "severityText": body.pop("level").upper(),
                                          "attributes": [{"key": k, "value": _any(v)}
                                                         for k, v in attributes.items()]}
            # Every tenth record logs a plain-string body (its message only).
            log_record["body"] = _any(body["msg"] if i % 10 == 0 else body)
            log_records.append(log_record)
        export = {"resourceLogs": [{
            "resource": {"attributes": [{"key": "host.name", "value": _any("node-1")},
                                        {"key": "k8s.pod.uid", "value": _any("7f9c-1")}]},
            "scopeLogs": [{"scope": {"name": "ehr"}, "logRecords": log_records}]}]}
        lines.append(orjson.dumps(export))
    return lines


def test_otlp_json_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = generate_records(600, seed=5)
    lines = _otlp_lines(records, per_line=100)
    sample = tmp_path / "otel.jsonl"
    sample.write_bytes(b"\n".join(lines) + b"\n{not json\n")
    policy, report = tmp_path / "policy.yaml", tmp_path / "coverage.md"
    assert discover("--format", "otlp-json", str(sample), "--out", str(policy),
                    "--report", str(report)) == 0
    assert "line 7: skipped: invalid JSON" in capsys.readouterr().err
    state = tmp_path / "state"
    assert _check(policy, state) == 0
    fields = _fields(policy)
    assert fields['attributes."user.email"'] == ("redact", {"type": "EMAIL"})
    assert fields['attributes."http.client_ip"'] == ("redact", {"type": "IP"})
    assert fields["patient.ssn"] == ("redact", {"type": "SSN"})
    assert fields["patient.phone"] == ("fpe", {})
    assert "ts" in fields and "msg" in fields
    assert not any(p.startswith("resource.") for p in fields)  # host name, pod uid: no PHI
    assert "(record)" in report.read_text()  # the plain-string bodies: no rule names them

    masker = build_masker(Settings(policy=policy, state_dir=state), keys=fixed_keyring(),
                          roots=OTLP_ROOTS)
    masked_docs: list[dict[str, Any]] = []
    for line in lines:
        request = json_format.Parse(line, ExportLogsServiceRequest())
        result = transform_export(masker, request.SerializeToString(), Limits())
        assert not result.rejections
        forwarded = json_format.MessageToDict(ExportLogsServiceRequest.FromString(
            result.forward))
        for doc in otlp_documents(forwarded):
            masked_docs.append({("body" if k == "payload" else k): v for k, v in doc.items()})
    assert len(masked_docs) == len(records)

    for original, out in zip(records, masked_docs, strict=True):
        text = orjson.dumps(out).decode()
        for value in planted_phi(original):  # names in the message included
            assert value not in text, "a planted PHI value survived masking"
    hits = residual_hits(masker.plan, masked_docs, full_scanner())
    assert {(root, generic_path(keys)) for root, keys, _, _ in hits} <= {("body", "ts")}
    _assert_nothing_leaks({"policy": policy.read_text(), "report": report.read_text()},
                          set().union(*(planted_phi(r) for r in records)))


def test_otlp_any_values_become_plain_values() -> None:
    value = _any({"s": "x", "i": 2**40, "f": 1.5, "b": True, "n": None,
                  "l": [1, "two", {"k": []}], "m": {}})
    assert any_value(value) == {"s": "x", "i": 2**40, "f": 1.5, "b": True, "n": None,
                                "l": [1, "two", {"k": []}], "m": {}}
    assert any_value({"bytesValue": "aGk="}) == b"hi"
    assert key_values([{"key": "a", "value": {"intValue": 1}},
                       {"key": "a", "value": {"intValue": "2"}}]) == {"a": 2}
