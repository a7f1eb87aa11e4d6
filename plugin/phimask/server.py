"""`phimask serve`: every gRPC service on one listen address.

BatchTransform (phimask.v1), grpc.health.v1 and server reflection. Requests are
handled as raw bytes and masked on worker processes (see workers.py). On SIGTERM or
SIGINT: health goes NOT_SERVING, new calls are refused, in-flight batches finish.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from . import __version__
from ._gen.phimask.v1 import transform_pb2
from .adapters.native import RequestError
from .config import Settings
from .runtime import build_masker
from .workers import BatchRunner

log = logging.getLogger("phimask.server")
SERVICE = transform_pb2.DESCRIPTOR.services_by_name["BatchTransform"].full_name
STREAM_WINDOW = 8  # requests of one stream masked ahead of the reply being written


async def _abort(context: grpc.aio.ServicerContext[bytes, bytes], exc: RequestError) -> None:
    await context.abort(getattr(grpc.StatusCode, exc.status, grpc.StatusCode.INTERNAL), str(exc))


def _internal(exc: Exception) -> RequestError:
    log.error("unexpected error in a handler", extra={"error_type": type(exc).__name__})
    return RequestError("INTERNAL", "internal error; the batch was not processed")


def _handlers(runner: BatchRunner) -> grpc.GenericRpcHandler:
    async def transform(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        try:
            return await runner.run(request)
        except RequestError as exc:
            await _abort(context, exc)
        except Exception as exc:  # grpcio would answer UNKNOWN, which Fluent Bit drops
            await _abort(context, _internal(exc))
        raise AssertionError("unreachable: abort raises")

    async def transform_stream(
        requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> AsyncIterator[bytes]:
        # Several requests of one stream are masked at once; replies keep request order.
        pending: asyncio.Queue[asyncio.Future[bytes] | None] = asyncio.Queue(STREAM_WINDOW)

        async def read() -> None:
            async for request in requests:
                await pending.put(asyncio.ensure_future(runner.run(request, wait=True)))
            await pending.put(None)

        reader = asyncio.create_task(read())
        try:
            while (future := await pending.get()) is not None:
                try:
                    yield await future
                except RequestError as exc:
                    await _abort(context, exc)
                except Exception as exc:
                    await _abort(context, _internal(exc))
            await reader
        finally:
            reader.cancel()
            while not pending.empty():
                leftover = pending.get_nowait()
                if leftover is not None:
                    leftover.cancel()

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Transform": grpc.unary_unary_rpc_method_handler(transform),
            "TransformStream": grpc.stream_stream_rpc_method_handler(transform_stream),
        },
    )


class PhimaskServer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runner = BatchRunner(settings)
        self.health = health.aio.HealthServicer()
        options = [
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            ("grpc.so_reuseport", 0),
        ]
        self.server = grpc.aio.server(options=options)
        self.server.add_generic_rpc_handlers((_handlers(self.runner),))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME),
            self.server,
        )
        self.port = self.server.add_insecure_port(settings.listen)
        if self.port == 0:
            raise OSError(f"cannot listen on {settings.listen}")

    async def start(self) -> None:
        await self.runner.start()
        await self.server.start()
        for service in ("", SERVICE):
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace=self.settings.drain_seconds)
        await asyncio.get_running_loop().run_in_executor(None, self.runner.close)


async def serve(settings: Settings) -> None:
    masker = build_masker(settings)  # fail here, with a clear message, not in a worker
    server = PhimaskServer(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    host = settings.listen.rpartition(":")[0]
    log.info(
        "serving",
        extra={
            "listen": f"{host}:{server.port}",
            "workers": settings.workers,
            "policy": masker.plan.source,
            "policy_version": masker.policy_version,
            "scanner": masker.scanner.engine,
            "version": __version__,
        },
    )
    if masker.plan.on_error == "quarantine":
        log.warning("on_error: quarantine acts as reject until the quarantine store lands")
    await stop.wait()
    log.info("draining", extra={"grace_seconds": settings.drain_seconds})
    await server.stop()
    log.info("stopped")
