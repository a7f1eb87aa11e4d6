"""The harness's report (no processes started), and one smoke run of --signed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from bench.run import (
    BenchError,
    Signing,
    check_rejections,
    main,
    markdown,
    parse_args,
    require_integrity,
    table,
    versus_native,
)


def run(protocol: str, workers: int, rate: float, p50: float, p99: float) -> dict[str, Any]:
    peak: dict[str, Any] = {"records_per_s": rate, "mb_per_s": rate * 565 / 1e6}
    forward = protocol != "native"
    if forward:
        peak["sink"] = {"sink_cpu_cores": 0.02}
    return {
        "protocol": protocol,
        "workers": workers,
        "peak": peak,
        "peak_one_connection": None if forward else {"records_per_s": rate * 0.98},
        "latency": {"latency_ms": {"p50": p50, "p99": p99}},
        "sink": {"target": "127.0.0.1:1", "exit_status": 0} if forward else None,
    }


RUNS = [
    run("native", 1, 40_000, 20.0, 30.0),
    run("otlp", 1, 32_000, 24.0, 36.0),
    run("vector", 1, 20_000, 30.0, 50.0),
    run("native", 2, 70_000, 22.0, 33.0),
    run("otlp", 2, 56_000, 25.0, 40.0),
    run("vector", 2, 60_000, 23.0, 35.0),
]


def report(runs: list[dict[str, Any]], protocols: list[str]) -> dict[str, Any]:
    return {
        "machine": {
            "date": "2025-01-01T00:00:00+00:00",
            "cpu_model": "test cpu",
            "cores": 2,
            "python": "3.11",
            "git_commit": None,
            "git_dirty": None,
        },
        "config": {
            "protocols": protocols,
            "records": 20000,
            "seed": 1,
            "avg_record_bytes": 565.0,
            "batch_size": 1000,
            "policy": None,
            "load": 0.5,
        },
        "runs": runs,
        "sink_ceiling": {"otlp": {"records_per_s": 900_000, "sink": {"sink_cpu_cores": 1.0}}},
        "scaling_2_over_1_by_protocol": {"native": 1.75, "otlp": 1.75, "vector": 3.0},
        "vs_native": versus_native(runs),
    }


def test_versus_native_pairs_runs_by_worker_count() -> None:
    vs = versus_native(RUNS)
    assert set(vs) == {"otlp", "vector"}
    otlp1, otlp2 = vs["otlp"]
    assert (otlp1["workers"], otlp1["ratio"], otlp1["meets_target"]) == (1, 0.8, True)
    assert otlp1["added_p50_ms"] == pytest.approx(4.0)
    assert otlp1["added_p99_ms"] == pytest.approx(6.0)
    assert otlp2["ratio"] == pytest.approx(0.8)
    vector1, vector2 = vs["vector"]
    assert vector1["ratio"] == 0.5 and not vector1["meets_target"]
    assert vector2["added_p50_ms"] == pytest.approx(1.0)


def test_table_has_a_protocol_column_and_native_only_one_connection() -> None:
    lines = table(RUNS).splitlines()
    assert lines[0].startswith("| protocol | workers | records/s")
    body = lines[2:]
    assert [line.split("|")[1].strip() for line in body] == [
        "native",
        "native",
        "otlp",
        "otlp",
        "vector",
        "vector",
    ]
    assert body[0].endswith("| 39,200 |")
    assert body[2].endswith("| — |")


def test_markdown_reports_ratios_target_and_sink() -> None:
    md = markdown(report(RUNS, ["native", "otlp", "vector"]))
    assert "- otlp vs native: 1 worker: **0.80x** records/s, p50 +4.0 ms" in md
    assert "2 workers: **0.80x**" in md
    assert "(target >= 0.75x: met)" in md
    assert "- vector vs native: 1 worker: **0.50x**" in md
    assert "(target >= 0.75x: **not met**)" in md
    assert "otlp 900,000 records/s" in md
    assert "Scaling, 2 workers / 1 worker, native: **1.75x**" in md


def test_markdown_without_native_says_so() -> None:
    runs = [r for r in RUNS if r["protocol"] == "otlp"]
    md = markdown(report(runs, ["otlp"]))
    assert "no native run" in md


def test_protocols_default_to_all_and_run_in_canonical_order() -> None:
    assert parse_args([]).protocols == ["native", "otlp", "vector"]
    assert parse_args(["--protocols", "vector", "native", "vector"]).protocols == [
        "native",
        "vector",
    ]
    with pytest.raises(SystemExit):
        parse_args(["--protocols", "syslog"])


def test_require_integrity_merges_into_the_policy_mapping() -> None:
    bare = yaml.safe_load(require_integrity("version: 1\nfields: []\n", "hmac-sha256"))
    assert bare["integrity"] == {"mode": "require"}
    text = "version: 1\nintegrity: {mode: if_present, accept: [ed25519], sign_output: false}\n"
    merged = yaml.safe_load(require_integrity(text, "hmac-sha256"))["integrity"]
    assert merged == {"mode": "require", "accept": ["ed25519", "hmac-sha256"], "sign_output": False}


def test_check_rejections_fails_a_phase_rejected_whole_or_for_bad_signatures() -> None:
    signed = Signing("hmac", Path("keys"), Path("policy.yaml"), Path("key"), "bench-hmac")
    ok = {"records": 100, "rejected_records": 3, "rejection_reasons": {"operator_error:x": 3}}
    check_rejections(ok, None)
    check_rejections(ok, signed)
    everything = {"records": 100, "rejected_records": 100, "rejection_reasons": {}}
    with pytest.raises(BenchError, match="rejected all 100 records"):
        check_rejections(everything, None)
    bad = {
        "records": 100,
        "rejected_records": 1,
        "rejection_reasons": {"bad_signature:integrity:mismatch": 1},
    }
    check_rejections(bad, None)
    with pytest.raises(BenchError, match="bad signatures"):
        check_rejections(bad, signed)


def test_signed_hmac_smoke_run_accepts_every_record(tmp_path: Path) -> None:
    code = main(
        [
            "--protocols",
            "native",
            "--workers",
            "1",
            "--seconds",
            "1",
            "--warmup",
            "0",
            "--records",
            "200",
            "--batch-size",
            "100",
            "--signed",
            "hmac",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    result = orjson.loads((tmp_path / "latest.json").read_bytes())
    assert result["config"]["integrity"] == "signed hmac"
    (run_,) = result["runs"]
    assert run_["integrity"] == "signed hmac"
    for phase in ("peak", "peak_one_connection", "latency"):
        measured = run_[phase]
        assert measured["signed"] is True
        assert measured["records"] > 0
        assert measured["rejected_records"] == 0
        assert measured["accepted_records"] == measured["records"]
    md = (tmp_path / "latest.md").read_text()
    assert md.startswith("# phimask benchmark (signed hmac)")
    assert "Records rejected by phimask in the measured native phases: 0 of" in md
