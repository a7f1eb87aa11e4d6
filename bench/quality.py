"""Detection quality of phimask's free-text detectors, side by side with Presidio's and
scrubadub's, on one labelled synthetic corpus.

The corpus (bench.labelled, seeded Faker) is log-message strings with the exact span
and label of every planted identifier: SSN, PHONE, EMAIL, MRN, CARD, IP, DATE and
PERSON (names in prose: First Last, with initials and titles, Last, First; plus forms
phimask misses on purpose: capitals, lower case, a first name alone, other locales), in
the formats people and systems write them (dashed and undashed SSNs; NANP numbers in
sixteen US styles and Faker's own formats for ten other locales, with and without the
country code; emails of six locales, plus-tags, subdomains, "Name <addr>"; MRNs under
sixteen label styles; Luhn-valid Visa, Mastercard, Amex, Discover, JCB and Diners
numbers, plain, spaced and dashed; IPv4 and IPv6 as proxies log them; dates in prose,
numeric, ISO, HL7 and European forms). Negatives look like PHI but are not (order
numbers, 4-part versions, OIDs, MAC addresses, digit strings that fail the Luhn or SSA
rules, ...). Ambiguous samples (log-line timestamps, HTTP Date headers, role
mailboxes) are not scored, only counted: whether they are PHI depends on what they
describe.

Each tool scans the text of every sample:
  phimask    Scanner.build(builtin_detectors()).scan_many, the engine `phimask serve`
             picks; detector -> label: ssn SSN, phone PHONE, email EMAIL, mrn MRN,
             credit_card CARD, ipv4/ipv6 IP, date DATE, person_name PERSON (url,
             health_plan, account and vin map to no label)
  Presidio   AnalyzerEngine.analyze, every predefined English recognizer, NoOpNlpEngine
             (no spaCy model), its default score threshold; US_SSN SSN, PHONE_NUMBER
             PHONE, EMAIL_ADDRESS EMAIL, CREDIT_CARD CARD, IP_ADDRESS IP, DATE_TIME DATE
             (no MRN recognizer; PERSON needs an NLP model, not loaded: no detector)
  scrubadub  Scrubber().iter_filth, its default detectors; social_security_number SSN,
             phone PHONE, email EMAIL, credit_card CARD (no IP, DATE, MRN or PERSON
             detector: its name detectors are not among the defaults)

Scoring, per label: a detection counts as a true positive when it overlaps a labelled
span of the same label (overlapping detections of one label are merged first), else as
a false positive. Recall = labelled spans overlapped by a detection of their label /
labelled spans; precision = true-positive detections / detections of that label.
"Fully masked" is stricter: every letter and digit of the span lies inside some
detection, of any type (what would leave no fragment behind). A label a tool has no
detector for is reported as such, not as 0%.

phimask's targets: recall >= 99.5% and precision >= 98% for every label. Missed
formats are listed with the SHAPE of a few missed spans (digits as d, letters as a/A),
never the values.

Results go to OUT/quality.json and OUT/quality.md (the Markdown also on stdout,
progress on stderr). Presidio and scrubadub are optional (`pip install -e
'.[compare]'`); a missing one is reported as not measured.

examples:
  python -m bench.quality                          # full run (~15,000 samples, ~20 s)
  python -m bench.quality --quick --out /tmp/q     # smoke run, seconds
  python -m bench.quality --per-label 5000 --seed 7
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.compare import (
    INSTALL_HINT,
    PEERS,
    PeerMissing,
    dist_version,
    load_presidio,
    load_scrubadub,
    versions,
)
from bench.labelled import LABELS, Sample, by_format, generate, shape
from bench.run import ROOT, machine_info, progress, write_atomic
from phimask.detect import Scanner, builtin_detectors

TARGET_RECALL = 0.995
TARGET_PRECISION = 0.98
FULL_PER_LABEL = 1500
QUICK_PER_LABEL = 40
SHAPES_SHOWN = 3

PHIMASK_LABELS = {
    "ssn": "SSN",
    "phone": "PHONE",
    "email": "EMAIL",
    "mrn": "MRN",
    "credit_card": "CARD",
    "ipv4": "IP",
    "ipv6": "IP",
    "date": "DATE",
    "person_name": "PERSON",
}
PRESIDIO_LABELS = {
    "US_SSN": "SSN",
    "PHONE_NUMBER": "PHONE",
    "EMAIL_ADDRESS": "EMAIL",
    "CREDIT_CARD": "CARD",
    "IP_ADDRESS": "IP",
    "DATE_TIME": "DATE",
}
SCRUBADUB_LABELS = {
    "social_security_number": "SSN",
    "phone": "PHONE",
    "email": "EMAIL",
    "credit_card": "CARD",
}
TOOLS = ("phimask", *PEERS)
TOOL_NAMES = {"phimask": "phimask", "presidio": "Presidio", "scrubadub": "scrubadub"}


@dataclass(frozen=True)
class Found:
    start: int
    end: int
    label: str | None  # one of LABELS, or None for a type outside them
    kind: str  # the tool's own detector or entity name


Detect = Callable[[Sequence[str]], list[list[Found]]]


@dataclass(frozen=True)
class Tool:
    name: str
    version: str
    detect: Detect
    mapping: Mapping[str, str]


def phimask_tool() -> Tool:
    scanner = Scanner.build(builtin_detectors())

    def detect(texts: Sequence[str]) -> list[list[Found]]:
        return [
            [
                Found(m.start, m.end, PHIMASK_LABELS.get(m.detector.name), m.detector.name)
                for m in matches
            ]
            for matches in scanner.scan_many(texts)
        ]

    version = f"{dist_version('phimask')} ({scanner.engine} engine)"
    return Tool("phimask", version, detect, PHIMASK_LABELS)


def presidio_tool() -> Tool:
    presidio = load_presidio()

    def detect(texts: Sequence[str]) -> list[list[Found]]:
        return [
            [
                Found(
                    int(r.start),
                    int(r.end),
                    PRESIDIO_LABELS.get(str(r.entity_type)),
                    str(r.entity_type),
                )
                for r in presidio.analyze(text)
            ]
            for text in texts
        ]

    return Tool("presidio", presidio.version, detect, PRESIDIO_LABELS)


def scrubadub_tool() -> Tool:
    scrub = load_scrubadub()

    def detect(texts: Sequence[str]) -> list[list[Found]]:
        return [
            [Found(b, e, SCRUBADUB_LABELS.get(kind), kind) for b, e, kind in scrub.filth(text)]
            for text in texts
        ]

    return Tool("scrubadub", scrub.version, detect, SCRUBADUB_LABELS)


LOADERS: dict[str, Callable[[], Tool]] = {
    "phimask": phimask_tool,
    "presidio": presidio_tool,
    "scrubadub": scrubadub_tool,
}


# --- scoring -----------------------------------------------------------------------


def merged(found: Sequence[Found]) -> list[Found]:
    """Detections of one label that overlap merged into one (kinds joined)."""
    out: list[Found] = []
    for f in sorted((f for f in found if f.label), key=lambda f: (f.label or "", f.start)):
        last = out[-1] if out else None
        if last is not None and last.label == f.label and f.start < last.end:
            kinds = last.kind if f.kind in last.kind.split("+") else f"{last.kind}+{f.kind}"
            out[-1] = Found(last.start, max(last.end, f.end), last.label, kinds)
        else:
            out.append(f)
    return out


def _overlaps(a_start: int, a_end: int, b_start: int, b_end: int) -> bool:
    return a_start < b_end and b_start < a_end


def _fully_masked(text: str, start: int, end: int, found: Sequence[Found]) -> bool:
    return all(
        any(f.start <= i < f.end for f in found) for i in range(start, end) if text[i].isalnum()
    )


@dataclass
class LabelStats:
    spans: int = 0
    hit: int = 0  # overlapped by a detection of the same label
    fully_masked: int = 0  # every alnum char inside some detection, any type
    detections: int = 0
    true_detections: int = 0

    def as_dict(self, supported: bool) -> dict[str, Any]:
        return {
            "supported": supported,
            "spans": self.spans,
            "hit": self.hit,
            "missed": self.spans - self.hit,
            "recall": self.hit / self.spans if supported and self.spans else None,
            "fully_masked": self.fully_masked / self.spans if self.spans else None,
            "detections": self.detections,
            "true_detections": self.true_detections,
            "false_detections": self.detections - self.true_detections,
            "precision": (
                self.true_detections / self.detections if supported and self.detections else None
            ),
        }


def score(
    tool: Tool, samples: Sequence[Sample], results: Sequence[Sequence[Found]]
) -> dict[str, Any]:
    """Per-label, per-format and per-negative figures of one tool's detections."""
    supported = set(tool.mapping.values())
    labels = {label: LabelStats() for label in LABELS}
    formats: dict[str, dict[str, Any]] = {}
    false_sources: dict[str, Counter[str]] = {label: Counter() for label in LABELS}
    missed_shapes: dict[str, list[str]] = {}
    unmapped = Counter[str]()
    for sample, raw in zip(samples, results, strict=True):
        found = merged(raw)
        unmapped.update(f.kind for f in raw if f.label is None)
        fmt = formats.setdefault(
            sample.format,
            {"group": sample.group,
             "label": sample.label or (sample.spans[0].label if sample.spans else None),
             "samples": 0, "spans": 0, "hit": 0, "fully_masked": 0, "flagged": 0,
             "flagged_as": Counter[str]()},
        )  # fmt: skip
        fmt["samples"] += 1
        for span in sample.spans:
            stats = labels[span.label]
            stats.spans += 1
            fmt["spans"] += 1
            if any(
                f.label == span.label and _overlaps(f.start, f.end, span.start, span.end)
                for f in found
            ):
                stats.hit += 1
                fmt["hit"] += 1
            elif span.label in supported:
                shapes = missed_shapes.setdefault(sample.format, [])
                s = shape(sample.text[span.start : span.end])
                if s not in shapes:
                    shapes.append(s)
            if _fully_masked(sample.text, span.start, span.end, raw):
                stats.fully_masked += 1
                fmt["fully_masked"] += 1
        if sample.group != "positive" and found:
            fmt["flagged"] += 1
            fmt["flagged_as"].update(f.label for f in found if f.label)
        if sample.group == "ambiguous":
            continue  # not scored
        for f in found:
            assert f.label is not None
            stats = labels[f.label]
            stats.detections += 1
            if any(
                s.label == f.label and _overlaps(f.start, f.end, s.start, s.end)
                for s in sample.spans
            ):
                stats.true_detections += 1
            else:
                false_sources[f.label][sample.format] += 1
    out_formats: dict[str, Any] = {}
    for name, fmt in formats.items():
        entry = {k: v for k, v in fmt.items() if k != "flagged_as"}
        if fmt["group"] == "positive":
            entry["recall"] = fmt["hit"] / fmt["spans"] if fmt["spans"] else None
            entry["missed_shapes"] = missed_shapes.get(name, [])[:SHAPES_SHOWN]
        else:
            entry["flag_rate"] = fmt["flagged"] / fmt["samples"]
            entry["flagged_as"] = dict(fmt["flagged_as"])
        out_formats[name] = entry
    return {
        "name": tool.name,
        "version": tool.version,
        "available": True,
        "mapping": dict(tool.mapping),
        "labels": {label: labels[label].as_dict(label in supported) for label in LABELS},
        "formats": out_formats,
        "false_positive_sources": {
            label: dict(c.most_common(8)) for label, c in false_sources.items() if c
        },
        "unmapped_detections": dict(unmapped.most_common()),
    }


