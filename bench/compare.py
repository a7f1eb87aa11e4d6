"""phimask side by side with Presidio and scrubadub: in-process, one core, one run.

Every figure comes from the same seeded corpus (bench.corpus: Faker hospital-app
records, PHI in ~30% of the free-text `msg` fields), in this one process, on one core,
with garbage collection tuned as a phimask worker tunes it (long-lived state frozen,
threshold 100,000):

records through phimask, 1000-record batches (records/s, p50/p99 ms per batch)
  floor        transform_request on serialized TransformRequests under an empty policy
               (version: 1, profile: none, unmapped_strings: keep): protobuf decode,
               JSON parse, JSON encode and protobuf encode, and no masking at all
  safe-harbor  the same requests under the embedded default (safe-harbor) policy, as
               `phimask serve` runs it (residual monitor sampling 1%; a reference row
               has the monitor off, as the floor has)
  otlp         transform_export on the OTLP encoding of the same records (each record a
               key/value-list body, as Fluent Bit sends it), safe-harbor policy

the same `msg` strings through each scanner (strings/s, p50/p99 ms per 1000 strings)
  phimask      Scanner.redact_many over 1000 strings a call: every built-in detector,
               the engine `phimask serve` picks (Hyperscan where available)
  phimask 1/call  the same, one string a call (reference: what batching is worth)
  Presidio     AnalyzerEngine.analyze + AnonymizerEngine.anonymize, one string a call,
               every predefined English recognizer, NoOpNlpEngine (no spaCy model:
               pattern recognizers only), tldextract kept offline (bundled suffix list)
  scrubadub    Scrubber().clean, one string a call, its default detectors

The cases of each group are interleaved batch by batch, so a machine that slows down
for a while (another process on the same cores) slows them alike and their ratios hold.

Targets (the issue "Proven under load and faults"): phimask >= 30x Presidio's
strings/s; safe-harbor >= 40% of the floor's records/s; a worker's RSS <= 200 MB,
measured in a fresh process that imports what a worker imports, builds the safe-harbor
masker and masks every batch (its peak RSS, VmHWM: Linux carries ru_maxrss over from
the parent). This process's own ru_maxrss is reported too, by phase: it holds the
corpus and, later, Presidio, spaCy and scrubadub.

Presidio and scrubadub are optional (`pip install -e '.[compare]'`, which also brings
matplotlib for compare.png): without them their rows and the ratios to them are
reported as not measured, and phimask's side still runs.

Results go to OUT/compare.json (with machine info), OUT/compare.md and OUT/compare.png;
the Markdown is printed on stdout, progress on stderr. No corpus value is written or
printed: only counts and timings. Exit status 1 if a check failed (a record rejected).

examples:
  python -m bench.compare                          # full run (under a minute)
  python -m bench.compare --quick --out /tmp/cmp   # smoke run, seconds, rough figures
  python -m bench.compare --records 20000 --passes 30   # steadier phimask figures
  python -m bench.compare --no-peers               # phimask's side only
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.metadata
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import orjson

from bench.corpus import encode_otlp_requests, encode_requests, generate_records
from bench.run import ROOT, machine_info, progress, write_atomic
from phimask._gen.phimask.v1 import transform_pb2
from phimask.adapters.native import Limits, transform_request
from phimask.adapters.otlp import OTLP_ROOTS, transform_export
from phimask.config import Settings
from phimask.detect import Match, Scanner, builtin_detectors
from phimask.pipeline import Masker
from phimask.policy import default_policy_text
from phimask.runtime import build_masker

BATCH = 1000
EMPTY_POLICY = "version: 1\nprofile: none\nunmapped_strings: keep\n"
# The targets.
TARGET_VS_PRESIDIO = 30.0  # phimask strings/s over Presidio's
TARGET_OF_FLOOR = 0.40  # safe-harbor records/s over the empty policy's
TARGET_WORKER_RSS_MB = 200.0
PEERS = ("presidio", "scrubadub")
INSTALL_HINT = "pip install -e '.[compare]'"

T = TypeVar("T")


class BenchFailure(Exception):
    """A check failed while measuring; the message has counts, never values."""


class PeerMissing(Exception):
    """A peer library is not installed or cannot start offline; the message says which."""


@dataclass(frozen=True)
class Profile:
    name: str
    records: int  # corpus records (a multiple of BATCH)
    passes: int  # timed passes over every batch, per phimask case
    peer_strings: int | None  # msg strings the peers scan (None: all of them)


FULL = Profile("full", records=10_000, passes=20, peer_strings=None)
QUICK = Profile("quick", records=2_000, passes=3, peer_strings=200)


# --- peers -------------------------------------------------------------------------


def dist_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def offline_tldextract() -> None:
    """Keep tldextract (Presidio's email validator) off the network: no suffix-list URL,
    so it answers from its bundled snapshot. Its module-level extractor is made on
    import and fetches on first use, so clearing the URLs before any use suffices."""
    try:
        from tldextract import tldextract  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return
    tldextract.TLD_EXTRACTOR.suffix_list_urls = ()


@dataclass(frozen=True)
class Presidio:
    """AnalyzerEngine with pattern recognizers only, and AnonymizerEngine."""

    analyzer: Any
    anonymizer: Any
    version: str
    recognizers: tuple[str, ...]

    def analyze(self, text: str) -> list[Any]:
        results: list[Any] = self.analyzer.analyze(text=text, language="en")
        return results

    def redact(self, text: str) -> str:
        results = self.analyzer.analyze(text=text, language="en")
        redacted: str = self.anonymizer.anonymize(text=text, analyzer_results=results).text
        return redacted


def load_presidio() -> Presidio:
    """Presidio on the supported no-model path: NoOpNlpEngine loads no spaCy model and
    returns empty NLP artifacts, so only the predefined pattern recognizers run."""
    try:
        from presidio_analyzer import (  # type: ignore[import-not-found, unused-ignore]
            AnalyzerEngine,
            RecognizerRegistry,
        )
        from presidio_analyzer.nlp_engine import (  # type: ignore[import-not-found, unused-ignore]
            NoOpNlpEngine,
        )
        from presidio_anonymizer import (  # type: ignore[import-not-found, unused-ignore]
            AnonymizerEngine,
        )
    except ImportError as exc:
        raise PeerMissing(f"Presidio is not installed ({exc.name}); {INSTALL_HINT}") from None
    offline_tldextract()
    nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
    nlp.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(nlp_engine=nlp, languages=["en"])
    analyzer: Any = AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=["en"])
    names = tuple(sorted(str(r.name) for r in analyzer.get_recognizers("en")))
    anonymizer: Any = AnonymizerEngine  # partly annotated: its constructor is not
    version = dist_version("presidio-analyzer") or "unknown"
    return Presidio(analyzer, anonymizer(), version, names)


@dataclass(frozen=True)
class Scrubadub:
    scrubber: Any
    version: str
    detectors: tuple[str, ...]

    def redact(self, text: str) -> str:
        cleaned: str = self.scrubber.clean(text)
        return cleaned

    def filth(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, type) of every detection; merged overlaps are split back."""
        out: list[tuple[int, int, str]] = []
        for found in self.scrubber.iter_filth(text):
            for f in getattr(found, "filths", None) or [found]:
                out.append((int(f.beg), int(f.end), str(f.type)))
        return out


def load_scrubadub() -> Scrubadub:
    """scrubadub's Scrubber with its default detectors (en_US): none needs a model or
    the network."""
    try:
        import scrubadub  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError as exc:
        raise PeerMissing(f"scrubadub is not installed ({exc.name}); {INSTALL_HINT}") from None
    # Scrubber.clean warns on every call that Filth.replace_with is deprecated: the
    # documented call, all the same.
    warnings.filterwarnings(
        "ignore", r"Filth\.replace_with\(\) will be removed", DeprecationWarning
    )
    scrubber = scrubadub.Scrubber()
    names = tuple(sorted(scrubber._detectors))
    return Scrubadub(scrubber, dist_version("scrubadub") or "unknown", names)


# --- timing ------------------------------------------------------------------------


@contextlib.contextmanager
def worker_gc() -> Iterator[None]:
    """Garbage collection as a phimask worker runs it (phimask.workers._setup_worker):
    long-lived state frozen out of the collector's view, threshold 100,000."""
    threshold = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


@dataclass(frozen=True)
class Timing:
    items: int  # records or strings handled while timed
    seconds: float
    per_1000_ms: list[float]  # each timed call, scaled to 1000 items

    @property
    def per_s(self) -> float:
        return self.items / self.seconds

    def as_dict(self) -> dict[str, Any]:
        ms = sorted(self.per_1000_ms)
        return {
            "items": self.items,
            "calls": len(ms),
            "seconds": self.seconds,
            "per_s": self.per_s,
            "p50_ms": statistics.median(ms),
            "p99_ms": ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))],
            "mean_ms": statistics.fmean(ms),
        }


