"""Soak and chaos (bench.soak) against a real `phimask serve --workers 2` forwarding to a
real downstream (`bench.sink --record`) that is SIGKILLed and restarted, with masking
workers SIGKILLed and a graceful drain (SIGTERM) under load at the end.

* `test_chaos_short`: every CI run, ~30 s wall: two-ish downstream kills, two-ish worker
  kills, the drain; every invariant of bench.soak must hold (nothing acked lost, nothing
  unmasked, no PHI in logs, only retryable statuses, killed workers replaced, exit 0 on
  SIGTERM, RSS of the server and the never-killed worker flat within a loose bound).
* `test_soak_full`: `@pytest.mark.slow`, the 10-minute run at half the calibrated peak:
  `pytest -m slow tests/robustness/test_soak.py` (the default addopts exclude slow).

The other tests need no server: they show each check can fail (unmasked PHI, a lost
record, a torn record file, RSS growth), and that the soak corpus survives masking by
the default policy with its ids intact and all of its seeded PHI masked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.chaos import MIB, RssSeries, rss_verdict
from bench.sink import FRAME, TAGS, read_recorded
from bench.soak import (
    ENCODE,
    FORWARD_PROTOCOLS,
    SoakConfig,
    account,
    phi_hits,
    record,
    run_soak,
    verify_arrivals,
)
from phimask.adapters.native import Limits
from phimask.adapters.otlp import OTLP_ROOTS, transform_export
from phimask.adapters.vector import VECTOR_ROOTS, transform_push
from phimask.detect import Scanner
from phimask.integrity import build_verifier
from phimask.pipeline import Masker
from phimask.policy import compile_policy, default_policy_text, load_yaml
from tests.conftest import fixed_keyring

pytestmark = pytest.mark.skipif(not Path("/proc/self/statm").exists(),
                                reason="reads RSS and workers from /proc (Linux)")


def failed_invariants(report: dict[str, Any]) -> list[str]:
    return [name for name, ok in report["invariants"].items() if not ok]


def explain(report: dict[str, Any]) -> str:
    keys = ("invariants", "calls", "records", "unmasked", "phi_in_logs", "chaos", "drain", "rss")
    return orjson.dumps({k: report[k] for k in keys}, option=orjson.OPT_INDENT_2).decode()


# --- the short chaos run: every CI run ---------------------------------------------------------

def short_config(out: Path) -> SoakConfig:
    return SoakConfig(
        duration=16.0, calibrate_seconds=3.0, load=0.5,
        # First kills at <= 4.5 s and <= 6 s, chaos until 13.5 s: at least one of each.
        sink_up=(3.0, 4.5), sink_down=(1.0, 2.0), worker_kill_every=(4.0, 6.0), quiet=2.5,
        # 16 s is no soak for memory: this only catches gross growth (the slow test judges).
        warmup=3.0, rss_interval=0.5, rss_tolerance_mib=32.0, rss_tolerance_ratio=0.5,
        progress_every=5.0, startup_timeout=120.0, seed=11, out=out,
    )


def test_chaos_short(tmp_path: Path) -> None:
    out = tmp_path / "results"
    report = run_soak(short_config(out))
    why = explain(report)
    chaos, records, drain = report["chaos"], report["records"], report["drain"]
    # The chaos and the load happened...
    assert chaos["downstream_kills"] >= 1, why
    assert chaos["worker_kills"] >= 1, why
    assert records["acked"] > 0 and report["calls"]["ok"] > 0, why
    assert drain["inflight_at_sigterm"] >= 1, why
    # ...and every invariant held through it.
    assert records["lost"] == 0, why
    assert report["unmasked"]["total"] == 0, why
    assert not report["phi_in_logs"], why
    assert drain["exit_code"] == 0, why
    assert chaos["workers_respawned"] == chaos["worker_kills"], why
    assert {v["role"] for v in report["rss"]["verdicts"]} == {"server", "worker (witness)"}, why
    assert failed_invariants(report) == [], why
    assert report["ok"] is True
    written = orjson.loads((out / "soak.json").read_bytes())
    assert written["records"] == records
    assert "| lost (acked, never arrived) | 0 |" in (out / "soak.md").read_text()


# --- the full soak: pytest -m slow -------------------------------------------------------------


@pytest.mark.slow
def test_soak_full(tmp_path: Path) -> None:
    """The 10-minute soak at half the calibrated peak, the script's defaults."""
    report = run_soak(SoakConfig(duration=600.0, out=tmp_path / "results"))
    assert report["chaos"]["downstream_kills"] >= 1 and report["chaos"]["worker_kills"] >= 1
    assert failed_invariants(report) == [], explain(report)


# --- the checks themselves can fail --------------------------------------------------------------


def write_frames(path: Path, frames: list[tuple[str, bytes]]) -> None:
    with path.open("ab") as f:
        for protocol, data in frames:
            f.write(FRAME.pack(TAGS[protocol], len(data)) + data)


