"""Micro-benchmark of phimask's masking operators and signature checks, in-process.

One process, one core, no server and no gRPC: what each piece of masking costs, so a
server benchmark (bench.run) can be read as the sum of its parts.

operators   microseconds per value for every value operator, built as a server builds
            them: a policy compiled by phimask.policy with a keyring of real key files
            (made in a temp dir). Values are drawn from the bench corpus (bench.corpus,
            seeded Faker records):
              redact      patient.name
              hmac        patient.ssn
              partial     patient.phone
              generalize  patient.dob (an ISO birth date: year kept unless over 89)
              zip3        patient.address.zip
              fpe         digits: patient.phone; alnum: patient.mrn (FF1, AES)
              tokenize    against a SQLite vault in the temp dir:
                miss      a value the vault has never seen: as the pipeline calls it,
                          one write transaction (look-up, INSERT, fsync) per value
                hit       a repeated value, answered by the in-memory token cache
                stored    a value the vault holds but no cache does (another worker's,
                          or after a restart): one SELECT per value
                batched   reference, not what the pipeline does: Vault.tokenize_many on
                          a chunk of new values, one transaction for the whole chunk
            "baseline" is the loop and the call alone, with no work: subtract it to
            compare the cheapest operators. Timeit-style: each repeat runs the
            operator over the values as many passes as it takes to last --min-time,
            with garbage collection off; the figure is the median repeat.

signatures  one TransformRequest of 1000 corpus records, checked by the real Verifier
            (build_verifier, integrity mode require): per-record HMAC-SHA256 and
            Ed25519 (one signature per record payload) against per-batch ones (one
            signature over the serialized request, as sent in the
            x-phimask-batch-signature metadata): microseconds per batch and per record,
            and the ratio per-record / per-batch.

transform   transform_request (the native adapter: what a worker runs per call) on that
            request with the embedded safe-harbor policy: integrity off, then with
            `integrity: {mode: require}` and a per-batch HMAC or Ed25519 signature, or
            per-record HMAC or Ed25519 signatures. Records/s on one core, and what
            each way of signing adds per record.

Results go to OUT/operators.json (with machine info) and OUT/operators.md; the Markdown
is printed on stdout, progress on stderr. No value from the corpus is ever printed or
written: only counts and timings. Exit status 1 if a check failed (a signature that
does not verify, a record rejected).

examples:
  python -m bench.operators                          # full run (about a minute)
  python -m bench.operators --quick --out /tmp/ops   # smoke run, a few seconds
  python -m bench.operators --repeats 11 --min-time 0.5   # steadier figures
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gc
import importlib.metadata
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from bench.corpus import encode_requests, generate_records
from bench.run import ROOT, machine_info, progress, require_integrity, write_atomic
from phimask._gen.phimask.v1 import transform_pb2
from phimask.adapters.native import Limits, transform_request
from phimask.config import Settings
from phimask.integrity import BatchVerdict, Signer, Verifier, build_verifier
from phimask.keyring import Keyring, create_key_file, public_key_pem
from phimask.operators import Operator, Scalar
from phimask.pipeline import Masker
from phimask.policy import IntegritySpec, compile_policy, default_policy_text, load_yaml
from phimask.runtime import build_masker
from phimask.vault import Vault, open_vault

BATCH = 1000  # records in the request the signature and transform figures use
HMAC_KID = "bench-hmac"  # distinct kids: a Verifier looks a kid up as HMAC first
ED25519_KID = "bench-ed25519"
KEY_PURPOSES = ("hmac", "fpe", "vault", "vault-index", "audit", "verify-hmac")
MAX_LOOPS = 1 << 20

# The operators' policy: one rule per operator, each on the field its values come from
# (the path gives the rule its id, the tokenize domain and the fpe tweak).
OPERATOR_POLICY = """\
version: 1
profile: none
unmapped_strings: keep
fields:
  - {path: patient.name, action: redact}
  - {path: patient.ssn, action: hmac}
  - {path: patient.phone, action: partial}
  - {path: patient.dob, action: generalize}
  - {path: patient.address.zip, action: zip3}
  - {path: fpe_digits.phone, action: fpe}
  - {path: fpe_alnum.mrn, action: fpe, alphabet: alnum}
  - {path: tokenize.ssn, action: tokenize}
