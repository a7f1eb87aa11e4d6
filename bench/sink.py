"""Downstream sink for the benchmark: where phimask forwards masked OTLP and Vector batches.

Run it as its own process, so it shares no GIL with phimask or the load client:

  python -m bench.sink --listen 127.0.0.1:0      # prints "ready 127.0.0.1:<port>"

It serves, over plaintext gRPC with raw-bytes handlers (no protobuf on the hot path):

  /opentelemetry.proto.collector.logs.v1.LogsService/Export   reply b"" (an empty
                                                              ExportLogsServiceResponse)
  /vector.Vector/PushEvents                                   reply b"" (PushEventsResponse)
  /vector.Vector/HealthCheck                                  reply b"" (status SERVING)
  /bench.Sink/Stats                                           reply: JSON counters
                                                              and the sink's CPU seconds

Every call is accepted. Per protocol it counts calls, bytes and records; records are
counted by a shallow parse that stops at the record boundary (ResourceLogs >
ScopeLogs > LogRecord for OTLP, PushEventsRequest > event for Vector), so a record's
content is never decoded. `--no-count` skips even that (records then stay 0). On
SIGTERM or SIGINT it stops, prints its final counters as one JSON line on stdout and
exits 0. The harness (bench.run) reads Stats before and after each phase to check that
every record the load client counted reached the sink.

`--record FILE` appends every accepted OTLP/Vector request to FILE before answering,
one frame each: a protocol byte (b"o" otlp, b"v" vector), the length (little-endian
u64), the request's bytes (`read_recorded` reads them back). One os.write per frame on
an O_APPEND descriptor: once the sink has answered, the frame is in the kernel, so even
a SIGKILL right after loses nothing it acknowledged (bench.soak kills it on purpose).

  python -m bench.load_client --protocol otlp --target 127.0.0.1:<port> \\
      --connections 1 --concurrency 8 --seconds 5     # the sink's ceiling, no phimask
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import struct
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import orjson
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from bench.wire import MAX_MESSAGE

OTLP_SERVICE = "opentelemetry.proto.collector.logs.v1.LogsService"
VECTOR_SERVICE = "vector.Vector"
STATS_SERVICE = "bench.Sink"
STATS = f"/{STATS_SERVICE}/Stats"
FRAME = struct.Struct("<cQ")  # protocol tag, request length
TAGS = {"otlp": b"o", "vector": b"v"}
PROTOCOL_OF_TAG = {tag: name for name, tag in TAGS.items()}


def read_recorded(path: Path) -> tuple[list[tuple[str, bytes]], int]:
    """The frames `--record` wrote to `path`, in order, and the number of bytes at its
    end that do not make a whole frame (a sink killed mid-write; 0 normally)."""
    data = path.read_bytes()
    frames: list[tuple[str, bytes]] = []
    pos = 0
    while pos + FRAME.size <= len(data):
        tag, size = FRAME.unpack_from(data, pos)
        end = pos + FRAME.size + size
        if end > len(data) or tag not in PROTOCOL_OF_TAG:
            break
        frames.append((PROTOCOL_OF_TAG[tag], data[pos + FRAME.size : end]))
        pos = end
    return frames, len(data) - pos


def _shallow_classes() -> tuple[Any, Any]:
    """Messages wire-compatible with ExportLogsServiceRequest and PushEventsRequest that
    keep each LogRecord / event as opaque bytes: parsing one is a length scan."""
    proto = descriptor_pb2.FileDescriptorProto(
        name="bench/sink_shallow.proto", package="bench.sink", syntax="proto3"
    )
    f = descriptor_pb2.FieldDescriptorProto
    repeated = f.LABEL_REPEATED

    def message(name: str, field: str, number: int, type_name: str | None) -> None:
        m = proto.message_type.add(name=name)
        if type_name is None:
            m.field.add(name=field, number=number, label=repeated, type=f.TYPE_BYTES)
        else:
            m.field.add(
                name=field,
                number=number,
                label=repeated,
                type=f.TYPE_MESSAGE,
                type_name=f".bench.sink.{type_name}",
            )

    message("ScopeLogs", "log_records", 2, None)
    message("ResourceLogs", "scope_logs", 2, "ScopeLogs")
    message("ExportLogsServiceRequest", "resource_logs", 1, "ResourceLogs")
    message("PushEventsRequest", "events", 1, None)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)

    def cls(name: str) -> Any:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"bench.sink.{name}"))

    return cls("ExportLogsServiceRequest"), cls("PushEventsRequest")


_OtlpRequest, _VectorRequest = _shallow_classes()


def count_otlp_records(request: bytes) -> int:
    req = _OtlpRequest.FromString(request)
    return sum(len(sl.log_records) for rl in req.resource_logs for sl in rl.scope_logs)


def count_vector_events(request: bytes) -> int:
    return len(_VectorRequest.FromString(request).events)


@dataclass
class Counters:
    calls: int = 0
    bytes: int = 0
    records: int = 0
    unparsable: int = 0


class Sink:
    def __init__(self, count: bool, record: Path | None = None) -> None:
        self.count = count
        self.started = time.time()
        self.counters = {"otlp": Counters(), "vector": Counters()}
        self.record_fd: int | None = None
        if record is not None:
            self.record_fd = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def keep(self, protocol: str, request: bytes) -> None:
        """Append one frame; a single write, done before the call is answered."""
        if self.record_fd is not None:
            os.write(self.record_fd, FRAME.pack(TAGS[protocol], len(request)) + request)

    def handler(
        self, protocol: str, counter: Callable[[bytes], int]
    ) -> Callable[[bytes, Any], Any]:
        totals = self.counters[protocol]
        count = self.count
        keep = self.keep

        async def accept(request: bytes, context: Any) -> bytes:
            keep(protocol, request)
            totals.calls += 1
            totals.bytes += len(request)
            if count:
                try:
                    totals.records += counter(request)
                except Exception:  # accept anything, but say it did not parse
                    totals.unparsable += 1
            return b""

        return accept

    def stats(self) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "uptime_s": time.time() - self.started,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "counting": self.count,
            **{name: asdict(c) for name, c in self.counters.items()},
        }

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        def unary(fn: Callable[[bytes, Any], Any]) -> grpc.RpcMethodHandler[bytes, bytes]:
            # No (de)serializers: requests and replies stay raw bytes.
            return grpc.unary_unary_rpc_method_handler(fn)

        async def health(request: bytes, context: Any) -> bytes:
            return b""  # HealthCheckResponse{status: SERVING}, SERVING being 0

        async def stats(request: bytes, context: Any) -> bytes:
            return orjson.dumps(self.stats())

        return [
            grpc.method_handlers_generic_handler(
                OTLP_SERVICE, {"Export": unary(self.handler("otlp", count_otlp_records))}
            ),
            grpc.method_handlers_generic_handler(
                VECTOR_SERVICE,
                {
                    "PushEvents": unary(self.handler("vector", count_vector_events)),
                    "HealthCheck": unary(health),
                },
            ),
            grpc.method_handlers_generic_handler(STATS_SERVICE, {"Stats": unary(stats)}),
        ]


async def serve(opts: argparse.Namespace) -> int:
    sink = Sink(count=not opts.no_count, record=opts.record)
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
            ("grpc.so_reuseport", 0),
        ]
    )
    server.add_generic_rpc_handlers(sink.handlers())
    port = server.add_insecure_port(opts.listen)
    if port == 0:
        print(f"bench.sink: cannot listen on {opts.listen}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    host = opts.listen.rpartition(":")[0]
    print(f"ready {host}:{port}", flush=True)
    await stop.wait()
    await server.stop(grace=1.0)
    if sink.record_fd is not None:
        os.close(sink.record_fd)
    print(orjson.dumps({"stopped": True, **sink.stats()}).decode(), flush=True)
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.sink",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--listen",
        default="127.0.0.1:0",
        help="HOST:PORT to serve on; port 0 picks a free one (default 127.0.0.1:0)",
    )
    p.add_argument(
        "--no-count",
        action="store_true",
        help="count calls and bytes only, not records (no parsing at all)",
    )
    p.add_argument(
        "--record",
        type=Path,
        metavar="FILE",
        help="append every accepted OTLP/Vector request to FILE (framed, see above) "
        "before answering it; default: keep nothing",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