def test_unmasked_records_are_found_by_kind(tmp_path: Path) -> None:
    """The originals, forwarded as they are: every kind of seeded PHI is reported."""
    path = tmp_path / "sink-0.bin"
    write_frames(path, [(p, ENCODE[p]([record(i) for i in range(k * 5, k * 5 + 5)], 5)[0])
                        for k, p in enumerate(FORWARD_PROTOCOLS)])
    arrivals = verify_arrivals([path], sent=10)
    assert set(arrivals.unmasked) == {"ssn", "email", "mrn", "phone", "name"}
    assert len(arrivals.where) == 2
    assert "123-45-6789" not in " ".join(arrivals.where)  # kinds and places, never values
    assert list(arrivals.counts) == [1] * 10 and arrivals.without_id == 0


def test_lost_duplicated_and_unacked_records_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "sink-0.bin"
    batch = ENCODE["vector"]([record(i) for i in range(4)], 4)[0]
    write_frames(path, [("vector", batch), ("vector", batch)])  # a retry: 0-3 twice
    arrivals = verify_arrivals([path], sent=6)
    assert list(arrivals.counts) == [2, 2, 2, 2, 0, 0]
    acked = bytes([1, 1, 0, 0, 1, 0])  # 4 acked but never arrived; 2, 3 from failed calls
    assert account(acked, arrivals.counts) == {
        "arrived": 4, "lost": 1, "duplicates": 4, "arrived_unacked": 2}
    assert account(bytes([1, 1, 1, 1]), arrivals.counts)["lost"] == 0


def test_torn_and_foreign_frames_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "sink-0.bin"
    batch = ENCODE["otlp"]([record(i) for i in range(3)], 3)[0]
    write_frames(path, [("otlp", batch)])
    with path.open("ab") as f:  # a sink killed in the middle of a write
        f.write(FRAME.pack(b"o", 1000) + b"x" * 10)
    frames, torn = read_recorded(path)
    assert len(frames) == 1 and torn == FRAME.size + 10
    arrivals = verify_arrivals([path], sent=2)  # seq 2 was never sent
    assert arrivals.unknown_ids == 1 and arrivals.torn_bytes == torn
    no_ids = ENCODE["otlp"]([{"msg": "no id here"}], 1)[0]
    write_frames(tmp_path / "sink-1.bin", [("otlp", no_ids)])
    assert verify_arrivals([tmp_path / "sink-1.bin"], sent=1).without_id == 1


def test_rss_verdict_tells_flat_from_growing() -> None:
    flat, growing = RssSeries("server", 1), RssSeries("server", 2)
    for i in range(60):
        flat.add(i, 100 * MIB + (i % 5) * MIB)  # noise, no trend
        growing.add(i, 100 * MIB + i * MIB)  # 1 MiB a sample
    assert rss_verdict(flat, 6, tolerance_mib=16, tolerance_ratio=0.1)["ok"] is True
    verdict = rss_verdict(growing, 6, tolerance_mib=16, tolerance_ratio=0.1)
    assert verdict["ok"] is False and verdict["growth_mib"] > 30
    assert rss_verdict(flat, 58, tolerance_mib=16, tolerance_ratio=0.1)["ok"] is None


def test_default_policy_masks_the_soak_corpus_and_keeps_ids(tmp_path: Path) -> None:
    """In process: what the soak relies on. Each record's id survives masking (the
    top-level `trace_id` keep hint) and none of its seeded PHI does."""
    keys = fixed_keyring()
    records = [record(i) for i in (0, 1, 9_998, 9_999, 123_456, 899_910, 4_000_000)]
    for roots, protocol, transform in ((OTLP_ROOTS, "otlp", transform_export),
                                       (VECTOR_ROOTS, "vector", transform_push)):
        plan = compile_policy(load_yaml(default_policy_text(), "<default>"), roots=roots,
                              keys=keys, state_dir=tmp_path)
        masker = Masker(plan, Scanner.build(plan.detectors), build_verifier(plan.integrity, keys))
        request = ENCODE[protocol](records, len(records))[0]
        assert phi_hits(request)  # the originals carry it
        result: Any = transform(masker, request, Limits())
        assert not result.rejections
        assert phi_hits(result.forward) == {}, protocol
        path = tmp_path / f"{protocol}.bin"
        write_frames(path, [(protocol, result.forward)])
        arrivals = verify_arrivals([path], sent=4_000_001)
        assert arrivals.without_id == 0 and not arrivals.unmasked
        assert sum(arrivals.counts) == len(records)


def test_seeded_values_are_unique_and_valid() -> None:
    """Distinct records carry distinct PHI, and SSNs the detector accepts (SSA rules)."""
    seqs = range(0, 2_000_000, 997)
    ssns = [record(s)["patient"]["ssn"] for s in seqs]
    assert len(set(ssns)) == len(ssns)
    for ssn in ssns:
        area, group, serial = ssn.split("-")
        assert 100 <= int(area) < 600 and group != "00" and serial != "0000"
