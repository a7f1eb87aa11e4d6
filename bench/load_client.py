"""Load client for phimask serve (or bench.sink). Run it as its own process.

  --protocol native   /phimask.v1.BatchTransform/Transform (the default)
  --protocol otlp     /opentelemetry.proto.collector.logs.v1.LogsService/Export
  --protocol vector   /vector.Vector/PushEvents

  closed loop   C calls always in flight for S seconds: peak records/s, MB/s, errors
  open loop     R batches/s on a fixed schedule for S seconds: latency p50/p90/p99/max

Requests are serialized before the clock starts and go out as raw bytes; responses come
back as raw bytes, so the client spends no CPU on protobuf while measuring. The first
response to each distinct request is kept and checked once the clock stops: native,
record count = sent minus rejections, ids in order, payloads are JSON objects; otlp, an
ExportLogsServiceResponse without partial_success; vector, an empty reply. Before the
clock starts every connection carries a few untimed calls, so HTTP/2 flow-control
windows have grown and the first timed calls are not cold.

Open-loop latency is measured from each batch's scheduled send time, so a stalled server
cannot hide queueing by slowing the sender; sends that start late are counted.

Records phimask rejected (native replies list them) are counted: each distinct request's
rejections, from its checked response, times the calls that sent it. `records` counts
every record sent, rejected or not.

--sign-key FILE signs every request once, before the clock starts, with a per-batch
signature over its exact bytes (a hex key file: HMAC-SHA256; an Ed25519 private key in
PEM: Ed25519), sent as call metadata x-phimask-batch-signature (base64) and
x-phimask-key-id (--key-id, default the <kid> of a <purpose>.<kid>.key file name).

Prints one JSON object on stdout (read by bench.run) and a summary on stderr.
Exit status: 0 ok, 2 the server returned RPC errors, 3 a response broke the contract,
4 cannot connect.

  python -m bench.load_client --target 127.0.0.1:4317 --mode closed --concurrency 4
  python -m bench.load_client --target 127.0.0.1:4317 --mode open --rate 40 --seconds 20
  python -m bench.load_client --target 127.0.0.1:4317 --protocol otlp --records 5000
  python -m bench.load_client --target 127.0.0.1:4317 --sign-key keys/verify-hmac.k1.key
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import math
import resource
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import orjson

from bench.wire import (
    CHANNEL_OPTIONS,
    METHODS,
    PROTOCOLS,
    BadResponse,
    RequestInfo,
    check_response,
    read_requests,
)
from phimask._gen.phimask.v1 import transform_pb2
from phimask.integrity import BATCH_KEY_ID_HEADER, BATCH_SIGNATURE_HEADER, Signer
from phimask.keyring import KID_PATTERN, KeyLoadError, decode_key

EXIT_RPC_ERRORS = 2
EXIT_BAD_RESPONSE = 3
EXIT_NO_CONNECTION = 4

RawCall = Callable[..., Awaitable[bytes]]
Metadata = tuple[tuple[str, str], ...]


def load_signer(key_file: Path, kid: str | None) -> Signer:
    """The signer a key file makes: hex -> HMAC-SHA256, Ed25519 PEM -> Ed25519."""
    parts = key_file.name.split(".")
    kid = kid or (parts[1] if len(parts) == 3 and parts[2] == "key" else None)
    if not kid or not KID_PATTERN.fullmatch(kid):
        raise KeyLoadError(f"--key-id is required: {key_file.name} is not <purpose>.<kid>.key")
    try:
        text = key_file.read_bytes()
    except OSError as e:
        raise KeyLoadError(f"key file {key_file}: {e.strerror}") from None
    purpose = "sign" if text.lstrip().startswith(b"-----BEGIN") else "verify-hmac"
    material = decode_key(purpose, text, str(key_file))
    return Signer("ed25519" if purpose == "sign" else "hmac-sha256", kid, material)


def batch_metadata(requests: Sequence[bytes], signer: Signer) -> list[Metadata]:
    """Each request's batch-signature metadata: computed once, sent with every call."""
    return [
        (
            (BATCH_SIGNATURE_HEADER, base64.b64encode(signer.sign(request)).decode()),
            (BATCH_KEY_ID_HEADER, signer.kid),
        )
        for request in requests
    ]


def rejection_reasons(info: RequestInfo, response: bytes) -> Counter[str]:
    """`reason:rule` of each rejection a native reply lists (codes and rule ids, never
    values); otlp and vector replies carry none."""
    if info.protocol != "native":
        return Counter()
    reply = transform_pb2.TransformResponse.FromString(response)
    return Counter(f"{r.reason}:{r.rule}" if r.rule else r.reason for r in reply.rejections)


