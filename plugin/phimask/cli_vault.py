"""`phimask detokenize`, `phimask quarantine list|show|purge`, `phimask access
hash-token`: the commands around the vault and who may use it."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import logging
import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from .access import hash_token
from .audit import audit, log_sink, set_sinks
from .config import Settings
from .keyring import KeyLoadError, Keyring
from .telemetry.audit_log import AuditLog, AuditLogBusy
from .vault import QuarantineEntry, Vault, open_vault

log = logging.getLogger("phimask.cli")
EXIT_NOT_FOUND = 3
BEARER_ENV = "PHIMASK_BEARER_TOKEN"


AddSettings = Callable[..., None]


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser],
                add_settings: AddSettings) -> None:
    detokenize = commands.add_parser(
        "detokenize", help="turn tokens and fpe values back into originals (authorized)",
        description="Ask a running phimask (phimask.v1.Reidentify/Detokenize) for the "
        "originals of tokens or fpe values. The caller needs the reidentify role; every "
        "call is audited with the caller, the count and --purpose, never the values. "
        "Prints one JSON line per value: {masked, original, error}; exit 3 if any was "
        "not found.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  phimask detokenize --purpose INC-4411 tok_20261203_Zx81...\n"
        "  phimask detokenize --purpose INC-4411 --field patient.phone 209-817-3365\n"
        "  cut -f3 tokens.tsv | phimask detokenize --purpose AUDIT-7 --target "
        "phimask:4317 \\\n      --ca-file ca.pem --cert-file me.pem --key-file me.key\n\n"
        f"A bearer token is read from --bearer-token-file or {BEARER_ENV}, never a flag.")
    detokenize.add_argument("values", nargs="*", metavar="VALUE",
                            help="tokens or fpe values; none: one a line from stdin")
    detokenize.add_argument("--purpose", required=True,
                            help="why the originals are needed (ticket, case); audited")
    detokenize.add_argument("--field", default="",
                            help="the policy rule path that masked them (required for fpe)")
    detokenize.add_argument("--key-id", default="", help="the fpe key id, after a rotation")
    detokenize.add_argument("--target", default="127.0.0.1:4317", metavar="HOST:PORT")
    detokenize.add_argument("--ca-file", type=Path, help="CA (PEM) that signed phimask's "
                            "certificate; given: TLS")
    detokenize.add_argument("--cert-file", type=Path, help="client certificate (PEM), mTLS")
    detokenize.add_argument("--key-file", type=Path, help="its private key (PEM)")
    detokenize.add_argument("--bearer-token-file", type=Path, metavar="FILE")
    detokenize.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS")

    quarantine = commands.add_parser(
        "quarantine", help="list, show and purge quarantined records",
        description="Records rejected under `on_error: quarantine` are kept encrypted "
        "in the vault. These commands use the vault and keys directly (local key access), "
        "so run them where phimask's --keys-dir and --vault-url are; show and purge are "
        "audited.")
    actions = quarantine.add_subparsers(dest="quarantine_command", metavar="ACTION",
                                        required=True)
    listing = actions.add_parser("list", help="newest first: id, time, protocol, reason, rule")
    listing.add_argument("--limit", type=int, default=100)
    show = actions.add_parser("show", help="decrypt one record (to stdout)")
    show.add_argument("entry_id", metavar="ID")
    show.add_argument("--reason", required=True, help="why it is opened; audited")
    purge = actions.add_parser("purge", help="delete records for good")
    chosen = purge.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--id", dest="ids", action="append", metavar="ID")
    chosen.add_argument("--older-than-days", type=float, metavar="DAYS")
    chosen.add_argument("--all", action="store_true")
    for parser in (listing, show, purge):
        add_settings(parser, only=("state_dir", "keys_dir", "vault_url"))

    access = commands.add_parser("access", help="helpers for the access file")
    access_actions = access.add_subparsers(dest="access_command", metavar="ACTION",
                                           required=True)
    hashing = access_actions.add_parser(
        "hash-token", help="print the token_sha256 of a bearer token for the access file",
        description="Reads the token from stdin (so it stays out of shell history and ps) "
        "and prints its SHA-256, the form the access file keeps.")
    del hashing


def run_detokenize(args: argparse.Namespace) -> int:
    import grpc

    from ._gen.phimask.v1 import reidentify_pb2 as pb

    values = list(args.values) or [line.strip() for line in sys.stdin if line.strip()]
    metadata: list[tuple[str, str | bytes]] = []
    token = _bearer_token(args.bearer_token_file)
    if token:
        metadata.append(("authorization", f"Bearer {token}"))
    if args.ca_file or args.cert_file:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_read(args.ca_file), private_key=_read(args.key_file),
            certificate_chain=_read(args.cert_file))
        channel = grpc.secure_channel(args.target, credentials)
    else:
        channel = grpc.insecure_channel(args.target)
    request = pb.DetokenizeRequest(purpose=args.purpose, values=[
        pb.MaskedValue(value=v, field=args.field, key_id=args.key_id) for v in values])
    with channel:
        try:
            call = channel.unary_unary(
                "/phimask.v1.Reidentify/Detokenize",
                request_serializer=pb.DetokenizeRequest.SerializeToString,
                response_deserializer=pb.DetokenizeResponse.FromString)
            reply = call(request, metadata=tuple(metadata), timeout=args.timeout)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            details = exc.details() if hasattr(exc, "details") else ""
            name = code.name if code is not None else "ERROR"
            print(f"phimask: error: {args.target}: {name}: {details}", file=sys.stderr)
            return 1
    missing = 0
    out = sys.stdout.buffer
    for masked, result in zip(values, reply.values, strict=True):
        missing += not result.found
        out.write(orjson.dumps({"masked": masked,
                                "original": result.value if result.found else None,
                                "error": result.error or None}) + b"\n")
    out.flush()
    return EXIT_NOT_FOUND if missing else 0


def _bearer_token(path: Path | None) -> str:
    if path is not None:
        return path.read_text(encoding="utf-8").strip()
    return os.environ.get(BEARER_ENV, "").strip()


def _read(path: Path | None) -> bytes | None:
    return path.read_bytes() if path is not None else None


def run_quarantine(args: argparse.Namespace, settings: Settings) -> int:
    from .runtime import load_keyring

    keys = load_keyring(settings, create=False)
    if not keys.has("vault"):
        raise KeyLoadError("no vault key: the quarantine is encrypted with it; point "
                           "--keys-dir (or --state-dir) where phimask keeps its keys")
    who = getpass.getuser()
    with local_audit_trail(settings, keys), \
            open_vault(settings.vault_url, settings.state_dir, keys) as vault:
        if args.quarantine_command == "list":
            entries = vault.quarantine_list(limit=args.limit)
            for e in entries:
                print(f"{e.id}  {e.created_at:%Y-%m-%dT%H:%M:%SZ}  {e.protocol:<6}  "
                      f"{e.reason}  {e.rule or '-'}  {e.size} bytes")
            if not entries:
                print("the quarantine is empty", file=sys.stderr)
            return 0
        if args.quarantine_command == "show":
            original = vault.quarantine_get(args.entry_id)
            audit("quarantine.show", caller=who, via="local", entry=args.entry_id,
                  found=original is not None, purpose=args.reason)
            if original is None:
                print(f"phimask: error: no quarantined record {args.entry_id}", file=sys.stderr)
                return 1
            entry = next((e for e in _all_entries(vault) if e.id == args.entry_id), None)
            sys.stdout.buffer.write(_readable(entry.protocol if entry else "", original) + b"\n")
            return 0
        older = (datetime.now(UTC) - timedelta(days=args.older_than_days)
                 if args.older_than_days is not None else None)
        count = vault.quarantine_purge(ids=args.ids, older_than=older) if (
            args.ids or older) else vault.quarantine_purge()
        audit("quarantine.purge", caller=who, via="local", count=count)
        print(f"purged {count} quarantined record{'s' if count != 1 else ''}")
        return 0


@contextlib.contextmanager
def local_audit_trail(settings: Settings, keys: Keyring) -> Iterator[None]:
    """This command's audit events join a hash chain: the server's log when phimask is
    not running, else a chain of their own beside it (`audit.cli.jsonl`), verified by
    `phimask audit verify` the same way."""
    if not keys.has("audit"):
        log.warning("no audit key here: this command's audit events go to its log only")
        yield
        return
    path = settings.audit_log_path
    try:
        trail = AuditLog(path, keys)
    except AuditLogBusy:  # the server holds it
        trail = AuditLog(path.with_name(f"{path.stem}.cli{path.suffix}"), keys)
    set_sinks(log_sink, trail.append)
    try:
        yield
    finally:
        set_sinks(log_sink)
        trail.close()


def _all_entries(vault: Vault) -> Iterator[QuarantineEntry]:
    offset = 0
    while batch := vault.quarantine_list(limit=500, offset=offset):
        yield from batch
        offset += len(batch)


def _readable(protocol: str, original: bytes) -> bytes:
    """The wire bytes of a quarantined record as JSON a person can read."""
    from google.protobuf.json_format import MessageToJson
    from google.protobuf.message import DecodeError, Message

    from ._gen.phimask.v1 import transform_pb2
    from ._gen.vector import event_pb2

    kinds: dict[str, type[Message]] = {"native": transform_pb2.Record,
                                       "vector": event_pb2.EventWrapper}
    if protocol == "otlp":
        from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

        kinds["otlp"] = LogRecord
    kind = kinds.get(protocol)
    if kind is None:
        return original
    try:
        message = kind.FromString(original)
    except DecodeError:
        return original
    if isinstance(message, transform_pb2.Record):
        try:
            payload = orjson.loads(message.payload)
        except orjson.JSONDecodeError:
            payload = message.payload.decode("utf-8", "replace")
        return orjson.dumps({"payload": payload, "attributes": dict(message.attributes),
                             "id": message.id, "key_id": message.key_id})
    return MessageToJson(message).encode()


def run_access(args: argparse.Namespace) -> int:
    token = sys.stdin.readline().strip()
    if not token:
        print("phimask: error: give the token on stdin", file=sys.stderr)
        return 1
    print(hash_token(token))
    return 0

