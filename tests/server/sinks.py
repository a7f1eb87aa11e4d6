"""Downstream stand-ins for forward-mode tests: real gRPC servers on loopback that
record what they are sent and answer as told (OK, a status, or slowly)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

import grpc


@dataclass
class Sink:
    """Records each request's raw bytes; `status` != OK makes it refuse them."""

    port: int = 0
    received: list[bytes] = field(default_factory=list)
    status: grpc.StatusCode = grpc.StatusCode.OK
    delay: float = 0.0
    reply: bytes = b""
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    tls: bool = False
    peers: list[Mapping[str, object]] = field(default_factory=list)  # auth contexts

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def handle(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        with self.lock:
            self.calls += 1
            self.peers.append(context.auth_context())
            status, delay = self.status, self.delay
        if delay:
            time.sleep(delay)
        if status != grpc.StatusCode.OK:
            context.abort(status, "sink told to refuse")
        with self.lock:
            self.received.append(request)
        return self.reply


@contextmanager
def sink_server(service: str, method: str, sink: Sink | None = None,
                extra: dict[str, Callable[[bytes, grpc.ServicerContext], bytes]] | None = None,
                tls: tuple[bytes, bytes] | None = None, client_ca: bytes | None = None
                ) -> Iterator[Sink]:
    """`tls`: (key PEM, certificate PEM) to serve TLS; `client_ca` also requires a client
    certificate it signed."""
    sink = sink or Sink()
    handlers = {method: grpc.unary_unary_rpc_method_handler(sink.handle)}
    for name, fn in (extra or {}).items():
        handlers[name] = grpc.unary_unary_rpc_method_handler(fn)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                         options=[("grpc.max_receive_message_length", 128 << 20)])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    if tls is None:
        sink.port = server.add_insecure_port(f"127.0.0.1:{sink.port}")
    else:
        credentials = grpc.ssl_server_credentials(
            [tls], root_certificates=client_ca, require_client_auth=client_ca is not None)
        sink.port = server.add_secure_port(f"127.0.0.1:{sink.port}", credentials)
        sink.tls = True
    server.start()
    try:
        yield sink
    finally:
        server.stop(grace=None)


def otlp_sink(sink: Sink | None = None, tls: tuple[bytes, bytes] | None = None,
              client_ca: bytes | None = None) -> AbstractContextManager[Sink]:
    return sink_server("opentelemetry.proto.collector.logs.v1.LogsService", "Export", sink,
                       tls=tls, client_ca=client_ca)


def vector_sink(sink: Sink | None = None) -> AbstractContextManager[Sink]:
    return sink_server("vector.Vector", "PushEvents", sink)