@dataclass
class Tally:
    batches: int = 0
    records: int = 0
    payload_bytes: int = 0
    primed_records: int = 0  # sent by the untimed calls before the clock started
    rejections_seen: int = 0
    sends: Counter[int] = field(default_factory=Counter)  # answered calls per request index
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    first_error: str | None = None
    failure: str | None = None


class Load:
    """Connections to the target plus the shared bookkeeping of one run."""

    def __init__(
        self,
        target: str,
        requests: Sequence[bytes],
        connections: int,
        timeout: float,
        max_errors: int,
        protocol: str = "native",
        metadata: Sequence[Metadata] | None = None,
    ) -> None:
        self.target = target
        self.requests = requests
        self.metadata = metadata
        self.infos = [RequestInfo.of(r, protocol) for r in requests]
        self.timeout = timeout
        self.max_errors = max_errors
        # Each channel gets its own subchannel pool, hence its own TCP connection: a
        # server whose workers share a port (SO_REUSEPORT) is balanced by connection.
        self.channels: list[Any] = [
            grpc.aio.insecure_channel(
                target, options=[*CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1)]
            )
            for _ in range(connections)
        ]
        self.calls: list[RawCall] = [
            ch.unary_unary(METHODS[protocol], request_serializer=None, response_deserializer=None)
            for ch in self.channels
        ]
        self.inflight = [0] * connections
        self.unchecked: dict[int, bytes] = {}
        self.validated: set[int] = set()
        self.rejections: dict[int, int] = {}  # request index -> records its reply rejected
        self.reasons: Counter[str] = Counter()  # over the distinct requests checked
        self.tally = Tally()
        self.stop = asyncio.Event()

    async def connect(self, timeout: float) -> None:
        await asyncio.wait_for(
            asyncio.gather(*(ch.channel_ready() for ch in self.channels)), timeout
        )

    async def close(self) -> None:
        await asyncio.gather(*(ch.close() for ch in self.channels))

    async def prime(self, calls_per_connection: int, parallel: int) -> None:
        """Untimed calls on every connection, at most `parallel` at once: the server may
        shed load beyond its in-flight limit, and an open-loop run must not trip it."""
        gate = asyncio.Semaphore(parallel)

        async def warm(conn: int) -> None:
            for k in range(calls_per_connection):
                async with gate:
                    index = (conn + k * len(self.calls)) % len(self.requests)
                    await self.call(conn, index, 0.0)

        await asyncio.gather(*(warm(c) for c in range(len(self.calls))))
        self.validate()
        t = self.tally
        t.primed_records += t.records
        t.batches = t.records = t.payload_bytes = 0
        t.latencies.clear()
        t.sends.clear()

    def validate(self) -> None:
        """Check the kept responses; done off the clock because it parses protobuf."""
        for index, response in sorted(self.unchecked.items()):
            try:
                rejected = check_response(self.infos[index], response)
                self.tally.rejections_seen += rejected
                self.rejections[index] = rejected
                if rejected:
                    self.reasons += rejection_reasons(self.infos[index], response)
            except BadResponse as e:
                self.tally.failure = self.tally.failure or f"request #{index}: {e}"
                self.stop.set()
            self.validated.add(index)
        self.unchecked.clear()

    async def call(self, conn: int, index: int, started: float) -> bool:
        """One call; latency counts from `started`. False if it failed."""
        t = self.tally
        self.inflight[conn] += 1
        try:
            metadata = self.metadata[index] if self.metadata else None
            response = await self.calls[conn](
                self.requests[index], timeout=self.timeout, metadata=metadata
            )
        except grpc.aio.AioRpcError as e:
            t.errors[e.code().name] += 1
            if t.first_error is None:
                t.first_error = f"{e.code().name}: {e.details()}"
            if sum(t.errors.values()) >= self.max_errors:
                self.stop.set()
            return False
        finally:
            self.inflight[conn] -= 1
        t.latencies.append(time.perf_counter() - started)
        info = self.infos[index]
        t.batches += 1
        t.records += info.records
        t.payload_bytes += info.payload_bytes
        t.sends[index] += 1
        if index not in self.validated:
            self.unchecked.setdefault(index, response)
        return True

    def rejected_records(self) -> int:
        """Records rejected in the timed calls: replies are deterministic per request,
        so each request's checked reply stands for every call that sent it."""
        return sum(n * self.rejections.get(index, 0) for index, n in self.tally.sends.items())

    def least_busy(self, rotation: int) -> int:
        """The connection with the fewest calls in flight, ties broken round-robin."""
        n = len(self.inflight)
        return (min(range(n), key=lambda k: self.inflight[(rotation + k) % n]) + rotation) % n


