"""`phimask discover`: a sample of logs in, a proposed policy and a coverage report out."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from .config import Settings
from .detect import Scanner, builtin_detectors
from .discover import DEFAULT_MIN_HIT_RATE, FORMATS, NAME_ACTIONS, Discovery, discover_stream
from .discover.propose import summary_line

MAX_BAD_PRINTED = 20
PROGRESS_FROM_BYTES = 1 << 20  # a bar only for files worth waiting on

DESCRIPTION = """\
Read a sample of log records, infer every field path, its JSON types, distinct count
and value shapes, run the built-in PHI detectors and the safe-harbor field-name hints
over it, and propose a policy: one rule per PHI path, with a comment saying why
(detector and hit rate, shape, hint). No value of the sample is stored or written:
distinct counts come from salted hashes, shapes map digits to d and letters to a/A.
The policy is checked with phimask's own loader before it is written.
"""

EPILOG = """\
examples:
  phimask discover sample.ndjson --out policy.yaml --report coverage.md
  phimask discover --format otlp-json otel-export.jsonl --out policy.yaml
  phimask mask --policy policy.yaml sample.ndjson     # then check what is left

Unreadable lines are reported by number (never content) and skipped; the exit status
is 1 only when no record could be read.
"""


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a number between 0 and 1") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def add_parser(commands: Any, add_settings: Callable[..., None]) -> None:
    parser = commands.add_parser(
        "discover", help="propose a policy from a sample of logs",
        description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", nargs="?", default="-", metavar="FILE",
                        help="sample file, or - for standard input (default)")
    parser.add_argument("--out", type=Path, metavar="POLICY",
                        help="write the proposed policy here (default: standard output)")
    parser.add_argument("--report", type=Path, metavar="FILE",
                        help="write the coverage report (Markdown) here")
    parser.add_argument("--format", dest="sample_format", choices=FORMATS, default="ndjson",
                        help="ndjson (default): one JSON object a line; otlp-json: the OTel "
                        "Collector file exporter's OTLP/JSON; vector-json: Vector's json "
                        "codec, one event a line")
    parser.add_argument("--min-hit-rate", type=_rate, default=DEFAULT_MIN_HIT_RATE,
                        metavar="R", help="share of a path's values a detector must hit "
                        f"before it is judged PHI (default {DEFAULT_MIN_HIT_RATE:g})")
    parser.add_argument("--names", choices=NAME_ACTIONS, default="tokenize",
                        help="action for name fields: tokenize (default; reversible by "
                        "authorized Detokenize, needs the vault) or redact")
    add_settings(parser, only=("scanner",))


def run(args: argparse.Namespace, settings: Settings) -> int:
    source: str = args.input
    with ExitStack() as stack:
        try:
            stream: IO[bytes] = (sys.stdin.buffer if source == "-"
                                 else stack.enter_context(open(source, "rb")))
        except OSError as exc:
            print(f"phimask: error: {source}: {exc.strerror}", file=sys.stderr)
            return 1
        progress = _progress(stack, source)
        found = discover_stream(
            stream, fmt=args.sample_format, progress=progress,
            min_hit_rate=args.min_hit_rate, names=args.names,
            scanner=Scanner.build(builtin_detectors(), engine=settings.scanner),
            state_dir=settings.state_dir,
        )
    _print_bad_lines(found)
    if not found.sample.records:
        print("phimask: error: no record could be read; no policy written", file=sys.stderr)
        return 1
    try:
        if args.out is not None:
            args.out.write_text(found.policy, encoding="utf-8")
        else:
            sys.stdout.write(found.policy)
            sys.stdout.flush()
        if args.report is not None:
            args.report.write_text(found.report, encoding="utf-8")
    except OSError as exc:
        print(f"phimask: error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    where = f"; policy written to {args.out}" if args.out is not None else ""
    report = f"; report written to {args.report}" if args.report is not None else ""
    print(f"discover: {found.sample.records} records, {len(found.sample.paths)} paths, "
          f"{summary_line(found.proposals)}{where}{report}", file=sys.stderr)
    return 0


def _print_bad_lines(found: Discovery) -> None:
    bad = found.read.bad or []
    for line in bad[:MAX_BAD_PRINTED]:
        print(f"line {line.number}: skipped: {line.reason}", file=sys.stderr)
    if found.read.bad_total > MAX_BAD_PRINTED:
        print(f"... {found.read.bad_total - MAX_BAD_PRINTED} more lines skipped",
              file=sys.stderr)


def _progress(stack: ExitStack, source: str) -> Callable[[int], None] | None:
    """A progress bar on stderr when a person watches a big file; None otherwise."""
    if not sys.stderr.isatty():
        return None
    total = Path(source).stat().st_size if source != "-" else None
    if total is not None and total < PROGRESS_FROM_BYTES:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    bar = stack.enter_context(
        Progress("discovering", BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                 transient=True, console=Console(stderr=True))
    )
    task = bar.add_task("discover", total=total)
    return lambda n: bar.advance(task, n)
