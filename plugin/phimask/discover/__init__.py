"""`phimask discover`: propose a policy from a sample of logs, with a coverage report.

    infer.py    paths, JSON types, counts, distinct counts, value shapes, detector hits
    propose.py  one rule per PHI path and why; the policy YAML, checked by the real loader
    report.py   the coverage report (Markdown)
    sources.py  NDJSON, Vector JSON and OTLP/JSON (Collector file exporter) samples

No value of the sample is kept past its batch, and none is ever written out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..detect import Scanner, builtin_detectors
from .infer import Inference, PathId, PathStats, Sample, shape_of
from .propose import (
    DEFAULT_MIN_HIT_RATE,
    NAME_ACTIONS,
    Proposal,
    check_policy,
    propose,
    render_path,
    render_policy,
    rules,
)
from .report import render_report
from .sources import FORMATS, BadLine, ReadStats, any_value, otlp_documents, read_documents

OTLP_ROOTS = ("body", "attributes", "resource", "scope")
NATIVE_ROOTS = ("payload", "attributes")


@dataclass
class Discovery:
    sample: Sample
    read: ReadStats
    proposals: list[Proposal]
    policy: str  # YAML, loads with phimask's policy loader
    report: str  # Markdown


def discover_documents(docs: Iterable[Mapping[str, Any]], *, read: ReadStats | None = None,
                       fmt: str = "ndjson", min_hit_rate: float = DEFAULT_MIN_HIT_RATE,
                       names: str = "tokenize", scanner: Scanner | None = None,
                       state_dir: Path = Path(".")) -> Discovery:
    """Analyse documents and propose a policy; raises PolicyError if the proposal
    would not load (a bug: it is checked before anything is written)."""
    read = read or ReadStats()
    inference = Inference(scanner or Scanner.build(builtin_detectors()))
    inference.add_all(docs)
    sample = inference.finish()
    proposals = propose(sample, min_hit_rate=min_hit_rate, names=names)
    policy = render_policy(proposals, sample, bad_lines=read.bad_total)
    roots = [NATIVE_ROOTS, OTLP_ROOTS] if fmt == "otlp-json" else [NATIVE_ROOTS]
    check_policy(policy, state_dir=state_dir, roots=roots)
    report = render_report(proposals, sample, read, fmt=fmt, min_hit_rate=min_hit_rate)
    return Discovery(sample, read, proposals, policy, report)


def discover_stream(stream: IO[bytes], *, fmt: str = "ndjson",
                    progress: Callable[[int], None] | None = None,
                    **options: Any) -> Discovery:
    read = ReadStats()
    docs = read_documents(stream, fmt, read, progress)
    return discover_documents(docs, read=read, fmt=fmt, **options)


__all__ = [
    "DEFAULT_MIN_HIT_RATE",
    "FORMATS",
    "NAME_ACTIONS",
    "NATIVE_ROOTS",
    "OTLP_ROOTS",
    "BadLine",
    "Discovery",
    "Inference",
    "PathId",
    "PathStats",
    "Proposal",
    "ReadStats",
    "Sample",
    "any_value",
    "check_policy",
    "discover_documents",
    "discover_stream",
    "otlp_documents",
    "propose",
    "read_documents",
    "render_path",
    "render_policy",
    "render_report",
    "rules",
    "shape_of",
]
