"""Start a real `phimask serve` process on a free loopback port for tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from phimask._gen.phimask.v1 import transform_pb2 as pb
from phimask._gen.phimask.v1 import transform_pb2_grpc as pb_grpc

CHANNEL_OPTIONS = [("grpc.max_send_message_length", 128 << 20),
                   ("grpc.max_receive_message_length", 128 << 20)]


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    address: str
    log_lines: list[str] = field(default_factory=list)
    credentials: grpc.ChannelCredentials | None = None  # for a server started with TLS

    def channel(self, credentials: grpc.ChannelCredentials | None = None) -> grpc.Channel:
        """A new channel (one new connection), by `credentials`, else the server's."""
        credentials = credentials or self.credentials
        if credentials is None:
            return grpc.insecure_channel(self.address, options=CHANNEL_OPTIONS)
        return grpc.secure_channel(self.address, credentials, options=CHANNEL_OPTIONS)

    def audit_events(self, event: str) -> list[dict[str, object]]:
        entries = []
        for line in self.log_lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("audit") == event:
                entries.append(entry)
        return entries

    def stub(self, channel: grpc.Channel) -> pb_grpc.BatchTransformStub:
        return pb_grpc.BatchTransformStub(channel)

    def logs(self) -> str:
        return "\n".join(self.log_lines)


@contextmanager
def phimask_server(state_dir: Path, *args: str, env: dict[str, str] | None = None,
                   credentials: grpc.ChannelCredentials | None = None
                   ) -> Iterator[RunningServer]:
    """`credentials`: what `RunningServer.channel()` connects with (TLS servers)."""
    listen = [] if "--listen" in args else ["--listen", "127.0.0.1:0"]
    cmd = [sys.executable, "-m", "phimask", "serve", *listen, "--state-dir", str(state_dir),
           *args]
    process = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               env={**os.environ, **(env or {})})
    lines: list[str] = []
    ready = threading.Event()
    address: list[str] = []

    def pump() -> None:
        assert process.stderr is not None
        for raw in process.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            lines.append(line)
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("msg") == "serving":
                address.append(entry["listen"])
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    ready.wait(timeout=60)
    if not address:
        process.kill()
        raise RuntimeError("phimask did not start:\n" + "\n".join(lines[-20:]))
    server = RunningServer(process, address[0], lines, credentials)
    try:
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        time.sleep(0.05)  # let the pump read the last lines


def request(*payloads: bytes, **attrs: str) -> pb.TransformRequest:
    return pb.TransformRequest(
        records=[pb.Record(payload=p, id=f"r{i}", attributes=attrs) for i, p in enumerate(payloads)]
    )