# --- report ------------------------------------------------------------------------


def _pct(v: float | None, digits: int = 1) -> str:
    return "—" if v is None else f"{100 * v:.{digits}f}%"


def _cell(stats: Mapping[str, Any], key: str) -> str:
    if not stats["supported"]:
        return "no detector"
    return _pct(stats[key])


def summary_table(tools: Mapping[str, Any]) -> str:
    present = [t for t in TOOLS if tools[t]["available"]]
    head = "| label | spans |" + "".join(
        f" {TOOL_NAMES[t]} recall | {TOOL_NAMES[t]} precision |" for t in present
    )
    rule = "|:------|------:|" + "---------:|---------:|" * len(present)
    lines = [head, rule]
    for label in LABELS:
        spans = tools["phimask"]["labels"][label]["spans"]
        row = f"| {label} | {spans:,} |"
        for t in present:
            stats = tools[t]["labels"][label]
            row += f" {_cell(stats, 'recall')} | {_cell(stats, 'precision')} |"
        lines.append(row)
    return "\n".join(lines)


def tool_table(tool: Mapping[str, Any]) -> str:
    lines = [
        "| label | spans | hit | missed | recall | fully masked | detections | false | precision |",
        "|:------|------:|----:|-------:|-------:|-------------:|-----------:|------:|----------:|",
    ]
    for label in LABELS:
        s = tool["labels"][label]
        if not s["supported"]:
            lines.append(
                f"| {label} | {s['spans']:,} | — | — | no detector | {_pct(s['fully_masked'])} "
                "| — | — | — |"
            )
            continue
        lines.append(
            f"| {label} | {s['spans']:,} | {s['hit']:,} | {s['missed']:,} | {_pct(s['recall'], 2)} "
            f"| {_pct(s['fully_masked'])} | {s['detections']:,} | {s['false_detections']:,} "
            f"| {_pct(s['precision'], 2)} |"
        )
    return "\n".join(lines)


