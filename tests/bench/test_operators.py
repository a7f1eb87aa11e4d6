"""bench.operators in its quick mode: well-formed, plausible results, and no corpus value
anywhere in what it writes or prints."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import orjson
import pytest

from bench.corpus import generate_records, planted_phi
from bench.operators import OPERATOR_CASES, QUICK, main


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, str]:
    """(operators.json, operators.md, what went to stderr) of one --quick run."""
    out = tmp_path_factory.mktemp("operators")
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["--quick", "--out", str(out)])
    assert code == 0, stderr.getvalue()
    report = orjson.loads((out / "operators.json").read_bytes())
    md = (out / "operators.md").read_text()
    assert stdout.getvalue().strip() == md.strip()
    return report, md, stderr.getvalue()


def test_every_operator_has_a_positive_cost(quick_run: tuple[dict[str, Any], str, str]) -> None:
    report, md, _ = quick_run
    rows = report["operators"]
    names = {r["operator"] for r in rows}
    assert {c.operator for c in OPERATOR_CASES} | {"tokenize"} <= names
    inputs = {r["input"].split(":")[0] for r in rows if r["operator"] == "tokenize"}
    assert inputs == {"miss", "hit", "stored, no cache"}
    for r in rows:
        assert 0 < r["min_us"] <= r["median_us"] <= r["max_us"], r["operator"]
        assert r["values"] > 0 and r["repeats"] == QUICK.repeats
        assert f"| {r['operator']} | {r['input']} |" in md
    by = {(r["operator"], r["input"].split(":")[0]): r["median_us"] for r in rows}
    assert by["tokenize", "miss"] > by["tokenize", "hit"]  # a write beats a cache look-up


def test_signatures_per_batch_hmac_is_cheaper_than_per_record_ed25519(
    quick_run: tuple[dict[str, Any], str, str],
) -> None:
    sig = quick_run[0]["signatures"]
    assert sig["records"] == 1000 and sig["request_bytes"] > 0
    cost = {(r["scope"], r["algorithm"]): r["us_per_batch"] for r in sig["rows"]}
    assert set(cost) == {
        (s, a) for s in ("per-record", "per-batch") for a in ("HMAC-SHA256", "Ed25519")
    }
    assert all(v > 0 for v in cost.values())
    assert cost["per-batch", "HMAC-SHA256"] < cost["per-record", "Ed25519"]
    assert sig["ratios"]["per_record_ed25519_over_per_batch_hmac"] > 1


def test_transform_rows_cover_each_way_of_signing(
    quick_run: tuple[dict[str, Any], str, str],
) -> None:
    report, md, _ = quick_run
    rows = report["transform"]
    assert [r["case"] for r in rows] == [
        "off",
        "batch-hmac",
        "batch-ed25519",
        "record-hmac",
        "record-ed25519",
    ]
    assert all(r["records_per_s"] > 0 and r["records"] == 1000 for r in rows)
    assert rows[0]["relative_throughput"] == 1.0
    assert "## transform_request end to end" in md
    assert report["machine"]["cores"] and report["config"]["profile"] == "quick"


def test_no_corpus_value_is_written_or_printed(
    quick_run: tuple[dict[str, Any], str, str],
) -> None:
    report, md, progress = quick_run
    assert "operators: fpe" in progress and "transform_request:" in progress
    written = orjson.dumps(report).decode() + md + progress
    for record in generate_records(QUICK.records):
        for value in planted_phi(record):
            assert value not in written
