"""The gRPC handlers, one generic handler per wire protocol.

They run in the server process and only move bytes: masking happens on the workers
(workers.py), delivery in forward/. Every failure reaches the caller as a deliberate
status; nothing escapes as UNKNOWN, which Vector retries forever and Fluent Bit drops.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as otlp_pb

from ._gen.phimask.v1 import transform_pb2
from ._gen.vector import vector_pb2
from .access import Authorizer, Caller, Gate, bind_caller, current_caller
from .adapters.native import RequestError
from .adapters.otlp import partial_success_message
from .errors import CallError
from .forward import Downstream, DownstreamError
from .integrity import BATCH_KEY_ID_HEADER, BATCH_SIGNATURE_HEADER
from .pipeline import Rejection
from .telemetry.observe import BatchObservation, Observer
from .workers import BatchRunner

log = logging.getLogger("phimask.receivers")
Context = grpc.aio.ServicerContext[bytes, bytes]
NATIVE = transform_pb2.DESCRIPTOR.services_by_name["BatchTransform"].full_name
OTLP = otlp_pb.DESCRIPTOR.services_by_name["LogsService"].full_name
VECTOR = vector_pb2.DESCRIPTOR.services_by_name["Vector"].full_name
STREAM_WINDOW = 8  # requests of one stream masked ahead of the reply being written
DEADLINE_MARGIN = 0.2  # answer UNAVAILABLE ourselves just before the caller gives up


async def _abort(context: Context, status: str, message: str) -> None:
    await context.abort(getattr(grpc.StatusCode, status, grpc.StatusCode.INTERNAL), message)


def authorize(gate: Gate, context: Context) -> Caller:
    """Identify the caller and check its role before any work; CallError if it may
    not. The caller is bound for the rest of the RPC (`access.current_caller()`): every
    RPC runs in its own task, so the binding ends with it."""
    caller = gate(context)
    bind_caller(caller)
    return caller


def guarded(handler: Callable[[bytes, Context], Awaitable[bytes]], gate: Gate
            ) -> Callable[[bytes, Context], Awaitable[bytes]]:
    """Authorize the call by `gate`, then turn every failure of a unary handler into a
    deliberate status."""

    async def run(request: bytes, context: Context) -> bytes:
        try:
            authorize(gate, context)
            return await handler(request, context)
        except CallError as exc:
            await _abort(context, exc.status, str(exc))
        except Exception as exc:
            log.error("unexpected error in a handler", extra={"error_type": type(exc).__name__})
            await _abort(context, "INTERNAL", "internal error; the batch was not processed")
        raise AssertionError("unreachable: abort raises")

    return run


def batch_signature(context: Context) -> tuple[str, str] | None:
    """The request's batch signature from its metadata (integrity.py), if it has one."""
    found: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if key in (BATCH_SIGNATURE_HEADER, BATCH_KEY_ID_HEADER) and isinstance(value, str):
            found[key] = value
    if BATCH_SIGNATURE_HEADER not in found:
        return None
    return found[BATCH_SIGNATURE_HEADER], found.get(BATCH_KEY_ID_HEADER, "")


def deadline_of(context: Context, default: float) -> float:
    remaining = context.time_remaining()
    budget = default if remaining is None else max(0.0, remaining - DEADLINE_MARGIN)
    return time.monotonic() + budget


def log_rejections(protocol: str, rejections: list[tuple[int, Rejection]]) -> None:
    if rejections:
        reasons = Counter(f"{r.reason}:{r.rule}" if r.rule else r.reason for _, r in rejections)
        log.warning("records rejected", extra={
            "protocol": protocol, "count": len(rejections), "reasons": dict(reasons),
            "indices": [index for index, _ in rejections[:100]],  # positions, never values
        })


def caller_attributes() -> dict[str, str]:
    caller = current_caller()
    return {"name": caller.name, "via": caller.via} if caller is not None else {}


async def send(downstream: Downstream, data: bytes, deadline: float,
               batch: BatchObservation) -> bytes:
    """Forward, and tell the batch's span how the downstream answered."""
    try:
        reply = await downstream.send(data, deadline)
    except DownstreamError as exc:
        batch.downstream(str(downstream.target), exc.status)
        raise
    batch.downstream(str(downstream.target), "OK")
    return reply


