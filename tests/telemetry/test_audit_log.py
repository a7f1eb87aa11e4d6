"""The audit log: real files, a real keyring, every kind of tampering at its line."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from phimask.keyring import Key, Keyring, KeySet
from phimask.telemetry import audit_log
from phimask.telemetry.audit_log import (
    GENESIS_PREV,
    AuditLog,
    AuditLogBusy,
    log_files,
    rotated_files,
    rotation_order,
    verify_files,
)
from tests.conftest import fixed_keyring

TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def keys() -> Keyring:
    return fixed_keyring()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "audit" / "audit.jsonl"


def write(path: Path, keys: Keyring, count: int, **options: Any) -> None:
    with AuditLog(path, keys, **options) as log:
        for i in range(count):
            log.append("reidentify", {"caller": "svc-a", "i": i, "count": 3})


@pytest.fixture
def sealed(path: Path, keys: Keyring) -> Path:
    """A closed log of 20 entries, seq 1..20 on lines 1..20."""
    write(path, keys, 20)
    return path


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def put_lines(path: Path, content: list[bytes]) -> None:
    path.write_bytes(b"".join(content))


def entry(raw: bytes) -> dict[str, Any]:
    value = orjson.loads(raw)
    assert isinstance(value, dict)
    return value


def first(path: Path, keys: Keyring, **options: Any) -> tuple[str, str, int]:
    report = verify_files(log_files(path), keys, **options)
    problem = report.first_problem
    assert problem is not None, "expected a problem"
    return problem.path.name, problem.kind, problem.line


def test_entries_from_many_threads_form_one_intact_chain(path: Path, keys: Keyring) -> None:
    threads, per_thread = 8, 150
    log = AuditLog(path, keys)

    def work(t: int) -> None:
        for i in range(per_thread):
            log.append("authz.denied", {"thread": t, "i": i})

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    log.close()
    report = verify_files([path], keys)
    assert report.ok, report.first_problem
    assert (report.entries, report.last_seq) == (threads * per_thread, threads * per_thread)
    entries = [entry(line) for line in lines(path)]
    assert [e["seq"] for e in entries] == list(range(1, threads * per_thread + 1))
    for t in range(threads):  # each thread's entries keep its order
        assert [e["fields"]["i"] for e in entries if e["fields"]["thread"] == t] == list(
            range(per_thread))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_entry_format_as_specified(path: Path, keys: Keyring) -> None:
    write(path, keys, 2)
    one, two = lines(path)
    first_entry = entry(one)
    assert list(first_entry) == ["seq", "ts", "event", "fields", "prev", "kid", "mac"]
    assert first_entry["seq"] == 1 and first_entry["prev"] == GENESIS_PREV
    assert first_entry["kid"] == "t1" and TS.fullmatch(first_entry["ts"])
    unsealed = {k: v for k, v in first_entry.items() if k != "mac"}
    canonical = orjson.dumps(unsealed, option=orjson.OPT_SORT_KEYS)
    assert first_entry["mac"] == hmac.new(keys.active("audit").material, canonical,
                                          hashlib.sha256).hexdigest()
    assert entry(two)["prev"] == hashlib.sha256(one.rstrip(b"\n")).hexdigest()


def test_fields_are_copied_at_the_call_and_made_json(path: Path, keys: Keyring) -> None:
    fields: dict[Any, Any] = {"caller": "a", "where": Path("/x"), 7: "int key",
                              "obj": object()}
    with AuditLog(path, keys) as log:
        log.append("vault.open", fields)
        fields["caller"] = "changed"
    recorded = entry(lines(path)[0])["fields"]
    assert recorded["caller"] == "a" and recorded["where"] == "/x" and recorded["7"] == "int key"
    assert recorded["obj"].startswith("<object object")
    assert verify_files([path], keys).ok


def test_flush_makes_entries_readable_at_once(path: Path, keys: Keyring) -> None:
    log = AuditLog(path, keys)
    try:
        for i in range(5):
            log.append("key.load", {"i": i})
        assert log.flush(timeout=5)
        assert [entry(line)["seq"] for line in lines(path)] == [1, 2, 3, 4, 5]
        log.append("key.load", {"i": 5})
        assert log.flush(timeout=5)
        assert len(lines(path)) == 6
    finally:
        log.close()


def test_close_is_idempotent_and_later_entries_are_counted(path: Path, keys: Keyring) -> None:
    log = AuditLog(path, keys)
    log.append("a", {})
    log.close()
    log.close()
    assert log.closed
    log.append("late", {})
    assert log.dropped == 1
    assert log.flush(timeout=0.1)
    assert len(lines(path)) == 1


def test_one_writer_per_log(path: Path, keys: Keyring) -> None:
    log = AuditLog(path, keys)
    with pytest.raises(AuditLogBusy, match="one process writes a log"):
        AuditLog(path, keys)
    log.close()
    AuditLog(path, keys).close()


def test_reopening_continues_the_chain(path: Path, keys: Keyring) -> None:
    write(path, keys, 5)
    AuditLog(path, keys).close()  # opened and closed with nothing to write
    write(path, keys, 5)
    report = verify_files([path], keys)
    assert report.ok and report.last_seq == 10 and rotated_files(path) == []


def test_full_queue_blocks_then_drops_and_the_chain_records_it(
        path: Path, keys: Keyring, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        gate.wait(5)
        real_fsync(fd)

    log = AuditLog(path, keys, queue_size=2, block_seconds=0.01)
    monkeypatch.setattr(os, "fsync", slow_fsync)
    for i in range(10):
        log.append("x", {"i": i})
    dropped = log.dropped
    assert dropped >= 1
    gate.set()
    log.close()
    entries = [entry(line) for line in lines(path)]
    notes = [e for e in entries if e["event"] == "audit.dropped"]
    assert sum(n["fields"]["count"] for n in notes) == dropped
    assert len(entries) == 10 - dropped + len(notes)
    assert verify_files([path], keys).ok


# --- tampering, each found at its line ---------------------------------------------------

def test_sealed_log_verifies(sealed: Path, keys: Keyring) -> None:
    report = verify_files([sealed], keys)
    assert report.ok and report.entries == 20 and report.last_seq == 20
    assert report.first_problem is None


def test_edited_field_value(sealed: Path, keys: Keyring) -> None:
    content = lines(sealed)
    content[6] = content[6].replace(b'"caller":"svc-a"', b'"caller":"svc-b"')
    put_lines(sealed, content)
    report = verify_files([sealed], keys)
    assert [(p.line, p.kind) for p in report.problems] == [(7, "bad_mac"),
                                                            (8, "prev_mismatch")]


def test_deleted_line(sealed: Path, keys: Keyring) -> None:
    content = lines(sealed)
    del content[6]
    put_lines(sealed, content)
    report = verify_files([sealed], keys)
    assert [(p.line, p.kind) for p in report.problems] == [(7, "seq_gap")]
    assert "expected seq 7, found 8: 1 entry missing" in str(report.first_problem)


def test_swapped_lines(sealed: Path, keys: Keyring) -> None:
    content = lines(sealed)
    content[6], content[7] = content[7], content[6]
    put_lines(sealed, content)
    assert first(sealed, keys) == ("audit.jsonl", "reordered", 7)


def test_duplicated_line(sealed: Path, keys: Keyring) -> None:
    content = lines(sealed)
    content.insert(7, content[6])
    put_lines(sealed, content)
    assert first(sealed, keys) == ("audit.jsonl", "duplicate", 8)


def test_truncated_mid_line(sealed: Path, keys: Keyring) -> None:
    data = sealed.read_bytes()
    sealed.write_bytes(data[: len(data) - 40])
    assert first(sealed, keys) == ("audit.jsonl", "truncated", 20)


def test_garbage_line(sealed: Path, keys: Keyring) -> None:
    content = lines(sealed)
    content[3] = b'{"seq": 4}\n'
    put_lines(sealed, content)
    assert first(sealed, keys) == ("audit.jsonl", "malformed", 4)


def test_last_whole_line_removed_needs_the_expected_last_seq(sealed: Path,
                                                              keys: Keyring) -> None:
    put_lines(sealed, lines(sealed)[:-1])
    # A clean cut after a whole line leaves a shorter, intact log: undetectable alone.
    report = verify_files([sealed], keys)
    assert report.ok and report.last_seq == 19
    assert first(sealed, keys, expect_last_seq=20) == ("audit.jsonl", "missing_tail", 20)
    assert verify_files([sealed], keys, expect_last_seq=19).ok


def test_edit_resealed_with_a_wrong_key(sealed: Path, keys: Keyring) -> None:
    content = lines(sealed)
    forged = entry(content[6])
    forged["fields"]["count"] = 999
    forged["mac"] = audit_log.entry_mac(Key("t1", "audit", b"w" * 32), forged)
    content[6] = orjson.dumps(forged) + b"\n"
    put_lines(sealed, content)
    assert first(sealed, keys) == ("audit.jsonl", "bad_mac", 7)


def test_edit_resealed_with_the_right_key_still_breaks_the_chain(sealed: Path,
                                                                 keys: Keyring) -> None:
    content = lines(sealed)
    forged = entry(content[6])
    forged["fields"]["count"] = 999
    forged["mac"] = audit_log.entry_mac(keys.active("audit"), forged)
    content[6] = orjson.dumps(forged) + b"\n"
    put_lines(sealed, content)
    assert first(sealed, keys) == ("audit.jsonl", "prev_mismatch", 8)


def test_key_not_in_the_keyring(sealed: Path) -> None:
    other = Key("t2", "audit", b"k" * 32)
    assert first(sealed, Keyring({"audit": KeySet("audit", other, {"t2": other})})) == (
        "audit.jsonl", "unknown_key", 1)


def test_old_audit_keys_still_verify(path: Path, keys: Keyring) -> None:
    write(path, keys, 3)
    new = Key("t2", "audit", b"n" * 32)
    rotated_keys = Keyring({"audit": KeySet("audit", new,
                                            {"t1": keys.active("audit"), "t2": new})})
    write(path, rotated_keys, 3)
    assert [entry(line)["kid"] for line in lines(path)] == ["t1"] * 3 + ["t2"] * 3
    assert verify_files([path], rotated_keys).ok


# --- rotation ------------------------------------------------------------------------

@pytest.fixture
def rotated(path: Path, keys: Keyring) -> list[Path]:
    """30 entries over more than ten files."""
    write(path, keys, 30, max_bytes=700)
    return log_files(path)


def test_rotation_names_sizes_and_the_chain_across_files(rotated: list[Path], path: Path,
                                                         keys: Keyring) -> None:
    names = [p.name for p in rotated]
    assert names == [f"audit.jsonl.{n}" for n in range(1, len(names))] + ["audit.jsonl"]
    assert len(names) > 10
    assert all(0 < p.stat().st_size <= 700 for p in rotated)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in rotated)
    assert entry(lines(rotated[1])[0])["prev"] == hashlib.sha256(
        lines(rotated[0])[-1].rstrip(b"\n")).hexdigest()
    report = verify_files(rotated, keys)
    assert report.ok and report.entries == 30 and report.last_seq == 30
    # One file alone is not the whole chain.
    assert verify_files([path], keys).first_problem.kind == "missing_head"  # type: ignore[union-attr]
    assert verify_files([path], keys, allow_pruned=True).ok


def test_rotation_order_from_a_glob(rotated: list[Path]) -> None:
    globbed = sorted(rotated)  # audit.jsonl, audit.jsonl.1, audit.jsonl.10, audit.jsonl.2 ...
    assert globbed != rotated
    assert rotation_order(globbed) == rotated
    assert rotation_order([Path("a.jsonl"), Path("b.jsonl")]) is None


def test_deleted_rotated_file(rotated: list[Path], keys: Keyring) -> None:
    rotated[2].unlink()
    remaining = rotated[:2] + rotated[3:]
    problem = verify_files(remaining, keys).first_problem
    assert problem is not None
    assert (problem.path, problem.line, problem.kind) == (rotated[3], 1, "seq_gap")


def test_files_given_out_of_order(rotated: list[Path], keys: Keyring) -> None:
    problem = verify_files(sorted(rotated), keys).first_problem
    assert problem is not None and problem.kind == "missing_head"


def test_reopen_after_rotation_continues(rotated: list[Path], path: Path,
                                        keys: Keyring) -> None:
    write(path, keys, 3, max_bytes=700)
    report = verify_files(log_files(path), keys)
    assert report.ok and report.last_seq == 33


# --- a damaged tail on reopen ----------------------------------------------------------

@pytest.fixture
def warnings(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.WARNING, logger="phimask.telemetry.audit_log"):
        yield caplog


def test_a_cut_last_line_is_not_built_on(path: Path, keys: Keyring,
                                         warnings: pytest.LogCaptureFixture) -> None:
    write(path, keys, 10)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 30])
    write(path, keys, 3)
    assert any("chain.break" in r.getMessage() for r in warnings.records)
    files = log_files(path)
    assert [p.name for p in files] == ["audit.jsonl.1", "audit.jsonl"]
    marker = entry(lines(path)[0])
    assert marker["event"] == "chain.break" and marker["seq"] == 10
    assert marker["fields"]["file"] == "audit.jsonl.1"
    assert marker["fields"]["resumed_after_seq"] == 9
    report = verify_files(files, keys)
    assert [(p.path.name, p.line, p.kind) for p in report.problems] == [
        ("audit.jsonl.1", 10, "truncated"), ("audit.jsonl", 1, "chain_break")]
    assert report.last_seq == 13
    # The new file alone still shows the break.
    alone = verify_files([path], keys).first_problem
    assert alone is not None and (alone.line, alone.kind) == (1, "chain_break")


def test_a_forged_last_line_is_not_built_on(path: Path, keys: Keyring,
                                            warnings: pytest.LogCaptureFixture) -> None:
    write(path, keys, 4)
    content = lines(path)
    content[-1] = content[-1].replace(b'"i":3', b'"i":4')
    put_lines(path, content)
    write(path, keys, 1)
    marker = entry(lines(path)[0])
    assert marker["event"] == "chain.break" and marker["fields"]["resumed_after_seq"] == 3
    kinds = [p.kind for p in verify_files(log_files(path), keys).problems]
    assert kinds == ["bad_mac", "chain_break"]


def test_a_rotation_cut_short_is_finished_on_open(rotated: list[Path], path: Path,
                                                  keys: Keyring) -> None:
    # Crash between the link and the unlink: both names on the live file.
    half_rotated = path.with_name(f"audit.jsonl.{len(rotated)}")
    os.link(path, half_rotated)
    write(path, keys, 2, max_bytes=700)
    files = log_files(path)
    assert files[-2] == half_rotated and not os.path.samefile(files[-1], half_rotated)
    report = verify_files(files, keys)
    assert report.ok and report.last_seq == 32