def targets_table(phimask: Mapping[str, Any]) -> str:
    lines = [
        f"| label | recall | >= {TARGET_RECALL:.1%} | precision | >= {TARGET_PRECISION:.0%} |",
        "|:------|-------:|:------|----------:|:------|",
    ]
    for label in LABELS:
        s = phimask["labels"][label]
        r, p = s["recall"], s["precision"]
        lines.append(
            f"| {label} | {_pct(r, 2)} | {_verdict(r, TARGET_RECALL)} | {_pct(p, 2)} "
            f"| {_verdict(p, TARGET_PRECISION)} |"
        )
    return "\n".join(lines)


def _verdict(value: float | None, goal: float) -> str:
    if value is None:
        return "not measured"
    gap = 100 * (value - goal)
    return f"met (+{gap:.2f} pt)" if value >= goal else f"**missed** ({gap:.2f} pt)"


def misses_table(phimask: Mapping[str, Any]) -> str:
    rows = [
        (name, f)
        for name, f in phimask["formats"].items()
        if f["group"] == "positive" and f["hit"] < f["spans"]
    ]
    if not rows:
        return "phimask missed no labelled span."
    lines = [
        "| format | recall | missed / spans | shapes of missed spans |",
        "|:-------|-------:|---------------:|:-----------------------|",
    ]
    for name, f in sorted(rows, key=lambda r: (r[1]["recall"], r[0])):
        shapes = ", ".join(f"`{s}`" for s in f["missed_shapes"])
        lines.append(
            f"| {name} | {_pct(f['recall'])} | {f['spans'] - f['hit']:,} / {f['spans']:,} "
            f"| {shapes} |"
        )
    return "\n".join(lines)