def native_handler(runner: BatchRunner, authorizer: Authorizer, observer: Observer
                   ) -> grpc.GenericRpcHandler:
    stream_gate = authorizer.gate(f"/{NATIVE}/TransformStream")

    async def transform(request: bytes, context: Context) -> bytes:
        with observer.batch("native", f"/{NATIVE}/Transform", context.invocation_metadata(),
                            caller_attributes()) as batch:
            reply, stats = await runner.run(request, signature=batch_signature(context))
            batch.record(stats)
            return reply

    async def stream_batch(request: bytes, context: Context) -> bytes:
        with observer.batch("native", f"/{NATIVE}/TransformStream",
                            context.invocation_metadata(), caller_attributes()) as batch:
            reply, stats = await runner.run(request, wait=True)
            batch.record(stats)
            return reply

    async def transform_stream(requests: AsyncIterator[bytes], context: Context
                               ) -> AsyncIterator[bytes]:
        try:
            authorize(stream_gate, context)  # before the first request is read
        except CallError as exc:
            await _abort(context, exc.status, str(exc))
        # Several requests of one stream are masked at once; replies keep request order.
        # Call metadata cannot sign each message: streams carry record signatures.
        pending: asyncio.Queue[asyncio.Future[bytes] | None] = asyncio.Queue(STREAM_WINDOW)

        async def read() -> None:
            async for request in requests:
                await pending.put(asyncio.ensure_future(stream_batch(request, context)))
            await pending.put(None)

        reader = asyncio.create_task(read())
        try:
            while (future := await pending.get()) is not None:
                try:
                    yield await future
                except RequestError as exc:
                    await _abort(context, exc.status, str(exc))
                except Exception as exc:
                    log.error("unexpected error in a stream",
                              extra={"error_type": type(exc).__name__})
                    await _abort(context, "INTERNAL", "internal error; the batch was not processed")
            await reader
        finally:
            reader.cancel()
            while not pending.empty():
                leftover = pending.get_nowait()
                if leftover is not None:
                    leftover.cancel()

    return grpc.method_handlers_generic_handler(NATIVE, {
        "Transform": grpc.unary_unary_rpc_method_handler(
            guarded(transform, authorizer.gate(f"/{NATIVE}/Transform"))),
        "TransformStream": grpc.stream_stream_rpc_method_handler(transform_stream),
    })


def otlp_handler(runner: BatchRunner, downstream: Downstream | None,
                 forward_timeout: float, authorizer: Authorizer, observer: Observer
                 ) -> grpc.GenericRpcHandler:
    async def export(request: bytes, context: Context) -> bytes:
        with observer.batch("otlp", f"/{OTLP}/Export", context.invocation_metadata(),
                            caller_attributes()) as batch:
            return await observed_export(request, context, batch)

    async def observed_export(request: bytes, context: Context, batch: BatchObservation
                              ) -> bytes:
        if downstream is None:
            raise DownstreamError("UNAVAILABLE", "no downstream is configured for OTLP "
                                  "(--otlp-downstream, --otlp-forward-to); retry once it is")
        deadline = deadline_of(context, forward_timeout)
        downstream_rejected, downstream_message = 0, ""
        async with runner.admit():
            result, stats = await runner.run_otlp(request, batch_signature(context))
            batch.record(stats)
            if result.accepted:
                reply = otlp_pb.ExportLogsServiceResponse.FromString(
                    await send(downstream, result.forward, deadline, batch))
                downstream_rejected = reply.partial_success.rejected_log_records
                if downstream_rejected:
                    downstream_message = f"downstream rejected {downstream_rejected}"
        log_rejections("otlp", result.rejections)
        response = otlp_pb.ExportLogsServiceResponse()
        if result.rejections or downstream_rejected:
            # A client must not retry a partial success: these records are final.
            response.partial_success.rejected_log_records = (
                len(result.rejections) + downstream_rejected)
            response.partial_success.error_message = "; ".join(
                m for m in (partial_success_message(result.rejections), downstream_message) if m)
        return response.SerializeToString()

    return grpc.method_handlers_generic_handler(OTLP, {
        "Export": grpc.unary_unary_rpc_method_handler(
            guarded(export, authorizer.gate(f"/{OTLP}/Export"))),
    })


def vector_handler(runner: BatchRunner, downstream: Downstream | None,
                   forward_timeout: float, authorizer: Authorizer, observer: Observer
                   ) -> grpc.GenericRpcHandler:
    healthy = vector_pb2.HealthCheckResponse(status=vector_pb2.SERVING).SerializeToString()

    async def push_events(request: bytes, context: Context) -> bytes:
        with observer.batch("vector", f"/{VECTOR}/PushEvents", context.invocation_metadata(),
                            caller_attributes()) as batch:
            return await observed_push(request, context, batch)

    async def observed_push(request: bytes, context: Context, batch: BatchObservation
                            ) -> bytes:
        if downstream is None:
            raise DownstreamError("UNAVAILABLE", "no downstream is configured for Vector "
                                  "(--vector-downstream, --vector-forward-to); retry once it is")
        deadline = deadline_of(context, forward_timeout)
        async with runner.admit():
            result, stats = await runner.run_vector(request, batch_signature(context))
            batch.record(stats)
            if result.forward:
                await send(downstream, result.forward, deadline, batch)
        # Vector has no partial success: the rest is delivered, the rejected are
        # accounted for here (and audited), never forwarded.
        log_rejections("vector", result.rejections)
        if result.left_out:
            log.warning("events without an OTLP-logs form were not forwarded",
                        extra={"protocol": "vector", "count": result.left_out})
        return b""  # an empty PushEventsResponse

    async def health_check(request: bytes, context: Context) -> bytes:
        return healthy

    return grpc.method_handlers_generic_handler(VECTOR, {
        "PushEvents": grpc.unary_unary_rpc_method_handler(
            guarded(push_events, authorizer.gate(f"/{VECTOR}/PushEvents"))),
        "HealthCheck": grpc.unary_unary_rpc_method_handler(
            guarded(health_check, authorizer.gate(f"/{VECTOR}/HealthCheck"))),
    })
