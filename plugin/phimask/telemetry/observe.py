"""A span and metrics per batch, an audit span per audit event: counts, codes, rule ids
and detector names only, never a value (tests scan every span for the corpus's PHI).

Span names: `phimask.transform` (native), `phimask.export` (OTLP), `phimask.push`
(Vector), `phimask.reidentify`; a call that carries W3C `traceparent` metadata
continues the caller's trace. One span event per rule that masked something
(`phimask.rule`: id, action, count) and per detector that matched (`phimask.detector`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.metrics import (
    CallbackOptions,
    Meter,
    MeterProvider,
    NoOpMeterProvider,
    Observation,
)
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer, TracerProvider

from ..errors import CallError
from ..policy.hints import hint_for
from ..stats import BatchStats

log = logging.getLogger("phimask.drift")
SPAN_NAMES = {"native": "phimask.transform", "otlp": "phimask.export",
              "vector": "phimask.push", "reidentify": "phimask.reidentify"}
MAX_PATH_LABELS = 200  # residual-PHI paths come from input: bound the label set
# Span attribute values: str, bool, int, float (or sequences of them).
Attribute = str | bool | int | float


class BatchObservation:
    """What one batch tells its span and metrics while it runs."""

    def __init__(self, observer: Observer, span: trace.Span, protocol: str) -> None:
        self._observer = observer
        self.span = span
        self.protocol = protocol
        self.stats: BatchStats | None = None
        self.downstream_status = ""

    def record(self, stats: BatchStats) -> None:
        self.stats = stats
        span = self.span
        if not span.is_recording():  # no exporter, or not sampled: metrics only
            return
        span.set_attributes({
            "phimask.records.in": stats.records_in,
            "phimask.records.out": stats.records_out,
            "phimask.records.rejected": sum(stats.rejected.values()),
            "phimask.records.quarantined": stats.quarantined,
            "phimask.policy.version": stats.policy_version,
        })
        for name, count in sorted(stats.integrity.items()):
            span.set_attribute(f"phimask.integrity.{name}", count)
        for reason, count in sorted(stats.rejected.items()):
            span.add_event("phimask.rejection", {"phimask.reason": reason,
                                                 "phimask.count": count})
        for rule_id, count in sorted(stats.rule_hits.items()):
            span.add_event("phimask.rule", {"phimask.rule.id": rule_id,
                                            "phimask.rule.action": stats.rule_actions[rule_id],
                                            "phimask.rule.count": count})
        for detector, count in sorted(stats.detections.items()):
            span.add_event("phimask.detector", {"phimask.detector.name": detector,
                                                "phimask.detector.count": count})
        for (detector, path), count in sorted(stats.residual.items()):
            span.add_event("phimask.residual_phi", {"phimask.detector.name": detector,
                                                    "phimask.path": path,
                                                    "phimask.count": count})

    def downstream(self, endpoint: str, status: str) -> None:
        self.downstream_status = status
        self.span.set_attributes({"phimask.downstream.endpoint": endpoint,
                                  "phimask.downstream.status": status})


class Observer:
    """Builds batch spans and metrics; `audit_sink` turns audit events into spans."""

    def __init__(self, tracer_provider: TracerProvider | None = None,
                 meter_provider: MeterProvider | None = None) -> None:
        self.tracer: Tracer = (tracer_provider or trace.NoOpTracerProvider()).get_tracer(
            "phimask")
        meter: Meter = (meter_provider or NoOpMeterProvider()).get_meter("phimask")
        self._records = meter.create_counter(
            "phimask.records", unit="{record}", description="records by protocol and outcome")
        self._batches = meter.create_counter(
            "phimask.batches", unit="{batch}", description="batches by protocol and status")
        self._duration = meter.create_histogram(
            "phimask.batch.duration", unit="s", description="batch latency in phimask")
        self._rejections = meter.create_counter(
            "phimask.rejections", unit="{record}", description="rejected records by reason")
        self._quarantined = meter.create_counter(
            "phimask.quarantined", unit="{record}", description="quarantined records")
        self._detections = meter.create_counter(
            "phimask.detections", unit="{match}", description="free-text matches by detector")
        self._downstream_errors = meter.create_counter(
            "phimask.downstream.errors", unit="{batch}",
            description="batches a downstream did not take, by status")
        self._residual = meter.create_counter(
            "phimask.residual_phi", unit="{value}",
            description="PHI found in emitted records by the residual monitor")
        self._paths: set[str] = set()
        self._unmapped = meter.create_counter(
            "phimask.unmapped_values", unit="{value}",
            description="sampled values at paths no policy rule names (drift), by path "
            "and PHI likelihood")
        self._drift_seen: set[str] = set()
        self._vault_cache = meter.create_counter(
            "phimask.vault.cache", unit="{lookup}",
            description="token cache lookups by result (hit rate = hit / all)")
        self.policy_version = ""
        meter.create_observable_gauge(
            "phimask.policy", callbacks=[self._policy_info],
            description="1, labelled with the version of the policy in use")
        self._reload_failures = meter.create_counter(
            "phimask.policy.reload_failures", unit="{reload}",
            description="policy reloads refused (the running policy stayed)")

    def _policy_info(self, options: CallbackOptions) -> Iterable[Observation]:
        if self.policy_version:
            yield Observation(1, {"policy_version": self.policy_version})

    def policy_reload_failed(self) -> None:
        self._reload_failures.add(1)

    @contextlib.contextmanager
    def batch(self, protocol: str, method: str, metadata: Iterable[Any] | None,
              caller: Mapping[str, str] | None = None) -> Iterator[BatchObservation]:
        carrier = {k: v for k, v in metadata or () if isinstance(v, str)}  # (key, value)s
        attributes: dict[str, Attribute] = {
            "rpc.system": "grpc", "rpc.method": method, "phimask.protocol": protocol}
        for key, value in (caller or {}).items():
            attributes[f"phimask.caller.{key}"] = value
        span = self.tracer.start_span(SPAN_NAMES[protocol], context=propagate.extract(carrier),
                                      kind=SpanKind.SERVER, attributes=attributes)
        observation = BatchObservation(self, span, protocol)
        started = time.perf_counter()
        status = "OK"
        try:
            with trace.use_span(span, end_on_exit=False, record_exception=False,
                                set_status_on_exception=False):
                yield observation
        except CallError as exc:
            status = exc.status
            raise
        except BaseException:
            status = "INTERNAL"
            raise
        finally:
            if status != "OK":
                span.set_status(Status(StatusCode.ERROR, status))
            span.set_attribute("rpc.grpc.status", status)
            span.end()
            self._measure(observation, status, time.perf_counter() - started)

    def _measure(self, observation: BatchObservation, status: str, seconds: float) -> None:
        protocol = observation.protocol
        self._batches.add(1, {"protocol": protocol, "status": status})
        self._duration.record(seconds, {"protocol": protocol})
        if observation.downstream_status not in ("", "OK"):
            self._downstream_errors.add(1, {"protocol": protocol,
                                            "status": observation.downstream_status})
        stats = observation.stats
        if stats is None or status != "OK":
            return
        self._records.add(stats.records_out, {"protocol": protocol, "outcome": "accepted"})
        rejected = sum(stats.rejected.values())
        if rejected:
            self._records.add(rejected, {"protocol": protocol, "outcome": "rejected"})
        for reason, count in stats.rejected.items():
            self._rejections.add(count, {"protocol": protocol, "reason": reason})
        if stats.quarantined:
            self._quarantined.add(stats.quarantined, {"protocol": protocol})
        for detector, count in stats.detections.items():
            self._detections.add(count, {"detector": detector})
        for (detector, path), count in stats.residual.items():
            self._residual.add(count, {"detector": detector, "path": self._path_label(path)})
        for result, count in stats.vault_cache.items():
            if count:
                self._vault_cache.add(count, {"result": result})
        for path, count in stats.unmapped.items():
            likely = bool(stats.unmapped_phi[path]) or _hinted(path)
            self._unmapped.add(count, {"path": self._path_label(path),
                                       "phi": "likely" if likely else "unlikely"})
            if path not in self._drift_seen and len(self._drift_seen) < 10_000:
                self._drift_seen.add(path)
                rate = stats.unmapped_phi[path] / count
                (log.warning if likely else log.info)(
                    "a path no rule names appeared in traffic", extra={
                        "path": path, "phi_likelihood": round(max(rate, 0.9 if _hinted(path)
                                                                  else 0.0), 3),
                        "detector_hit_rate": round(rate, 3), "name_hint": _hinted(path)})

    def _path_label(self, path: str) -> str:
        if path in self._paths or len(self._paths) < MAX_PATH_LABELS:
            self._paths.add(path)
            return path
        return "other"

    def audit_sink(self, event: str, fields: Mapping[str, Any]) -> None:
        """An audit event as a span (a child of the batch span when there is one)."""
        attributes: dict[str, Attribute] = {"phimask.audit.event": event}
        for key, value in fields.items():
            attributes[f"phimask.audit.{key}"] = (
                value if isinstance(value, str | bool | int | float) else str(value))
        span = self.tracer.start_span(f"phimask.audit.{event}", attributes=attributes)
        span.end()


def _hinted(path: str) -> bool:
    """Whether the path's last key is one of safe-harbor's PHI field names."""
    parts = path.replace("[*]", "").split(".")  # root first
    return bool(parts[-1]) and hint_for(parts[-1], len(parts) == 2) is not None
