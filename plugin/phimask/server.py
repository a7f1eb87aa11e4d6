"""`phimask serve`: every gRPC service on one listen address.

phimask.v1.BatchTransform, OTLP LogsService, Vector's v2 service, grpc.health.v1 and
server reflection. Requests are handled as raw bytes and masked on worker processes
(see workers.py); OTLP and Vector batches go on to their downstream (forward/). TLS
(tls.py) protects the listener and the downstream channels; every call but health and
reflection is authorized (access.py). On SIGTERM or SIGINT: health goes NOT_SERVING,
new calls are refused, in-flight batches finish.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from . import __version__
from .access import authorizer_for
from .audit import audit, log_sink, set_sinks
from .config import Settings
from .forward import Downstream, parse_downstream_url
from .pipeline import Masker
from .policy_reload import PolicyReloader
from .receivers import NATIVE, OTLP, VECTOR, native_handler, otlp_handler, vector_handler
from .reidentify import Reidentifier
from .reidentify_service import SERVICE as REIDENTIFY
from .reidentify_service import reidentify_handler
from .runtime import VaultSource, build_masker, load_keyring
from .telemetry.audit_log import AuditLog
from .telemetry.metrics import setup_metrics
from .telemetry.observe import Observer
from .telemetry.tracing import setup_tracing
from .tls import forward_credentials, listener_certificates
from .workers import BatchRunner

log = logging.getLogger("phimask.server")


def build_downstreams(settings: Settings) -> dict[str, Downstream]:
    targets = {name: parse_downstream_url(url) for name, url in (
        ("otlp", settings.otlp_downstream), ("vector", settings.vector_downstream)) if url}
    credentials = None
    if any(t.tls for t in targets.values()) or any((
            settings.forward_ca_file, settings.forward_cert_file, settings.forward_key_file)):
        credentials = forward_credentials(settings)  # checks the files even if unused
    methods = {"otlp": f"/{OTLP}/Export", "vector": f"/{VECTOR}/PushEvents"}
    return {name: Downstream(name, target, methods[name], credentials=credentials,
                             max_message_bytes=settings.max_message_bytes)
            for name, target in targets.items()}


class PhimaskServer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Security settings first: a bad file stops the start before anything runs.
        self.tls = listener_certificates(settings)
        self.authorizer = authorizer_for(settings.access_file)
        self.authorizer.warn_unreachable(tls=self.tls is not None,
                                         mutual_tls=self.tls is not None and self.tls.mutual)
        self.downstreams = build_downstreams(settings)
        self.tracer_provider = setup_tracing()
        self.meter_provider, self._stop_metrics = setup_metrics(settings.metrics_listen)
        self.observer = Observer(self.tracer_provider, self.meter_provider)
        # The policy, keys and vault load here too: a bad one fails the start, with a
        # clear message, not in a worker. Re-identification runs in this process.
        self.vault = VaultSource(settings, load_keyring(settings))
        self.masker = build_masker(settings, keys=self.vault.keys, vault=self.vault)
        self.reidentifier = Reidentifier(self.masker.plan, self.vault)
        # The hash-chained audit trail: one writer, this process (workers send theirs).
        self.audit_log = AuditLog.from_settings(settings, self.vault.keys)
        set_sinks(log_sink, self.audit_log.append, self.observer.audit_sink)
        audit("keys.loaded", keys=self.vault.keys.summary())  # ids and files, no material
        self.runner = BatchRunner(settings)
        self.health = health.aio.HealthServicer()
        options = [
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            # A reply is bigger than its request (masks are longer than what they
            # replace): cap what comes in, not what we answer.
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 0),
        ]
        self.server = grpc.aio.server(options=options)
        self.server.add_generic_rpc_handlers((
            native_handler(self.runner, self.authorizer, self.observer),
            otlp_handler(self.runner, self.downstreams.get(settings.otlp_forward_to),
                         settings.forward_timeout, self.authorizer, self.observer),
            vector_handler(self.runner, self.downstreams.get(settings.vector_forward_to),
                           settings.forward_timeout, self.authorizer, self.observer),
            reidentify_handler(self.reidentifier, self.authorizer, self._redact_text),
        ))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (NATIVE, OTLP, VECTOR, REIDENTIFY,
             health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            self.server,
        )
        if self.tls is None:
            self.port = self.server.add_insecure_port(settings.listen)
        else:
            self.port = self.server.add_secure_port(settings.listen, self.tls.credentials())
        if self.port == 0:
            raise OSError(f"cannot listen on {settings.listen}")

    def _redact_text(self, text: str) -> str:
        scanner = self.masker.scanner
        labels = {d.name: f"[REDACTED:{d.label}]" for d in self.masker.plan.detectors}
        return scanner.redact_many([text], lambda m: labels[m.detector.name])[0]

    def use_policy(self, masker: Masker, snapshot: Path) -> None:
        """A reloaded policy, validated: new batches and re-identification use it."""
        self.masker = masker
        self.reidentifier.use_plan(masker.plan)
        self.runner.use_policy(snapshot)
        self.observer.policy_version = masker.policy_version

    async def start(self) -> None:
        await self.runner.start()
        await self.server.start()
        # Newer Vector sources and sinks ask grpc.health.v1 about "vector.Vector".
        for service in ("", NATIVE, OTLP, VECTOR):
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace=self.settings.drain_seconds)
        await asyncio.get_running_loop().run_in_executor(None, self.runner.close)
        set_sinks(log_sink)
        self.audit_log.close()  # flushed: no acknowledged batch's entry is lost
        for downstream in self.downstreams.values():
            await downstream.close()
        self.vault.close()
        self._stop_metrics()
        self.meter_provider.shutdown()
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()  # flushes the spans of the last batches


async def serve(settings: Settings) -> None:
    server = PhimaskServer(settings)  # fails here, with a clear message, not in a worker
    masker = server.masker
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server.observer.policy_version = masker.policy_version
    watcher: asyncio.Task[None] | None = None
    if settings.policy is not None:
        reloader = PolicyReloader(settings, server.vault, masker, server.use_policy,
                                  server.observer.policy_reload_failed)
        reloads: set[asyncio.Task[bool]] = set()

        def on_sighup() -> None:
            task = asyncio.ensure_future(reloader.reload("SIGHUP"))
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, on_sighup)
        if settings.policy_reload_seconds > 0:
            watcher = asyncio.create_task(reloader.watch(settings.policy_reload_seconds))
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
            "otlp_downstream": settings.otlp_downstream,
            "vector_downstream": settings.vector_downstream,
            "tls": "off" if server.tls is None else "mutual" if server.tls.mutual else "on",
            "access_file": str(settings.access_file) if settings.access_file else None,
            "keys": server.vault.keys.summary(),
            "vault": server.vault.opened.describe() if server.vault.opened else None,
            "integrity": masker.plan.integrity.mode,
            "version": __version__,
        },
    )
    await stop.wait()
    if watcher is not None:
        watcher.cancel()
    log.info("draining", extra={"grace_seconds": settings.drain_seconds})
    await server.stop()
    log.info("stopped")