@dataclass(frozen=True)
class Case:
    """One timed thing: `call` on each (batch, items) of `batches`, `passes` times over."""

    key: str
    call: Callable[[Any], object]
    batches: Sequence[tuple[Any, int]]
    passes: int


def run_interleaved(cases: Sequence[Case]) -> dict[str, tuple[Timing, list[object]]]:
    """Each case's timing and the results of its last pass.

    Interleaved batch by batch (every case on batch 1, then every case on batch 2, ...),
    after one untimed call of each: a machine that slows down for a while (another
    process on the same cores) slows every case alike, so their ratios hold."""
    for case in cases:
        case.call(case.batches[0][0])
    per_1000: dict[str, list[float]] = {c.key: [] for c in cases}
    items = dict.fromkeys(per_1000, 0)
    seconds = dict.fromkeys(per_1000, 0.0)
    last: dict[str, list[object]] = {c.key: [] for c in cases}
    for p in range(max(c.passes for c in cases)):
        for i in range(max(len(c.batches) for c in cases)):
            for case in cases:
                if p >= case.passes or i >= len(case.batches):
                    continue
                batch, n = case.batches[i]
                start = time.perf_counter()
                result = case.call(batch)
                took = time.perf_counter() - start
                per_1000[case.key].append(took * 1e3 * BATCH / n)
                items[case.key] += n
                seconds[case.key] += took
                if p == case.passes - 1:
                    last[case.key].append(result)
    return {k: (Timing(items[k], seconds[k], per_1000[k]), last[k]) for k in per_1000}


