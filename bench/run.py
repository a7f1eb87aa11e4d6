"""Benchmark phimask serve: peak throughput and latency at half load, per worker count
and per wire protocol.

Protocols (--protocols, default all three; every one sends the same corpus, in batches
of --batch-size records):
  native  phimask.v1.BatchTransform/Transform: masked records come back in the reply
  otlp    OTLP LogsService/Export, each record a key/value-list body (as Fluent Bit
          sends it); phimask masks it and forwards it to a sink, answering after the
          sink accepted
  vector  Vector v2 PushEvents, each record a log event's fields; forwarded likewise

For each worker count N (default: 1, then 2), and for each protocol in turn, the harness
  1. (otlp, vector) starts the downstream sink, `python -m bench.sink`, as its own
     process and waits for its ready line,
  2. starts `phimask serve --listen 127.0.0.1:<free port> --workers N [--policy FILE]`,
     with --otlp-downstream / --vector-downstream http://<sink> for otlp / vector,
  3. waits until grpc.health.v1 reports the overall service "" as SERVING,
  4. warms up (closed loop, --warmup seconds, not reported),
  5. measures peak throughput: closed loop, --concurrency calls in flight (default 2N+2),
  6. (native only) measures the same peak with every call on ONE connection (as
     Vector's sink sends),
  7. measures latency: open loop at --load x this protocol's measured peak batch rate,
  8. stops the server, then the sink, with SIGTERM and requires exit status 0 of both.
After each otlp/vector phase the sink's counters must show every record the load client
counted as accepted (a Vector reply cannot report rejections: records phimask dropped
are reported as not delivered). Before all that, for each of otlp and vector, the load
client drives the sink directly over one connection (--sink-seconds) to show the sink's
ceiling: a sink near its ceiling would be measuring itself, not phimask.

The load client (bench.load_client) runs as its own process in every phase, as does the
sink, so none of them shares a GIL with the server. All traffic stays on 127.0.0.1.

Results go to OUT/latest.json (with machine info) and OUT/latest.md; the Markdown table
(one row per protocol and worker count, then each protocol's records/s as a ratio of
native at the same worker count, target >= 0.75x, and its added p50/p99 latency) is
printed on stdout, progress on stderr. Exit status is 1 if anything failed.

examples:
  python -m bench.run                              # all protocols, 1 and 2 workers, 10 s/phase
  python -m bench.run --protocols native otlp --workers 1 2 4 --seconds 20
  python -m bench.run --policy examples/policy.yaml --records 50000 --batch-size 500
  python -m bench.run --seconds 2 --warmup 1 --workers 1 --out /tmp/benchsmoke   # smoke
  python -m bench.run --server-cmd "python /tmp/standin.py serve"   # any compatible server
  python -m bench.run --protocols native --workers 1 --signed hmac --out /tmp/signed

Signed runs (--signed hmac | ed25519; default: unsigned): the harness makes a key
directory in its scratch folder (a verify-hmac key shared with the load client, or an
Ed25519 sign key for the client whose public half is saved as verify-ed25519.<kid>.key),
writes the policy (--policy, or the embedded safe-harbor default) with
`integrity: {mode: require}` merged in, and starts the server with --keys-dir and that
policy. The load client signs every request once, before the clock starts (a batch
signature covers the request's exact bytes), and sends it in the call metadata
x-phimask-batch-signature / x-phimask-key-id. The report names the mode. Rejected
records are counted in every mode; a phase where phimask rejected every record, or (when
signed) any record for a bad signature, fails the run.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import os
import platform
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import orjson
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.corpus import ENCODERS, generate_records
from bench.sink import STATS
from bench.wire import PROTOCOLS, write_requests
from phimask.keyring import LOCAL_PURPOSES, Keyring, create_key_file, public_key_pem
from phimask.policy import default_policy_text

ROOT = Path(__file__).resolve().parent.parent
TAIL_LINES = 30
DOWNSTREAM_FLAGS = {"otlp": "--otlp-downstream", "vector": "--vector-downstream"}
TARGET_RATIO = 0.75  # the target: forward paths within 25% of native records/s
SINK_WARN_SHARE = 0.5  # a peak above this share of the sink's ceiling gets a warning
# --signed MODE: the algorithm's name in a policy's integrity.accept, and the key id.
SIGNED_ALGORITHMS = {"hmac": "hmac-sha256", "ed25519": "ed25519"}
SIGN_KIDS = {"hmac": "bench-hmac", "ed25519": "bench-ed25519"}
BAD_SIGNATURE = "bad_signature"


class BenchError(Exception):
    """A phase failed; the message says what and shows the evidence."""


def progress(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no output captured)"
    kept = text.splitlines()[-lines:]
    return "\n".join(f"    | {line}" for line in kept) if kept else "    (empty)"


def child_env() -> dict[str, str]:
    """This environment, with the project root importable (for `-m bench.*`)."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


