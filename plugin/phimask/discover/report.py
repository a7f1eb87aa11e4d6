"""The coverage report (Markdown): every path seen, what it holds, what the policy does
with it, and what discover could not see. Counts, shapes and detector names only:
never a value."""

from __future__ import annotations

from collections.abc import Sequence

from .infer import Sample
from .propose import (
    Proposal,
    detector_summary,
    display_path,
    distinct_text,
    hint_of,
    rules,
    shapes_text,
)
from .sources import ReadStats

MAX_BAD_SHOWN = 50
_TYPE_ORDER = ("string", "integer", "number", "boolean", "null", "object", "array", "bytes")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or " "


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def _code(text: str) -> str:
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return _cell(f"{fence}{pad}{text}{pad}{fence}")


def _types(p: Proposal) -> str:
    types = p.stats.types
    ordered = [t for t in _TYPE_ORDER if types[t]] + sorted(
        t for t in types if t not in _TYPE_ORDER and types[t])
    return ", ".join(f"{t} {types[t]}" for t in ordered)


def _path(p: Proposal) -> str:
    return _code(display_path(p.stats.path))


def _hint(p: Proposal) -> str:
    found = hint_of(p.stats.path)
    if found is None:
        return ""
    where = "" if found.own else f" (on `{found.key}`)"
    return f"{found.hint.label or 'keep'}{where}"


def _action(p: Proposal) -> str:
    if p.action is None:
        return ""
    options = " ".join(f"{k}={v}" for k, v in p.options.items())
    return f"**{p.action}**" + (f" {options}" if options else "")


def render_report(proposals: Sequence[Proposal], sample: Sample, read: ReadStats, *,
                  fmt: str, min_hit_rate: float) -> str:
    chosen = rules(proposals)
    phi = [p for p in chosen if p.phi]
    kept = [p for p in chosen if p.action == "keep"]
    structure = [p for p in proposals if p.category == "structure"]
    others = [p for p in proposals if p.action is None and p.category != "structure"]
    out: list[str] = ["# phimask discover: coverage report", ""]
    out += [
        f"* input format: {fmt}; lines read: {read.lines}; records: {sample.records}",
        f"* unreadable lines skipped: {read.bad_total}",
        f"* paths seen: {len(sample.paths)}; PHI paths with a rule: {len(phi)}; kept log "
        f"fields: {len(kept)}; judged non-PHI: {len(others)}",
        f"* --min-hit-rate: {min_hit_rate:g} (share of a path's values with a detector hit "
        "before it is judged PHI)",
        "* values are never stored: distinct counts come from salted hashes (random salt per "
        "run; `~` marks an estimate), shapes map digits to `d` and letters to `a`/`A`",
        "",
    ]
    if read.bad:
        out += ["## Unreadable lines", ""]
        for bad in read.bad[:MAX_BAD_SHOWN]:
            out.append(f"* line {bad.number}: {bad.reason}")
        if read.bad_total > MAX_BAD_SHOWN:
            out.append(f"* ... and {read.bad_total - MAX_BAD_SHOWN} more")
        out.append("")
    out += ["## PHI paths and proposed rules", ""]
    if phi:
        out += ["| path | action | judged by | types | count | distinct | shapes | detectors "
                "(share of values) | hint | why |",
                "|---|---|---|---|---:|---:|---|---|---|---|"]
        for p in phi:
            why = p.why[0] if p.why else ""
            extra = [w for w in p.why[1:] if "instead" in w]
            out.append(_row(_path(p), _action(p), p.category, _types(p), str(p.stats.count),
                            distinct_text(p.stats), _cell(shapes_text(p.stats)),
                            _cell(detector_summary(p.stats)), _cell(_hint(p)),
                            _cell("; ".join([why, *extra]))))
    else:
        out.append("None found.")
    out.append("")
    if kept:
        out += ["## Kept on purpose", "",
                "The log record's own time and trace ids (safe-harbor log fields, top level "
                "only). A detector may hit them (the date detector on `ts`): they are the "
                "log's metadata, not a date of the patient's.", "",
                "| path | types | count | distinct | shapes | detectors |",
                "|---|---|---:|---:|---|---|"]
        for p in kept:
            out.append(_row(_path(p), _types(p), str(p.stats.count), distinct_text(p.stats),
                            _cell(shapes_text(p.stats)), _cell(detector_summary(p.stats))))
        out.append("")
    out += ["## Paths judged non-PHI", ""]
    if others:
        out += ["| path | types | count | distinct | shapes | detectors | at run time |",
                "|---|---|---:|---:|---|---|---|"]
        for p in others:
            handling = p.handling + (f"; {p.why[0]}" if p.why else "")
            out.append(_row(_path(p), _types(p), str(p.stats.count), distinct_text(p.stats),
                            _cell(shapes_text(p.stats)), _cell(detector_summary(p.stats)),
                            _cell(handling)))
    else:
        out.append("None.")
    out.append("")
    if structure:
        out += ["## Objects and arrays", "", "| path | types | count | keys read |",
                "|---|---|---:|---:|"]
        for p in structure:
            out.append(_row(_path(p), _types(p), str(p.stats.count), str(p.stats.keys_seen)))
        out.append("")
    out += ["## What discover cannot see", ""]
    out += _notes(proposals, sample)
    return "\n".join(out) + "\n"