def chunks(values: Sequence[str], size: int = BATCH) -> list[tuple[list[str], int]]:
    return [
        (list(values[i : i + size]), len(values[i : i + size])) for i in range(0, len(values), size)
    ]


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- phimask -----------------------------------------------------------------------


def build_maskers(workdir: Path) -> dict[str, Masker]:
    """The empty and the safe-harbor policy for native records, and safe-harbor for
    OTLP (its document roots), as `phimask serve` builds them (local keys, 1% monitor)."""
    empty, default = workdir / "empty.yaml", workdir / "default.yaml"
    empty.write_text(EMPTY_POLICY, encoding="utf-8")
    default.write_text(default_policy_text(), encoding="utf-8")
    settings = Settings(workers=1, state_dir=workdir / "state")
    return {
        # No residual-PHI monitor on the floor: it would re-scan what the empty policy
        # passes through on purpose (and log every hit).
        "floor": build_masker(replace(settings, policy=empty, monitor_sample_rate=0.0)),
        "safe-harbor": build_masker(replace(settings, policy=default)),
        "safe-harbor-no-monitor": build_masker(
            replace(settings, policy=default, monitor_sample_rate=0.0)
        ),
        "otlp": build_masker(replace(settings, policy=default), roots=OTLP_ROOTS),
    }


def check_native(label: str, reply: bytes, records: int) -> None:
    response = transform_pb2.TransformResponse.FromString(reply)
    if response.rejections or len(response.records) != records:
        raise BenchFailure(f"{label}: {len(response.rejections)} of {records} records rejected")


CASES = (
    ("floor", "phimask, empty policy (decode + JSON + encode)", "TransformRequest"),
    ("safe-harbor", "phimask, safe-harbor policy", "TransformRequest"),
    (
        "safe-harbor-no-monitor",
        "phimask, safe-harbor policy, residual monitor off (reference)",
        "TransformRequest",
    ),
    ("otlp", "phimask over OTLP, safe-harbor policy", "ExportLogsServiceRequest"),
)