@dataclass
class Child:
    """A process the harness started in its own session, output captured to files."""

    name: str  # "server" or "sink", for messages
    proc: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def evidence(self) -> str:
        return (
            f"  {self.name} stderr (last {TAIL_LINES} lines):\n{tail(self.stderr)}\n"
            f"  {self.name} stdout (last {TAIL_LINES} lines):\n{tail(self.stdout)}"
        )

    def ensure_running(self) -> None:
        code = self.proc.poll()
        if code is not None:
            raise BenchError(
                f"{self.name} exited unexpectedly with status {code}\n{self.evidence()}"
            )

    def stop(self, timeout: float) -> int:
        """SIGTERM and wait; if it hangs, kill its process group and report it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise BenchError(
                f"{self.name} ignored SIGTERM for {timeout:.0f} s and was killed\n{self.evidence()}"
            ) from None


@dataclass
class Server(Child):
    target: str = ""

    def wait_serving(self, timeout: float) -> float:
        start = time.monotonic()
        with grpc.insecure_channel(self.target) as channel:
            check = health_pb2_grpc.HealthStub(channel).Check
            while True:
                self.ensure_running()
                try:
                    reply = check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return time.monotonic() - start
                    state = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
                except grpc.RpcError as e:
                    state = e.code().name
                if time.monotonic() - start > timeout:
                    raise BenchError(
                        f"server at {self.target} not SERVING after {timeout:.0f} s "
                        f'(grpc.health.v1.Health/Check, service "": {state})\n{self.evidence()}'
                    )
                time.sleep(0.2)


_READY = re.compile(rb"^ready (\S+:\d+)$", re.MULTILINE)


@dataclass
class Sink(Child):
    target: str = ""
    _channel: grpc.Channel | None = field(default=None, repr=False)

    def wait_ready(self, timeout: float) -> float:
        """Wait for the sink's `ready HOST:PORT` line; sets `target`."""
        start = time.monotonic()
        while True:
            self.ensure_running()
            with contextlib.suppress(OSError):
                m = _READY.search(self.stdout.read_bytes())
                if m:
                    self.target = m.group(1).decode()
                    return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise BenchError(f"sink not ready after {timeout:.0f} s\n{self.evidence()}")
            time.sleep(0.05)

    def stats(self) -> dict[str, Any]:
        """The sink's counters (bench.Sink/Stats): per protocol calls, bytes, records."""
        if self._channel is None:
            self._channel = grpc.insecure_channel(self.target)
        try:
            call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = self._channel.unary_unary(
                STATS, request_serializer=None, response_deserializer=None
            )
            raw = call(b"", timeout=10)
        except grpc.RpcError as e:
            self.ensure_running()
            raise BenchError(f"sink Stats failed: {e.code().name}\n{self.evidence()}") from None
        stats: dict[str, Any] = orjson.loads(raw)
        return stats

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None


@contextlib.contextmanager
def spawned(cmd: list[str], workdir: Path, label: str, env: dict[str, str]) -> Iterator[Child]:
    stdout, stderr = workdir / f"{label}.out", workdir / f"{label}.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        # Own session: a Ctrl-C on the harness must not reach it before we stop it.
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=err, start_new_session=True, cwd=ROOT, env=env
        )
    child = Child(label.split("-", 1)[0], proc, stdout, stderr)
    try:
        yield child
    finally:
        if proc.poll() is None:
            with contextlib.suppress(BenchError):
                child.stop(10)


@contextlib.contextmanager
def running_server(cmd: list[str], workdir: Path, label: str) -> Iterator[Server]:
    # The server's local key and state stay in the run's scratch folder.
    env = {**os.environ, "PHIMASK_STATE_DIR": str(workdir / "state")}
    with spawned(cmd, workdir, f"server-{label}", env) as child:
        target = cmd[cmd.index("--listen") + 1]
        yield Server(child.name, child.proc, child.stdout, child.stderr, target)


