"""Benchmark phimask serve: peak throughput and latency at half load, per worker count.

For each worker count N (default: 1, then 2) the harness
  1. starts `phimask serve --listen 127.0.0.1:<free port> --workers N [--policy FILE]`,
  2. waits until grpc.health.v1 reports the overall service "" as SERVING,
  3. warms up (closed loop, --warmup seconds, not reported),
  4. measures peak throughput: closed loop, --concurrency calls in flight (default 2N+2),
  5. measures the same peak with every call on ONE connection (as Vector sends),
  6. measures latency: open loop at --load x the measured peak batch rate,
  7. stops the server with SIGTERM and requires exit status 0.
The load client (bench.load_client) runs as its own process in every phase, so neither
the harness nor the server shares a GIL with it. All traffic stays on 127.0.0.1.

Results go to OUT/latest.json (with machine info) and OUT/latest.md; the Markdown table
is printed on stdout, progress on stderr. Exit status is 1 if anything failed.

examples:
  python -m bench.run                              # 1 and 2 workers, 10 s per phase
  python -m bench.run --workers 1 2 4 --seconds 20
  python -m bench.run --policy examples/policy.yaml --records 50000 --batch-size 500
  python -m bench.run --server-cmd "python /tmp/standin.py serve"   # any compatible server
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import orjson
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.corpus import encode_requests, generate_records
from bench.wire import write_requests

ROOT = Path(__file__).resolve().parent.parent
TAIL_LINES = 30


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


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    target: str
    stdout: Path
    stderr: Path

    def evidence(self) -> str:
        return (
            f"  server stderr (last {TAIL_LINES} lines):\n{tail(self.stderr)}\n"
            f"  server stdout (last {TAIL_LINES} lines):\n{tail(self.stdout)}"
        )

    def ensure_running(self) -> None:
        code = self.proc.poll()
        if code is not None:
            raise BenchError(f"server exited unexpectedly with status {code}\n{self.evidence()}")

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
                f"server ignored SIGTERM for {timeout:.0f} s and was killed\n{self.evidence()}"
            ) from None


@contextlib.contextmanager
def running_server(cmd: list[str], workdir: Path, label: str) -> Iterator[Server]:
    stdout, stderr = workdir / f"server-{label}.out", workdir / f"server-{label}.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        # Own session: a Ctrl-C on the harness must not reach the server before we stop it.
        # The server's local key and state stay in the run's scratch folder.
        env = {**os.environ, "PHIMASK_STATE_DIR": str(workdir / "state")}
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=err, start_new_session=True, cwd=ROOT, env=env
        )
    target = cmd[cmd.index("--listen") + 1]
    server = Server(proc, target, stdout, stderr)
    try:
        yield server
    finally:
        if proc.poll() is None:
            with contextlib.suppress(BenchError):
                server.stop(10)


def load_client(
    target: str, requests: Path, mode_args: list[str], seconds: float
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "bench.load_client",
        "--target",
        target,
        "--requests",
        str(requests),
        "--seconds",
        str(seconds),
        *mode_args,
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, cwd=ROOT, env=env, check=False)
    try:
        result: dict[str, Any] = orjson.loads(proc.stdout)
    except orjson.JSONDecodeError:
        raise BenchError(
            f"load client crashed (status {proc.returncode}); see its stderr above"
        ) from None
    if proc.returncode != 0 or not result.get("ok"):
        raise BenchError(f"load client failed (status {proc.returncode}): {result.get('failure')}")
    return result


def bench_workers(
    opts: argparse.Namespace, workers: int, requests: Path, workdir: Path
) -> dict[str, Any]:
    label = f"w{workers}"
    port = free_port()
    target = f"127.0.0.1:{port}"
    cmd = [*shlex.split(opts.server_cmd), "--listen", target, "--workers", str(workers)]
    if opts.policy:
        cmd += ["--policy", str(opts.policy.resolve())]
    concurrency = opts.concurrency or 2 * workers + 2
    progress(f"workers={workers}: starting {shlex.join(cmd)}")
    with running_server(cmd, workdir, label) as server:
        startup = server.wait_serving(opts.startup_timeout)
        progress(f"workers={workers}: SERVING after {startup:.1f} s")

        def phase(name: str, args: list[str], seconds: float) -> dict[str, Any]:
            try:
                result = load_client(target, requests, args, seconds)
            except BenchError as e:
                server.ensure_running()
                raise BenchError(f"workers={workers}, {name}: {e}\n{server.evidence()}") from None
            server.ensure_running()
            return result

        closed = ["--mode", "closed", "--concurrency", str(concurrency)]
        if opts.warmup > 0:
            progress(f"workers={workers}: warm-up, closed loop, {opts.warmup:g} s")
            phase("warm-up", closed, opts.warmup)
        progress(
            f"workers={workers}: peak, closed loop, {concurrency} in flight, {opts.seconds:g} s"
        )
        peak = phase("peak", closed, opts.seconds)
        if peak["client_cpu_cores"] > 0.9:
            progress(
                f"workers={workers}: warning: the load client used {peak['client_cpu_cores']:.2f}"
                " cores; the peak may be the client's limit, not the server's"
            )
        progress(f"workers={workers}: peak over ONE connection (as Vector's sink sends)")
        one_conn = phase("peak-1-connection", [*closed, "--connections", "1"], opts.seconds)
        rate = peak["batches_per_s"] * opts.load
        progress(
            f"workers={workers}: latency, open loop at {rate:.2f} batches/s "
            f"({opts.load:.0%} of peak), {opts.seconds:g} s"
        )
        latency = phase("latency", ["--mode", "open", "--rate", f"{rate:.6f}"], opts.seconds)
        progress(f"workers={workers}: stopping server (SIGTERM)")
        code = server.stop(opts.stop_timeout)
    if code != 0:
        raise BenchError(
            f"workers={workers}: server exited with status {code} after SIGTERM, expected 0\n"
            f"{server.evidence()}"
        )
    progress(f"workers={workers}: server exited 0")
    return {
        "workers": workers,
        "target": target,
        "server_cmd": cmd,
        "startup_s": startup,
        "concurrency": concurrency,
        "peak": peak,
        "peak_one_connection": one_conn,
        "latency": latency,
        "exit_status": code,
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
    for dist in ("phimask", "grpcio", "protobuf", "orjson"):
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


def table(runs: list[dict[str, Any]]) -> str:
    rows = [
        "| workers | records/s | MB/s | p50 ms | p99 ms | records/s per worker "
        "| records/s, 1 connection |",
        "|--------:|----------:|-----:|-------:|-------:|---------------------:"
        "|------------------------:|",
    ]
    for r in runs:
        peak, lat = r["peak"], r["latency"]["latency_ms"]
        rows.append(
            f"| {r['workers']} | {peak['records_per_s']:,.0f} | {peak['mb_per_s']:.1f} "
            f"| {lat['p50']:.1f} | {lat['p99']:.1f} "
            f"| {peak['records_per_s'] / r['workers']:,.0f} "
            f"| {r['peak_one_connection']['records_per_s']:,.0f} |"
        )
    return "\n".join(rows)


def scaling(runs: list[dict[str, Any]]) -> float | None:
    by = {r["workers"]: r["peak"]["records_per_s"] for r in runs}
    return by[2] / by[1] if 1 in by and 2 in by and by[1] else None


def markdown(report: dict[str, Any]) -> str:
    m, c, runs = report["machine"], report["config"], report["runs"]
    ratio = report["scaling_2_over_1"]
    lines = [
        "# phimask benchmark",
        "",
        f"{m['date']} · {m['cpu_model']} · {m['cores']} cores · Python {m['python']} · "
        f"commit {m['git_commit'] or 'none'}{' (dirty)' if m['git_dirty'] else ''}",
        "",
        f"Corpus: {c['records']} records (seed {c['seed']}, {c['avg_record_bytes']:.0f} B "
        f"average), batches of {c['batch_size']}; policy: {c['policy'] or 'default'}. "
        f"records/s and MB/s (10^6 bytes of record payload) are the peak, closed loop "
        f"with 2N+2 calls in flight unless set; p50/p99 are per batch, open loop at "
        f"{c['load']:.0%} of that peak. The last column is the same peak with every call "
        f"on one HTTP/2 connection.",
        "",
        table(runs),
        "",
    ]
    if ratio is not None:
        lines += [f"Scaling, 2 workers / 1 worker: **{ratio:.2f}x**", ""]
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
    p.add_argument("--policy", type=Path, help="policy file passed to the server as --policy")
    p.add_argument(
        "--out",
        type=Path,
        default=ROOT / "bench" / "results",
        help="directory for latest.json and latest.md (default bench/results)",
    )
    p.add_argument(
        "--server-cmd",
        default=f"{shlex.quote(sys.executable)} -m phimask serve",
        help="command that serves, before --listen/--workers/--policy "
        "(default: this Python's -m phimask serve)",
    )
    p.add_argument(
        "--startup-timeout",
        type=float,
        default=60.0,
        help="seconds to wait for health SERVING (default 60)",
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
    return opts


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    progress(f"generating {opts.records} records (seed {opts.seed}), batches of {opts.batch_size}")
    records = generate_records(opts.records, opts.seed)
    requests = encode_requests(records, opts.batch_size)
    avg = sum(len(orjson.dumps(r)) for r in records) / len(records)
    del records
    report: dict[str, Any] = {
        "machine": machine_info(),
        "config": {
            "workers": opts.workers,
            "records": opts.records,
            "batch_size": opts.batch_size,
            "seed": opts.seed,
            "seconds": opts.seconds,
            "warmup": opts.warmup,
            "concurrency": opts.concurrency or "2N+2",
            "load": opts.load,
            "policy": str(opts.policy) if opts.policy else None,
            "server_cmd": opts.server_cmd,
            "avg_record_bytes": avg,
        },
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="phimask-bench-") as tmp:
        workdir = Path(tmp)
        request_file = workdir / "requests.bin"
        write_requests(request_file, requests)
        try:
            for n in opts.workers:
                report["runs"].append(bench_workers(opts, n, request_file, workdir))
        except BenchError as e:
            progress(f"FAILED: {e}")
            return 1
        except KeyboardInterrupt:
            progress("interrupted; server stopped, no results written")
            return 130
    report["scaling_2_over_1"] = scaling(report["runs"])
    opts.out.mkdir(parents=True, exist_ok=True)
    md = markdown(report)
    write_atomic(opts.out / "latest.json", orjson.dumps(report, option=orjson.OPT_INDENT_2))
    write_atomic(opts.out / "latest.md", md.encode())
    progress(f"wrote {opts.out / 'latest.json'} and {opts.out / 'latest.md'}")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
