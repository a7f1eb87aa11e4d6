"""Soak and chaos: phimask in forward mode under steady load while its downstream and
its masking workers are killed, checked record by record. Loopback only.

What runs (every process on 127.0.0.1, in a scratch folder):
  sink     `python -m bench.sink --record FILE`: the downstream. It writes every request
           it accepts to FILE before answering, so what it acknowledged survives a
           SIGKILL; each incarnation gets its own file and the same port.
  phimask  `phimask serve --workers N --otlp-downstream/--vector-downstream <sink>`.
           `--workers N` runs N masking processes under a supervisor in the server
           process that starts a new one when one dies, so chaos kills workers (not the
           server). The oldest worker is the RSS witness and is never killed; the others
           are the victims.
  shipper  in this process, modelled on Vector's and Fluent Bit's: batches of --batch-size
           records (OTLP Export and Vector PushEvents alternating) go into a buffer at
           a fixed rate; --senders tasks take the next batch and call phimask until it
           answers OK, backing off after a failure (the same bytes again, so retries
           may duplicate). A full buffer (--max-buffer) makes the schedule wait.

Phases:
  1. calibrate  closed loop, 2N+2 calls in flight, --calibrate-seconds: the peak batch rate
  2. soak       open loop at --load x that peak (or --rate) for --duration seconds while
                the sink is SIGKILLed every --sink-up seconds (random in the range) and
                restarted after --sink-down seconds, and a victim worker is SIGKILLed
                every --worker-kill-every seconds; chaos stops --quiet seconds before
  3. drain      under the same load, once every killed worker has a successor and the
                downstream took a batch since its last restart: SIGTERM to phimask while
                a call is in flight; it must finish in-flight batches and exit 0; the
                load stops when it has exited
  4. verify     every frame the sink recorded is read back

Every record carries a unique id (`soakid<10 digits>` in its top-level `trace_id`, a
log field the safe-harbor policy keeps) and seeded PHI: per-record SSN, email, MRN and
phone in `patient.*` and in free text, plus fixed values (a name, an SSN, ...).

Invariants (any failure makes the exit status 1):
  lost == 0           every record of a call answered OK arrived downstream (at least once;
                      duplicates are counted, not failed)
  unmasked == 0       no SSN-, email-, MRN- or phone-shaped string and no fixed seeded
                      value in any byte the sink received
  no PHI in logs      the same search over phimask's and the sink's output
  statuses            failed calls are UNAVAILABLE or DEADLINE_EXCEEDED, nothing else (a
                      shipper drops INVALID_ARGUMENT batches; UNKNOWN/INTERNAL are bugs);
                      after SIGTERM also CANCELLED, counted: grpc-core cancels calls it
                      had read but not yet handed to phimask when the listener stops
                      (never acked; Vector and the OTel Collector retry CANCELLED)
  clean corpus        no record rejected, every recorded record has a readable id
  survived            phimask was still running when the drain began
  drain               SIGTERM under load: exit status 0 in time (nothing acked lost: above)
  workers replaced    every killed worker was followed by a new one
  RSS flat            server and witness worker: median RSS of the last third of the samples
                      after --warmup vs the first third grows by at most
                      max(--rss-tolerance-mib, --rss-tolerance-ratio x first)
  load and chaos      records were acked, and the sink and a worker were killed (when
                      chaos is on)

Progress goes to stderr every --progress-every seconds; the summary to OUT/soak.json and
OUT/soak.md (--out, default bench/results) and the Markdown on stdout. Exit status: 0 all
invariants hold, 1 one failed, 2 the harness could not run (a process would not start).

examples:
  python -m bench.soak --duration 600 --load 0.5            # the full run (10 minutes)
  python -m bench.soak --duration 60 --out /tmp/soak        # a quick look
  python -m bench.soak --duration 120 --rate 20 --workers 3 --sink-up 5 15 --seed 7
  python -m bench.soak --duration 60 --no-chaos             # load and drain only
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import orjson
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

from bench.chaos import MIB, ChaosError, Proc, RssSeries, rss_bytes, rss_verdict, worker_pids
from bench.corpus import encode_otlp_requests, encode_vector_requests
from bench.sink import count_otlp_records, count_vector_events, read_recorded
from bench.wire import CHANNEL_OPTIONS, METHODS

ROOT = Path(__file__).resolve().parent.parent
S = grpc.StatusCode
EXPECTED_FAILURES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})
FORWARD_PROTOCOLS = ("otlp", "vector")
ENCODE = {"otlp": encode_otlp_requests, "vector": encode_vector_requests}
COUNT = {"otlp": count_otlp_records, "vector": count_vector_events}

# --- the corpus: an id and seeded PHI in every record ---------------------------------------

ID_RE = re.compile(rb"soakid(\d{10})")
FIXED_NAME = "Ann Q. Leeward"
FIXED_PHI = (FIXED_NAME, "123-45-6789", "ann.lee@example.org", "(617) 555-0142", "MRN-00123456")
PHI_RE = re.compile(
    rb"(?P<ssn>(?<![0-9])[0-9]{3}-[0-9]{2}-[0-9]{4}(?![0-9]))"
    rb"|(?P<email>[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"
    rb"|(?P<mrn>MRN-[0-9]{8})"
    rb"|(?P<phone>\([0-9]{3}\) [0-9]{3}-[0-9]{4})"
    rb"|(?P<name>" + re.escape(FIXED_NAME.encode()) + rb")"
)
# Names in free text are no detector's job (the policy masks them by field name), so the
# fixed name is seeded only under `patient.full_name`.
FIXED_NOTE = ("front desk: caller at (617) 555-0142, mail ann.lee@example.org, "
              "SSN 123-45-6789, chart MRN-00123456")


def record(seq: int) -> dict[str, Any]:
    """Record number `seq`: its id, PHI unique to it, and the fixed PHI. SSNs are valid
    by the SSA's rules (area 100-599, group 10-99, serial 0001-9999), as the detector
    requires of free text."""
    ssn = (f"{100 + seq // 899_910 % 500:03d}-{10 + seq // 9_999 % 90:02d}-"
           f"{1 + seq % 9_999:04d}")
    email = f"patient.{seq}@example.org"
    mrn = f"MRN-{seq % 100_000_000:08d}"
    phone = f"(617) 555-{seq % 10_000:04d}"
    return {
        "ts": "2024-05-01T10:00:00+00:00",
        "trace_id": f"soakid{seq:010d}",
        "level": "info",
        "service": "registration",
        "msg": f"eligibility lookup: SSN {ssn}, mail {email}, chart {mrn}, call {phone}",
        "note": FIXED_NOTE,
        "patient": {"full_name": FIXED_NAME, "ssn": ssn, "mrn": mrn, "email": email,
                    "phone": phone},
        # A key no record had before: phimask's per-key caches must stay bounded.
        "ext": {f"k{seq}": "ok"},
    }


def phi_hits(data: bytes) -> Counter[str]:
    """Seeded-PHI-shaped strings in `data`, by kind (never the values themselves)."""
    found: Counter[str] = Counter()
    for match in PHI_RE.finditer(data):
        found[match.lastgroup or "?"] += 1
    return found


# --- configuration ----------------------------------------------------------------------------


@dataclass
class SoakConfig:
    duration: float = 600.0  # the soak phase, seconds (calibration and drain come on top)
    load: float = 0.5  # share of the calibrated peak batch rate
    rate: float | None = None  # batches/s; set, it skips calibration
    calibrate_seconds: float = 10.0
    batch_size: int = 50
    workers: int = 2
    chaos: bool = True
    sink_up: tuple[float, float] = (15.0, 45.0)  # seconds between downstream kills
    sink_down: tuple[float, float] = (1.0, 12.0)  # seconds down: some outlast a call deadline
    worker_kill_every: tuple[float, float] = (20.0, 50.0)
    quiet: float = 5.0  # no chaos in the last seconds before the drain
    warmup: float = 60.0  # RSS samples before this (seconds into the soak) are not judged
    rss_interval: float = 2.0
    rss_tolerance_mib: float = 16.0
    rss_tolerance_ratio: float = 0.10
    call_timeout: float = 10.0
    senders: int = 0  # calls in flight at most; 0: 2 x workers + 2
    max_buffer: int = 5000  # batches waiting to be sent at most
    drain_seconds: float = 30.0
    startup_timeout: float = 90.0
    progress_every: float = 10.0
    seed: int = 1
    out: Path | None = ROOT / "bench" / "results"
    keep_workdir: Path | None = None  # keep the scratch folder here (default: removed)
    server_cmd: tuple[str, ...] = (sys.executable, "-m", "phimask", "serve")

    def check(self) -> None:
        problems = []
        if self.duration <= 0 or self.calibrate_seconds < 0 or self.quiet < 0:
            problems.append("--duration must be > 0, --calibrate-seconds and --quiet >= 0")
        if not 0 < self.load <= 1:
            problems.append("--load must be in (0, 1]")
        if self.rate is not None and self.rate <= 0:
            problems.append("--rate must be > 0")
        if self.rate is None and self.calibrate_seconds <= 0:
            problems.append("without --rate, --calibrate-seconds must be > 0")
        if self.workers < 1 or self.batch_size < 1 or self.max_buffer < 1 or self.senders < 0:
            problems.append("--workers, --batch-size, --max-buffer must be >= 1, "
                            "--senders >= 0")
        if self.chaos and self.workers < 2:
            problems.append("chaos needs --workers >= 2 (the oldest worker is never killed)")
        for name in ("sink_up", "sink_down", "worker_kill_every"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                problems.append(f"--{name.replace('_', '-')} needs 0 < MIN <= MAX")
        if problems:
            raise ValueError("; ".join(problems))


# --- the shipper --------------------------------------------------------------------------


@dataclass
class Batch:
    protocol: str
    first: int  # seq of its first record
    count: int
    data: bytes


@dataclass
class Tally:
    calls_ok: int = 0
    calls_failed: Counter[str] = field(default_factory=Counter)  # status name -> calls
    retries: int = 0
    batches_sent: int = 0
    batches_acked: int = 0
    batches_abandoned: int = 0
    records_sent: int = 0
    records_acked: int = 0
    records_rejected: int = 0
    backpressure_waits: int = 0  # the schedule waited for room in the buffer
    max_buffered: int = 0
    calls_ok_after_sigterm: int = 0
    failed_after_sigterm: Counter[str] = field(default_factory=Counter)
    failed_while_stopping: Counter[str] = field(default_factory=Counter)  # not counted above
    # Calls grpc-core had read but not yet handed to phimask when its listener shut down
    # (SIGTERM): it cancels them. Never acked; Vector and the OTel Collector retry
    # CANCELLED. Allowed after SIGTERM only, and counted.
    cancelled_at_shutdown: int = 0
    first_details: dict[str, str] = field(default_factory=dict)  # status -> its message
    records_acked_after_sigterm: int = 0


class Shipper:
    """Sends batches like a log shipper: each one until it is answered OK."""

    def __init__(self, target: str, cfg: SoakConfig, rng: random.Random) -> None:
        self.cfg = cfg
        self.rng = rng
        self.channel = grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
        self.calls: dict[str, grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = {
            p: self.channel.unary_unary(METHODS[p], request_serializer=None,
                                        response_deserializer=None)
            for p in FORWARD_PROTOCOLS}
        self.tally = Tally()
        self.acked = bytearray()  # by seq: 1 once a call carrying the record was answered OK
        self.next_seq = 0
        self.made = 0
        self.buffer: asyncio.Queue[Batch] = asyncio.Queue(cfg.max_buffer)
        self.holding = 0  # batches taken from the buffer by a sender, not yet acked
        self.inflight = 0
        self.stopping = False
        self.sigterm_at: float | None = None
        self.outage_ended: float | None = None  # the sink came back; first OK not yet seen
        self.recoveries: list[float] = []  # seconds from a sink restart to the next OK

    def make_batch(self) -> Batch:
        protocol = FORWARD_PROTOCOLS[self.made % len(FORWARD_PROTOCOLS)]
        self.made += 1
        first, count = self.next_seq, self.cfg.batch_size
        self.next_seq += count
        self.acked.extend(bytes(count))
        [data] = ENCODE[protocol]([record(s) for s in range(first, first + count)], count)
        self.tally.batches_sent += 1
        self.tally.records_sent += count
        return Batch(protocol, first, count, data)

    async def ship(self, batch: Batch) -> None:
        """Until answered OK (or the run stops): call, back off, call again."""
        delay = 0.1
        while not self.stopping:
            self.inflight += 1
            try:
                reply = await self.calls[batch.protocol](batch.data, timeout=self.cfg.call_timeout)
            except grpc.aio.AioRpcError as exc:
                code = exc.code().name
                if self.stopping:  # our own channel closing, not phimask's answer
                    self.tally.failed_while_stopping[code] += 1
                    return
                self.tally.calls_failed[code] += 1
                # phimask's messages name fields and codes, never values
                self.tally.first_details.setdefault(code, (exc.details() or "")[:200])
                if self.sigterm_at is not None:
                    self.tally.failed_after_sigterm[code] += 1
                    if code == "CANCELLED":
                        self.tally.cancelled_at_shutdown += 1
            else:
                self._acked(batch, reply)
                return
            finally:
                self.inflight -= 1
            self.tally.retries += 1
            await asyncio.sleep(delay * (0.5 + self.rng.random()))
            delay = min(delay * 2, 2.0)

    def _acked(self, batch: Batch, reply: bytes) -> None:
        t = self.tally
        now = time.monotonic()
        t.calls_ok += 1
        rejected = 0
        if batch.protocol == "otlp":
            answer = logs_service_pb2.ExportLogsServiceResponse.FromString(reply)
            rejected = answer.partial_success.rejected_log_records
        if rejected:  # which ones is not said: none of the batch counts as acked
            t.records_rejected += rejected
        else:
            self.acked[batch.first:batch.first + batch.count] = b"\x01" * batch.count
            t.batches_acked += 1
            t.records_acked += batch.count
        if self.sigterm_at is not None and now >= self.sigterm_at:
            t.calls_ok_after_sigterm += 1
            t.records_acked_after_sigterm += batch.count
        if self.outage_ended is not None and now >= self.outage_ended:
            self.recoveries.append(now - self.outage_ended)
            self.outage_ended = None

    async def closed_loop(self, concurrency: int, seconds: float) -> float:
        """`concurrency` batches always in flight for `seconds`: batches acked per second."""
        acked0 = self.tally.batches_acked
        start = time.monotonic()
        end = start + seconds

        async def slot() -> None:
            while time.monotonic() < end and not self.stopping:
                await self.ship(self.make_batch())

        await asyncio.gather(*(slot() for _ in range(concurrency)))
        return (self.tally.batches_acked - acked0) / (time.monotonic() - start)

    @property
    def pending(self) -> int:
        """Batches buffered or being sent."""
        return self.buffer.qsize() + self.holding

    async def open_loop(self, rate: float, senders: int, stop: asyncio.Event) -> None:
        """A batch into the buffer every 1/rate seconds on a fixed schedule until `stop`
        (waiting while the buffer is full); `senders` tasks ship from it."""
        workers = [asyncio.create_task(self._sender()) for _ in range(senders)]
        interval = 1.0 / rate
        due = time.monotonic()
        try:
            while not stop.is_set():
                if self.buffer.full():
                    self.tally.backpressure_waits += 1
                await self.buffer.put(self.make_batch())
                self.tally.max_buffered = max(self.tally.max_buffered, self.buffer.qsize())
                due += interval
                delay = due - time.monotonic()
                if delay < -1.0:  # far behind (a stall): do not burst to catch up
                    due = time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, delay))
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _sender(self) -> None:
        while not self.stopping:
            batch = await self.buffer.get()
            self.holding += 1
            try:
                await self.ship(batch)
            finally:
                self.holding -= 1

    async def stop(self) -> None:
        """Abandon what is still buffered or being sent (never acked), close the channel."""
        if not self.stopping:
            self.tally.batches_abandoned = self.pending
        self.stopping = True
        await self.channel.close()


# --- the processes ----------------------------------------------------------------------------

READY_RE = re.compile(rb"^ready (\S+):(\d+)$", re.MULTILINE)
SERVING_RE = re.compile(rb'"msg":"serving".*?"listen":"([0-9.]+:[0-9]+)"')


def child_env() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


class SinkProcess:
    """The downstream, killed and restarted on the same port; one record file each."""

    def __init__(self, workdir: Path, timeout: float) -> None:
        self.workdir = workdir
        self.timeout = timeout
        self.port = 0
        self.proc: Proc | None = None
        self.files: list[Path] = []
        self.all: list[Proc] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> bool:
        return self.proc is not None and self.proc.alive()

    def start(self) -> None:
        """Start an incarnation and wait for its ready line (blocking)."""
        for attempt in range(5):  # the port may linger a moment after a kill
            n = len(self.all)
            record_file = self.workdir / f"sink-{n}.bin"
            cmd = [sys.executable, "-m", "bench.sink", "--listen", f"127.0.0.1:{self.port}",
                   "--no-count", "--record", str(record_file)]
            proc = Proc.start(f"sink-{n}", cmd, self.workdir, child_env(), ROOT)
            self.all.append(proc)
            self.files.append(record_file)
            try:
                found = proc.wait_output(READY_RE, self.timeout)
            except ChaosError:
                proc.kill()
                if attempt == 4 or self.port == 0:
                    raise
                time.sleep(0.5)
                continue
            self.port = int(found.group(2))
            self.proc = proc
            return

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()

    def stop(self) -> int | None:
        return self.proc.terminate(10) if self.proc is not None else None

    def cleanup(self) -> None:
        for proc in self.all:
            proc.kill()


def start_phimask(cfg: SoakConfig, workdir: Path, sink_url: str) -> tuple[Proc, str]:
    cmd = [*cfg.server_cmd, "--listen", "127.0.0.1:0", "--workers", str(cfg.workers),
           "--state-dir", str(workdir / "state"), "--otlp-downstream", sink_url,
           "--vector-downstream", sink_url, "--forward-timeout", str(cfg.call_timeout),
           "--drain-seconds", str(cfg.drain_seconds)]
    env = {k: v for k, v in child_env().items() if not k.startswith("PHIMASK_")}
    proc = Proc.start("phimask", cmd, workdir, env, ROOT)
    try:
        found = proc.wait_output(SERVING_RE, cfg.startup_timeout)
    except ChaosError:
        proc.kill()
        raise
    return proc, found.group(1).decode()


# --- the run ----------------------------------------------------------------------------------


def progress(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class ChaosLog:
    downstream_kills: int = 0
    downstream_down_s: float = 0.0
    worker_kills: int = 0
    kill_times: list[float] = field(default_factory=list)  # open: no new worker seen yet
    respawn_s: list[float] = field(default_factory=list)
    witness_lost: bool = False


class Soak:
    def __init__(self, cfg: SoakConfig, workdir: Path) -> None:
        self.cfg = cfg
        self.workdir = workdir
        self.rng = random.Random(cfg.seed)
        self.sink = SinkProcess(workdir, cfg.startup_timeout)
        self.server: Proc | None = None
        self.shipper: Shipper | None = None
        self.chaos = ChaosLog()
        self.t0 = time.monotonic()
        self.soak_start = self.t0
        self.rss: dict[int, RssSeries] = {}
        self.witness = 0
        self.known_workers: set[int] = set()
        self.sigterm_sent: float | None = None
        self.report: dict[str, Any] = {}

    def now(self) -> float:
        return time.monotonic() - self.t0

    # -- background tasks --

    async def sample(self, stop: asyncio.Event) -> None:
        """RSS of the server and each worker every --rss-interval; new workers noticed."""
        assert self.server is not None
        while not stop.is_set():
            at = time.monotonic() - self.soak_start
            if self.server.alive():
                rss = rss_bytes(self.server.pid)
                if rss is not None:
                    self.rss.setdefault(self.server.pid, RssSeries("server", self.server.pid)
                                        ).add(at, rss)
                workers = worker_pids(self.server.pid)
                for pid in workers:
                    if pid not in self.known_workers:
                        self.known_workers.add(pid)
                        if self.chaos.kill_times:
                            self.chaos.respawn_s.append(time.monotonic()
                                                        - self.chaos.kill_times.pop(0))
                    rss = rss_bytes(pid)
                    if rss is not None:
                        role = "worker (witness)" if pid == self.witness else "worker (victim)"
                        self.rss.setdefault(pid, RssSeries(role, pid)).add(at, rss)
                if self.witness not in workers and self.sigterm_sent is None:
                    self.chaos.witness_lost = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.cfg.rss_interval)

    async def report_progress(self, stop: asyncio.Event) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.cfg.progress_every)
            if stop.is_set():
                return
            progress(self.status_line())

    def status_line(self) -> str:
        assert self.shipper is not None
        t = self.shipper.tally
        failed = sum(t.calls_failed.values())
        rss = []
        if self.server is not None and self.server.alive():
            for pid in [self.server.pid, *worker_pids(self.server.pid)]:
                value = rss_bytes(pid)
                if value is not None:
                    rss.append(f"{value / MIB:.0f}")
        return (f"t={self.now():.0f}s calls ok {t.calls_ok} failed {failed} | records acked "
                f"{t.records_acked:,}, {self.shipper.pending} batches buffered | sink "
                f"{'up' if self.sink.up() else 'DOWN'}, kills {self.chaos.downstream_kills} | "
                f"worker kills {self.chaos.worker_kills} | RSS MiB server/workers "
                f"{'/'.join(rss) or '-'}")

    async def _ticks(self, every: tuple[float, float], until: float) -> AsyncIterator[None]:
        """Yields after random waits drawn from `every`, while the next one ends before
        `until`."""
        while True:
            wait = self.rng.uniform(*every)
            if time.monotonic() + wait >= until:
                return
            await asyncio.sleep(wait)
            yield

    async def sink_chaos(self, until: float) -> None:
        cfg = self.cfg
        async for _ in self._ticks(cfg.sink_up, until):
            self.sink.kill()
            self.chaos.downstream_kills += 1
            down = self.rng.uniform(*cfg.sink_down)
            progress(f"t={self.now():.0f}s downstream SIGKILLed; back in {down:.1f} s")
            went_down = time.monotonic()
            await asyncio.sleep(down)
            await asyncio.to_thread(self.sink.start)
            self.chaos.downstream_down_s += time.monotonic() - went_down
            assert self.shipper is not None
            self.shipper.outage_ended = time.monotonic()

    async def worker_chaos(self, until: float) -> None:
        assert self.server is not None
        async for _ in self._ticks(self.cfg.worker_kill_every, until):
            victims = [pid for pid in worker_pids(self.server.pid) if pid != self.witness]
            if not victims:
                progress(f"t={self.now():.0f}s no victim worker to kill (still respawning)")
                continue
            victim = self.rng.choice(victims)
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
                self.chaos.worker_kills += 1
                self.chaos.kill_times.append(time.monotonic())
                progress(f"t={self.now():.0f}s worker {victim} SIGKILLed")

    # -- the phases --

    async def run(self) -> dict[str, Any]:
        cfg = self.cfg
        progress(f"scratch folder {self.workdir}")
        await asyncio.to_thread(self.sink.start)
        progress(f"sink ready on 127.0.0.1:{self.sink.port}")
        self.server, target = server, target = await asyncio.to_thread(
            start_phimask, cfg, self.workdir, self.sink.url)
        workers = worker_pids(server.pid)
        if len(workers) != cfg.workers:
            raise ChaosError(f"phimask has {len(workers)} worker processes, not {cfg.workers}"
                             f"\n{server.evidence()}")
        self.witness = workers[0]
        self.known_workers.update(workers)
        progress(f"phimask serving on {target}: server pid {server.pid}, workers "
                 f"{workers} (witness {self.witness})")
        self.shipper = shipper = Shipper(target, cfg, self.rng)
        stop_bg = asyncio.Event()
        self.soak_start = time.monotonic()
        background = [asyncio.create_task(self.sample(stop_bg)),
                      asyncio.create_task(self.report_progress(stop_bg))]
        try:
            return await self._phases(shipper, target)
        finally:
            stop_bg.set()
            await asyncio.gather(*background, return_exceptions=True)
            if not shipper.stopping:
                await shipper.stop()

    async def _phases(self, shipper: Shipper, target: str) -> dict[str, Any]:
        cfg = self.cfg
        assert self.server is not None
        calibration: dict[str, Any] = {"skipped": True}
        rate = cfg.rate
        if rate is None:
            concurrency = 2 * cfg.workers + 2
            progress(f"calibrating: closed loop, {concurrency} calls in flight, "
                     f"{cfg.calibrate_seconds:.0f} s")
            peak = await shipper.closed_loop(concurrency, cfg.calibrate_seconds)
            if peak <= 0:
                raise ChaosError("calibration acked no batch\n" + self.server.evidence())
            rate = cfg.load * peak
            calibration = {"seconds": cfg.calibrate_seconds, "concurrency": concurrency,
                           "peak_batches_per_s": round(peak, 2),
                           "peak_records_per_s": round(peak * cfg.batch_size)}
            progress(f"peak {peak:.1f} batches/s ({peak * cfg.batch_size:,.0f} records/s)")
        progress(f"soak: {rate:.1f} batches/s ({rate * cfg.batch_size:,.0f} records/s) for "
                 f"{cfg.duration:.0f} s, chaos {'on' if cfg.chaos else 'off'}")
        soak_started = time.monotonic()
        soak_end = soak_started + cfg.duration
        chaos_end = soak_end - cfg.quiet
        stop_load = asyncio.Event()
        senders = cfg.senders or 2 * cfg.workers + 2
        load = asyncio.create_task(shipper.open_loop(rate, senders, stop_load))
        chaos_tasks = []
        if cfg.chaos:
            chaos_tasks = [asyncio.create_task(self.sink_chaos(chaos_end)),
                           asyncio.create_task(self.worker_chaos(chaos_end))]
        await asyncio.sleep(max(0.0, soak_end - time.monotonic()))
        await asyncio.gather(*chaos_tasks)
        if not self.sink.up():
            await asyncio.to_thread(self.sink.start)
        # Drain a phimask in service: every killed worker has a successor and the
        # downstream took a batch since its last restart (a slow machine gets time).
        settle = time.monotonic()
        while ((len(self.chaos.respawn_s) < self.chaos.worker_kills
                or shipper.outage_ended is not None)
               and self.server.alive() and time.monotonic() < settle + 60):
            await asyncio.sleep(0.2)
        settled_s = time.monotonic() - settle
        survived = self.server.alive()
        # Drain: SIGTERM while a call is in flight, the load going on.
        deadline = time.monotonic() + 5
        while shipper.inflight == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        inflight = shipper.inflight
        self.sigterm_sent = shipper.sigterm_at = time.monotonic()
        progress(f"t={self.now():.0f}s drain: SIGTERM to phimask with {inflight} calls in "
                 "flight, load going on")
        self.server.proc.send_signal(signal.SIGTERM)
        try:
            exit_code: int | None = await asyncio.to_thread(
                self.server.proc.wait, cfg.drain_seconds + 30)
        except subprocess.TimeoutExpired:
            exit_code = None
            self.server.kill()
        drain_s = time.monotonic() - self.sigterm_sent
        stop_load.set()
        abandoned = shipper.pending
        shipper.stopping = True
        await load
        await shipper.stop()
        shipper.tally.batches_abandoned = abandoned
        progress(f"phimask exited with status {exit_code} after {drain_s:.1f} s; "
                 f"{shipper.tally.records_acked_after_sigterm} records acked after SIGTERM")
        sink_exit = self.sink.stop()
        soak_s = time.monotonic() - soak_started
        progress(f"verifying {len(self.sink.files)} sink record files")
        arrivals = await asyncio.to_thread(verify_arrivals, self.sink.files, shipper.next_seq)
        logs = [p for proc in [self.server, *self.sink.all] for p in (proc.stdout, proc.stderr)]
        log_hits = phi_in_files(logs)
        return self.summarize(shipper, calibration, rate, soak_s, arrivals, log_hits, {
            "survived": survived, "settled_s": round(settled_s, 2),
            "inflight_at_sigterm": inflight, "exit_code": exit_code,
            "drain_s": round(drain_s, 2), "sink_exit_code": sink_exit})

    def summarize(self, shipper: Shipper, calibration: dict[str, Any], rate: float,
                  soak_s: float, arrivals: Arrivals, log_hits: Counter[str],
                  drain: dict[str, Any]) -> dict[str, Any]:
        cfg = self.cfg
        t = shipper.tally
        tally = account(shipper.acked, arrivals.counts)
        lost = tally["lost"]
        warmup_until = min(cfg.warmup, soak_s / 3)
        series = sorted(self.rss.values(), key=lambda s: (s.role != "server", s.pid))
        verdicts = [rss_verdict(s, warmup_until, cfg.rss_tolerance_mib, cfg.rss_tolerance_ratio)
                    for s in series if s.role != "worker (victim)"]
        victims = [s.summary() for s in series if s.role == "worker (victim)"]
        unexpected = {k: v for k, v in t.calls_failed.items() if k not in EXPECTED_FAILURES}
        if unexpected.get("CANCELLED") == t.cancelled_at_shutdown:
            del unexpected["CANCELLED"]
        ch = self.chaos
        invariants = {
            "lost == 0": lost == 0,
            "unmasked == 0": sum(arrivals.unmasked.values()) == 0,
            "no PHI in logs": not log_hits,
            "failures only UNAVAILABLE/DEADLINE_EXCEEDED (+CANCELLED at shutdown)":
                not unexpected,
            "no record rejected, every record has an id": (
                t.records_rejected == 0 and arrivals.without_id == 0
                and arrivals.unknown_ids == 0 and arrivals.torn_bytes == 0),
            "phimask survived the chaos": bool(drain["survived"]),
            "drain: SIGTERM under load, exit 0": drain["exit_code"] == 0,
            "every killed worker replaced": (len(ch.respawn_s) == ch.worker_kills
                                             and not ch.witness_lost),
            "RSS flat (server, witness worker)": bool(verdicts) and all(
                v["ok"] is True for v in verdicts),
            "load was served": t.records_acked > 0,
            "chaos applied": (not cfg.chaos) or (ch.downstream_kills > 0 and ch.worker_kills > 0),
        }
        recov = shipper.recoveries
        return {
            "ok": all(invariants.values()),
            "invariants": invariants,
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform()},
            "config": {k: (str(v) if isinstance(v, Path) else v)
                       for k, v in asdict(cfg).items() if k not in ("out", "keep_workdir")},
            "duration_s": round(soak_s, 1),
            "calibration": calibration,
            "rate_batches_per_s": round(rate, 2),
            "rate_records_per_s": round(rate * cfg.batch_size),
            "calls": {"ok": t.calls_ok, "failed": sum(t.calls_failed.values()),
                      "failed_by_status": dict(t.calls_failed), "unexpected_status": unexpected,
                      "failed_after_sigterm": dict(t.failed_after_sigterm),
                      "cancelled_at_shutdown": t.cancelled_at_shutdown,
                      "failed_while_shipper_stopped": dict(t.failed_while_stopping),
                      "first_message_by_status": t.first_details,
                      "retries": t.retries, "backpressure_waits": t.backpressure_waits,
                      "max_buffered_batches": t.max_buffered},
            "batches": {"sent": t.batches_sent, "acked": t.batches_acked,
                        "abandoned_at_end": t.batches_abandoned},
            "records": {"sent": t.records_sent, "acked": t.records_acked, **tally,
                        "rejected": t.records_rejected,
                        "without_id": arrivals.without_id, "unknown_ids": arrivals.unknown_ids},
            "downstream": {"files": len(self.sink.files), "frames": arrivals.frames,
                           "bytes": arrivals.bytes, "torn_bytes": arrivals.torn_bytes},
            "unmasked": {"total": sum(arrivals.unmasked.values()),
                         "by_kind": dict(arrivals.unmasked), "where": arrivals.where[:20]},
            "phi_in_logs": dict(log_hits),
            "chaos": {"downstream_kills": ch.downstream_kills,
                      "downstream_down_s": round(ch.downstream_down_s, 1),
                      "recovery_s_max": round(max(recov), 2) if recov else None,
                      "recovery_s_median": round(statistics.median(recov), 2) if recov else None,
                      "worker_kills": ch.worker_kills, "workers_respawned": len(ch.respawn_s),
                      "respawn_s_max": round(max(ch.respawn_s), 2) if ch.respawn_s else None,
                      "witness_lost": ch.witness_lost},
            "drain": {**drain, "calls_ok_after_sigterm": t.calls_ok_after_sigterm,
                      "records_acked_after_sigterm": t.records_acked_after_sigterm},
            "rss": {"warmup_s": round(warmup_until, 1), "verdicts": verdicts,
                    "processes": [s.summary() for s in series if s.role != "worker (victim)"],
                    "victims": {"count": len(victims),
                                "max_mib": max((v.get("max_mib", 0) for v in victims),
                                               default=None)}},
        }


# --- verification -------------------------------------------------------------------------


@dataclass
class Arrivals:
    counts: bytearray  # by seq: times the record arrived (saturating at 255)
    frames: int = 0
    bytes: int = 0
    torn_bytes: int = 0
    without_id: int = 0  # records in a frame minus ids found in it
    unknown_ids: int = 0  # ids no record was sent with
    unmasked: Counter[str] = field(default_factory=Counter)
    where: list[str] = field(default_factory=list)  # "file#frame: kinds", never values


def verify_arrivals(files: Sequence[Path], sent: int) -> Arrivals:
    """Read back every recorded frame: count each id, look for seeded PHI."""
    arrivals = Arrivals(bytearray(sent))
    counts = arrivals.counts
    for path in files:
        if not path.exists():
            continue
        frames, torn = read_recorded(path)
        arrivals.torn_bytes += torn
        for index, (protocol, data) in enumerate(frames):
            arrivals.frames += 1
            arrivals.bytes += len(data)
            ids = ID_RE.findall(data)
            arrivals.without_id += max(0, COUNT[protocol](data) - len(ids))
            for raw in ids:
                seq = int(raw)
                if seq >= sent:
                    arrivals.unknown_ids += 1
                elif counts[seq] < 255:
                    counts[seq] += 1
            hits = phi_hits(data)
            if hits:
                arrivals.unmasked.update(hits)
                arrivals.where.append(f"{path.name}#{index} ({protocol}): "
                                      + ", ".join(f"{k} x{n}" for k, n in sorted(hits.items())))
    return arrivals


def account(acked: bytes | bytearray, counts: bytes | bytearray) -> dict[str, int]:
    """Per record (by seq): `acked` 1 when a call carrying it was answered OK, `counts`
    how often it arrived. lost = acked and never arrived; duplicates = arrivals beyond
    the first; arrived_unacked = arrived from calls that failed (allowed)."""
    lost = duplicates = arrived = arrived_unacked = 0
    for seq in range(max(len(acked), len(counts))):
        ack = seq < len(acked) and acked[seq]
        c = counts[seq] if seq < len(counts) else 0
        if c:
            arrived += 1
            duplicates += c - 1
            arrived_unacked += not ack
        elif ack:
            lost += 1
    return {"arrived": arrived, "lost": lost, "duplicates": duplicates,
            "arrived_unacked": arrived_unacked}


def phi_in_files(paths: Sequence[Path]) -> Counter[str]:
    found: Counter[str] = Counter()
    for path in paths:
        with contextlib.suppress(OSError):
            found.update(phi_hits(path.read_bytes()))
    return found


# --- the report ------------------------------------------------------------------------------


def markdown(r: dict[str, Any]) -> str:
    rec, calls, ch, dr = r["records"], r["calls"], r["chaos"], r["drain"]
    cal = r["calibration"]
    lines = [
        "# phimask soak and chaos run",
        "",
        f"{r['when']}, {r['machine']['cpus']} CPUs, Python {r['machine']['python']}; "
        f"`--workers {r['config']['workers']}`, batches of {r['config']['batch_size']} "
        f"records, OTLP and Vector alternating, default safe-harbor policy.",
        "",
        f"**{'PASS' if r['ok'] else 'FAIL'}**",
        "",
        "| invariant | holds |",
        "|---|---|",
        *(f"| {name} | {'yes' if ok else '**NO**'} |" for name, ok in r["invariants"].items()),
        "",
        "| figure | value |",
        "|---|---|",
        f"| soak duration | {r['duration_s']:.0f} s |",
        "| calibrated peak | " + ("skipped (--rate)" if cal.get("skipped") else
                                  f"{cal['peak_batches_per_s']} batches/s = "
                                  f"{cal['peak_records_per_s']:,} records/s") + " |",
        f"| load | {r['rate_batches_per_s']} batches/s = {r['rate_records_per_s']:,} records/s "
        f"(--load {r['config']['load']}) |",
        f"| calls ok / failed | {calls['ok']:,} / {calls['failed']:,} "
        f"{calls['failed_by_status'] or ''} |",
        f"| records sent | {rec['sent']:,} |",
        f"| records acked | {rec['acked']:,} |",
        f"| records arrived | {rec['arrived']:,} |",
        f"| lost (acked, never arrived) | {rec['lost']:,} |",
        f"| duplicates | {rec['duplicates']:,} |",
        f"| arrived without an OK (failed calls) | {rec['arrived_unacked']:,} |",
        f"| unmasked | {r['unmasked']['total']} |",
        f"| downstream kills | {ch['downstream_kills']} ({ch['downstream_down_s']} s down; "
        f"first OK after restart: median {ch['recovery_s_median']} s, "
        f"max {ch['recovery_s_max']} s) |",
        f"| worker kills | {ch['worker_kills']} (replaced {ch['workers_respawned']}, "
        f"max {ch['respawn_s_max']} s to a new worker) |",
        f"| drain | SIGTERM with {dr['inflight_at_sigterm']} calls in flight, exit "
        f"{dr['exit_code']} after {dr['drain_s']} s, {dr['records_acked_after_sigterm']:,} "
        "records acked after SIGTERM |",
        "",
        f"RSS (samples after {r['rss']['warmup_s']} s of warm-up; median of the last third "
        "vs the first third):",
        "",
        "| process | pid | start MiB | end MiB | max MiB | first-third median | "
        "last-third median | growth (allowed) | flat |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = {v["pid"]: v for v in r["rss"]["verdicts"]}
    for p in r["rss"]["processes"]:
        v = verdicts.get(p["pid"], {})
        lines.append(
            f"| {p['role']} | {p['pid']} | {p.get('start_mib')} | {p.get('end_mib')} | "
            f"{p.get('max_mib')} | {v.get('first_third_median_mib')} | "
            f"{v.get('last_third_median_mib')} | {v.get('growth_mib')} "
            f"({v.get('allowed_growth_mib')}) | {v.get('ok')} |")
    victims = r["rss"]["victims"]
    lines += ["", f"Killed workers (victims) and their replacements: {victims['count']} "
              f"processes, max RSS {victims['max_mib']} MiB.", ""]
    if r["unmasked"]["where"]:
        lines += ["Unmasked (where, by kind):", "",
                  *(f"* {w}" for w in r["unmasked"]["where"]), ""]
    return "\n".join(lines)


def write_report(report: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, data in (("soak.json", orjson.dumps(report, option=orjson.OPT_INDENT_2)),
                       ("soak.md", markdown(report).encode())):
        tmp = out / f"{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(out / name)


async def _run(cfg: SoakConfig, workdir: Path) -> dict[str, Any]:
    soak = Soak(cfg, workdir)
    try:
        return await soak.run()
    finally:
        if soak.server is not None:
            soak.server.kill()
        soak.sink.cleanup()


def run_soak(cfg: SoakConfig) -> dict[str, Any]:
    """The whole run; every process it started is gone when it returns or raises.
    Raises ChaosError when the harness cannot run; the report says whether the
    invariants held (`report["ok"]`)."""
    cfg.check()
    if cfg.keep_workdir is not None:
        cfg.keep_workdir.mkdir(parents=True, exist_ok=True)
        report = asyncio.run(_run(cfg, cfg.keep_workdir))
    else:
        with tempfile.TemporaryDirectory(prefix="phimask-soak-") as tmp:
            report = asyncio.run(_run(cfg, Path(tmp)))
    if cfg.out is not None:
        write_report(report, cfg.out)
    return report


# --- command line --------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> SoakConfig:
    d = SoakConfig()
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=d.duration,
                   help=f"soak phase length in seconds (default {d.duration:.0f})")
    p.add_argument("--load", type=float, default=d.load,
                   help=f"share of the calibrated peak batch rate (default {d.load})")
    p.add_argument("--rate", type=float, help="batches/s instead of calibrating")
    p.add_argument("--calibrate-seconds", type=float, default=d.calibrate_seconds,
                   help=f"closed-loop calibration length (default {d.calibrate_seconds:.0f})")
    p.add_argument("--batch-size", type=int, default=d.batch_size,
                   help=f"records a call (default {d.batch_size})")
    p.add_argument("--workers", type=int, default=d.workers,
                   help=f"phimask --workers (default {d.workers}; chaos needs >= 2)")
    chaos = p.add_argument_group("chaos (random intervals, from --seed)")
    chaos.add_argument("--no-chaos", action="store_true", help="no kills: load and drain only")
    chaos.add_argument("--sink-up", type=float, nargs=2, metavar=("MIN", "MAX"),
                       default=d.sink_up, help="seconds between downstream SIGKILLs "
                       f"(default {d.sink_up[0]:.0f} {d.sink_up[1]:.0f})")
    chaos.add_argument("--sink-down", type=float, nargs=2, metavar=("MIN", "MAX"),
                       default=d.sink_down, help="seconds a killed downstream stays down "
                       f"(default {d.sink_down[0]:.0f} {d.sink_down[1]:.0f})")
    chaos.add_argument("--worker-kill-every", type=float, nargs=2, metavar=("MIN", "MAX"),
                       default=d.worker_kill_every, help="seconds between worker SIGKILLs "
                       f"(default {d.worker_kill_every[0]:.0f} {d.worker_kill_every[1]:.0f})")
    chaos.add_argument("--quiet", type=float, default=d.quiet,
                       help=f"seconds without chaos before the drain (default {d.quiet:.0f})")
    chaos.add_argument("--seed", type=int, default=d.seed, help=f"(default {d.seed})")
    rss = p.add_argument_group("RSS")
    rss.add_argument("--warmup", type=float, default=d.warmup,
                     help="seconds of the soak whose RSS samples are not judged (default "
                     f"{d.warmup:.0f}; at most a third of the run)")
    rss.add_argument("--rss-interval", type=float, default=d.rss_interval,
                     help=f"seconds between samples (default {d.rss_interval})")
    rss.add_argument("--rss-tolerance-mib", type=float, default=d.rss_tolerance_mib,
                     help=f"growth always allowed (default {d.rss_tolerance_mib:.0f})")
    rss.add_argument("--rss-tolerance-ratio", type=float, default=d.rss_tolerance_ratio,
                     help="growth allowed as a share of the first-third median "
                     f"(default {d.rss_tolerance_ratio})")
    p.add_argument("--call-timeout", type=float, default=d.call_timeout,
                   help=f"the shipper's deadline for each call (default {d.call_timeout:.0f})")
    p.add_argument("--senders", type=int, default=d.senders,
                   help="shipper calls in flight at most (default 2 x workers + 2)")
    p.add_argument("--max-buffer", type=int, default=d.max_buffer,
                   help=f"batches the shipper buffers at most (default {d.max_buffer})")
    p.add_argument("--drain-seconds", type=float, default=d.drain_seconds,
                   help=f"phimask --drain-seconds (default {d.drain_seconds:.0f})")
    p.add_argument("--progress-every", type=float, default=d.progress_every,
                   help=f"seconds between progress lines (default {d.progress_every:.0f})")
    p.add_argument("--out", type=Path, default=d.out,
                   help="folder for soak.json and soak.md (default bench/results)")
    p.add_argument("--keep-workdir", type=Path, metavar="DIR",
                   help="use and keep DIR as the scratch folder (record files, logs)")
    p.add_argument("--server-cmd", default=shlex.join(d.server_cmd),
                   help="command that serves, before phimask's flags (default: this "
                   "Python's -m phimask serve)")
    o = p.parse_args(argv)
    cfg = SoakConfig(
        duration=o.duration, load=o.load, rate=o.rate, calibrate_seconds=o.calibrate_seconds,
        batch_size=o.batch_size, workers=o.workers, chaos=not o.no_chaos,
        sink_up=tuple(o.sink_up), sink_down=tuple(o.sink_down),
        worker_kill_every=tuple(o.worker_kill_every), quiet=o.quiet, warmup=o.warmup,
        rss_interval=o.rss_interval, rss_tolerance_mib=o.rss_tolerance_mib,
        rss_tolerance_ratio=o.rss_tolerance_ratio, call_timeout=o.call_timeout,
        senders=o.senders, max_buffer=o.max_buffer, drain_seconds=o.drain_seconds,
        progress_every=o.progress_every, seed=o.seed, out=o.out, keep_workdir=o.keep_workdir,
        server_cmd=tuple(shlex.split(o.server_cmd)))
    try:
        cfg.check()
    except ValueError as e:
        p.error(str(e))
    return cfg


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    try:
        report = run_soak(cfg)
    except ChaosError as e:
        progress(f"FAILED to run: {e}")
        return 2
    except KeyboardInterrupt:
        progress("interrupted; every process stopped, no report written")
        return 130
    print(markdown(report))
    if cfg.out is not None:
        progress(f"wrote {cfg.out / 'soak.json'} and {cfg.out / 'soak.md'}")
    failed = [name for name, ok in report["invariants"].items() if not ok]
    progress("all invariants hold" if not failed else f"FAILED: {', '.join(failed)}")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
