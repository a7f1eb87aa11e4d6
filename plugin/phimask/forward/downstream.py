"""One long-lived gRPC channel to a downstream, and the decision what to retry.

A shipper's call is answered OK only after the downstream accepted the whole masked
batch. Transient failures are retried with backoff inside the caller's deadline;
when time runs out the caller gets UNAVAILABLE, so the shipper's own buffer keeps
the data. Which downstream statuses are transient, and what a final one becomes for
the caller, is decided in one place: RETRY, KEEP and `Downstream._final`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import grpc

from ..errors import CallError

log = logging.getLogger("phimask.forward")
S = grpc.StatusCode

# Worth another try: the downstream is down, busy or restarting.
RETRY = frozenset({S.UNAVAILABLE, S.DEADLINE_EXCEEDED, S.ABORTED, S.CANCELLED,
                   S.RESOURCE_EXHAUSTED, S.INTERNAL, S.UNKNOWN})
# Misconfiguration (credentials, endpoint): the data is fine, so the shipper must keep
# it until an operator fixes phimask's settings.
KEEP = frozenset({S.UNAUTHENTICATED, S.PERMISSION_DENIED, S.UNIMPLEMENTED, S.NOT_FOUND,
                  S.FAILED_PRECONDITION})
# Everything else (INVALID_ARGUMENT, OUT_OF_RANGE, DATA_LOSS, ALREADY_EXISTS) says this
# batch can never be accepted.


class DownstreamError(CallError):
    """The downstream did not take the masked batch; what the caller is told."""


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    tls: bool

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.address}"


def parse_downstream_url(url: str) -> Target:
    """`http://host:port` (plaintext) or `https://host:port` (TLS)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be http://HOST:PORT or https://HOST:PORT")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("must not have a path, query or fragment")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("has an invalid port") from None
    if port is None:
        raise ValueError("needs an explicit port")
    return Target(parts.hostname, port, parts.scheme == "https")


class Downstream:
    """Sends serialized requests to one method of one downstream, with retries."""

    def __init__(self, name: str, target: Target, method: str, *, max_message_bytes: int,
                 attempt_timeout: float = 10.0,
                 credentials: grpc.ChannelCredentials | None = None) -> None:
        """`credentials` apply to an https:// target (tls.forward_credentials); without
        them it is verified against the system roots."""
        self.name = name
        self.target = target
        self.attempt_timeout = attempt_timeout
        options = [
            # The masked batch may outgrow the request it came in (masks are longer):
            # the downstream's own limit decides, not ours.
            ("grpc.max_send_message_length", -1),
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.enable_retries", 0),  # retries are ours, bounded by the caller's deadline
            # gRPC's reconnect backoff grows to 120 s: after a long outage batches would be
            # refused for up to two minutes after the downstream is back. Probe every <= 2 s.
            ("grpc.initial_reconnect_backoff_ms", 250),
            ("grpc.max_reconnect_backoff_ms", 2_000),
        ]
        if target.tls:
            self.channel = grpc.aio.secure_channel(
                target.address, credentials or grpc.ssl_channel_credentials(), options=options
            )
        else:
            self.channel = grpc.aio.insecure_channel(target.address, options=options)
        self._call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = self.channel.unary_unary(
            method, request_serializer=None, response_deserializer=None
        )

    async def send(self, data: bytes, deadline: float) -> bytes:
        """Deliver `data`; `deadline` is a time.monotonic() value. Returns the reply."""
        delay = 0.05
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DownstreamError("UNAVAILABLE", f"{self.name} downstream {self.target} "
                                      "did not accept the batch in time; retry")
            try:
                reply: bytes = await self._call(
                    data, timeout=min(remaining, self.attempt_timeout), wait_for_ready=False
                )
                return reply
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
            if code not in RETRY:
                raise self._final(code)
            log.warning("downstream retry", extra={"downstream": self.name,
                                                   "target": str(self.target),
                                                   "status": code.name, "attempt": attempt})
            await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 1.0)

    def _final(self, code: grpc.StatusCode) -> DownstreamError:
        where = f"{self.name} downstream {self.target}"
        if code in KEEP:
            return DownstreamError("UNAVAILABLE", f"{where} refused the batch ({code.name}); "
                                   "check phimask's downstream settings; retry")
        return DownstreamError("INVALID_ARGUMENT",
                               f"{where} rejected the masked batch as invalid ({code.name})")

    async def close(self) -> None:
        await self.channel.close()
