"""`phimask keys generate | list`: make key files and see what a key directory holds."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .keyring import PURPOSE_HELP, PURPOSES, Keyring, create_key_file, public_key_pem

GENERATE_EPILOG = "purposes:\n" + "\n".join(
    f"  {name:<15} {text}" for name, text in PURPOSE_HELP.items()) + """

Rotation: generate a new key for the purpose and restart (or roll) phimask. The new
key becomes active (<purpose>.active names it); older keys stay for verifying and
decrypting what they made. Keyed hashes and tokens carry the id of their key.
In Kubernetes, add the file to the Secret mounted at --keys-dir.
"""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser("keys", help="generate and list keys",
                               description="Key files live in one directory, one file per "
                               "key: <purpose>.<kid>.key (mode 0600).")
    actions = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    generate = actions.add_parser(
        "generate", help="write a new random key file and make it active",
        description="Write a new random key for PURPOSE into DIR (mode 0600) and make it the "
        "active key of that purpose. Prints the path; for a sign key also the public key "
        "(PEM) that the next hop saves as verify-ed25519.<kid>.key.",
        epilog=GENERATE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    generate.add_argument("--purpose", required=True,
                          choices=[p for p in PURPOSES if p != "verify-ed25519"])
    generate.add_argument("--dir", type=Path, required=True, dest="key_dir",
                          help="the key directory (what --keys-dir points at)")
    generate.add_argument("--kid", help="key id (default: the UTC time, so newer sorts last)")
    generate.add_argument("--no-activate", action="store_true",
                          help="write the key but leave the active key as it is")
    listing = actions.add_parser(
        "list", help="show purposes, key ids and which is active (never key material)")
    listing.add_argument("--dir", type=Path, required=True, dest="key_dir")


def run(args: argparse.Namespace) -> int:
    """Raises KeyLoadError for the caller to report."""
    if args.keys_command == "generate":
        path = create_key_file(args.key_dir, args.purpose, kid=args.kid,
                               activate=not args.no_activate)
        print(path)
        if args.purpose == "sign":
            kid = path.name.split(".")[1]
            key = Keyring.load(args.key_dir, env={}).get("sign", kid)
            assert key is not None
            print(f"# public key: save as verify-ed25519.{kid}.key where signatures are "
                  "checked", file=sys.stderr)
            print(public_key_pem(key), end="")
        return 0
    keys = Keyring.load(args.key_dir, env={})
    for purpose, info in keys.summary().items():
        kids = ", ".join(str(k) for k in info["kids"])  # type: ignore[attr-defined]
        print(f"{purpose:<15} active {info['active']}  (all: {kids})")
    return 0