def bench_records(
    profile: Profile, records: Sequence[dict[str, Any]], maskers: Mapping[str, Masker]
) -> list[dict[str, Any]]:
    wires = {
        "native": encode_requests(records, BATCH),
        "otlp": encode_otlp_requests(records, BATCH),
    }
    limits = Limits()
    sizes = [min(BATCH, len(records) - i) for i in range(0, len(records), BATCH)]
    cases: list[Case] = []
    for key, label, _ in CASES:
        masker = maskers[key]
        if key == "otlp":
            for data, n in zip(wires["otlp"], sizes, strict=True):
                result = transform_export(masker, data, limits)
                if result.accepted != n:
                    raise BenchFailure(f"{label}: {n - result.accepted} of {n} records rejected")

            def call(data: bytes, masker: Masker = masker) -> object:
                return transform_export(masker, data, limits)

        else:
            for data, n in zip(wires["native"], sizes, strict=True):
                check_native(label, transform_request(masker, data, limits), n)

            def call(data: bytes, masker: Masker = masker) -> object:
                return transform_request(masker, data, limits)

        wire = wires["otlp" if key == "otlp" else "native"]
        cases.append(Case(key, call, list(zip(wire, sizes, strict=True)), profile.passes))
    progress(
        f"{', '.join(key for key, _, _ in CASES)}: {len(sizes)} batches x {profile.passes} "
        "passes, interleaved"
    )
    timings = run_interleaved(cases)
    return [
        {
            "key": key,
            "label": label,
            "tool": "phimask",
            "unit": "records",
            "input": f"{message}, {BATCH} records",
            "request_bytes": sum(map(len, wires["otlp" if key == "otlp" else "native"]))
            // len(sizes),
            **timings[key][0].as_dict(),
        }
        for key, label, message in CASES
    ]


# --- scanners on the msg strings -------------------------------------------------