def phone_families(tools: Mapping[str, Any]) -> str:
    """Phone recall for US numbers, +country-code numbers and other countries' national
    formats: how much of the phone figure each family is."""
    present = [t for t in TOOLS if tools[t]["available"]]
    lines = [
        "| family | spans |" + "".join(f" {TOOL_NAMES[t]} |" for t in present),
        "|:-------|------:|" + "------:|" * len(present),
    ]
    for family, what in (
        ("us", "US (NANP), 16 styles"),
        ("intl", "+country code, Faker's formats for 9 locales"),
        ("national", "other countries' national formats, Faker, 9 locales"),
    ):
        row, spans = "", 0
        for t in present:
            hit = total = 0
            for name, f in tools[t]["formats"].items():
                if name.startswith(f"phone: {family} "):
                    hit, total = hit + f["hit"], total + f["spans"]
            row += f" {_pct(hit / total if total else None)} |"
            spans = total
        lines.append(f"| {what} | {spans:,} |{row}")
    return "\n".join(lines)


def format_table(tools: Mapping[str, Any], group: str) -> str:
    present = [t for t in TOOLS if tools[t]["available"]]
    names = [n for n, f in tools["phimask"]["formats"].items() if f["group"] == group]
    if group == "positive":
        head = "| format | spans |" + "".join(f" {TOOL_NAMES[t]} |" for t in present)
    else:
        head = "| format | samples |" + "".join(f" {TOOL_NAMES[t]} flagged |" for t in present)
    lines = [head, "|:-------|------:|" + "------:|" * len(present)]
    for name in names:
        ref = tools["phimask"]["formats"][name]
        row = f"| {name} | {ref['spans' if group == 'positive' else 'samples']:,} |"
        for t in present:
            f = tools[t]["formats"][name]
            if group == "positive":
                supported = tools[t]["labels"][ref["label"]]["supported"]
                row += f" {_pct(f['recall'], 0) if supported else 'no detector'} |"
            else:
                kinds = ", ".join(f"{k} {v}" for k, v in sorted(f["flagged_as"].items()))
                row += f" {_pct(f['flag_rate'], 0)}{f' ({kinds})' if kinds else ''} |"
        lines.append(row)
    return "\n".join(lines)