async def closed_loop(load: Load, concurrency: int, seconds: float) -> dict[str, Any]:
    order = itertools.count()
    start = time.perf_counter()
    deadline = start + seconds

    async def slot(k: int) -> None:
        conn = k % len(load.calls)
        while not load.stop.is_set() and time.perf_counter() < deadline:
            index = next(order) % len(load.requests)
            if not await load.call(conn, index, time.perf_counter()):
                await asyncio.sleep(0.01)  # do not spin on a failing server

    await asyncio.gather(*(slot(k) for k in range(concurrency)))
    return {"concurrency": concurrency, "elapsed_s": time.perf_counter() - start}


async def open_loop(
    load: Load, rate: float, seconds: float, late_after: float, max_inflight: int
) -> dict[str, Any]:
    interval = 1.0 / rate
    total = max(1, round(rate * seconds))
    tasks: set[asyncio.Task[bool]] = set()
    late = 0
    max_late = 0.0
    start = time.perf_counter() + 0.05
    for i in range(total):
        due = start + i * interval
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        while len(tasks) >= max_inflight and not load.stop.is_set():
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if load.stop.is_set():
            break
        lateness = time.perf_counter() - due
        if lateness > late_after:
            late += 1
        max_late = max(max_late, lateness)
        conn = load.least_busy(i)
        task = asyncio.create_task(load.call(conn, i % len(load.requests), due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks)
    return {
        "rate": rate,
        "scheduled": total,
        "elapsed_s": time.perf_counter() - start,
        "late_sends": late,
        "late_threshold_ms": late_after * 1000,
        "max_late_ms": max_late * 1000,
    }


def percentiles_ms(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {}
    ordered = sorted(samples)

    def rank(q: float) -> float:
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000

    return {
        "p50": rank(0.50),
        "p90": rank(0.90),
        "p99": rank(0.99),
        "max": ordered[-1] * 1000,
        "mean": sum(ordered) / len(ordered) * 1000,
    }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(
    opts: argparse.Namespace, requests: list[bytes], metadata: list[Metadata] | None = None
) -> dict[str, Any]:
    connections = opts.connections or (opts.concurrency if opts.mode == "closed" else 8)
    load = Load(
        opts.target, requests, connections, opts.timeout, opts.max_errors, opts.protocol, metadata
    )
    try:
        try:
            await load.connect(opts.connect_timeout)
        except TimeoutError:
            failure = f"cannot connect to {opts.target}"
            return {"ok": False, "failure": failure, "exit": EXIT_NO_CONNECTION}
        await load.prime(opts.prime, opts.concurrency if opts.mode == "closed" else 1)
        cpu0 = _cpu_seconds()
        if load.stop.is_set():
            phase: dict[str, Any] = {"elapsed_s": 0.0}
        elif opts.mode == "closed":
            phase = await closed_loop(load, opts.concurrency, opts.seconds)
        else:
            phase = await open_loop(
                load, opts.rate, opts.seconds, opts.late_ms / 1000, opts.max_inflight
            )
        cpu = _cpu_seconds() - cpu0
        load.validate()
    finally:
        await load.close()
    t = load.tally
    elapsed = phase["elapsed_s"]
    rejected = load.rejected_records()
    result: dict[str, Any] = {
        "mode": opts.mode,
        "protocol": opts.protocol,
        "signed": metadata is not None,
        "target": opts.target,
        "seconds": opts.seconds,
        "connections": connections,
        **phase,
        "batches": t.batches,
        "records": t.records,
        "payload_bytes": t.payload_bytes,
        "primed_records": t.primed_records,
        "records_per_s": t.records / elapsed if elapsed else 0.0,
        "mb_per_s": t.payload_bytes / elapsed / 1e6 if elapsed else 0.0,
        "batches_per_s": t.batches / elapsed if elapsed else 0.0,
        "latency_ms": percentiles_ms(t.latencies),
        "errors": dict(t.errors),
        "first_error": t.first_error,
        "validated_requests": len(load.validated),
        "rejections_in_validated": t.rejections_seen,
        "rejected_records": rejected,
        "accepted_records": t.records - rejected,
        "rejection_reasons": dict(load.reasons),
        "client_cpu_cores": cpu / elapsed if elapsed else 0.0,
        "ok": not t.errors and t.failure is None,
        "failure": t.failure,
    }
    if t.failure:
        result["exit"] = EXIT_BAD_RESPONSE
    elif t.errors:
        result["exit"] = EXIT_RPC_ERRORS
        result["failure"] = f"{sum(t.errors.values())} RPC errors {dict(t.errors)}"
    else:
        result["exit"] = 0
    return result


def summary(r: dict[str, Any]) -> str:
    lat = r.get("latency_ms", {})
    line = (
        f"{r['protocol']}, {r['mode']} loop, {r['connections']} connections, "
        f"{r['elapsed_s']:.1f} s: "
        f"{r['records_per_s']:,.0f} records/s, {r['mb_per_s']:.1f} MB/s, "
        f"{r['batches']} batches"
    )
    if r["mode"] == "open" and "rate" in r:
        line += f" at {r['rate']:.1f}/s ({r['late_sends']} late)"
    if r.get("rejected_records"):
        line += f", {r['rejected_records']} records rejected"
    if lat:
        line += f"; latency p50 {lat['p50']:.1f} p99 {lat['p99']:.1f} max {lat['max']:.1f} ms"
    line += f"; client CPU {r['client_cpu_cores']:.2f} cores"
    return line


def load_requests(opts: argparse.Namespace) -> list[bytes]:
    if opts.requests:
        requests = read_requests(Path(opts.requests))
    else:
        from bench.corpus import ENCODERS, generate_records

        encode = ENCODERS[opts.protocol]
        requests = encode(generate_records(opts.records, opts.seed), opts.batch_size)
    if not requests:
        raise SystemExit("no requests to send")
    return requests


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.load_client",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--target", required=True, help="host:port of a phimask server")
    p.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="native",
        help="method called, how --requests are encoded and how replies are checked "
        "(default native)",
    )
    p.add_argument("--mode", choices=("closed", "open"), default="closed")
    p.add_argument("--seconds", type=float, default=10.0, help="run length (default 10)")
    p.add_argument("--concurrency", type=int, default=4, help="closed loop: calls in flight")
    p.add_argument("--rate", type=float, help="open loop: batches per second")
    p.add_argument(
        "--connections",
        type=int,
        default=0,
        help="TCP connections (default: one per in-flight call when closed, 8 when open)",
    )
    src = p.add_argument_group("requests (a file from bench.run, or a generated corpus)")
    src.add_argument(
        "--requests",
        help="file of length-prefixed serialized requests of --protocol "
        "(TransformRequest, ExportLogsServiceRequest or PushEventsRequest)",
    )
    src.add_argument("--records", type=int, default=20000)
    src.add_argument("--batch-size", type=int, default=1000)
    src.add_argument("--seed", type=int, default=1)
    sign = p.add_argument_group("signing (per-batch signature in the call metadata)")
    sign.add_argument(
        "--sign-key",
        type=Path,
        metavar="FILE",
        help="key file: hex HMAC key (verify-hmac.<kid>.key) or Ed25519 private key PEM "
        "(sign.<kid>.key); default: requests go unsigned",
    )
    sign.add_argument(
        "--key-id", help="key id the server knows the key by (default: <kid> of the file name)"
    )
    p.add_argument("--timeout", type=float, default=60.0, help="per-call deadline, seconds")
    p.add_argument("--connect-timeout", type=float, default=10.0)
    p.add_argument("--max-errors", type=int, default=100, help="abort after this many errors")
    p.add_argument(
        "--prime", type=int, default=3, help="untimed calls per connection first (default 3)"
    )
    p.add_argument(
        "--late-ms",
        type=float,
        default=2.0,
        help="open loop: a send this far behind schedule counts as late (default 2)",
    )
    p.add_argument(
        "--max-inflight", type=int, default=1000, help="open loop: cap on calls in flight"
    )
    opts = p.parse_args(argv)
    if opts.mode == "open" and not (opts.rate and opts.rate > 0):
        p.error("--mode open needs --rate > 0")
    if opts.concurrency < 1 or opts.connections < 0:
        p.error("--concurrency must be >= 1 and --connections >= 0")
    return opts


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    requests = load_requests(opts)
    metadata = None
    if opts.sign_key is not None:
        try:
            metadata = batch_metadata(requests, load_signer(opts.sign_key, opts.key_id))
        except KeyLoadError as e:
            print(f"load_client: {e}", file=sys.stderr)
            return 1
    try:
        result = asyncio.run(run(opts, requests, metadata))
    except KeyboardInterrupt:
        return 130
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    if result["exit"] == EXIT_NO_CONNECTION:
        print(f"load_client: FAILED: {result['failure']}", file=sys.stderr)
        return EXIT_NO_CONNECTION
    print(summary(result), file=sys.stderr)
    if not result["ok"]:
        print(f"load_client: FAILED: {result['failure']}", file=sys.stderr)
        if result["first_error"]:
            print(f"load_client: first error: {result['first_error']}", file=sys.stderr)
    exit_code: int = result["exit"]
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
