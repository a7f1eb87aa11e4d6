"""OpenTelemetry metrics: a Prometheus `/metrics` endpoint on its own port
(`--metrics-listen`), and OTLP export when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the
metrics endpoint) is set or `OTEL_METRICS_EXPORTER` asks for it."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader

from .tracing import TelemetryError, build_resource

log = logging.getLogger("phimask.telemetry")


def setup_metrics(metrics_listen: str, env: Mapping[str, str] | None = None
                  ) -> tuple[MeterProvider, Callable[[], None]]:
    """The MeterProvider and what stops its HTTP endpoint. Raises TelemetryError for a
    bad exporter name, OSError when the metrics port is taken."""
    env = os.environ if env is None else env
    readers: list[MetricReader] = []
    stop: Callable[[], None] = lambda: None  # noqa: E731
    if metrics_listen:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import start_http_server

        host, _, port = metrics_listen.rpartition(":")
        readers.append(PrometheusMetricReader())
        server, _thread = start_http_server(int(port), addr=host.strip("[]"))
        stop = server.shutdown
        log.info("metrics", extra={"listen": metrics_listen, "path": "/metrics"})
    endpoint = env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT")
    names = [n.strip() for n in env.get("OTEL_METRICS_EXPORTER", "").split(",") if n.strip()]
    for name in names or (["otlp"] if endpoint else []):
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter,
            )

            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
        elif name not in ("none", "prometheus"):
            raise TelemetryError(f"OTEL_METRICS_EXPORTER: unknown exporter {name!r} "
                                 "(otlp, prometheus via --metrics-listen, none)")
    return MeterProvider(resource=build_resource(env), metric_readers=readers), stop
