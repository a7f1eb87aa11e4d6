"""phimask's command line: serve, mask, check."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import orjson

from . import __version__, cli_audit, cli_discover, cli_keys, cli_sign, cli_vault
from .config import SETTINGS, Settings, SettingsError, load_settings
from .detect import PatternError
from .errors import CallError
from .keyring import KeyLoadError
from .logs import configure_logging
from .pipeline import Document, Masker, Rejection
from .policy import PolicyError
from .runtime import build_masker

EXIT_REJECTED = 3
MASK_BATCH = 1000

DESCRIPTION = """\
phimask masks HIPAA ePHI (SSNs, MRNs, names, dates, phones, emails, ...) in log
records by a policy, as a gRPC sidecar next to your log shipper or offline.

Without --policy, the embedded safe-harbor policy applies: field-name hints mask
fields such as ssn, mrn, dob, name, phone, email, address and zip, and every other
string is scanned for identifiers.
"""

EPILOG = """\
examples:
  phimask serve                              listen on 127.0.0.1:4317, default policy
  phimask serve --policy policy.yaml --listen 0.0.0.0:4317 --workers 2
  phimask mask --policy policy.yaml logs.ndjson > masked.ndjson
  cat logs.ndjson | phimask mask - | less
  phimask check policy.yaml                  validate and show the compiled plan
  phimask keys generate --purpose hmac --dir /etc/phimask/keys
  phimask discover sample.ndjson --out policy.yaml --report coverage.md
  phimask audit verify /var/lib/phimask/audit/