def _notes(proposals: Sequence[Proposal], sample: Sample) -> list[str]:
    notes: list[str] = []
    free = [display_path(p.stats.path) for p in proposals if p.action == "scan"]
    if free:
        notes.append(
            "* `scan` on " + ", ".join(_code(f) for f in free)
            + " masks SSNs, phones, e-mails, dates, MRNs, cards, IPs, URLs and personal names "
            "in place. Names are found by the census name lists and cues (`Dr.`, `pt`, "
            "`seen by`): a first name the lists do not hold, a name in capitals or in lower "
            "case, or a single name without a cue stays, and so do street addresses and bare "
            "record numbers (an MRN without an `MRN` label). If those occur there, use "
            "`redact` or `drop` for those paths, or add a custom detector.")
    shaped = [display_path(p.stats.path) for p in proposals if p.category == "name-shaped"]
    if shaped:
        notes.append("* Judged by value shape only (the name detector knew too few of them): "
                     + ", ".join(_code(s) for s in shaped) + ". Review.")
    notes.append(
        "* Names, street addresses, cities and bare identifiers in their own fields are "
        "found by field-name hints, and names also by the person_name detector: under a key no "
        "hint knows (say `caller`), names are found when the detector knows most of them or "
        "they are shaped like full names (`Aaaa Aaaa`, many distinct values); single first "
        "names, names in capitals and bare record numbers are missed. Paths judged "
        "non-PHI are still scanned at run time (`unmapped_strings: scan`).")
    keyed = [display_path(p.stats.path) for p in proposals if p.category == "keys"]
    if keyed:
        notes.append("* Objects keyed by identifiers (written `*`, dropped): "
                     + ", ".join(_code(k) for k in keyed) + ".")
    dynamic = [display_path(p.stats.path) for p in proposals if p.stats.dynamic_keys]
    if dynamic:
        notes.append("* Objects with too many distinct keys to be a schema (a map keyed by "
                     "data): all their keys are written `*`, so none is printed: "
                     + ", ".join(_code(d) for d in dynamic) + ".")
    unnamed = [display_path(p.stats.path) for p in proposals if p.category == "unnamed"]
    if unnamed:
        notes.append("* No rule can name these (a plain-string or array body): only "
                     "`unmapped_strings: scan` covers them: "
                     + ", ".join(_code(u) for u in unnamed) + ".")
    if sample.too_deep:
        notes.append(f"* {sample.too_deep} records nest deeper than 64 levels: phimask rejects "
                     "them (`too_deep`); what lies deeper was not analysed.")
    if sample.untracked:
        notes.append(f"* {sample.untracked} values lie under paths beyond the first "
                     f"{len(sample.paths)}: not analysed; `unmapped_strings: scan` covers them.")
    return notes
