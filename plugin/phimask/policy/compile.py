"""Validate a loaded policy and compile it into a Plan: a trie of paths -> rules.

Everything that can be wrong with a policy is found here, once: unknown keys,
actions and options, bad paths, unsafe patterns. The per-record path only runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import orjson

from ..detect import Detector, PatternError, builtin_detectors, custom_detector
from ..keyring import Keyring
from ..operators import (
    ACTIONS,
    VALUE_OPERATORS,
    BatchOperator,
    CompileContext,
    Operator,
    OptionError,
    label_for,
)
from ..operators.redact import Redact
from .hints import HINTS, Hint
from .loader import Located
from .paths import AnyIndex, AnyKey, Key, PathError, Segment, parse_path


class Kind(Enum):
    VALUE = "value"  # a value operator maps each scalar
    DROP = "drop"
    KEEP = "keep"
    SCAN = "scan"


@dataclass(eq=False)
class Rule:
    rule_id: str  # the path as written, or `hint:<tokens>`; safe to log
    action: str
    kind: Kind
    op: Operator | None
    order: int  # position in the policy: an earlier rule wins a tie
    wildcards: int  # fewer wildcards wins: `patient.ssn` over `patient.*`
    # The output when it does not depend on the value (redact): saves a call per value.
    constant: str | None = None
    # Masked for the whole batch at once (tokenize); decided here, not per value.
    batched: bool = False
    # A keep hint for a log's own fields (ts, trace_id) keeps a value, not what is
    # nested beneath the key: {"time": {"note": "SSN ..."}} is still scanned.
    scalar_only: bool = False
    # Values this rule masked since the masker last took its stats (a plain int on the
    # rule: a Counter lookup per value cost 10% of throughput).
    hits: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.op, Redact):
            self.constant = self.op.text
        self.batched = isinstance(self.op, BatchOperator)


@dataclass(eq=False)
class Node:
    keys: dict[str, Node] = field(default_factory=dict)
    any_key: Node | None = None
    any_index: Node | None = None
    rule: Rule | None = None

    def child(self, seg: Segment) -> Node:
        if isinstance(seg, Key):
            return self.keys.setdefault(seg.name, Node())
        if isinstance(seg, AnyKey):
            self.any_key = self.any_key or Node()
            return self.any_key
        self.any_index = self.any_index or Node()
        return self.any_index


INTEGRITY_MODES = ("off", "if_present", "require")
INTEGRITY_ALGORITHMS = ("hmac-sha256", "ed25519", "sha256")


@dataclass(frozen=True)
class IntegritySpec:
    """The policy's `integrity` section; integrity.py does the checking."""

    mode: str = "off"
    accept: tuple[str, ...] = ("hmac-sha256", "ed25519")
    signature_attribute: str = "phimask.sig"
    key_id_attribute: str = "phimask.kid"
    sign_output: bool = False


@dataclass(frozen=True)
class Plan:
    version: str  # canonical hash of the policy
    source: str
    roots: dict[str, Node]  # document root name -> trie
    hints: dict[str, Rule] | None  # hint tokens -> compiled rule; None when the profile has none
    unmapped_scan: bool
    on_error: str
    detectors: tuple[Detector, ...]
    rules: tuple[Rule, ...]
    integrity: IntegritySpec = IntegritySpec()



PROFILES = ("safe-harbor", "none")
TOP_KEYS = {"version", "profile", "on_error", "unmapped_strings", "integrity", "fields",
            "detectors", "description"}
RULE_KEYS = {"path", "action", "note"}
DETECTOR_KEYS = {"mrn_pattern", "health_plan_pattern", "account_pattern", "disabled", "custom"}