Settings come from flags, then PHIMASK_* environment variables, then the YAML file
named by --config / PHIMASK_CONFIG. `phimask serve --help` lists them all.
"""


def _add_settings(parser: argparse.ArgumentParser, only: Sequence[str] | None = None) -> None:
    defaults = Settings()
    group = parser.add_argument_group("settings (flag > environment > config file)")
    for setting in SETTINGS:
        if only is not None and setting.name not in only:
            continue
        default = getattr(defaults, setting.name)
        shown = default
        if default is None:
            shown = "embedded safe-harbor" if setting.name == "policy" else "unset"
        group.add_argument(
            setting.flag, dest=setting.name, metavar=setting.metavar, default=None,
            help=f"{setting.help} [env {setting.env}; default {shown}]",
        )
    group.add_argument("--config", type=Path, metavar="FILE",
                       help="YAML file of settings (keys as the flag names) [env PHIMASK_CONFIG]")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="phimask", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"phimask {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve", help="run the gRPC sidecar",
        description="Serve phimask.v1.BatchTransform, grpc.health.v1 and reflection on one "
        "address. SIGTERM drains: in-flight batches finish, new calls are refused.",
    )
    _add_settings(serve)

    mask = commands.add_parser(
        "mask", help="mask NDJSON offline",
        description="Read NDJSON (one JSON object a line), write the masked lines to stdout "
        "in input order. A line that cannot be masked is left out and reported on stderr "
        f"with its line number and reason; the exit status is then {EXIT_REJECTED}.",
    )
    mask.add_argument("input", nargs="?", default="-", metavar="FILE",
                      help="NDJSON file, or - for standard input (default)")
    _add_settings(mask, only=("policy", "state_dir", "keys_dir", "vault_url", "scanner"))

    check = commands.add_parser(
        "check", help="validate a policy and print its compiled plan",
        description="Validate POLICY and print the compiled plan. Exit 1, naming the line, "
        "if the policy is not valid.",
    )
    check.add_argument("policy_file", type=Path, metavar="POLICY")
    _add_settings(check, only=("state_dir", "keys_dir", "scanner"))
    cli_keys.add_parser(commands)
    cli_sign.add_parser(commands)
    cli_vault.add_parsers(commands, _add_settings)
    cli_audit.add_parser(commands, _add_settings)
    cli_discover.add_parser(commands, _add_settings)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("keys", "sign", "detokenize", "access"):
        try:
            return {"keys": cli_keys.run, "sign": cli_sign.run, "access": cli_vault.run_access,
                    "detokenize": cli_vault.run_detokenize}[args.command](args)
        except (KeyLoadError, OSError) as exc:
            print(f"phimask: error: {exc}", file=sys.stderr)
            return 1
    flags = {s.name: getattr(args, s.name, None) for s in SETTINGS}
    if args.command == "check":
        flags["policy"] = args.policy_file
    try:
        settings = load_settings(flags, config_file=args.config)
        configure_logging(settings.log_level)
        if args.command == "serve":
            asyncio.run(_serve(settings))
            return 0
        if args.command == "quarantine":
            return cli_vault.run_quarantine(args, settings)
        if args.command == "audit":
            return cli_audit.run(args, settings)
        if args.command == "discover":
            return cli_discover.run(args, settings)
        masker = build_masker(settings, create_key=args.command != "check")
        if args.command == "check":
            _print_plan(masker)
            return 0
        return _mask(masker, args.input)
    except (SettingsError, PolicyError, KeyLoadError, PatternError, OSError, CallError) as exc:
        print(f"phimask: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


async def _serve(settings: Settings) -> None:
    from .server import serve  # gRPC is only imported by the command that needs it

    await serve(settings)


def _print_plan(masker: Masker) -> None:
    plan = masker.plan
    print(f"policy:          {plan.source}")
    print(f"policy_version:  {plan.version}")
    print(f"profile hints:   {'safe-harbor' if plan.hints is not None else 'none'}")
    print(f"unmapped:        {'scan' if plan.unmapped_scan else 'keep'}")
    print(f"on_error:        {plan.on_error}"
          + ("  (acts as reject until the quarantine store lands)"
             if plan.on_error == "quarantine" else ""))
    integrity = plan.integrity
    print(f"integrity:       {integrity.mode}"
          + (f" (accepts {', '.join(integrity.accept)})" if integrity.mode != "off" else "")
          + (", masked output signed" if integrity.sign_output else ""))
    print(f"scanner:         {masker.scanner.engine}, detectors: "
          + ", ".join(d.name for d in plan.detectors))
    print("rules:" if plan.rules else "rules:           none (hints and scanning only)")
    width = max((len(r.rule_id) for r in plan.rules), default=0)
    for rule in plan.rules:
        print(f"  {rule.rule_id.ljust(width)}  -> {rule.action}  {_describe(rule.op)}")


def _describe(op: Any) -> str:
    if op is None:
        return ""
    fields: Iterable[str] = getattr(op, "__dataclass_fields__", None) or getattr(
        op, "__slots__", ()) or ()
    shown = {k: getattr(op, k) for k in fields
             if k not in ("key", "name", "vault") and not k.startswith("_")}
    return " ".join(f"{k}={v!r}" for k, v in shown.items())


def _mask(masker: Masker, source: str) -> int:
    rejected = 0
    with ExitStack() as stack:
        stream: IO[bytes] = (
            sys.stdin.buffer if source == "-" else stack.enter_context(open(source, "rb"))
        )
        progress = _progress(stack, source)
        out = sys.stdout.buffer
        for batch in _batches(stream):
            docs: list[Document | Rejection] = []
            for _, line in batch:
                try:
                    payload = orjson.loads(line)
                except orjson.JSONDecodeError:
                    docs.append(Rejection("invalid_json"))
                    continue
                docs.append({"payload": payload} if isinstance(payload, dict)
                            else Rejection("not_an_object"))
            outcomes = masker.mask_batch(docs)
            for (number, _), doc, outcome in zip(batch, docs, outcomes, strict=True):
                if outcome is None:
                    assert isinstance(doc, dict)
                    out.write(orjson.dumps(doc["payload"]) + b"\n")
                else:
                    rejected += 1
                    rule = f" (rule {outcome.rule})" if outcome.rule else ""
                    print(f"line {number}: rejected: {outcome.reason}{rule}", file=sys.stderr)
            if progress is not None:
                progress(sum(len(text) + 1 for _, text in batch))
        out.flush()
    return EXIT_REJECTED if rejected else 0


def _batches(stream: IO[bytes]) -> Iterator[list[tuple[int, bytes]]]:
    batch: list[tuple[int, bytes]] = []
    for number, line in enumerate(stream, start=1):
        line = line.strip()
        if not line:
            continue
        batch.append((number, line))
        if len(batch) >= MASK_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _progress(stack: ExitStack, source: str) -> Any:
    """A progress bar on stderr when a person watches; None otherwise."""
    if not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    total = Path(source).stat().st_size if source != "-" else None
    bar = stack.enter_context(
        Progress("masking", BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                 transient=True, console=Console(stderr=True))
    )
    task = bar.add_task("mask", total=total)
    return lambda n: bar.advance(task, n)


if __name__ == "__main__":
    sys.exit(main())