def markdown(report: Mapping[str, Any]) -> str:
    m, c, tools = report["machine"], report["config"], report["tools"]
    missing = [
        f"- {TOOL_NAMES[t]}: not measured ({tools[t]['reason']})"
        for t in TOOLS
        if not tools[t]["available"]
    ]
    details: list[str] = []
    for t in TOOLS:
        tool = tools[t]
        if not tool["available"]:
            continue
        details += [
            f"### {TOOL_NAMES[t]} {tool['version']} ({tool['seconds']:.1f} s)",
            "",
            tool_table(tool),
            "",
        ]
        if tool["unmapped_detections"]:
            kinds = ", ".join(f"{k} {v:,}" for k, v in tool["unmapped_detections"].items())
            details += [f"Detections of types outside the labels (not scored): {kinds}.", ""]
        fps = tool["false_positive_sources"]
        if fps:
            details.append("False positives came from:")
            for label, sources in fps.items():
                where = ", ".join(f"{k} ({v:,})" for k, v in sources.items())
                details.append(f"- {label}: {where}")
            details.append("")
    groups = c["groups"]
    return "\n".join(
        [
            "# Detection quality: phimask, Presidio and scrubadub on one labelled corpus",
            "",
            f"{m['date']} · {m['cpu_model']} · Python {m['python']} · "
            f"commit {m['git_commit'] or 'none'}{' (dirty)' if m['git_dirty'] else ''} · "
            f"{c['profile']} mode",
            "",
            f"`python -m bench.quality`: {c['samples']:,} log-message samples from "
            f"bench.labelled (seed {c['seed']}, {c['per_label']:,} positives a label split "
            f"over its formats by weight): {groups['positive']:,} positive, "
            f"{groups['negative']:,} negative (PHI look-alikes), {groups['ambiguous']:,} "
            "ambiguous (not scored). A detection is a true positive when it overlaps a "
            'labelled span of its label; "fully masked" means every letter and digit of the '
            "span was inside some detection of any type (a span another detector caught "
            "counts as a miss of its label, and as a false positive of the other). Each "
            f"negative format has {c['negatives_per_format']:,} samples: precision depends on "
            "that mix, and the false-positive sources below say which formats cost it. "
            "`python -m bench.quality --help` has the details.",
            "",
            "## Recall and precision by label",
            "",
            summary_table(tools),
            "",
            *missing,
            *([""] if missing else []),
            f"## phimask against its targets (recall >= {TARGET_RECALL:.1%}, precision >= "
            f"{TARGET_PRECISION:.0%})",
            "",
            targets_table(tools["phimask"]),
            "",
            "## phimask's misses, by format",
            "",
            "Shapes: digits as `d`, letters as `a`/`A`; never the values.",
            "",
            misses_table(tools["phimask"]),
            "",
            "Phone recall by family (every tool):",
            "",
            phone_families(tools),
            "",
            "## Per tool",
            "",
            *details,
            "## Recall by format",
            "",
            format_table(tools, "positive"),
            "",
            "## Negatives: share of samples flagged (by the labels it was flagged as)",
            "",
            format_table(tools, "negative"),
            "",
            "## Ambiguous (not scored): share of samples flagged",
            "",
            format_table(tools, "ambiguous"),
            "",
        ]
    )


