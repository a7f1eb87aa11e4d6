"""`phimask audit verify`: check the hash chain and MACs of the audit log."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .config import Settings
from .keyring import KeyLoadError, Keyring
from .telemetry.audit_log import VerifyReport, log_files, rotation_order, verify_files

EXIT_INTACT = 0
EXIT_TAMPERED = 1
EXIT_UNVERIFIED = 2

AddSettings = Callable[..., None]

VERIFY_DESCRIPTION = """\
Check the audit log: every line a whole entry sealed (HMAC-SHA256) with the audit key
its kid names, seq going up by one and prev the SHA-256 of the line before, across
rotated files. Entries are never printed: a finding names the file, the line and the
kind of problem.

With no FILE: the configured log (--audit-log, default <state-dir>/audit/audit.jsonl)
and its rotated files. FILEs are read oldest first; files of one log (audit.jsonl.1,
audit.jsonl.2, ..., audit.jsonl, the live file last) are put in that order whatever
order they come in, so a shell glob works. A directory stands for the log in it.
"""

VERIFY_EPILOG = """\
kinds of problem:
  truncated       the file ends inside a line (cut, or an interrupted write)
  malformed       a line that is not an audit entry
  bad_mac         an entry was edited, or sealed with another key
  unknown_key     sealed with an audit key the keyring lacks (keep old audit keys)
  seq_gap         entries missing (deleted lines, a deleted rotated file)
  reordered       entries or files out of order
  duplicate       an entry repeated
  prev_mismatch   the line before was changed, removed or moved
  missing_head    the chain does not start at seq 1 (--allow-pruned if archived)
  chain_break     phimask found its log damaged on start and restarted the chain
  missing_tail    the log ends before --expect-last-seq

A log cut cleanly after a whole line, or missing its newest files, looks like a
shorter intact log. Note the last seq somewhere else (your SIEM, a ticket) and pass
it as --expect-last-seq to catch that. A line being written while this runs may show
as truncated; verify rotated files, or run again.

exit status: 0 intact ("N entries, chain intact, last seq S"); 1 a problem (the first
as "FILE line L: KIND: explanation", then totals); 2 not verifiable (no audit key,
unreadable file).

examples:
  phimask audit verify --keys-dir /etc/phimask/keys
  phimask audit verify --state-dir /var/lib/phimask /var/lib/phimask/audit/*
  phimask audit verify --keys-dir keys --expect-last-seq 48213 archive/ audit.jsonl
"""


class _Unverifiable(Exception):
    pass


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser],
               add_settings: AddSettings) -> None:
    audit = commands.add_parser(
        "audit", help="verify the hash-chained audit log",
        description="phimask writes every audited decision to a hash-chained, HMAC-sealed "
        "JSONL log (HIPAA 164.312(b)). `phimask audit verify` checks that log.")
    actions = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    verify = actions.add_parser(
        "verify", help="check the chain and MACs; print the first problem",
        description=VERIFY_DESCRIPTION, epilog=VERIFY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    verify.add_argument("files", nargs="*", type=Path, metavar="FILE",
                        help="log files or a directory (default: the configured log)")
    verify.add_argument("--expect-last-seq", type=int, metavar="N",
                        help="the log must reach seq N (catches entries cut from the end)")
    verify.add_argument("--allow-pruned", action="store_true",
                        help="the oldest files were archived: the chain may start after seq 1")
    add_settings(verify, only=("state_dir", "keys_dir", "audit_log"))


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        files = _files(args.files, settings)
        report = verify_files(files, _keys(settings), expect_last_seq=args.expect_last_seq,
                              allow_pruned=args.allow_pruned)
    except (_Unverifiable, KeyLoadError, OSError) as exc:
        print(f"phimask: error: {exc}", file=sys.stderr)
        return EXIT_UNVERIFIED
    return _print_report(report)


def _print_report(report: VerifyReport) -> int:
    last = report.last_seq or 0
    if report.first_problem is None:
        print(f"{_count(report.entries, 'entry', 'entries')}, chain intact, last seq {last}")
        return EXIT_INTACT
    print(report.first_problem)
    print(f"{_count(report.problem_count, 'problem', 'problems')}; "
          f"{_count(report.entries, 'entry', 'entries')} in "
          f"{_count(len(report.files), 'file', 'files')}, last seq {last}")
    return EXIT_TAMPERED


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _files(given: Sequence[Path], settings: Settings) -> list[Path]:
    if not given:
        files = log_files(settings.audit_log_path)
        if not files:
            raise _Unverifiable(f"no audit log at {settings.audit_log_path}")
        return files
    expanded = [f for path in given for f in (_directory(path) if path.is_dir() else [path])]
    return rotation_order(expanded) or expanded


def _directory(path: Path) -> list[Path]:
    files = sorted(f for f in path.iterdir() if f.is_file() and not f.name.startswith("."))
    if not files:
        raise _Unverifiable(f"{path} holds no log files")
    if rotation_order(files) is None:
        raise _Unverifiable(f"{path} holds files of more than one log; name the files")
    return files


def _keys(settings: Settings) -> Keyring:
    keys = Keyring.load(settings.keys_dir, local_dir=settings.state_dir / "keys")
    if not keys.has("audit"):
        where = settings.keys_dir or settings.state_dir / "keys"
        raise KeyLoadError(f"no audit key in {where} or PHIMASK_KEY_AUDIT: verifying needs "
                           "the keys that sealed the log; point --keys-dir (or --state-dir) "
                           "where phimask keeps them")
    return keys
