"""`phimask discover` as a user runs it: files, stdin, formats, bad lines."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import orjson
import pytest
import yaml

from tests.discover import discover, write_ndjson

LINES = [
    {"patient": {"ssn": "123-45-6789", "email": "ann.lee@example.org"}, "msg": "ok"},
    {"patient": {"ssn": "219-09-9999", "email": "bob@corp.example.com"},
     "msg": "call 617-555-0142"},
]


def test_bad_lines_are_reported_by_number_never_by_content(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample = tmp_path / "in.ndjson"
    good = [orjson.dumps(x) for x in LINES]
    sample.write_bytes(b"\n".join([good[0], b'{"ssn": "078-05-1120"', b"", b"[1, 2]", good[1],
                                   b'"4111 1111 1111 1111"']) + b"\n")
    report = tmp_path / "report.md"
    assert discover(str(sample), "--report", str(report)) == 0
    captured = capsys.readouterr()
    policy = yaml.safe_load(captured.out)
    assert {r["path"] for r in policy["fields"]} >= {"patient.ssn", "patient.email", "msg"}
    assert "line 2: skipped: invalid JSON" in captured.err
    assert "line 4: skipped: not a JSON object" in captured.err
    assert "line 6: skipped: not a JSON object" in captured.err
    text = report.read_text()
    assert "* line 2: invalid JSON" in text and "unreadable lines skipped: 3" in text
    for leaked in ("078-05-1120", "4111 1111 1111 1111", "123-45-6789", "ann.lee@example.org"):
        assert leaked not in captured.err + captured.out + text


def test_standard_input_and_no_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    data = b"".join(orjson.dumps(x) + b"\n" for x in LINES)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    out = tmp_path / "p.yaml"
    assert discover("-", "--out", str(out), "--names", "redact") == 0
    assert yaml.safe_load(out.read_text())["version"] == 1
    assert "2 records" in capsys.readouterr().err

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"nope\n\n")))
    none = tmp_path / "none.yaml"
    assert discover("--out", str(none)) == 1
    assert "no record could be read" in capsys.readouterr().err
    assert not none.exists()

    assert discover(str(tmp_path / "missing.ndjson")) == 1
    assert "missing.ndjson" in capsys.readouterr().err


def test_vector_json_reads_like_ndjson(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    events = [{**x, "timestamp": "2024-05-01T10:00:00Z", "source_type": "file",
               "host": "node-1"} for x in LINES]
    sample = write_ndjson(tmp_path / "vector.json", events)
    assert discover("--format", "vector-json", str(sample)) == 0
    vector = capsys.readouterr().out
    assert discover("--format", "ndjson", str(sample)) == 0
    assert capsys.readouterr().out == vector
    assert "path: timestamp, action: keep" in vector


def test_otlp_json_bad_exports_are_named(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    sample = tmp_path / "otel.jsonl"
    record = {"body": {"stringValue": "call 617-555-0142"},
              "attributes": [{"key": "user.email",
                              "value": {"stringValue": "ann.lee@example.org"}}]}
    sample.write_bytes(b"\n".join([
        orjson.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [record]}]}]}),
        orjson.dumps({"resourceMetrics": []}),
        orjson.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [
            {"body": {"intValue": "twelve"}}]}]}]}),
    ]) + b"\n")
    assert discover("--format", "otlp-json", str(sample)) == 0
    captured = capsys.readouterr()
    assert "line 2: skipped: not an OTLP logs export (no resourceLogs list)" in captured.err
    assert "line 3: skipped: intValue is not an integer" in captured.err
    rules = {r["path"]: r["action"] for r in yaml.safe_load(captured.out)["fields"]}
    assert rules == {'attributes."user.email"': "redact"}  # a string body: no rule names it


def test_min_hit_rate_must_be_a_share(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        discover("--min-hit-rate", "2")
    assert exc.value.code == 2
    assert "between 0 and 1" in capsys.readouterr().err