# --- command line ------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.quality",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke mode: {QUICK_PER_LABEL} positives a label; figures are rough",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=ROOT / "bench" / "results",
        help="directory for quality.json and quality.md (default bench/results)",
    )
    p.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    p.add_argument(
        "--per-label",
        type=int,
        help=f"positive samples a label (default {FULL_PER_LABEL}; --quick {QUICK_PER_LABEL})",
    )
    p.add_argument(
        "--no-peers", action="store_true", help="phimask only: skip Presidio and scrubadub"
    )
    opts = p.parse_args(argv)
    if opts.per_label is not None and opts.per_label < 16:
        p.error("--per-label must be >= 16")
    return opts


def measure(per_label: int, seed: int, profile: str, peers: Sequence[str]) -> dict[str, Any]:
    progress(f"{profile} mode: generating the labelled corpus ({per_label} a label, seed {seed})")
    samples = generate(per_label, seed)
    texts = [s.text for s in samples]
    tools: dict[str, Any] = {}
    for name in TOOLS:
        if name != "phimask" and name not in peers:
            tools[name] = {"available": False, "reason": "not requested (--no-peers)"}
            continue
        try:
            tool = LOADERS[name]()
        except PeerMissing as exc:
            progress(f"skipping {TOOL_NAMES[name]}: {exc}")
            tools[name] = {"available": False, "reason": str(exc)}
            continue
        progress(f"{TOOL_NAMES[name]} {tool.version}: scanning {len(texts):,} samples")
        start = time.perf_counter()
        results = tool.detect(texts)
        seconds = time.perf_counter() - start
        tools[name] = score(tool, samples, results) | {"seconds": seconds}
    groups = Counter(s.group for s in samples)
    machine = machine_info()
    machine["versions"] |= versions()
    report: dict[str, Any] = {
        "machine": machine,
        "config": {
            "profile": profile,
            "per_label": per_label,
            "seed": seed,
            "samples": len(samples),
            "groups": {g: groups.get(g, 0) for g in ("positive", "negative", "ambiguous")},
            "formats": len(by_format(samples)),
            "spans": dict(Counter(sp.label for s in samples for sp in s.spans)),
            "negatives_per_format": max(
                Counter(s.format for s in samples if s.group == "negative").values()
            ),
            "targets": {"recall": TARGET_RECALL, "precision": TARGET_PRECISION},
            "install_peers": INSTALL_HINT,
        },
        "tools": tools,
    }
    phimask = tools["phimask"]["labels"]
    report["targets"] = {
        label: {
            "recall": phimask[label]["recall"],
            "recall_met": (phimask[label]["recall"] or 0) >= TARGET_RECALL,
            "precision": phimask[label]["precision"],
            "precision_met": (phimask[label]["precision"] or 0) >= TARGET_PRECISION,
        }
        for label in LABELS
    }
    return report


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    per_label = opts.per_label or (QUICK_PER_LABEL if opts.quick else FULL_PER_LABEL)
    profile = "quick" if opts.quick else "full"
    report = measure(per_label, opts.seed, profile, () if opts.no_peers else PEERS)
    md = markdown(report)
    opts.out.mkdir(parents=True, exist_ok=True)
    write_atomic(opts.out / "quality.json", orjson.dumps(report, option=orjson.OPT_INDENT_2))
    write_atomic(opts.out / "quality.md", md.encode())
    progress(f"wrote {opts.out / 'quality.json'} and {opts.out / 'quality.md'}")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
