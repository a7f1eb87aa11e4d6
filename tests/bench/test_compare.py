"""bench.compare in its quick mode: well-formed results for phimask's side always, and for
Presidio and scrubadub when they are installed (`pip install -e '.[compare]'`); without
them the peers are skipped with a message saying how to install them."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.compare import BATCH, QUICK, main, parse_args
from bench.corpus import generate_records, planted_phi

HAVE = {
    name: importlib.util.find_spec(module) is not None
    for name, module in (
        ("presidio", "presidio_analyzer"),
        ("scrubadub", "scrubadub"),
        ("matplotlib", "matplotlib"),
    )
}
PEER_MODULES = ("presidio_analyzer", "presidio_anonymizer", "scrubadub", "matplotlib")

Run = tuple[dict[str, Any], str, str, Path]


def run(out: Path, *args: str) -> Run:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["--quick", "--out", str(out), *args])
    assert code == 0, stderr.getvalue()
    report = orjson.loads((out / "compare.json").read_bytes())
    md = (out / "compare.md").read_text()
    assert stdout.getvalue().strip() == md.strip()
    return report, md, stderr.getvalue(), out


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run(tmp_path_factory.mktemp("compare"))


def test_phimask_record_cases(quick_run: Run) -> None:
    report, md, _, _ = quick_run
    rows = {r["key"]: r for r in report["records"]}
    assert list(rows) == ["floor", "safe-harbor", "safe-harbor-no-monitor", "otlp"]
    for r in rows.values():
        assert r["unit"] == "records" and r["tool"] == "phimask"
        assert r["items"] == QUICK.records * QUICK.passes
        assert r["calls"] == QUICK.passes * QUICK.records // BATCH
        assert 0 < r["p50_ms"] <= r["p99_ms"] and r["per_s"] > 0
        assert f"| {r['label']} |" in md
    # masking costs something: the floor (no masking at all) is the fastest
    assert rows["floor"]["per_s"] > rows["safe-harbor"]["per_s"]
    assert report["config"]["profile"] == "quick" and report["machine"]["cores"]


def test_scan_rows_and_peers(quick_run: Run) -> None:
    report, md, progress, _ = quick_run
    scan = {r["key"]: r for r in report["scan"]}
    assert {"phimask-scan", "phimask-scan-1"} <= set(scan)
    assert scan["phimask-scan"]["items"] == QUICK.records * QUICK.passes
    assert scan["phimask-scan"]["strings_changed"] > 0
    for peer in ("presidio", "scrubadub"):
        info = report["peers"][peer]
        if HAVE[peer]:
            assert info["available"] and info["version"]
            assert scan[peer]["items"] == QUICK.peer_strings
            assert scan[peer]["per_s"] > 0 and scan[peer]["strings_changed"] > 0
        else:
            assert not info["available"] and "pip install" in info["reason"]
            assert peer not in scan and "skipping" in progress
    targets = {t["target"]: t for t in report["targets"]}
    presidio = targets["phimask / Presidio strings/s"]
    assert presidio["goal"] == 30.0
    assert (presidio["value"] is not None) == HAVE["presidio"]
    floor = targets["safe-harbor / empty-policy floor records/s"]
    assert 0 < floor["value"] < 1 and isinstance(floor["met"], bool)
    assert "## Targets" in md and "| target | measured | goal | result |" in md


def test_rss_and_chart(quick_run: Run) -> None:
    report, md, _, out = quick_run
    worker = report["rss"]["worker"]
    assert 0 < worker["after_imports_mb"] <= worker["after_build_mb"] <= worker["peak_mb"]
    assert worker["peak_mb"] < 2000
    proc = report["rss"]["process"]
    assert proc["start_mb"] <= proc["corpus_mb"] <= proc["phimask_mb"] <= proc["peers_mb"]
    png = out / "compare.png"
    if HAVE["matplotlib"]:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert report["chart"]["path"] == "compare.png" and "compare.png" in md
    else:
        assert not png.exists() and "pip install" in report["chart"]["skipped"]


def test_no_corpus_value_is_written_or_printed(quick_run: Run) -> None:
    report, md, progress, _ = quick_run
    written = orjson.dumps({k: v for k, v in report.items() if k != "machine"}).decode()
    written += md.split("\n", 3)[3] + progress  # past the machine line
    for record in generate_records(QUICK.records):
        for value in planted_phi(record):
            assert value not in written


def test_without_peers_phimask_still_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a machine with only `.[dev]`: the peers' imports fail."""
    for module in PEER_MODULES:
        monkeypatch.setitem(sys.modules, module, None)
    report, md, progress, out = run(tmp_path, "--records", str(BATCH), "--passes", "1")
    assert [r["key"] for r in report["scan"]] == ["phimask-scan", "phimask-scan-1"]
    for peer in ("presidio", "scrubadub"):
        assert not report["peers"][peer]["available"]
        assert "pip install -e '.[compare]'" in report["peers"][peer]["reason"]
        assert f"skipping {'Presidio' if peer == 'presidio' else 'scrubadub'}" in progress
    assert "not measured" in md
    assert not (out / "compare.png").exists()


def test_arguments_are_checked() -> None:
    for bad in (["--records", "1500"], ["--passes", "0"], ["--peer-strings", "0"]):
        with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
            parse_args(bad)
    assert parse_args(["--quick"]).quick
