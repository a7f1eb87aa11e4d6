"""Helpers for the `phimask discover` tests: run the command in-process, and find what
detectors still hit in masked records, path by path, by the compiled policy."""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from phimask import cli_discover
from phimask.cli import _add_settings
from phimask.config import SETTINGS, load_settings
from phimask.detect import Scanner, builtin_detectors
from phimask.policy import Kind, Node, Plan, Rule
from phimask.policy.hints import HINTS

# The top-level keys the safe-harbor profile keeps as the log's own metadata.
LOG_FIELDS = frozenset("_".join(h.tokens) for h in HINTS if h.action == "keep")


def discover(*argv: str) -> int:
    """`phimask discover ARGV...` in this process (cli.py wires the same two calls)."""
    parser = argparse.ArgumentParser(prog="phimask")
    commands = parser.add_subparsers(dest="command", required=True)
    cli_discover.add_parser(commands, _add_settings)
    args = parser.parse_args(["discover", *argv])
    flags = {s.name: getattr(args, s.name, None) for s in SETTINGS}
    settings = load_settings(flags, env={}, config_file=args.config)
    return cli_discover.run(args, settings)


def full_scanner() -> Scanner:
    """Every built-in detector."""
    return Scanner.build(builtin_detectors())


Keys = tuple[str | int, ...]


def _strings(value: Any, keys: Keys) -> Iterator[tuple[Keys, str, bool]]:
    """(path as keys and indexes, text, is a key) of every string and key in `value`."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*keys, key), key, True  # a key is text that leaves too
            yield from _strings(item, (*keys, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, (*keys, i))
    elif isinstance(value, str):
        yield keys, value, False


def rule_at(plan: Plan, root: str, keys: Sequence[str | int]) -> Rule | None:
    """The explicit rule the compiled policy applies at `keys` (own or inherited), as the
    pipeline picks it: the deepest level with a rule, then fewest wildcards, then order."""
    nodes: list[Node] = [plan.roots[root]] if root in plan.roots else []
    found: Rule | None = None
    for key in keys:
        step: list[Node] = []
        for node in nodes:
            if isinstance(key, str):
                if key in node.keys:
                    step.append(node.keys[key])
                if node.any_key is not None:
                    step.append(node.any_key)
            elif node.any_index is not None:
                step.append(node.any_index)
        nodes = step
        here = [n.rule for n in nodes if n.rule is not None]
        if here:
            found = min(here, key=lambda r: (r.wildcards, r.order))
    return found


def residual_hits(plan: Plan, docs: Sequence[dict[str, Any]], scanner: Scanner,
                  ) -> list[tuple[str, Keys, str, str]]:
    """(root, path, detector, rule) of every detector hit in a masked string or key that
    no value operator of the policy produced: keep, scan and unmapped paths, and keys.
    A value an explicit value operator made (fpe output looks like a phone) is exempt."""
    jobs: list[tuple[str, Keys, str, str]] = []
    for doc in docs:
        for root, value in doc.items():
            for keys, text, is_key in _strings(value, ()):
                rule = rule_at(plan, root, keys)
                if rule is not None and rule.kind is Kind.VALUE and not is_key:
                    continue
                jobs.append((root, keys, text, rule.rule_id if rule else ""))
    hits = []
    for (root, keys, _, rule_id), matches in zip(
            jobs, scanner.scan_many([j[2] for j in jobs]), strict=True):
        for match in matches:
            hits.append((root, keys, match.detector.name, rule_id))
    return hits


def generic_path(keys: Sequence[str | int]) -> str:
    """`patient.phones.0` -> `patient.phones[*]`, for messages."""
    out = ""
    for key in keys:
        out += "[*]" if isinstance(key, int) else ("." if out else "") + key
    return out


def write_ndjson(path: Path, records: Sequence[Any]) -> Path:
    import orjson

    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path