"""
BATCHED_DOMAIN = "tokenize.batched"


class BenchFailure(Exception):
    """A check failed while measuring; the message has counts and codes, never values."""


@dataclass(frozen=True)
class Profile:
    """How long and how hard to measure."""

    name: str
    records: int  # corpus records values are drawn from (>= BATCH)
    repeats: int
    min_time: float  # seconds one repeat lasts at least
    miss_chunk: int  # new values per tokenize-miss repeat (each is an fsync)
    transform_repeats: int  # transform_request calls timed per case, one per repeat


FULL = Profile("full", records=5000, repeats=7, min_time=0.2, miss_chunk=500, transform_repeats=21)
QUICK = Profile(
    "quick", records=BATCH, repeats=3, min_time=0.005, miss_chunk=25, transform_repeats=3
)


@dataclass(frozen=True)
class OperatorCase:
    operator: str  # the policy action
    detail: str  # what the values are, for the report
    rule: str  # the compiled rule's path
    source: str  # the corpus field the values come from


OPERATOR_CASES = (
    OperatorCase("redact", "patient name", "patient.name", "patient.name"),
    OperatorCase("hmac", "SSN", "patient.ssn", "patient.ssn"),
    OperatorCase("partial", "phone number, keep 4", "patient.phone", "patient.phone"),
    OperatorCase("generalize", "birth date (ISO)", "patient.dob", "patient.dob"),
    OperatorCase("zip3", "ZIP code", "patient.address.zip", "patient.address.zip"),
    OperatorCase("fpe", "digits: phone number", "fpe_digits.phone", "patient.phone"),
    OperatorCase("fpe", "alnum: MRN", "fpe_alnum.mrn", "patient.mrn"),
)


@dataclass(frozen=True)
class Sample:
    """Seconds per unit (a value, a batch), one figure per repeat."""

    median_s: float
    min_s: float
    max_s: float
    units_per_repeat: int
    repeats: int

    @classmethod
    def of(cls, per_unit: Sequence[float], units: int) -> Sample:
        return cls(statistics.median(per_unit), min(per_unit), max(per_unit), units, len(per_unit))

    def as_us(self) -> dict[str, float | int]:
        return {
            "median_us": self.median_s * 1e6,
            "min_us": self.min_s * 1e6,
            "max_us": self.max_s * 1e6,
            "units_per_repeat": self.units_per_repeat,
            "repeats": self.repeats,
        }


# --- timing ------------------------------------------------------------------------


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def time_loops(body: Callable[[], object], loops: int) -> float:
    with gc_paused():
        start = time.perf_counter()
        for _ in range(loops):
            body()
        return time.perf_counter() - start


def autorange(body: Callable[[], object], min_time: float) -> int:
    """Loops of `body` that last at least `min_time` (1, 2, 5, 10, 20, 50, ...)."""
    base = 1
    while True:
        for step in (1, 2, 5):
            loops = base * step
            if loops >= MAX_LOOPS or time_loops(body, loops) >= min_time:
                return loops
        base *= 10


def sample(body: Callable[[], object], units: int, repeats: int, min_time: float) -> Sample:
    """`body` handles `units` values (or batches) per call; seconds per unit."""
    loops = autorange(body, min_time)
    per_unit = [time_loops(body, loops) / (loops * units) for _ in range(repeats)]
    return Sample.of(per_unit, loops * units)


def sample_fresh(run: Callable[[list[str]], object], chunks: Sequence[list[str]]) -> Sample:
    """One repeat per chunk of never-seen values; the first chunk warms up, untimed."""
    warm, *timed = chunks
    run(warm)
    per_unit = [time_loops(partial(run, chunk), 1) / len(chunk) for chunk in timed]
    return Sample.of(per_unit, len(timed[0]))


def over(apply: Callable[[Scalar], Scalar], values: Sequence[Scalar]) -> Callable[[], None]:
    def body() -> None:
        for value in values:
            apply(value)

    return body


def _identity(value: Scalar) -> Scalar:
    return value


# --- set-up ------------------------------------------------------------------------


def make_keyring(directory: Path) -> Keyring:
    """Real key files, as `phimask keys generate` writes them; the Ed25519 sign key's
    public half saved as the verify-ed25519 key."""
    for purpose in KEY_PURPOSES:
        create_key_file(directory, purpose, kid=HMAC_KID if purpose == "verify-hmac" else "bench")
    create_key_file(directory, "sign", kid=ED25519_KID)
    sign = Keyring.load(directory, env={}).active("sign")
    (directory / f"verify-ed25519.{ED25519_KID}.key").write_text(public_key_pem(sign))
    return Keyring.load(directory, env={})


def signers(keys: Keyring) -> dict[str, Signer]:
    return {
        "hmac": Signer("hmac-sha256", HMAC_KID, keys.active("verify-hmac").material),
        "ed25519": Signer("ed25519", ED25519_KID, keys.active("sign").material),
    }


def compile_operators(keys: Keyring, state_dir: Path, vault: Vault) -> dict[str, Operator]:
    """The operator of each rule of OPERATOR_POLICY, by rule path."""
    plan = compile_policy(
        load_yaml(OPERATOR_POLICY, "<bench operators policy>"),
        state_dir=state_dir,
        keys=keys,
        vault=vault,
    )
    return {rule.rule_id: rule.op for rule in plan.rules if rule.op is not None}


def corpus_values(records: Sequence[Mapping[str, Any]], source: str) -> list[str]:
    """The string at dotted `source` in each record that has one."""
    out: list[str] = []
    for record in records:
        value: Any = record
        for key in source.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str):
            out.append(value)
    return out


def distinct(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


def chunked(values: Sequence[str], size: int, count: int) -> list[list[str]]:
    size = min(size, len(values) // count)
    if size < 1:
        raise BenchFailure(f"{len(values)} distinct values are too few for {count} chunks")
    return [list(values[i * size : (i + 1) * size]) for i in range(count)]


# --- operators ---------------------------------------------------------------------


def row(operator: str, detail: str, source: str, values: int, result: Sample) -> dict[str, Any]:
    return {
        "operator": operator,
        "input": detail,
        "source": source,
        "values": values,
        **result.as_us(),
    }


def bench_operators(
    profile: Profile, records: Sequence[Mapping[str, Any]], keys: Keyring, workdir: Path
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    baseline = corpus_values(records, "patient.name")
    progress("operators: baseline (loop and call, no work)")
    rows.append(
        row(
            "baseline",
            "loop + call, no work",
            "patient.name",
            len(baseline),
            sample(over(_identity, baseline), len(baseline), profile.repeats, profile.min_time),
        )
    )
    state = workdir / "state"
    with contextlib.ExitStack() as stack:
        vault = stack.enter_context(open_vault(None, state, keys))
        ops = compile_operators(keys, state, vault)
        for case in OPERATOR_CASES:
            values = corpus_values(records, case.source)
            progress(f"operators: {case.operator} ({case.detail}), {len(values)} values")
            result = sample(
                over(ops[case.rule].apply, values), len(values), profile.repeats, profile.min_time
            )
            rows.append(row(case.operator, case.detail, case.source, len(values), result))
        cold = stack.enter_context(open_vault(None, state, keys, cache_size=0))
        rows += bench_tokenize(
            profile,
            records,
            ops["tokenize.ssn"],
            vault,
            compile_operators(keys, state, cold)["tokenize.ssn"],
        )
    return rows


def bench_tokenize(
    profile: Profile,
    records: Sequence[Mapping[str, Any]],
    op: Operator,
    vault: Vault,
    uncached: Operator,
) -> list[dict[str, Any]]:
    """Miss, hit and stored through the compiled operator; batched through the Vault."""
    chunks = chunked(
        distinct(corpus_values(records, "patient.ssn")), profile.miss_chunk, profile.repeats + 1
    )
    inserted = [value for chunk in chunks for value in chunk]
    progress(
        f"operators: tokenize miss, {len(chunks) - 1} x {len(chunks[0])} new values "
        "(each one a vault write)"
    )
    miss = sample_fresh(lambda chunk: [op.apply(v) for v in chunk], chunks)
    progress(f"operators: tokenize hit and stored, {len(inserted)} values")
    hit = sample(over(op.apply, inserted), len(inserted), profile.repeats, profile.min_time)
    stored = sample(
        over(uncached.apply, inserted), len(inserted), profile.repeats, profile.min_time
    )
    batches = chunked(
        distinct(corpus_values(records, "patient.mrn")), profile.miss_chunk, profile.repeats + 1
    )
    progress(
        f"operators: Vault.tokenize_many, {len(batches) - 1} x {len(batches[0])} new "
        "values (one transaction each)"
    )
    batched = sample_fresh(lambda chunk: vault.tokenize_many(BATCHED_DOMAIN, chunk), batches)
    source = "patient.ssn"
    return [
        row("tokenize", "miss: new value, 1 vault write each", source, len(inserted), miss),
        row("tokenize", "hit: repeat value, token cache", source, len(inserted), hit),
        row("tokenize", "stored, no cache: 1 SELECT each", source, len(inserted), stored),
        row(
            "tokenize_many",
            f"miss, batched: {len(batches[0])} new values a call (Vault API, not the pipeline)",
            "patient.mrn",
            len(batches[0]),
            batched,
        ),
    ]


# --- signatures --------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """One 1000-record request, unsigned and with per-record signatures."""

    plain: bytes
    records: list[bytes]  # each record's payload: what a record signature covers
    per_record: dict[str, bytes]  # algorithm -> request whose records carry signatures
    record_sigs: dict[str, list[tuple[bytes, bytes, str]]]  # (payload, signature, kid)
    batch_sigs: dict[str, tuple[str, str]]  # algorithm -> (base64 signature, kid)


def make_batch(records: Sequence[dict[str, Any]], sign: Mapping[str, Signer]) -> Batch:
    plain = encode_requests(records[:BATCH], BATCH)[0]
    parsed = transform_pb2.TransformRequest.FromString(plain)
    payloads = [r.payload for r in parsed.records]
    per_record: dict[str, bytes] = {}
    record_sigs: dict[str, list[tuple[bytes, bytes, str]]] = {}
    for algorithm, signer in sign.items():
        signed = transform_pb2.TransformRequest()
        sigs = []
        for record in parsed.records:
            signature = signer.sign(record.payload)
            signed.records.add(
                payload=record.payload, id=record.id, signature=signature, key_id=signer.kid
            )
            sigs.append((record.payload, signature, signer.kid))
        per_record[algorithm] = signed.SerializeToString()
        record_sigs[algorithm] = sigs
    batch_sigs = {a: (base64.b64encode(s.sign(plain)).decode(), s.kid) for a, s in sign.items()}
    return Batch(plain, payloads, per_record, record_sigs, batch_sigs)


def verify_records(
    verifier: Verifier, signed: list[tuple[bytes, bytes, str]]
) -> Callable[[], None]:
    verify = verifier.verify

    def body() -> None:
        for payload, signature, kid in signed:
            if verify(payload, signature, kid) is not None:
                raise BenchFailure("a record signature did not verify")

    return body


def verify_batch(verifier: Verifier, data: bytes, signature: tuple[str, str]) -> Callable[[], None]:
    def body() -> None:
        if verifier.check_batch(data, signature) != BatchVerdict.VERIFIED:
            raise BenchFailure("the batch signature did not verify")

    return body


ALGORITHM_NAMES = {"hmac": "HMAC-SHA256", "ed25519": "Ed25519"}


def bench_signatures(profile: Profile, batch: Batch, keys: Keyring) -> dict[str, Any]:
    verifier = build_verifier(IntegritySpec(mode="require"), keys)
    assert verifier is not None
    n = len(batch.records)
    rows: list[dict[str, Any]] = []
    per: dict[tuple[str, str], float] = {}
    for algorithm, name in ALGORITHM_NAMES.items():
        cases = (
            (
                "per-record",
                verify_records(verifier, batch.record_sigs[algorithm]),
                sum(map(len, batch.records)),
            ),
            (
                "per-batch",
                verify_batch(verifier, batch.plain, batch.batch_sigs[algorithm]),
                len(batch.plain),
            ),
        )
        for scope, body, signed_bytes in cases:
            progress(f"signatures: {scope} {name}, {n} records")
            result = sample(body, 1, profile.repeats, profile.min_time)
            per[scope, algorithm] = result.median_s
            rows.append(
                {
                    "scope": scope,
                    "algorithm": name,
                    "records": n,
                    "signatures": n if scope == "per-record" else 1,
                    "signed_bytes": signed_bytes,
                    "us_per_batch": result.median_s * 1e6,
                    "us_per_record": result.median_s * 1e6 / n,
                    "batch": result.as_us(),
                }
            )
    ratios = {
        "per_record_over_per_batch_hmac": per["per-record", "hmac"] / per["per-batch", "hmac"],
        "per_record_over_per_batch_ed25519": (
            per["per-record", "ed25519"] / per["per-batch", "ed25519"]
        ),
        "per_record_ed25519_over_per_batch_hmac": (
            per["per-record", "ed25519"] / per["per-batch", "hmac"]
        ),
    }
    return {"records": n, "request_bytes": len(batch.plain), "rows": rows, "ratios": ratios}


# --- transform_request -------------------------------------------------------------


@dataclass(frozen=True)
class TransformCase:
    key: str
    label: str
    signed: bool  # uses the masker whose policy requires signatures
    data: bytes
    batch_signature: tuple[str, str] | None


def transform_cases(batch: Batch) -> list[TransformCase]:
    return [
        TransformCase("off", "integrity off", False, batch.plain, None),
        TransformCase(
            "batch-hmac", "per-batch HMAC-SHA256", True, batch.plain, batch.batch_sigs["hmac"]
        ),
        TransformCase(
            "batch-ed25519", "per-batch Ed25519", True, batch.plain, batch.batch_sigs["ed25519"]
        ),
        TransformCase(
            "record-hmac", "per-record HMAC-SHA256", True, batch.per_record["hmac"], None
        ),
        TransformCase(
            "record-ed25519", "per-record Ed25519", True, batch.per_record["ed25519"], None
        ),
    ]


def build_maskers(keys: Keyring, keys_dir: Path, workdir: Path) -> tuple[Masker, Masker]:
    """The embedded safe-harbor policy as `phimask serve` loads it: unsigned, and with
    `integrity: {mode: require}` merged in."""
    plain, signed = workdir / "policy.yaml", workdir / "policy-signed.yaml"
    plain.write_text(default_policy_text(), encoding="utf-8")
    signed.write_text(require_integrity(default_policy_text()), encoding="utf-8")
    settings = Settings(workers=1, state_dir=workdir / "state", keys_dir=keys_dir)
    return (
        build_masker(replace(settings, policy=plain), keys=keys),
        build_masker(replace(settings, policy=signed), keys=keys),
    )


def check_reply(label: str, reply: bytes, records: int) -> None:
    response = transform_pb2.TransformResponse.FromString(reply)
    if response.rejections or len(response.records) != records:
        reasons = sorted({f"{r.reason}:{r.rule}" for r in response.rejections})
        raise BenchFailure(
            f"{label}: {len(response.rejections)} of {records} records "
            f"rejected ({', '.join(reasons)})"
        )


def bench_transform(
    profile: Profile, batch: Batch, keys: Keyring, keys_dir: Path, workdir: Path
) -> list[dict[str, Any]]:
    off, signed = build_maskers(keys, keys_dir, workdir)
    limits = Limits()
    n = len(batch.records)
    rows: list[dict[str, Any]] = []
    for case in transform_cases(batch):
        masker = signed if case.signed else off

        def call(case: TransformCase = case, masker: Masker = masker) -> bytes:
            return transform_request(
                masker, case.data, limits, batch_signature=case.batch_signature
            )

        progress(f"transform_request: {case.label}, {profile.transform_repeats} calls")
        check_reply(case.label, call(), n)  # also warms the masker's caches
        per_call = [time_loops(call, 1) for _ in range(profile.transform_repeats)]
        result = Sample.of(per_call, 1)
        rows.append(
            {
                "case": case.key,
                "label": case.label,
                "records": n,
                "request_bytes": len(case.data),
                "ms_per_batch": result.median_s * 1e3,
                "records_per_s": n / result.median_s,
                "batch": result.as_us(),
            }
        )
    base = rows[0]["ms_per_batch"]
    for r in rows:
        r["added_us_per_record"] = (r["ms_per_batch"] - base) * 1e3 / n
        r["relative_throughput"] = rows[0]["ms_per_batch"] / r["ms_per_batch"]
    return rows


# --- report ------------------------------------------------------------------------


def operator_table(rows: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        "| operator | input | µs/value (median) | min | max | values/s (1 core) |",
        "|:---------|:------|------------------:|----:|----:|------------------:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['operator']} | {r['input']} | {r['median_us']:.2f} | {r['min_us']:.2f} "
            f"| {r['max_us']:.2f} | {1e6 / r['median_us']:,.0f} |"
        )
    return "\n".join(lines)


def signature_table(sig: Mapping[str, Any]) -> str:
    lines = [
        "| scope | algorithm | signatures | bytes signed | µs per batch | µs per record |",
        "|:------|:----------|-----------:|-------------:|-------------:|--------------:|",
    ]
    for r in sig["rows"]:
        lines.append(
            f"| {r['scope']} | {r['algorithm']} | {r['signatures']:,} | {r['signed_bytes']:,} "
            f"| {r['us_per_batch']:,.1f} | {r['us_per_record']:.3f} |"
        )
    return "\n".join(lines)


def transform_table(rows: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        "| integrity | request bytes | ms per batch | records/s (1 core) | vs off "
        "| added µs/record |",
        "|:----------|--------------:|-------------:|-------------------:|-------:"
        "|----------------:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['request_bytes']:,} | {r['ms_per_batch']:.2f} "
            f"| {r['records_per_s']:,.0f} | {r['relative_throughput']:.2f}x "
            f"| {r['added_us_per_record']:+.2f} |"
        )
    return "\n".join(lines)


def markdown(report: Mapping[str, Any]) -> str:
    m, c, sig = report["machine"], report["config"], report["signatures"]
    ratios = sig["ratios"]
    return "\n".join(
        [
            "# phimask operator micro-benchmark",
            "",
            f"{m['date']} · {m['cpu_model']} · {m['cores']} cores · Python {m['python']} · "
            f"commit {m['git_commit'] or 'none'}{' (dirty)' if m['git_dirty'] else ''} · "
            f"{c['profile']} mode",
            "",
            f"In-process, one core (`python -m bench.operators`). Values from the bench corpus "
            f"({c['records']} records, seed {c['seed']}); operators compiled from a policy with "
            f"real key files; tokenize against a SQLite vault in {c['temp_dir']}. Median of "
            f"{c['repeats']} repeats, each at least {c['min_time']:g} s (tokenize misses: one "
            f"repeat per chunk of new values), garbage collection off while timing.",
            "",
            "## Operators",
            "",
            operator_table(report["operators"]),
            "",
            f"## Signature verification: one batch of {sig['records']} records "
            f"({sig['request_bytes']:,} bytes serialized)",
            "",
            "The Verifier alone (build_verifier, integrity mode require). Per-record: one "
            "signature per record payload; per-batch: one over the serialized TransformRequest.",
            "",
            signature_table(sig),
            "",
            f"- per-record / per-batch, HMAC-SHA256: "
            f"**{ratios['per_record_over_per_batch_hmac']:.1f}x**",
            f"- per-record / per-batch, Ed25519: "
            f"**{ratios['per_record_over_per_batch_ed25519']:.1f}x**",
            f"- per-record Ed25519 / per-batch HMAC-SHA256: "
            f"**{ratios['per_record_ed25519_over_per_batch_hmac']:.1f}x**",
            "",
            f"## transform_request end to end ({sig['records']}-record TransformRequest, "
            "embedded safe-harbor policy)",
            "",
            f"Median of {c['transform_repeats']} calls per row, after one untimed call; every "
            "record accepted in every row.",
            "",
            transform_table(report["transform"]),
            "",
        ]
    )


# --- command line ------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.operators",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke mode: {QUICK.records} records, {QUICK.repeats} repeats of "
        f"{QUICK.min_time:g} s, {QUICK.miss_chunk} tokenize misses a repeat; "
        "figures are rough",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=ROOT / "bench" / "results",
        help="directory for operators.json and operators.md (default bench/results)",
    )
    p.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    p.add_argument(
        "--repeats",
        type=int,
        help=f"timed repeats per figure (default {FULL.repeats}; --quick {QUICK.repeats})",
    )
    p.add_argument(
        "--min-time",
        type=float,
        help=f"seconds one repeat lasts at least (default "
        f"{FULL.min_time:g}; --quick {QUICK.min_time:g})",
    )
    opts = p.parse_args(argv)
    if opts.repeats is not None and opts.repeats < 1:
        p.error("--repeats must be >= 1")
    if opts.min_time is not None and opts.min_time < 0:
        p.error("--min-time must be >= 0")
    return opts


def profile_of(opts: argparse.Namespace) -> Profile:
    profile = QUICK if opts.quick else FULL
    if opts.repeats is not None:
        profile = replace(profile, repeats=opts.repeats)
    if opts.min_time is not None:
        profile = replace(profile, min_time=opts.min_time)
    return profile


def versions() -> dict[str, str]:
    found = {}
    for dist in ("cryptography", "PyYAML", "hyperscan"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[dist] = importlib.metadata.version(dist)
    return found


def measure(profile: Profile, seed: int) -> dict[str, Any]:
    progress(f"{profile.name} mode: generating {profile.records} corpus records (seed {seed})")
    records = generate_records(profile.records, seed)
    with tempfile.TemporaryDirectory(prefix="phimask-operators-") as tmp:
        workdir = Path(tmp)
        keys_dir = workdir / "keys"
        keys = make_keyring(keys_dir)
        operators = bench_operators(profile, records, keys, workdir)
        batch = make_batch(records, signers(keys))
        signatures = bench_signatures(profile, batch, keys)
        transform = bench_transform(profile, batch, keys, keys_dir, workdir)
    machine = machine_info()
    machine["versions"] |= versions()
    return {
        "machine": machine,
        "config": {
            "profile": profile.name,
            **{k: v for k, v in asdict(profile).items() if k != "name"},
            "seed": seed,
            "temp_dir": tempfile.gettempdir(),
            "batch_records": BATCH,
            "operator_policy": OPERATOR_POLICY,
            "transform_policy": "embedded default (safe-harbor)",
        },
        "operators": operators,
        "signatures": signatures,
        "transform": transform,
    }


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    try:
        report = measure(profile_of(opts), opts.seed)
    except BenchFailure as e:
        progress(f"FAILED: {e}")
        return 1
    md = markdown(report)
    opts.out.mkdir(parents=True, exist_ok=True)
    write_atomic(opts.out / "operators.json", orjson.dumps(report, option=orjson.OPT_INDENT_2))
    write_atomic(opts.out / "operators.md", md.encode())
    progress(f"wrote {opts.out / 'operators.json'} and {opts.out / 'operators.md'}")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