@contextlib.contextmanager
def running_sink(workdir: Path, label: str, timeout: float) -> Iterator[Sink]:
    cmd = [sys.executable, "-m", "bench.sink", "--listen", "127.0.0.1:0"]
    with spawned(cmd, workdir, f"sink-{label}", child_env()) as child:
        sink = Sink(child.name, child.proc, child.stdout, child.stderr)
        try:
            sink.wait_ready(timeout)
            yield sink
        finally:
            sink.close()


def integrity_mode(signed: str | None) -> str:
    """How the report names a run: unsigned, signed hmac, signed ed25519."""
    return f"signed {signed}" if signed else "unsigned"


def require_integrity(text: str, algorithm: str | None = None) -> str:
    """The policy `text` with `integrity.mode: require` merged into its mapping (its
    other integrity settings kept); `algorithm` (hmac-sha256, ed25519) is added to an
    `integrity.accept` list that leaves it out."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise BenchError(f"the policy is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise BenchError("the policy is not a YAML mapping")
    integrity = data.get("integrity")
    if integrity is None:
        integrity = {}
    if not isinstance(integrity, dict):
        raise BenchError("the policy's integrity section is not a mapping")
    integrity = {**integrity, "mode": "require"}
    accept = integrity.get("accept")
    if algorithm and isinstance(accept, list) and algorithm not in accept:
        integrity["accept"] = [*accept, algorithm]
    data["integrity"] = integrity
    return yaml.safe_dump(data, sort_keys=False)


@dataclass(frozen=True)
class Signing:
    """A signed run's keys and policy, made once in the run's scratch folder."""

    mode: str  # hmac | ed25519
    keys_dir: Path  # the server's --keys-dir
    policy: Path  # the server's --policy: integrity.mode require
    client_key: Path  # the key the load client signs with
    kid: str

    def server_args(self) -> list[str]:
        return ["--keys-dir", str(self.keys_dir), "--policy", str(self.policy)]

    def client_args(self) -> list[str]:
        return ["--sign-key", str(self.client_key), "--key-id", self.kid]


def prepare_signing(mode: str, policy: Path | None, workdir: Path) -> Signing:
    """Key directory for the server (masking keys plus the verify key) and the client's
    signing key; the policy with integrity required."""
    keys_dir, kid = workdir / "keys", SIGN_KIDS[mode]
    for purpose in LOCAL_PURPOSES:
        create_key_file(keys_dir, purpose, kid="bench")
    if mode == "hmac":  # a shared secret: the server verifies with the client's key
        client_key = create_key_file(keys_dir, "verify-hmac", kid=kid)
    else:
        client_key = create_key_file(workdir / "client-keys", "sign", kid=kid)
        sign_key = Keyring.load(client_key.parent, env={}).active("sign")
        (keys_dir / f"verify-ed25519.{kid}.key").write_text(public_key_pem(sign_key))
    try:
        text = policy.read_text(encoding="utf-8") if policy else default_policy_text()
    except (OSError, UnicodeDecodeError) as e:
        raise BenchError(f"cannot read the policy {policy}: {e}") from None
    policy_file = workdir / "policy-signed.yaml"
    policy_file.write_text(require_integrity(text, SIGNED_ALGORITHMS[mode]), encoding="utf-8")
    return Signing(mode, keys_dir, policy_file, client_key, kid)


def check_rejections(result: dict[str, Any], signing: Signing | None) -> None:
    """Fail a phase whose records phimask rejected all (or, signed, any for a bad
    signature): its records/s would measure rejections, not masking."""
    records, rejected = result["records"], result.get("rejected_records", 0)
    reasons: dict[str, int] = result.get("rejection_reasons") or {}
    why = "reasons in the replies checked: " + (
        ", ".join(f"{r} x{n}" for r, n in sorted(reasons.items())) or "none listed"
    )
    if records and rejected >= records:
        hint = "a signing bug?" if signing else "is the policy rejecting everything?"
        raise BenchError(f"phimask rejected all {records} records ({why}): {hint}")
    bad = {r: n for r, n in reasons.items() if r.startswith(BAD_SIGNATURE)}
    if signing is not None and bad:
        raise BenchError(
            f"signed {signing.mode}: phimask rejected records for bad signatures "
            f"({why}); {rejected} of {records} records rejected"
        )


def load_client(
    target: str, protocol: str, requests: Path, mode_args: list[str], seconds: float
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "bench.load_client",
        "--target",
        target,
        "--protocol",
        protocol,
        "--requests",
        str(requests),
        "--seconds",
        str(seconds),
        *mode_args,
    ]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, cwd=ROOT, env=child_env(), check=False)
    try:
        result: dict[str, Any] = orjson.loads(proc.stdout)
    except orjson.JSONDecodeError:
        raise BenchError(
            f"load client crashed (status {proc.returncode}); see its stderr above"
        ) from None
    if proc.returncode != 0 or not result.get("ok"):
        raise BenchError(f"load client failed (status {proc.returncode}): {result.get('failure')}")
    return result


def delivered(
    sink: Sink, protocol: str, before: dict[str, Any], result: dict[str, Any]
) -> dict[str, Any]:
    """What reached the sink during one load-client run, checked against what the client
    counted as accepted (its untimed priming calls included)."""
    after = sink.stats()
    got = {k: after[protocol][k] - before[protocol][k] for k in ("calls", "records", "bytes")}
    sent = result["primed_records"] + result["records"]
    cpu = after["cpu_s"] - before["cpu_s"]
    per_record = cpu / got["records"] if got["records"] else 0.0
    info = {
        **got,
        "records_sent": sent,
        "not_delivered": sent - got["records"],
        "unparsable": after[protocol]["unparsable"] - before[protocol]["unparsable"],
        "sink_cpu_s": cpu,
        "sink_cpu_us_per_record": per_record * 1e6,
        # The window between the two Stats calls also holds the client's start-up, so
        # the sink's load at the measured rate is its CPU per record times that rate.
        "sink_cpu_cores": per_record * result["records_per_s"],
    }
    if info["unparsable"]:
        raise BenchError(f"the sink could not parse {info['unparsable']} forwarded requests")
    if sent and not got["records"]:
        raise BenchError(
            f"none of the {sent} accepted records reached the sink: phimask "
            "rejected or dropped them all (see its log)"
        )
    if got["records"] > sent:
        raise BenchError(
            f"the sink received {got['records']} records for {sent} accepted: duplicates"
        )
    if got["records"] < sent:
        if protocol != "vector":
            raise BenchError(
                f"the sink received {got['records']} records for {sent} accepted: "
                f"{sent - got['records']} lost"
            )
        # A Vector reply has no partial success: events phimask rejected just vanish.
        progress(
            f"warning: {sent - got['records']} of {sent} Vector events were not forwarded "
            "(rejected by phimask; see its log)"
        )
    return info


def concurrency_for(opts: argparse.Namespace, workers: int) -> int:
    concurrency: int = opts.concurrency or 2 * workers + 2
    return concurrency


def sink_ceiling(
    opts: argparse.Namespace, protocol: str, requests: Path, workdir: Path
) -> dict[str, Any]:
    """The load client straight into the sink, one connection as phimask uses."""
    concurrency = max(concurrency_for(opts, n) for n in opts.workers)
    with running_sink(workdir, f"{protocol}-ceiling", opts.startup_timeout) as sink:
        progress(
            f"{protocol}: sink ceiling, load client -> sink at {sink.target} directly, "
            f"one connection, {concurrency} in flight, {opts.sink_seconds:g} s"
        )
        before = sink.stats()
        args = ["--mode", "closed", "--concurrency", str(concurrency), "--connections", "1"]
        try:
            result = load_client(sink.target, protocol, requests, args, opts.sink_seconds)
        except BenchError as e:
            raise BenchError(f"{protocol}, sink ceiling: {e}\n{sink.evidence()}") from None
        result["sink"] = delivered(sink, protocol, before, result)
        code = sink.stop(opts.stop_timeout)
    if code != 0:
        raise BenchError(f"sink exited with status {code}, expected 0\n{sink.evidence()}")
    progress(
        f"{protocol}: sink ceiling {result['records_per_s']:,.0f} records/s "
        f"(sink CPU {result['sink']['sink_cpu_cores']:.2f} cores)"
    )
    return result


def bench_run(
    opts: argparse.Namespace,
    protocol: str,
    workers: int,
    requests: Path,
    workdir: Path,
    signing: Signing | None = None,
) -> dict[str, Any]:
    if protocol not in DOWNSTREAM_FLAGS:
        return _bench_server(opts, protocol, workers, requests, workdir, None, signing)
    with running_sink(workdir, f"{protocol}-w{workers}", opts.startup_timeout) as sink:
        return _bench_server(opts, protocol, workers, requests, workdir, sink, signing)


def _bench_server(
    opts: argparse.Namespace,
    protocol: str,
    workers: int,
    requests: Path,
    workdir: Path,
    sink: Sink | None,
    signing: Signing | None = None,
) -> dict[str, Any]:
    who = f"{protocol}, workers={workers}"
    label = f"{protocol}-w{workers}"
    target = f"127.0.0.1:{free_port()}"
    cmd = [*shlex.split(opts.server_cmd), "--listen", target, "--workers", str(workers)]
    if signing is not None:
        cmd += signing.server_args()
    elif opts.policy:
        cmd += ["--policy", str(opts.policy.resolve())]
    sign_args = signing.client_args() if signing is not None else []
    if sink is not None:
        cmd += [DOWNSTREAM_FLAGS[protocol], f"http://{sink.target}"]
        progress(f"{who}: sink ready at {sink.target}")
    concurrency = concurrency_for(opts, workers)
    progress(f"{who}: starting {shlex.join(cmd)}")
    with running_server(cmd, workdir, label) as server:
        startup = server.wait_serving(opts.startup_timeout)
        progress(f"{who}: SERVING after {startup:.1f} s")

        def alive() -> None:
            server.ensure_running()
            if sink is not None:
                sink.ensure_running()

        def phase(name: str, args: list[str], seconds: float) -> dict[str, Any]:
            before = sink.stats() if sink is not None else {}
            try:
                result = load_client(target, protocol, requests, [*args, *sign_args], seconds)
                alive()
                check_rejections(result, signing)
                if sink is not None:
                    result["sink"] = delivered(sink, protocol, before, result)
            except BenchError as e:
                alive()  # a crashed process is the better explanation
                evidence = server.evidence() + (f"\n{sink.evidence()}" if sink else "")
                raise BenchError(f"{who}, {name}: {e}\n{evidence}") from None
            return result

        closed = ["--mode", "closed", "--concurrency", str(concurrency)]
        if opts.warmup > 0:
            progress(f"{who}: warm-up, closed loop, {opts.warmup:g} s")
            phase("warm-up", closed, opts.warmup)
        progress(f"{who}: peak, closed loop, {concurrency} in flight, {opts.seconds:g} s")
        peak = phase("peak", closed, opts.seconds)
        if peak["client_cpu_cores"] > 0.9:
            progress(
                f"{who}: warning: the load client used {peak['client_cpu_cores']:.2f}"
                " cores; the peak may be the client's limit, not the server's"
            )
        one_conn = None
        if protocol == "native":
            progress(f"{who}: peak over ONE connection (as Vector's sink sends)")
            one_conn = phase("peak-1-connection", [*closed, "--connections", "1"], opts.seconds)
        rate = peak["batches_per_s"] * opts.load
        progress(
            f"{who}: latency, open loop at {rate:.2f} batches/s "
            f"({opts.load:.0%} of peak), {opts.seconds:g} s"
        )
        latency = phase("latency", ["--mode", "open", "--rate", f"{rate:.6f}"], opts.seconds)
        progress(f"{who}: stopping server (SIGTERM)")
        code = server.stop(opts.stop_timeout)
    if code != 0:
        raise BenchError(
            f"{who}: server exited with status {code} after SIGTERM, expected 0\n"
            f"{server.evidence()}"
        )
    progress(f"{who}: server exited 0")
    sink_info = None
    if sink is not None:
        sink_code = sink.stop(opts.stop_timeout)
        if sink_code != 0:
            raise BenchError(
                f"{who}: sink exited with status {sink_code} after SIGTERM, expected 0\n"
                f"{sink.evidence()}"
            )
        sink_info = {"target": sink.target, "exit_status": sink_code}
    return {
        "protocol": protocol,
        "workers": workers,
        "integrity": integrity_mode(signing.mode if signing else None),
        "target": target,
        "server_cmd": cmd,
        "startup_s": startup,
        "concurrency": concurrency,
        "peak": peak,
        "peak_one_connection": one_conn,
        "latency": latency,
        "exit_status": code,
        "sink": sink_info,
    }


def _run(args: Sequence[str]) -> str | None:
    try:
        out = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for dist in ("phimask", "grpcio", "protobuf", "orjson", "opentelemetry-proto"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[dist] = importlib.metadata.version(dist)
    commit = _run(["git", "rev-parse", "HEAD"])
    dirty = _run(["git", "status", "--porcelain"])
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": commit,
        "git_dirty": bool(dirty) if commit else None,
        "versions": versions,
    }


def ordered(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows by protocol (native, otlp, vector), then by worker count as measured."""
    return sorted(runs, key=lambda r: PROTOCOLS.index(r["protocol"]))


