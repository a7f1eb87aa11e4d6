"""Bad values are refused by the real render and lint, naming what is wrong: by
values.schema.json, or by the chart's own checks for what a schema cannot say."""

from __future__ import annotations

import json
from typing import Any

import helm_python
import pytest

from tests.deploy import CHART, KUBE_VERSION, NAMESPACE, render_files

REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("unknown shipper", {"shipper": "logstash"}, "/shipper"),
    ("unknown mode", {"mode": "daemon"}, "/mode"),
    ("unknown top-level key", {"replicaCount": 3}, "replicaCount"),
    ("misspelt nested key", {"tls": {"enable": True}}, "enable"),
    ("unknown phimask setting", {"phimask": {"settings": {"listen": "0.0.0.0:1"}}}, "listen"),
    ("bad setting value", {"phimask": {"settings": {"monitor_mode": "warn"}}}, "monitor_mode"),
    ("sample rate out of range", {"phimask": {"settings": {"monitor_sample_rate": 2}}},
     "monitor_sample_rate"),
    ("port out of range", {"phimask": {"port": 70000}}, "/phimask/port"),
    ("TLS without a Secret", {"tls": {"enabled": True}}, "existingSecret"),
    ("PostgreSQL vault without a Secret", {"vault": {"postgres": {"enabled": True}}},
     "existingSecret"),
    ("no keys at all", {"keys": {"existingSecret": "", "create": False}}, "existingSecret"),
    ("downstream that is no URL", {"downstream": {"otlp": "collector:4317"}}, "/downstream/otlp"),
    ("zstd-like compression", {"agent": {"vector": {"compression": "zstd"}}}, "compression"),
    ("a buffer below Vector's minimum", {"agent": {"vector": {"bufferMaxBytes": 1024}}},
     "bufferMaxBytes"),
    ("no policy", {"policy": {"inline": "", "existingConfigMap": ""}}, "/policy"),
]

FAILED_BY_TEMPLATE: list[tuple[str, dict[str, Any], str]] = [
    ("aggregator with nowhere to send", {"mode": "aggregator"}, "downstream.otlp"),
    ("Fluent Bit that ignores grpc-status",
     {"agent": {"fluentBit": {"image": {"tag": "4.1.0"}}}}, "4.2.3"),
    ("colliding ports", {"metrics": {"port": 4317}}, "ports collide"),
]


@pytest.mark.parametrize(("why", "values", "named"), REFUSED, ids=[r[0] for r in REFUSED])
def test_schema_refuses_in_render_and_lint(why: str, values: dict[str, Any], named: str) -> None:
    with pytest.raises(helm_python.HelmValuesError) as raised:
        render_files(values)
    assert named in str(raised.value)
    report = helm_python.lint(CHART, values, namespace=NAMESPACE,
                              kube_version=f"v{KUBE_VERSION}.0")
    assert report["errors"], why
    assert any(named in error for error in report["errors"])


@pytest.mark.parametrize(("why", "values", "named"), FAILED_BY_TEMPLATE,
                         ids=[r[0] for r in FAILED_BY_TEMPLATE])
def test_chart_checks_refuse_in_render(why: str, values: dict[str, Any], named: str) -> None:
    # `helm install` and `helm template` stop here. (`helm lint` renders in lint mode,
    # where Helm only logs a template's `fail`: these checks cannot show in its report.)
    with pytest.raises(helm_python.HelmRenderError) as raised:
        render_files(values)
    assert named in str(raised.value), why


def test_a_newer_fluent_bit_and_a_digest_pass() -> None:
    for tag in ("4.2.3", "5.1.0", "4.10.0", "latest"):
        render_files({"agent": {"fluentBit": {"image": {"tag": tag}}}})


def test_every_default_value_is_described_by_the_schema() -> None:
    """additionalProperties is false down to the chart's own objects: every key in
    values.yaml has a schema entry (Kubernetes objects are left to the API server)."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    defaults = helm_python.Chart.load(CHART).values

    def check(value: Any, node: dict[str, Any], where: str) -> None:
        assert node, f"{where}: no schema"
        if isinstance(value, dict) and "properties" in node:
            assert node.get("additionalProperties") is False, f"{where}: open object"
            for key, sub in value.items():
                assert key in node["properties"], f"{where}.{key}: not in the schema"
                check(sub, node["properties"][key], f"{where}.{key}")

    assert schema["additionalProperties"] is False
    check(defaults, schema, "values")
    assert schema["properties"]["mode"]["enum"] == ["sidecar", "aggregator"]
    assert schema["properties"]["shipper"]["enum"] == ["fluent-bit", "vector"]
