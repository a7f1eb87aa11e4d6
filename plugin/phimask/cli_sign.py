"""`phimask sign`: the reference signer for what `integrity.mode` checks.

Shippers that sign in code follow integrity.py's canonical forms; this command shows
them by example and signs test data.
"""

from __future__ import annotations

import argparse
import base64
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import IO

import orjson

from .integrity import BATCH_KEY_ID_HEADER, BATCH_SIGNATURE_HEADER, Signer
from .keyring import KID_PATTERN, KeyLoadError, decode_key
from .policy import IntegritySpec

FORMATS = ("native", "otlp", "vector", "batch")
EPILOG = """\
formats (one JSON object a line in, one a line out, except batch):
  native   {"payload": "<the line, exactly>", "signature": "<base64>", "key_id": "<kid>"}:
           set Record.payload, Record.signature (decoded) and Record.key_id from it
  otlp     {"attributes": {...}, "body": ...} -> the same with phimask.sig and
           phimask.kid added to attributes
  vector   an event's fields -> the same with phimask.sig and phimask.kid added
  batch    FILE is one serialized request (binary); prints the two metadata entries
           to send with it: x-phimask-batch-signature and x-phimask-key-id

The key file decides the algorithm: a hex key (verify-hmac.<kid>.key, shared with
phimask) signs with HMAC-SHA256; an Ed25519 private key in PEM (sign.<kid>.key from
`phimask keys generate --purpose sign`) signs with Ed25519. --checksum makes SHA-256
checksums (key id "sha256") instead: integrity, but no authentication.
"""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sign = commands.add_parser(
        "sign", help="sign records or a batch the way phimask verifies them",
        description="Sign NDJSON records (or one serialized batch) for integrity.mode "
        "require | if_present.", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sign.add_argument("input", nargs="?", default="-", metavar="FILE",
                      help="input file, or - for standard input (default)")
    sign.add_argument("--key", type=Path, dest="key_file", metavar="FILE",
                      help="key file: hex HMAC key or Ed25519 private key PEM")
    sign.add_argument("--key-id", help="key id phimask knows the key by (default: the "
                      "<kid> of a <purpose>.<kid>.key file name)")
    sign.add_argument("--checksum", action="store_true", help="SHA-256 checksums, no key")
    sign.add_argument("--format", choices=FORMATS, default="native")


def _signer(args: argparse.Namespace) -> Signer:
    if args.checksum:
        return Signer("sha256", "sha256")
    if args.key_file is None:
        raise KeyLoadError("--key FILE is required (or --checksum)")
    kid = args.key_id or _kid_from_name(args.key_file)
    if not kid or not KID_PATTERN.fullmatch(kid):
        raise KeyLoadError(f"--key-id is required: {args.key_file.name} is not named "
                           "<purpose>.<kid>.key")
    try:
        text = args.key_file.read_bytes()
    except OSError as exc:
        raise KeyLoadError(f"key file {args.key_file}: {exc.strerror}") from None
    purpose = "sign" if text.lstrip().startswith(b"-----BEGIN") else "verify-hmac"
    material = decode_key(purpose, text, str(args.key_file))
    return Signer("ed25519" if purpose == "sign" else "hmac-sha256", kid, material)


def _kid_from_name(path: Path) -> str | None:
    parts = path.name.split(".")
    return parts[1] if len(parts) == 3 and parts[2] == "key" else None


def run(args: argparse.Namespace) -> int:
    signer = _signer(args)
    spec = IntegritySpec()
    with ExitStack() as stack:
        stream: IO[bytes] = (sys.stdin.buffer if args.input == "-"
                             else stack.enter_context(open(args.input, "rb")))
        if args.format == "batch":
            signature = base64.b64encode(signer.sign(stream.read())).decode()
            print(f"{BATCH_SIGNATURE_HEADER}: {signature}")
            print(f"{BATCH_KEY_ID_HEADER}: {signer.kid}")
            return 0
        out = sys.stdout.buffer
        for number, raw in enumerate(stream, start=1):
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            if args.format == "native":
                out.write(orjson.dumps({
                    "payload": line.decode("utf-8", "surrogateescape"),
                    "signature": base64.b64encode(signer.sign(line)).decode(),
                    "key_id": signer.kid}) + b"\n")
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                print(f"phimask: error: line {number}: not valid JSON", file=sys.stderr)
                return 1
            if not isinstance(record, dict) or (
                    args.format == "otlp" and not isinstance(record.get("attributes", {}), dict)):
                print(f"phimask: error: line {number}: must be a JSON object"
                      + (" with an attributes object" if args.format == "otlp" else ""),
                      file=sys.stderr)
                return 1
            if args.format == "otlp":
                record.setdefault("attributes", {})
                record["attributes"].update(signer.signature_fields(record, spec))
            else:
                record.update(signer.signature_fields(record, spec))
            out.write(orjson.dumps(record) + b"\n")
        out.flush()
    return 0
