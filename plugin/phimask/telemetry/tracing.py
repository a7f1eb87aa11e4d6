"""OpenTelemetry traces, configured the OTel way.

`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` and the
`OTEL_EXPORTER_OTLP_*` variables mean what the OTel SDK says they mean.
`OTEL_TRACES_EXPORTER` picks exporters (`otlp`, `console`, `none`); unset, spans go by
OTLP only when an endpoint is set, since the SDK's default endpoint, localhost:4317,
is phimask's own listen address. `PHIMASK_TRACES_FILE` writes spans as JSON lines to a
file (local runs). Kubernetes pod attributes come from the downward-API variables
K8S_POD_NAME, K8S_POD_UID, K8S_NAMESPACE_NAME, K8S_NODE_NAME, K8S_CONTAINER_NAME.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import IO

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)

from .. import __version__
from ..config import SettingsError

log = logging.getLogger("phimask.telemetry")
K8S_ENV = {
    "K8S_POD_NAME": "k8s.pod.name",
    "K8S_POD_UID": "k8s.pod.uid",
    "K8S_NAMESPACE_NAME": "k8s.namespace.name",
    "K8S_NODE_NAME": "k8s.node.name",
    "K8S_CONTAINER_NAME": "k8s.container.name",
}


class TelemetryError(SettingsError):
    """A bad OTEL_* / PHIMASK_TRACES_* setting; the message names the variable."""


def build_resource(env: Mapping[str, str]) -> Resource:
    attributes: dict[str, str] = {"service.version": __version__}
    for name, key in K8S_ENV.items():
        if env.get(name):
            attributes[key] = env[name]
    given = env.get("OTEL_RESOURCE_ATTRIBUTES", "")
    if not env.get("OTEL_SERVICE_NAME") and "service.name=" not in given:
        attributes["service.name"] = "phimask"
    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES itself.
    return Resource.create(attributes)


def _json_line(span: ReadableSpan) -> str:
    return str(span.to_json(indent=None)) + "\n"


def span_exporters(env: Mapping[str, str]) -> list[SpanExporter]:
    exporters: list[SpanExporter] = []
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT")
    names = [n.strip() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    if not names:
        names = ["otlp"] if endpoint else []
    for name in names:
        if name == "otlp":
            protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get(
                "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
            if protocol != "grpc":
                raise TelemetryError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: phimask exports "
                                     "OTLP over gRPC only (grpc)")
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())  # endpoint, headers, TLS: from OTEL_* env
        elif name == "console":
            exporters.append(ConsoleSpanExporter(out=sys.stdout, formatter=_json_line))
        elif name != "none":
            raise TelemetryError(f"OTEL_TRACES_EXPORTER: unknown exporter {name!r} "
                                 "(otlp, console, none)")
    if env.get("PHIMASK_TRACES_FILE"):
        out: IO[str] = open(env["PHIMASK_TRACES_FILE"], "a", encoding="utf-8")  # noqa: SIM115
        exporters.append(ConsoleSpanExporter(out=out, formatter=_json_line))
    return exporters


def setup_tracing(env: Mapping[str, str] | None = None) -> TracerProvider | None:
    """A TracerProvider with the exporters the environment asks for; None when there
    are none (spans would be built only to be dropped: a cost on every batch). The
    sampler comes from OTEL_TRACES_SAMPLER."""
    env = os.environ if env is None else env
    exporters = span_exporters(env)
    log.info("tracing", extra={"exporters": [type(e).__name__ for e in exporters]})
    if not exporters:
        return None
    provider = TracerProvider(resource=build_resource(env))
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider
