"""From what a sample holds to a policy: one rule per PHI path, with the reason above it.

How a path is judged, first match wins:

1. an object whose KEYS a detector hits (an e-mail address as a key): `drop`, the only
   action that removes keys;
2. a top-level log field the safe-harbor profile keeps (`ts`, `timestamp`, `time`,
   `trace_id`, `span_id`): `keep`, written out so the policy says so;
3. a safe-harbor field-name hint on the key itself (policy/hints.py);
4. a detector that IS the value (not a part of it) in at least half of the values:
   an identifier field;
5. strings shaped like personal names (`Aaaa Aaaa`) with many distinct values that the
   person_name detector mostly did not know (names outside the census lists): the
   shape is the only evidence;
6. detector hits inside the values in at least `min_hit_rate` of them: free text, `scan`;
7. otherwise non-PHI: no rule (hints and `unmapped_strings: scan` still apply).

Actions, by what was found: SSN, card numbers, e-mail, URL, IP, VIN, address parts ->
`redact` (nothing downstream needs them back); MRN, health plan, account numbers and
other hmac hints -> `hmac` (deterministic: records still join on it); phone and fax ->
`fpe` when every value has 6+ digits (FF1's minimum; the shape stays, authorized
re-identification can reverse it), else `redact`; dates -> `generalize` (birth dates
with kind birth_date: 90+ for the very old); ages -> `generalize` kind age; ZIP ->
`zip3`; names -> `tokenize` by default (the one identifier the rest of the record
does not lead back to: a random vault token lets authorized staff re-identify,
through the audited Detokenize, without anything derived from the name), or `redact`
(`names="redact"`, no vault needed). An operator that would refuse a value seen in
the sample (a date generalize cannot parse, a phone with 5 digits) is replaced by
`redact`, so the policy never rejects the sample it came from.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..keyring import Keyring
from ..operators.generalize import is_birth_key
from ..policy import compile_policy, load_yaml
from ..policy.hints import Hint, hint_for
from .infer import ANY, INDEX, KEY, PathId, PathStats, Sample

PROFILE = "safe-harbor"
DEFAULT_MIN_HIT_RATE = 0.01
IDENTIFIER_SHARE = 0.5  # a detector IS the value in this share of values: an id field
WHOLE_OF_HITS = 0.9  # ... and the values it hits are mostly whole matches
NAME_SHARE = 0.8  # strings shaped like names
NAME_MIN_VALUES = 20
NAME_MIN_DISTINCT = 0.3  # distinct / values
NAME_ACTIONS = ("tokenize", "redact")
ROOT_WORDS = ("payload", "attributes", "body", "resource", "scope")

DETECTOR_ACTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "ssn": ("redact", {"type": "SSN"}),
    "credit_card": ("redact", {"type": "CREDIT_CARD"}),
    "phone": ("fpe", {}),
    "email": ("redact", {"type": "EMAIL"}),
    "url": ("redact", {"type": "URL"}),
    "ipv4": ("redact", {"type": "IP"}),
    "ipv6": ("redact", {"type": "IP"}),
    "date": ("generalize", {"kind": "date"}),
    "mrn": ("hmac", {}),
    "health_plan": ("hmac", {}),
    "account": ("hmac", {}),
    "vin": ("redact", {"type": "VIN"}),
}
# The person_name detector's values are names: the --names action, as for a name hint.
NAME_DETECTOR = "person_name"
# Operators that refuse some values, and the infer.FIT_OPS check that tells.
_FIT_CHECK = {"fpe": "fpe", "zip3": "zip3"}
_ANY_SCALAR_OPS = ("redact", "hmac", "tokenize")


@dataclass
class Proposal:
    stats: PathStats
    path: str | None  # as a policy writes it; None when no rule can name it
    action: str | None = None  # the proposed rule's action; None: no rule
    options: dict[str, Any] = field(default_factory=dict)
    category: str = "non-PHI"  # keys, log field, hint, identifier, name-shaped, free text
    why: list[str] = field(default_factory=list)  # reasons, never a value
    handling: str = ""  # what happens at run time without a rule

    @property
    def phi(self) -> bool:
        return self.action is not None and self.action != "keep"

    @property
    def segments(self) -> int:
        return len(self.stats.path.segs) + (self.stats.path.root != "payload")


# -- paths ----------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_\-/@$:]+")


def render_key(name: str) -> str:
    if _BARE_KEY.fullmatch(name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_path(path: PathId) -> str | None:
    """The policy path of `path`, or None when a rule cannot name it (a root itself, a
    root that is an array)."""
    parts: list[str] = []
    for i, (kind, name) in enumerate(path.segs):
        if kind == INDEX:
            if i == 0:
                return None
            parts.append("[*]")
            continue
        text = "*" if kind == ANY else render_key(name)
        parts.append(text if i == 0 else "." + text)
    if not parts:
        return None
    body = "".join(parts)
    if path.root == "payload":
        first_kind, first_name = path.segs[0]
        # `attributes.x` would name the record's attributes: a payload key of a root's
        # name is written `payload.<key>`.
        if first_kind == KEY and first_name in ROOT_WORDS:
            return "payload." + body
        return body
    return f"{path.root}.{body}"


def display_path(path: PathId) -> str:
    """The path for the report, also where no rule can name it."""
    rendered = render_path(path)
    if rendered is not None:
        return rendered
    name = "record" if path.root == "payload" else path.root
    rest = "".join("[*]" if k == INDEX else "." + ("*" if k == ANY else render_key(n))
                   for k, n in path.segs)
    return f"({name}){rest}"


# -- hints ----------------------------------------------------------------------

@dataclass(frozen=True)
class HintFound:
    hint: Hint
    key: str
    own: bool  # on the key holding the value, not a parent's


def hint_of(path: PathId) -> HintFound | None:
    """The safe-harbor hint the pipeline would apply at `path`: the key's own, else the
    nearest parent key's (keys under `*` are unknown: no hint)."""
    own = True
    for i in range(len(path.segs) - 1, -1, -1):
        kind, name = path.segs[i]
        if kind == INDEX:
            continue
        if kind == ANY:
            own = False
            continue
        hint = hint_for(name, top_level=i == 0)
        if hint is not None:
            return HintFound(hint, name, own)
        own = False
    return None


# -- judging --------------------------------------------------------------------

def _pct(part: int, whole: int) -> str:
    if not whole:
        return "0%"
    share = 100.0 * part / whole
    if 0 < share < 0.1:
        return "<0.1%"
    return f"{share:.0f}%" if share >= 10 or share == 0 else f"{share:.1f}%"


def shapes_text(stats: PathStats, top: int = 3) -> str:
    total = sum(stats.shapes.values()) + stats.shapes_other
    if not total:
        return ""
    if stats.shapes.most_common(1)[0][1] < 0.01 * total:
        return "varied (no shape in 1% of values)"
    parts = [f"{shape} {_pct(n, total)}" for shape, n in stats.shapes.most_common(top)]
    if len(stats.shapes) > top or stats.shapes_other:
        parts.append("...")
    return ", ".join(parts)


def distinct_text(stats: PathStats) -> str:
    return ("" if stats.distinct.exact else "~") + str(stats.distinct.estimate())


def detector_summary(stats: PathStats) -> str:
    n = stats.scanned
    parts = [f"{name} whole {_pct(c, n)}" for name, c in stats.whole.most_common()]
    parts += [f"{name} inside {_pct(c, n)}" for name, c in stats.inside.most_common()]
    return ", ".join(parts)


def _evidence(stats: PathStats) -> list[str]:
    out = []
    if stats.scanned and stats.hit_values:
        out.append(f"detectors over {stats.scanned} values: {detector_summary(stats)}")
    shapes = shapes_text(stats)
    if shapes:
        out.append(f"shapes {shapes}")
    out.append(f"{distinct_text(stats)} distinct of {stats.count}")
    return out


def _fit(stats: PathStats, action: str, options: Mapping[str, Any]) -> str | None:
    """Why `action` cannot take every value seen here, or None when it can."""
    if action in _ANY_SCALAR_OPS or action in ("scan", "keep", "drop"):
        return None
    if stats.is_container:
        return f"the path also holds objects or arrays, which {action} would reach"
    if action == "generalize":
        check = str(options.get("kind", "date"))
    else:
        check = _FIT_CHECK.get(action, action)
    if check in stats.unfit:
        reason = {"fpe": "has fewer than 6 digits (FF1's minimum)",
                  "zip3": "is no ZIP code", "age": "is no age",
                  "date": "is no date generalize reads",
                  "birth_date": "is no date generalize reads"}.get(check, "is refused")
        return f"some value {reason}"
    return None


def _with_fit(p: Proposal, action: str, options: dict[str, Any], label: str) -> None:
    problem = _fit(p.stats, action, options)
    if problem is None:
        p.action, p.options = action, options
        return
    p.action, p.options = "redact", {"type": label}
    p.why.append(f"{action} would reject: {problem}; redact instead")


def _name_action(names: str) -> tuple[str, dict[str, Any]]:
    """The --names action (tokenize or redact) and its options."""
    return (names, {} if names == "tokenize" else {"type": "NAME"})


def _hint_action(hint: Hint, names: str) -> tuple[str, dict[str, Any]]:
    label = hint.label
    if label == "NAME":
        return _name_action(names)
    if label in ("PHONE", "FAX"):
        return ("fpe", {})
    if hint.action == "generalize":
        kind = str(hint.options.get("kind", "date"))
        return ("generalize", {"kind": kind})
    if hint.action == "redact":
        return ("redact", {"type": label})
    return (hint.action, {})


def _detector_action(stats: PathStats, names: str) -> tuple[str, dict[str, Any], str]:
    total = sum(stats.whole.values())
    found = [name for name, c in stats.whole.most_common() if c >= 0.05 * total]
    picks = [_name_action(names) if name == NAME_DETECTOR
             else DETECTOR_ACTIONS.get(name, ("redact", {"type": name.upper()}))
             for name in found]
    actions = {a for a, _ in picks}
    label = "VALUE"
    if len(found) == 1:
        label = "NAME" if found[0] == NAME_DETECTOR else found[0].upper()
    if len(actions) == 1:
        action, options = picks[0]
        options = dict(options)
        if action == "generalize" and is_birth_key(stats.path.last_key or ""):
            options["kind"] = "birth_date"
        return action, options, label
    return "redact", {}, label  # several kinds of identifier: nothing else fits all


def judge(stats: PathStats, *, min_hit_rate: float, names: str) -> Proposal:
    path = render_path(stats.path)
    p = Proposal(stats, path)
    found = hint_of(stats.path)
    if stats.is_container and not stats.scalar_count and not stats.key_hits:
        p.category = "structure"
        p.handling = "object/array: rules on the paths beneath"
        return p
    if path is None:
        p.category = "unnamed"
        p.handling = _runtime(stats, found, named=False)
        return p
    if stats.key_hits:
        hits = ", ".join(f"{n} in {c}" for n, c in stats.key_hits.most_common())
        p.action, p.category = "drop", "keys"
        p.why = [f"its keys are identifiers ({hits} of {stats.keys_seen} keys, written `*`): "
                 "masking changes values, not keys; only drop removes them"]
        return p
    log_field = found is not None and found.own and found.hint.action == "keep"
    if log_field and set(stats.whole) | set(stats.inside) <= {"date"}:
        assert found is not None
        p.action, p.category = "keep", "log field"
        p.why = [f"the record's own `{found.key}` (a safe-harbor log field: kept"
                 + ("; detector hits here are the log's own metadata, not a patient's)"
                    if stats.hit_values else ")"), *_evidence(stats)]
        return p
    if found is not None and found.own and not log_field:
        action, options = _hint_action(found.hint, names)
        p.category = "hint"
        p.why = [f"field name `{found.key}` (hint {found.hint.label})", *_evidence(stats)]
        _with_fit(p, action, options, found.hint.label)
        return p
    whole = sum(stats.whole.values())
    if (stats.scanned and whole / stats.scanned >= max(IDENTIFIER_SHARE, min_hit_rate)
            and whole >= WHOLE_OF_HITS * stats.hit_values):
        action, options, label = _detector_action(stats, names)
        p.category = "identifier"
        p.why = [f"detectors are the whole value in "
                 f"{_pct(whole, stats.scanned)} of values", *_evidence(stats)]
        _with_fit(p, action, options, label)
        return p
    if (stats.strings >= NAME_MIN_VALUES and stats.name_like >= NAME_SHARE * stats.strings
            and stats.distinct.estimate() >= NAME_MIN_DISTINCT * stats.strings):
        p.category = "name-shaped"
        p.why = [f"{_pct(stats.name_like, stats.strings)} of values are shaped like personal "
                 "names with many distinct values; the name detector knew too few: review",
                 *_evidence(stats)]
        _with_fit(p, *_name_action(names), "NAME")
        return p
    # A log field the profile would keep unscanned, holding more than its own time, is
    # scanned at any hit rate.
    if stats.hit_values and (stats.hit_rate >= min_hit_rate or log_field):
        p.action, p.category = "scan", "free text"
        p.why = [f"identifiers inside the text in {_pct(stats.hit_values, stats.scanned)} of "
                 "values: the free-text detectors mask them in place", *_evidence(stats)]
        return p
    p.handling = _runtime(stats, found, named=True)
    if stats.hit_values:
        p.why = [f"detector hits in {_pct(stats.hit_values, stats.scanned)} of values, under "
                 f"--min-hit-rate {min_hit_rate:g}"]
    return p


def _runtime(stats: PathStats, found: HintFound | None, *, named: bool) -> str:
    """What masks this path at run time when the policy has no rule for it."""
    if found is not None:
        how = "kept" if found.hint.action == "keep" else f"{found.hint.action}"
        where = "its own key" if found.own else "a parent key"
        return f"{how} by the safe-harbor hint on {where} `{found.key}`"
    if stats.types["string"] or stats.scanned:
        why = "" if named else " (no rule can name it)"
        return f"scanned by unmapped_strings: scan{why}"
    return "passes (numbers, booleans and null carry no identifier)"


def propose(sample: Sample, *, min_hit_rate: float = DEFAULT_MIN_HIT_RATE,
            names: str = "tokenize") -> list[Proposal]:
    """One proposal per path seen, in first-seen order."""
    if names not in NAME_ACTIONS:
        raise ValueError(f"names must be one of {', '.join(NAME_ACTIONS)}")
    if not 0.0 <= min_hit_rate <= 1.0:
        raise ValueError("min_hit_rate must be between 0 and 1")
    out: list[Proposal] = []
    dropped: list[PathId] = []
    for stats in sample.paths:
        under = next((d for d in dropped if _beneath(stats.path, d)), None)
        if under is not None:
            p = Proposal(stats, render_path(stats.path), category="dropped",
                         handling=f"dropped with `{render_path(under)}`")
            out.append(p)
            continue
        p = judge(stats, min_hit_rate=min_hit_rate, names=names)
        if p.action == "drop":
            dropped.append(stats.path)
        out.append(p)
    return out


def _beneath(path: PathId, parent: PathId) -> bool:
    return (path.root == parent.root and len(path.segs) > len(parent.segs)
            and path.segs[: len(parent.segs)] == parent.segs)


def rules(proposals: Iterable[Proposal]) -> list[Proposal]:
    """The proposals that become rules, in policy order: fewer segments first, so a
    dotted key (`"a.b"`) comes before the nested path it also spells (`a.b`)."""
    chosen = [p for p in proposals if p.action is not None and p.path is not None]
    return sorted(chosen, key=lambda p: (p.segments, p.stats.order))