def table(runs: list[dict[str, Any]]) -> str:
    rows = [
        "| protocol | workers | records/s | MB/s | p50 ms | p99 ms | records/s per worker "
        "| records/s, 1 connection |",
        "|:---------|--------:|----------:|-----:|-------:|-------:|---------------------:"
        "|------------------------:|",
    ]
    for r in ordered(runs):
        peak, lat = r["peak"], r["latency"]["latency_ms"]
        one = r.get("peak_one_connection")
        one_rate = f"{one['records_per_s']:,.0f}" if one else "—"
        rows.append(
            f"| {r['protocol']} | {r['workers']} | {peak['records_per_s']:,.0f} "
            f"| {peak['mb_per_s']:.1f} | {lat['p50']:.1f} | {lat['p99']:.1f} "
            f"| {peak['records_per_s'] / r['workers']:,.0f} "
            f"| {one_rate} |"
        )
    return "\n".join(rows)


def scaling(runs: list[dict[str, Any]], protocol: str = "native") -> float | None:
    by = {r["workers"]: r["peak"]["records_per_s"] for r in runs if r["protocol"] == protocol}
    return by[2] / by[1] if 1 in by and 2 in by and by[1] else None


def versus_native(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each forward protocol's peak as a ratio of native's at the same worker count, and
    the latency it adds (each measured at --load of its own peak)."""
    native = {r["workers"]: r for r in runs if r["protocol"] == "native"}
    out: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        base = native.get(r["workers"])
        if r["protocol"] == "native" or base is None:
            continue
        base_rate = base["peak"]["records_per_s"]
        ratio = r["peak"]["records_per_s"] / base_rate if base_rate else None
        lat, base_lat = r["latency"]["latency_ms"], base["latency"]["latency_ms"]
        out.setdefault(r["protocol"], []).append(
            {
                "workers": r["workers"],
                "records_per_s": r["peak"]["records_per_s"],
                "native_records_per_s": base_rate,
                "ratio": ratio,
                "added_p50_ms": lat["p50"] - base_lat["p50"],
                "added_p99_ms": lat["p99"] - base_lat["p99"],
                "meets_target": ratio is not None and ratio >= TARGET_RATIO,
            }
        )
    return out


def comparison_lines(report: dict[str, Any]) -> list[str]:
    lines = []
    for protocol, rows in report["vs_native"].items():
        parts = [
            f"{c['workers']} worker{'s' if c['workers'] != 1 else ''}: "
            f"**{c['ratio']:.2f}x** records/s, p50 {c['added_p50_ms']:+.1f} ms, "
            f"p99 {c['added_p99_ms']:+.1f} ms"
            for c in rows
            if c["ratio"] is not None
        ]
        met = all(c["meets_target"] for c in rows)
        verdict = "met" if met else "**not met**"
        lines.append(
            f"- {protocol} vs native: {'; '.join(parts)} (target >= {TARGET_RATIO:.2f}x: {verdict})"
        )
    return lines


def rejected_records(runs: list[dict[str, Any]]) -> tuple[int, int]:
    """(records rejected, records sent) over every measured phase of the native runs,
    whose replies list rejections."""
    rejected = sent = 0
    for r in runs:
        if r["protocol"] != "native":
            continue
        for key in ("peak", "peak_one_connection", "latency"):
            phase = r.get(key)
            if phase:
                rejected += phase.get("rejected_records", 0)
                sent += phase.get("records", 0)
    return rejected, sent


def integrity_line(config: dict[str, Any]) -> str:
    signed = config.get("signed")
    if not signed:
        return "Integrity: **unsigned** (the policy's integrity settings as given)."
    algorithm = {"hmac": "HMAC-SHA256", "ed25519": "Ed25519"}[signed]
    return (
        f"Integrity: **{integrity_mode(signed)}**: policy with `integrity: {{mode: require}}`; "
        f"every request carries a per-batch {algorithm} signature over its serialized bytes "
        f"(call metadata x-phimask-batch-signature and x-phimask-key-id), computed once "
        f"before the clock starts."
    )


def markdown(report: dict[str, Any]) -> str:
    m, c, runs = report["machine"], report["config"], report["runs"]
    rejected, sent = rejected_records(runs)
    lines = [
        f"# phimask benchmark ({integrity_mode(c.get('signed'))})",
        "",
        f"{m['date']} · {m['cpu_model']} · {m['cores']} cores · Python {m['python']} · "
        f"commit {m['git_commit'] or 'none'}{' (dirty)' if m['git_dirty'] else ''}",
        "",
        f"Corpus: {c['records']} records (seed {c['seed']}, {c['avg_record_bytes']:.0f} B "
        f"average as JSON), batches of {c['batch_size']}; policy: {c['policy'] or 'default'}. "
        f"records/s and MB/s (10^6 bytes of record payload, counted as the records' JSON "
        f"size on every protocol) are the peak, closed loop with 2N+2 calls in flight "
        f"unless set; p50/p99 are per batch, open loop at {c['load']:.0%} of that "
        f"protocol's peak. otlp and vector are masked and forwarded to a sink (bench.sink, "
        f"its own process): a call returns after the sink accepted the batch. The last "
        f"column is native's peak with every call on one HTTP/2 connection.",
        "",
        integrity_line(c),
        "",
        table(runs),
        "",
        f"Records rejected by phimask in the measured native phases: {rejected:,} of "
        f"{sent:,} sent (otlp: a rejection fails the run; vector: shows as not delivered).",
        "",
    ]
    comparisons = comparison_lines(report)
    if not comparisons and any(p in DOWNSTREAM_FLAGS for p in c["protocols"]):
        comparisons = ["- no native run at the same worker count to compare with"]
    if comparisons:
        lines += [
            "Forward paths against native at the same worker count (records/s ratio; "
            "latency added, each at its own half load):",
            "",
            *comparisons,
            "",
        ]
    forward = [r for r in runs if r.get("sink")]
    if forward:
        busiest = max(forward, key=lambda r: r["peak"]["sink"]["sink_cpu_cores"])
        lines += [
            f"The sink's CPU at the forward peaks: at most "
            f"{busiest['peak']['sink']['sink_cpu_cores']:.2f} cores "
            f"({busiest['protocol']}, {busiest['workers']} "
            f"worker{'s' if busiest['workers'] != 1 else ''}).",
            "",
        ]
    ceilings = report.get("sink_ceiling") or {}
    if ceilings:
        parts = [
            f"{p} {r['records_per_s']:,.0f} records/s ({r['sink']['sink_cpu_cores']:.2f} "
            f"sink cores)"
            for p, r in ceilings.items()
        ]
        lines += [
            f"Sink ceiling (load client straight into bench.sink, one connection, no "
            f"phimask): {', '.join(parts)}.",
            "",
        ]
    for protocol in PROTOCOLS:
        ratio = report["scaling_2_over_1_by_protocol"].get(protocol)
        if ratio is not None:
            lines += [f"Scaling, 2 workers / 1 worker, {protocol}: **{ratio:.2f}x**", ""]
    return "\n".join(lines)


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--protocols",
        nargs="+",
        choices=PROTOCOLS,
        default=list(PROTOCOLS),
        metavar="P",
        help="wire protocols to measure: native, otlp, vector (default: all three); "
        "the ratio lines need native",
    )
    p.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1, 2],
        metavar="N",
        help="worker counts to measure, in order (default: 1 2)",
    )
    p.add_argument("--records", type=int, default=20000, help="corpus size (default 20000)")
    p.add_argument(
        "--batch-size", type=int, default=1000, help="records per request (default 1000)"
    )
    p.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    p.add_argument(
        "--seconds", type=float, default=10.0, help="length of each measured phase (default 10)"
    )
    p.add_argument(
        "--warmup",
        type=float,
        default=3.0,
        help="warm-up seconds before the peak phase (default 3)",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=0,
        help="calls in flight for the peak phase (default 2N+2 for N workers)",
    )
    p.add_argument(
        "--load",
        type=float,
        default=0.5,
        help="open-loop rate as a fraction of the measured peak (default 0.5)",
    )
    p.add_argument(
        "--sink-seconds",
        type=float,
        default=3.0,
        help="length of the sink-ceiling check per forward protocol; 0 skips it (default 3)",
    )
    p.add_argument("--policy", type=Path, help="policy file passed to the server as --policy")
    p.add_argument(
        "--signed",
        choices=tuple(SIGNED_ALGORITHMS),
        help="sign every request with a per-batch signature (hmac: HMAC-SHA256, ed25519) "
        "and run the server with `integrity: {mode: require}` merged into the policy and a "
        "temporary --keys-dir (default: unsigned)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=ROOT / "bench" / "results",
        help="directory for latest.json and latest.md (default bench/results)",
    )
    p.add_argument(
        "--server-cmd",
        default=f"{shlex.quote(sys.executable)} -m phimask serve",
        help="command that serves, before --listen/--workers/--policy and, for otlp and "
        "vector, --otlp-downstream/--vector-downstream URL "
        "(default: this Python's -m phimask serve)",
    )
    p.add_argument(
        "--startup-timeout",
        type=float,
        default=60.0,
        help="seconds to wait for health SERVING, or the sink's ready line (default 60)",
    )
    p.add_argument(
        "--stop-timeout",
        type=float,
        default=30.0,
        help="seconds to wait for exit after SIGTERM (default 30)",
    )
    opts = p.parse_args(argv)
    if any(n < 1 for n in opts.workers) or opts.records < 1 or opts.batch_size < 1:
        p.error("--workers, --records and --batch-size must be >= 1")
    if not 0 < opts.load <= 1:
        p.error("--load must be in (0, 1]")
    if opts.sink_seconds < 0:
        p.error("--sink-seconds must be >= 0")
    # Measure in the canonical order, each protocol once.
    opts.protocols = [name for name in PROTOCOLS if name in opts.protocols]
    return opts


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    progress(
        f"generating {opts.records} records (seed {opts.seed}), batches of {opts.batch_size}, "
        f"for {', '.join(opts.protocols)}"
    )
    records = generate_records(opts.records, opts.seed)
    requests = {name: ENCODERS[name](records, opts.batch_size) for name in opts.protocols}
    avg = sum(len(orjson.dumps(r)) for r in records) / len(records)
    del records
    report: dict[str, Any] = {
        "machine": machine_info(),
        "config": {
            "protocols": opts.protocols,
            "workers": opts.workers,
            "records": opts.records,
            "batch_size": opts.batch_size,
            "seed": opts.seed,
            "seconds": opts.seconds,
            "warmup": opts.warmup,
            "concurrency": opts.concurrency or "2N+2",
            "load": opts.load,
            "sink_seconds": opts.sink_seconds,
            "policy": str(opts.policy) if opts.policy else None,
            "signed": opts.signed,
            "integrity": integrity_mode(opts.signed),
            "server_cmd": opts.server_cmd,
            "avg_record_bytes": avg,
            "avg_request_bytes": {
                name: sum(map(len, reqs)) / len(reqs) for name, reqs in requests.items()
            },
            "target_ratio": TARGET_RATIO,
        },
        "sink_ceiling": {},
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="phimask-bench-") as tmp:
        workdir = Path(tmp)
        files = {}
        for name, reqs in requests.items():
            files[name] = workdir / f"requests-{name}.bin"
            write_requests(files[name], reqs)
        del requests
        try:
            signing = None
            if opts.signed:
                signing = prepare_signing(opts.signed, opts.policy, workdir)
                progress(
                    f"integrity: {integrity_mode(opts.signed)}; server keys in "
                    f"{signing.keys_dir}, policy {signing.policy}"
                )
            if opts.sink_seconds > 0:
                for name in opts.protocols:
                    if name in DOWNSTREAM_FLAGS:
                        report["sink_ceiling"][name] = sink_ceiling(
                            opts, name, files[name], workdir
                        )
            # Protocols side by side per worker count: a ratio compares runs minutes
            # apart, not a whole sweep apart, on a machine whose load may drift.
            for n in opts.workers:
                for name in opts.protocols:
                    report["runs"].append(bench_run(opts, name, n, files[name], workdir, signing))
        except BenchError as e:
            progress(f"FAILED: {e}")
            return 1
        except KeyboardInterrupt:
            progress("interrupted; server and sink stopped, no results written")
            return 130
    runs = report["runs"]
    report["scaling_2_over_1"] = scaling(runs)  # native, as before
    report["scaling_2_over_1_by_protocol"] = {name: scaling(runs, name) for name in opts.protocols}
    report["vs_native"] = versus_native(runs)
    for name, ceiling in report["sink_ceiling"].items():
        top = max((r["peak"]["records_per_s"] for r in runs if r["protocol"] == name), default=0)
        if top > SINK_WARN_SHARE * ceiling["records_per_s"]:
            progress(
                f"warning: {name} peaked at {top:,.0f} records/s, over "
                f"{SINK_WARN_SHARE:.0%} of the sink's measured ceiling "
                f"({ceiling['records_per_s']:,.0f}); the sink may be part of the limit"
            )
    opts.out.mkdir(parents=True, exist_ok=True)
    md = markdown(report)
    write_atomic(opts.out / "latest.json", orjson.dumps(report, option=orjson.OPT_INDENT_2))
    write_atomic(opts.out / "latest.md", md.encode())
    progress(f"wrote {opts.out / 'latest.json'} and {opts.out / 'latest.md'}")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