def policy_version(data: Any) -> str:
    canonical = orjson.dumps(data, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return "sha256:" + hashlib.sha256(canonical).hexdigest()[:16]


def compile_policy(
    doc: Located,
    *,
    roots: Sequence[str] = ("payload", "attributes"),
    state_dir: Path,
    keys: Keyring,
    vault: Any = None,
) -> Plan:
    """`keys` gives operators their keys (KeyLoadError when one is missing); `vault`
    is the token vault for `tokenize` rules, opened by the caller."""
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error("", "a policy is a mapping (version, profile, fields, ...)")
    for key in data:
        if key not in TOP_KEYS:
            raise doc.error(str(key), f"unknown key (allowed: {', '.join(sorted(TOP_KEYS))})")
    if data.get("version") != 1:
        raise doc.error("version", "must be 1")
    profile = _choice(doc, data, "profile", "safe-harbor", PROFILES)
    on_error = _choice(doc, data, "on_error", "reject", ("reject", "quarantine"))
    unmapped = _choice(doc, data, "unmapped_strings", "scan", ("scan", "keep"))
    integrity = _integrity(doc, data.get("integrity"))
    detectors = _detectors(doc, data.get("detectors"))
    extra = {"keys": keys, "vault": vault}

    trie = {name: Node() for name in roots}
    rules: list[Rule] = []
    raw_fields = data.get("fields", [])
    if not isinstance(raw_fields, list):
        raise doc.error("fields", "must be a list of {path, action, ...}")
    seen_paths: dict[str, Rule] = {}
    for i, raw in enumerate(raw_fields):
        where = f"fields[{i}]"
        rule, segments = _rule(doc, where, raw, i, roots, state_dir, extra)
        root = segments[0]
        assert isinstance(root, Key)
        primary, *others = _spellings(segments[1:])
        node = _node_at(trie[root.name], primary)
        if node.rule is not None and node.rule.rule_id in seen_paths:
            raise doc.error(f"{where}.path", f"same path as rule {node.rule.rule_id!r}")
        node.rule = rule
        seen_paths[rule.rule_id] = rule
        for spelling in others:
            node = _node_at(trie[root.name], spelling)
            if node.rule is None or (rule.wildcards, rule.order) < (
                node.rule.wildcards, node.rule.order
            ):
                node.rule = rule
        rules.append(rule)

    hints = _hints(state_dir, extra) if profile == "safe-harbor" else None
    try:
        version = policy_version(data)
    except TypeError:  # orjson: binary, lone surrogates, ints beyond 64 bits
        raise doc.error("", "holds a value that is not plain text or a number "
                        "(binary, an invalid escape, or an integer beyond 64 bits)") from None
    return Plan(
        version=version,
        source=doc.source,
        roots=trie,
        hints=hints,
        unmapped_scan=unmapped == "scan",
        on_error=on_error,
        detectors=tuple(detectors),
        rules=tuple(rules),
        integrity=integrity,
    )


MAX_SPELLED_KEYS = 6


def _spellings(segments: tuple[Segment, ...]) -> list[tuple[Segment, ...]]:
    """Every way to read a path's consecutive keys as one dotted key, the path as
    written first: `user.email` also names an attribute called "user.email", as OTel
    attribute keys are (`host.name`), and a record flattened by a shipper."""
    if sum(isinstance(s, Key) for s in segments) > MAX_SPELLED_KEYS:
        return [segments]
    spelled: list[tuple[Segment, ...]] = [()]
    for seg in segments:
        grown: list[tuple[Segment, ...]] = []
        for prefix in spelled:
            grown.append((*prefix, seg))
            if isinstance(seg, Key) and prefix and isinstance(prefix[-1], Key):
                grown.append((*prefix[:-1], Key(f"{prefix[-1].name}.{seg.name}")))
        spelled = grown
    return spelled


def _node_at(node: Node, segments: tuple[Segment, ...]) -> Node:
    for seg in segments:
        node = node.child(seg)
    return node


def _choice(doc: Located, data: Mapping[str, Any], key: str, default: str,
            choices: tuple[str, ...]) -> str:
    value = data.get(key, default)
    if value not in choices:
        raise doc.error(key, f"must be one of {', '.join(choices)}")
    return str(value)


INTEGRITY_KEYS = {"mode", "accept", "signature_attribute", "key_id_attribute", "sign_output"}


def _integrity(doc: Located, raw: Any) -> IntegritySpec:
    if raw is None:
        return IntegritySpec()
    if not isinstance(raw, dict):
        raise doc.error("integrity", "must be a mapping {mode, accept, sign_output, ...}")
    for key in raw:
        if key not in INTEGRITY_KEYS:
            raise doc.error(f"integrity.{key}", "unknown key (allowed: "
                            f"{', '.join(sorted(INTEGRITY_KEYS))})")
    mode = raw.get("mode", "off")
    if mode is False:  # YAML reads a bare `off` as false
        mode = "off"
    if mode not in INTEGRITY_MODES:
        raise doc.error("integrity.mode", f"must be one of {', '.join(INTEGRITY_MODES)}")
    accept = raw.get("accept", list(IntegritySpec.accept))
    if not isinstance(accept, list) or not accept or any(
            a not in INTEGRITY_ALGORITHMS for a in accept):
        raise doc.error("integrity.accept", "must list algorithms from: "
                        f"{', '.join(INTEGRITY_ALGORITHMS)}")
    names = {}
    for key in ("signature_attribute", "key_id_attribute"):
        value = raw.get(key, getattr(IntegritySpec, key))
        if not isinstance(value, str) or not value:
            raise doc.error(f"integrity.{key}", "must be a non-empty string")
        names[key] = value
    if names["signature_attribute"] == names["key_id_attribute"]:
        raise doc.error("integrity.key_id_attribute", "must differ from signature_attribute")
    sign_output = raw.get("sign_output", False)
    if not isinstance(sign_output, bool):
        raise doc.error("integrity.sign_output", "must be true or false")
    return IntegritySpec(str(mode), tuple(accept), names["signature_attribute"],
                         names["key_id_attribute"], sign_output)


def _detectors(doc: Located, raw: Any) -> list[Detector]:
    raw = raw or {}
    if not isinstance(raw, dict):
        raise doc.error("detectors", "must be a mapping")
    for key in raw:
        if key not in DETECTOR_KEYS:
            raise doc.error(f"detectors.{key}", "unknown key (allowed: "
                            f"{', '.join(sorted(DETECTOR_KEYS))})")
    names = [d.name for d in builtin_detectors()]
    disabled = raw.get("disabled", [])
    if not isinstance(disabled, list) or any(d not in names for d in disabled):
        raise doc.error("detectors.disabled", f"must list detector names from: {', '.join(names)}")
    patterns: dict[str, str | None] = {}
    for key in ("mrn_pattern", "health_plan_pattern", "account_pattern"):
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            raise doc.error(f"detectors.{key}", "must be a string")
        patterns[key] = value
    try:
        detectors = builtin_detectors(
            **patterns, enabled=[n for n in names if n not in disabled]
        )
    except PatternError as exc:
        raise doc.error("detectors", str(exc)) from None
    custom = raw.get("custom", [])
    if not isinstance(custom, list):
        raise doc.error("detectors.custom", "must be a list of {name, pattern, label}")
    for i, item in enumerate(custom):
        where = f"detectors.custom[{i}]"
        if not isinstance(item, dict) or set(item) - {"name", "pattern", "label"} or not all(
            isinstance(item.get(k), str) for k in ("name", "pattern")
        ):
            raise doc.error(where, "must be {name: str, pattern: str, label: str}")
        try:
            detectors.append(custom_detector(item["name"], item["pattern"], item.get("label")))
        except PatternError as exc:
            raise doc.error(f"{where}.pattern", str(exc)) from None
    return detectors


def _rule(doc: Located, where: str, raw: Any, order: int, roots: Sequence[str],
          state_dir: Path, extra: Mapping[str, Any]) -> tuple[Rule, tuple[Segment, ...]]:
    if not isinstance(raw, dict):
        raise doc.error(where, "a rule is a mapping {path, action, options...}")
    path, action = raw.get("path"), raw.get("action")
    if not isinstance(path, str):
        raise doc.error(f"{where}.path", "is required and must be a string")
    if action not in ACTIONS:
        raise doc.error(f"{where}.action", f"unknown action {action!r} "
                        f"(known: {', '.join(ACTIONS)})")
    try:
        segments = parse_path(path)
    except PathError as exc:
        raise doc.error(f"{where}.path", f"bad path: {exc}") from None
    first = segments[0]
    if first == Key("payload") and len(segments) > 1:
        # `payload.` always names the record itself: an OTLP body, a Vector event.
        segments = (Key(roots[0]), *segments[1:])
    elif not (isinstance(first, Key) and first.name in roots) or len(segments) == 1:
        segments = (Key(roots[0]), *segments)
    options = {k: v for k, v in raw.items() if k not in RULE_KEYS}
    last_key = next((s.name for s in reversed(segments) if isinstance(s, Key)), "value")
    ctx = CompileContext(path=path, field_name=last_key, state_dir=state_dir,
                         label=label_for(last_key), extra=extra)
    op: Operator | None = None
    if action in VALUE_OPERATORS:
        try:
            op = VALUE_OPERATORS[action].from_options(options, ctx)
        except OptionError as exc:
            raise doc.error(f"{where}.{exc.option}", str(exc).partition(": ")[2]) from None
    elif options:
        raise doc.error(f"{where}.{sorted(options)[0]}", f"action {action!r} takes no options")
    wildcards = sum(isinstance(s, AnyKey | AnyIndex) for s in segments)
    kind = Kind.VALUE if action in VALUE_OPERATORS else Kind(action)
    return Rule(path, str(action), kind, op, order, wildcards), segments


def _hints(state_dir: Path, extra: Mapping[str, Any]) -> dict[str, Rule]:
    compiled: dict[str, Rule] = {}
    for order, hint in enumerate(HINTS):
        compiled[hint.rule_id] = _hint_rule(hint, order, state_dir, extra)
    return compiled


def _hint_rule(hint: Hint, order: int, state_dir: Path, extra: Mapping[str, Any]) -> Rule:
    if hint.action == "keep":
        return Rule(hint.rule_id, "keep", Kind.KEEP, None, order, 0, scalar_only=True)
    options = dict(hint.options)
    if hint.action == "redact":
        options["type"] = hint.label
    ctx = CompileContext(path=hint.rule_id, field_name=hint.tokens[-1], state_dir=state_dir,
                         label=hint.label, extra=extra)
    op = VALUE_OPERATORS[hint.action].from_options(options, ctx)
    return Rule(hint.rule_id, hint.action, Kind.VALUE, op, order, 0)