# -- YAML -----------------------------------------------------------------------

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_\-/.]*")


def yaml_scalar(value: Any) -> str:
    """A YAML flow scalar that loads back as `value` (a str or an int)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError("only strings and integers are written")
    if isinstance(value, int):
        return str(value)
    if _PLAIN.fullmatch(value) and yaml.safe_load(value) == value:
        return value
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif code in (0x09, 0x0A, 0x0D, 0x85, 0x2028, 0x2029) or not _yaml_printable(code):
            out.append(f"\\x{code:02x}" if code < 0x100 else
                       f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _yaml_printable(code: int) -> bool:
    return (0x20 <= code <= 0x7E or code == 0x85 or 0xA0 <= code <= 0xD7FF
            or 0xE000 <= code <= 0xFFFD or 0x10000 <= code <= 0x10FFFF) and code != 0xFEFF


def _comment(lines: Iterable[str], indent: str) -> list[str]:
    out: list[str] = []
    for line in lines:
        clean = "".join(ch if ch.isprintable() else "?" for ch in line)
        out += textwrap.wrap(clean, width=96 - len(indent) - 2, initial_indent=f"{indent}# ",
                             subsequent_indent=f"{indent}#   ", break_on_hyphens=False)
    return out


HEADER = """\
Proposed by `phimask discover`: review it before use. Each rule says why it was
proposed (detectors and how often they hit, value shapes, field-name hints); no value
from the sample is written here.
profile safe-harbor: its field-name hints still mask fields the sample did not show, and
keep the log's own top-level time and trace ids. unmapped_strings: scan: every string no
rule names is still scanned for identifiers. on_error: reject: a value an operator cannot
take rejects its record, never passes.\
"""


def render_policy(proposals: Sequence[Proposal], sample: Sample, *,
                  bad_lines: int = 0) -> str:
    """The proposed policy as YAML, a comment above every rule."""
    chosen = rules(proposals)
    phi = sum(p.phi for p in chosen)
    lines = _comment(HEADER.splitlines(), "")
    lines += _comment([f"Sample: {sample.records} records"
                       + (f" ({bad_lines} unreadable lines skipped)" if bad_lines else "")
                       + f", {len(sample.paths)} paths, {phi} PHI paths."], "")
    lines += ["version: 1", f"profile: {PROFILE}", "on_error: reject",
              "unmapped_strings: scan"]
    if not chosen:
        lines.append("fields: []")
    else:
        lines.append("fields:")
    for p in chosen:
        assert p.path is not None and p.action is not None
        head = f"{p.category}: " if p.category else ""
        why = p.why or [""]
        lines += _comment([head + why[0], *why[1:]], "  ")
        parts = [f"path: {yaml_scalar(p.path)}", f"action: {p.action}"]
        parts += [f"{k}: {yaml_scalar(v)}" for k, v in p.options.items()]
        lines.append("  - {" + ", ".join(parts) + "}")
    return "\n".join(lines) + "\n"


def check_policy(text: str, *, state_dir: Path, roots: Sequence[Sequence[str]] = (
        ("payload", "attributes"),)) -> None:
    """Load and compile `text` with phimask's own loader (throwaway keys, no vault):
    raises PolicyError when it would not load."""
    keys = Keyring.throwaway()
    for root_names in roots:
        compile_policy(load_yaml(text, "<discovered policy>"), roots=tuple(root_names),
                       state_dir=state_dir, keys=keys, vault=None)


def summary_line(proposals: Sequence[Proposal]) -> str:
    chosen = rules(proposals)
    counts: dict[str, int] = {}
    for p in chosen:
        assert p.action is not None
        counts[p.action] = counts.get(p.action, 0) + 1
    detail = ", ".join(f"{a} {n}" for a, n in sorted(counts.items()))
    return f"{len(chosen)} rules" + (f" ({detail})" if detail else "")