def scan_rows(
    profile: Profile, msgs: Sequence[str], peers: Sequence[str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """phimask's Scanner and each available peer on the same msg strings, interleaved."""
    scanner = Scanner.build(builtin_detectors())
    labels = {d.name: f"[REDACTED:{d.label}]" for d in scanner.detectors}

    def replace_match(m: Match) -> str:
        return labels[m.detector.name]

    subset = list(msgs[: profile.peer_strings] if profile.peer_strings else msgs)
    one_passes = max(1, profile.passes // 4)
    # (case, label, tool, how) in report order
    cases: list[tuple[Case, str, str, str]] = [
        (
            Case(
                "phimask-scan",
                lambda batch: scanner.redact_many(batch, replace_match),
                chunks(msgs),
                profile.passes,
            ),
            "phimask Scanner.redact_many",
            "phimask",
            f"{BATCH} strings a call, {len(scanner.detectors)} detectors, {scanner.engine} engine",
        ),
        (
            Case(
                "phimask-scan-1",
                lambda batch: [scanner.redact_many([s], replace_match)[0] for s in batch],
                chunks(subset),
                one_passes,
            ),
            "phimask, one string a call",
            "phimask",
            "1 string a call",
        ),
    ]
    peer_info: dict[str, Any] = {}
    if "presidio" in peers:
        try:
            presidio = load_presidio()
        except PeerMissing as exc:
            peer_info["presidio"] = {"available": False, "reason": str(exc)}
            progress(f"skipping Presidio: {exc}")
        else:
            peer_info["presidio"] = {
                "available": True,
                "version": presidio.version,
                "recognizers": list(presidio.recognizers),
            }
            cases.append(
                (
                    Case("presidio", lambda b: [presidio.redact(s) for s in b], chunks(subset), 1),
                    "Presidio analyze + anonymize",
                    "presidio",
                    f"1 string a call, {len(presidio.recognizers)} pattern recognizers, "
                    "no NLP model",
                )
            )
    if "scrubadub" in peers:
        try:
            scrub = load_scrubadub()
        except PeerMissing as exc:
            peer_info["scrubadub"] = {"available": False, "reason": str(exc)}
            progress(f"skipping scrubadub: {exc}")
        else:
            peer_info["scrubadub"] = {
                "available": True,
                "version": scrub.version,
                "detectors": list(scrub.detectors),
            }
            cases.append(
                (
                    Case("scrubadub", lambda b: [scrub.redact(s) for s in b], chunks(subset), 1),
                    "scrubadub Scrubber.clean",
                    "scrubadub",
                    f"1 string a call, default detectors ({len(scrub.detectors)})",
                )
            )
    for peer in PEERS:
        peer_info.setdefault(peer, {"available": False, "reason": "not requested (--no-peers)"})
    progress(
        f"scanning msg strings, interleaved: phimask {len(msgs):,} x {profile.passes} "
        f"batched, {len(subset):,} x {one_passes} one a call; "
        + ", ".join(f"{c.key} {len(subset):,} x 1" for c, *_ in cases[2:])
    )
    timings = run_interleaved([c for c, *_ in cases])
    rows: list[dict[str, Any]] = []
    for case, label, tool, how in cases:
        timing, outs = timings[case.key]
        if case.key == "phimask-scan":  # its last pass covered all msgs: count on subset
            outs = [scanner.redact_many(subset, replace_match)]
        flat = [s for out in outs for s in _strs(out)]
        rows.append(
            {
                "key": case.key,
                "label": label,
                "tool": tool,
                "unit": "strings",
                "input": how,
                **timing.as_dict(),
                "strings_changed": sum(a != b for a, b in zip(flat, subset, strict=True)),
            }
        )
    return rows, {"peers": peer_info, "subset": len(subset), "msgs": len(msgs)}


def _strs(out: object) -> list[str]:
    return [s for s in out if isinstance(s, str)] if isinstance(out, list) else []


# --- worker RSS --------------------------------------------------------------------

# Run in a fresh interpreter: what a worker process imports, the safe-harbor masker it
# builds, every batch masked `passes` times; prints the peak RSS (KiB) after the imports,
# after the build and at the end. Peak RSS is VmHWM: ru_maxrss would not do here, Linux
# carries it over from the parent through fork and exec.
_WORKER = """
import gc, resource, struct, sys
from pathlib import Path
import phimask.workers
from phimask.adapters.native import Limits, transform_request
from phimask.config import Settings
from phimask.runtime import build_masker
def rss():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
policy, state, path, passes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
imported = rss()
masker = build_masker(Settings(workers=1, state_dir=Path(state), policy=Path(policy)))
built = rss()
gc.collect(); gc.freeze(); gc.set_threshold(100_000, 50, 100)
data, pos, requests = Path(path).read_bytes(), 0, []
while pos < len(data):
    (n,) = struct.unpack_from("<I", data, pos)
    requests.append(data[pos + 4 : pos + 4 + n]); pos += 4 + n
del data
for _ in range(passes):
    for request in requests:
        transform_request(masker, request, Limits())
print(imported, built, rss())
"""


def worker_rss(records: Sequence[dict[str, Any]], workdir: Path, passes: int) -> dict[str, Any]:
    path = workdir / "requests.bin"
    with path.open("wb") as f:
        for request in encode_requests(records, BATCH):
            f.write(struct.pack("<I", len(request)) + request)
    policy = workdir / "default.yaml"
    progress(f"worker RSS: a fresh process masks {len(records)} records x {passes}")
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _WORKER,
            str(policy),
            str(workdir / "state"),
            str(path),
            str(passes),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if out.returncode != 0:
        raise BenchFailure(
            f"the worker RSS process exited with {out.returncode}: {out.stderr[-2000:]}"
        )
    imported, built, peak = (int(v) / 1024 for v in out.stdout.split()[-3:])
    return {"after_imports_mb": imported, "after_build_mb": built, "peak_mb": peak}


# --- report ------------------------------------------------------------------------


def targets(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    by = {r["key"]: r for r in report["records"] + report["scan"]}
    out: list[dict[str, Any]] = []

    def add(name: str, value: float | None, goal: float, higher: bool, unit: str, why: str) -> None:
        met = None if value is None else (value >= goal if higher else value <= goal)
        margin = None if value is None else (value / goal if higher else goal / value)
        out.append(
            {
                "target": name,
                "value": value,
                "goal": goal,
                "direction": ">=" if higher else "<=",
                "unit": unit,
                "met": met,
                "margin": margin,
                "note": why,
            }
        )

    scan = by["phimask-scan"]["per_s"]
    peers = report["peers"]
    for peer, goal in (("presidio", TARGET_VS_PRESIDIO), ("scrubadub", None)):
        value = scan / by[peer]["per_s"] if peer in by else None
        why = "" if peer in by else peers[peer].get("reason", "not measured")
        name = f"phimask / {'Presidio' if peer == 'presidio' else 'scrubadub'} strings/s"
        if goal is None:
            out.append(
                {
                    "target": name,
                    "value": value,
                    "goal": None,
                    "direction": None,
                    "unit": "x",
                    "met": None,
                    "margin": None,
                    "note": why or "no target: reported",
                }
            )
        else:
            add(name, value, goal, True, "x", why)
    add(
        "safe-harbor / empty-policy floor records/s",
        by["safe-harbor"]["per_s"] / by["floor"]["per_s"],
        TARGET_OF_FLOOR,
        True,
        "share",
        "",
    )
    add(
        "worker RSS (fresh process, safe-harbor)",
        report["rss"]["worker"]["peak_mb"],
        TARGET_WORKER_RSS_MB,
        False,
        "MB",
        "",
    )
    return out


def _fmt_value(t: Mapping[str, Any]) -> str:
    v = t["value"]
    if v is None:
        return "not measured"
    if t["unit"] == "share":
        return f"{v:.0%}"
    if t["unit"] == "MB":
        return f"{v:,.0f} MB"
    return f"{v:,.1f}x"


def _fmt_goal(t: Mapping[str, Any]) -> str:
    g = t["goal"]
    if g is None:
        return "—"
    if t["unit"] == "share":
        return f"{t['direction']} {g:.0%}"
    if t["unit"] == "MB":
        return f"{t['direction']} {g:,.0f} MB"
    return f"{t['direction']} {g:g}x"


def _fmt_met(t: Mapping[str, Any]) -> str:
    if t["met"] is None:
        return "—" if t["goal"] is None or t["value"] is None else ""
    if t["unit"] == "MB":
        how = (
            f"{t['goal'] - t['value']:,.0f} MB under"
            if t["met"]
            else f"{t['value'] - t['goal']:,.0f} MB over"
        )
    else:
        how = f"{t['margin']:.2f}x the goal"
    return f"**met** ({how})" if t["met"] else f"**missed** ({how})"


def records_table(rows: Sequence[Mapping[str, Any]]) -> str:
    floor = next(r["per_s"] for r in rows if r["key"] == "floor")
    lines = [
        "| case | input | records/s (1 core) | vs floor | p50 ms/batch | p99 ms/batch "
        "| batches timed |",
        "|:-----|:------|-------------------:|---------:|-------------:|-------------:"
        "|--------------:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['input']} | {r['per_s']:,.0f} | {r['per_s'] / floor:.0%} "
            f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['calls']} |"
        )
    return "\n".join(lines)


def scan_table(rows: Sequence[Mapping[str, Any]]) -> str:
    top = next(r["per_s"] for r in rows if r["key"] == "phimask-scan")
    lines = [
        "| tool | how | strings/s (1 core) | phimask is | p50 ms /1000 strings "
        "| p99 ms /1000 strings | strings timed | strings changed |",
        "|:-----|:----|-------------------:|-----------:|---------------------:"
        "|---------------------:|--------------:|----------------:|",
    ]
    for r in rows:
        changed = "—" if r["strings_changed"] is None else f"{r['strings_changed']:,}"
        lines.append(
            f"| {r['label']} | {r['input']} | {r['per_s']:,.0f} | {top / r['per_s']:,.1f}x "
            f"| {r['p50_ms']:,.2f} | {r['p99_ms']:,.2f} | {r['items']:,} | {changed} |"
        )
    return "\n".join(lines)


def targets_table(ts: Sequence[Mapping[str, Any]]) -> str:
    lines = ["| target | measured | goal | result |", "|:-------|---------:|-----:|:-------|"]
    for t in ts:
        result = _fmt_met(t) or t["note"]
        if t["value"] is None:
            result = t["note"]
        lines.append(f"| {t['target']} | {_fmt_value(t)} | {_fmt_goal(t)} | {result} |")
    return "\n".join(lines)


def markdown(report: Mapping[str, Any]) -> str:
    m, c, rss = report["machine"], report["config"], report["rss"]
    peers = report["peers"]
    peer_lines = []
    for name, info in peers.items():
        if info["available"]:
            what = info.get("recognizers") or info.get("detectors") or []
            peer_lines.append(f"- {name} {info['version']}: {', '.join(what)}")
        else:
            peer_lines.append(f"- {name}: not measured ({info['reason']})")
    proc, worker = rss["process"], rss["worker"]
    scanned = report["scan_config"]
    if scanned["subset"] == scanned["msgs"]:
        strings = f"all {scanned['msgs']:,} of them, for every tool"
    else:
        strings = (
            f"{scanned['msgs']:,} for phimask batched, the first {scanned['subset']:,} for the rest"
        )
    by = {r["key"]: r for r in report["records"]}
    added_us = 1e6 / by["safe-harbor"]["per_s"] - 1e6 / by["floor"]["per_s"]
    return "\n".join(
        [
            "# phimask side by side: in-process, one core",
            "",
            f"{m['date']} · {m['cpu_model']} · {m['cores']} cores · Python {m['python']} · "
            f"commit {m['git_commit'] or 'none'}{' (dirty)' if m['git_dirty'] else ''} · "
            f"{c['profile']} mode",
            "",
            f"`python -m bench.compare`: one process, one core, the same seeded corpus "
            f"(bench.corpus, {c['records']:,} records, seed {c['seed']}). Garbage collection "
            "as a phimask worker runs it. The server-side figures (gRPC, worker processes) "
            "are in [latest.md](latest.md).",
            "",
            f"## Records through phimask ({BATCH}-record batches, {c['passes']} passes)",
            "",
            records_table(report["records"]),
            "",
            f"The floor costs {1e6 / by['floor']['per_s']:.1f} µs a record; the safe-harbor "
            f"policy adds {added_us:.1f} µs a record on top (field hints, operators, the "
            "scan of unmapped strings).",
            "",
            f"## The same `msg` strings through each scanner ({strings})",
            "",
            scan_table(report["scan"]),
            "",
            '"strings changed": how many of the strings each tool altered (the corpus '
            "plants PHI in ~30% of them). Detection quality, format by format: "
            "[quality.md](quality.md).",
            "",
            *peer_lines,
            "",
            "## Targets",
            "",
            targets_table(report["targets"]),
            "",
            *(["![records/s and strings/s](compare.png)", ""] if report["chart"]["path"] else []),
            "## Memory (peak RSS)",
            "",
            "- a worker (fresh process: imports, safe-harbor masker, every batch masked): "
            f"**{worker['peak_mb']:,.0f} MB** peak ({worker['after_imports_mb']:,.0f} MB "
            f"after imports, {worker['after_build_mb']:,.0f} MB after building the masker); "
            f"target <= {TARGET_WORKER_RSS_MB:g} MB per worker",
            f"- this benchmark process, peak so far: {proc['start_mb']:,.0f} MB at start, "
            f"{proc['corpus_mb']:,.0f} MB with the corpus and its encodings, "
            f"{proc['phimask_mb']:,.0f} MB after phimask's cases, "
            f"{proc['peers_mb']:,.0f} MB after the peers (Presidio imports spaCy)",
            "",
        ]
    )


def chart(report: Mapping[str, Any], path: Path) -> str | None:
    """compare.png, or why it was not drawn."""
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
        from matplotlib.ticker import (  # type: ignore[import-not-found, unused-ignore]
            FuncFormatter,
        )
    except ImportError:
        return f"matplotlib is not installed; {INSTALL_HINT}"
    records, scan = report["records"], report["scan"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2))
    names = [
        textwrap.fill(r["label"].replace("phimask, ", "").replace("phimask ", ""), 24)
        for r in records
    ]
    values = [r["per_s"] for r in records]
    palette = {"floor": "#9e9e9e", "otlp": "#6baed6"}
    bars = left.barh(names, values, color=[palette.get(r["key"], "#1f77b4") for r in records])
    left.bar_label(bars, labels=[f"{v:,.0f}" for v in values], padding=3)
    left.invert_yaxis()
    left.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:,.0f}k"))
    left.set_xlabel("records/s, one core (1000-record batches)")
    left.set_title("phimask: records through transform")
    left.set_xlim(0, max(values) * 1.3)
    floor = next(r["per_s"] for r in records if r["key"] == "floor")
    left.axvline(TARGET_OF_FLOOR * floor, color="black", linestyle="--", linewidth=1)
    left.annotate(
        f"target: {TARGET_OF_FLOOR:.0%} of the floor",
        (TARGET_OF_FLOOR * floor, 1),
        xycoords=("data", "axes fraction"),
        xytext=(4, -12),
        textcoords="offset points",
        fontsize=8,
    )
    names = [textwrap.fill(r["label"], 24) for r in scan]
    values = [r["per_s"] for r in scan]
    colors = ["#1f77b4" if r["tool"] == "phimask" else "#d62728" for r in scan]
    bars = right.barh(names, values, color=colors)
    right.bar_label(bars, labels=[f"{v:,.0f}" for v in values], padding=3)
    right.set_xscale("log")
    right.invert_yaxis()
    right.set_xlim(min(values) / 2, max(values) * 8)
    right.set_xlabel("strings/s, one core (log scale)")
    presidio = next((r["per_s"] for r in scan if r["key"] == "presidio"), None)
    if presidio is not None:
        right.axvline(TARGET_VS_PRESIDIO * presidio, color="black", linestyle="--", linewidth=1)
        right.annotate(
            f"target: {TARGET_VS_PRESIDIO:g}x Presidio",
            (TARGET_VS_PRESIDIO * presidio, 1),
            xycoords=("data", "axes fraction"),
            xytext=(4, -12),
            textcoords="offset points",
            fontsize=8,
        )
    right.set_title("the same msg strings: scan and redact")
    m = report["machine"]
    fig.suptitle(f"phimask side by side · {m['cpu_model']} · {report['config']['profile']} mode")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


# --- command line ------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke mode: {QUICK.records:,} records, {QUICK.passes} passes, the peers on "
        f"{QUICK.peer_strings} strings; figures are rough",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=ROOT / "bench" / "results",
        help="directory for compare.json, compare.md and compare.png (default bench/results)",
    )
    p.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    p.add_argument(
        "--records",
        type=int,
        help=f"corpus records, a multiple of {BATCH} (default {FULL.records:,}; "
        f"--quick {QUICK.records:,})",
    )
    p.add_argument(
        "--passes",
        type=int,
        help=f"timed passes over every batch per phimask case (default {FULL.passes}; "
        f"--quick {QUICK.passes})",
    )
    p.add_argument(
        "--peer-strings",
        type=int,
        help="msg strings Presidio and scrubadub scan, once each (default: all; "
        f"--quick {QUICK.peer_strings})",
    )
    p.add_argument(
        "--no-peers", action="store_true", help="phimask's side only: skip Presidio and scrubadub"
    )
    opts = p.parse_args(argv)
    if opts.records is not None and (opts.records < BATCH or opts.records % BATCH):
        p.error(f"--records must be a positive multiple of {BATCH}")
    if opts.passes is not None and opts.passes < 1:
        p.error("--passes must be >= 1")
    if opts.peer_strings is not None and opts.peer_strings < 1:
        p.error("--peer-strings must be >= 1")
    return opts


def profile_of(opts: argparse.Namespace) -> Profile:
    profile = QUICK if opts.quick else FULL
    for field in ("records", "passes", "peer_strings"):
        value = getattr(opts, field)
        if value is not None:
            profile = replace(profile, **{field: value})
    return profile


def versions() -> dict[str, str]:
    found = {}
    for dist in (
        "hyperscan",
        "Faker",
        "presidio-analyzer",
        "presidio-anonymizer",
        "scrubadub",
        "spacy",
        "matplotlib",
    ):
        v = dist_version(dist)
        if v is not None:
            found[dist] = v
    return found


def measure(profile: Profile, seed: int, peers: Sequence[str]) -> dict[str, Any]:
    rss: dict[str, Any] = {"process": {"start_mb": maxrss_mb()}}
    progress(f"{profile.name} mode: generating {profile.records:,} corpus records (seed {seed})")
    records = generate_records(profile.records, seed)
    msgs = [r["msg"] for r in records]
    with tempfile.TemporaryDirectory(prefix="phimask-compare-") as tmp:
        workdir = Path(tmp)
        maskers = build_maskers(workdir)
        rss["process"]["corpus_mb"] = maxrss_mb()
        with worker_gc():
            record_rows = bench_records(profile, records, maskers)
            rss["process"]["phimask_mb"] = maxrss_mb()
            rss["worker"] = worker_rss(records, workdir, max(1, profile.passes // 4))
            scan, scan_config = scan_rows(profile, msgs, peers)
        rss["process"]["peers_mb"] = maxrss_mb()
    machine = machine_info()
    machine["versions"] |= versions()
    report: dict[str, Any] = {
        "machine": machine,
        "config": {
            "profile": profile.name,
            **{k: v for k, v in asdict(profile).items() if k != "name"},
            "seed": seed,
            "batch_records": BATCH,
            "empty_policy": EMPTY_POLICY,
            "scan_engine": Scanner.build(builtin_detectors()).engine,
            "gc": "as a worker: gc.freeze(), threshold (100000, 50, 100)",
        },
        "records": record_rows,
        "scan": scan,
        "scan_config": {k: v for k, v in scan_config.items() if k != "peers"},
        "peers": scan_config["peers"],
        "rss": rss,
    }
    report["targets"] = targets(report)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    try:
        report = measure(profile_of(opts), opts.seed, () if opts.no_peers else PEERS)
    except BenchFailure as e:
        progress(f"FAILED: {e}")
        return 1
    opts.out.mkdir(parents=True, exist_ok=True)
    png = opts.out / "compare.png"
    why = chart(report, png)
    report["chart"] = {"path": png.name if why is None else None, "skipped": why}
    if why is not None:
        progress(f"no chart: {why}")
    md = markdown(report)
    write_atomic(opts.out / "compare.json", orjson.dumps(report, option=orjson.OPT_INDENT_2))
    write_atomic(opts.out / "compare.md", md.encode())
    progress(
        f"wrote {opts.out / 'compare.json'}, {opts.out / 'compare.md'}"
        + ("" if why else f" and {png}")
    )
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
