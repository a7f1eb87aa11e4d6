"""The values snippets that add phimask to the upstream Fluent Bit and Vector charts:
they parse, their phimask container is the chart's, and their shipper configs keep the
settings that prevent loss."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.deploy import EXAMPLES, SNIPPETS, flag, reaches, render_files

SNIPPET_FOR = {"fluent-bit": "fluent-bit-values.yaml", "vector": "vector-values.yaml"}
SAME = ("image", "imagePullPolicy", "args", "startupProbe", "livenessProbe", "readinessProbe",
        "securityContext", "resources")


def snippet(shipper: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((SNIPPETS / SNIPPET_FOR[shipper]).read_text())
    return data


def chart_phimask(shipper: str) -> dict[str, Any]:
    """The phimask container the chart renders for this shipper with default values."""
    text = render_files({"shipper": shipper})["phimask/templates/daemonset.yaml"]
    pod = yaml.safe_load(text)["spec"]["template"]["spec"]
    containers: list[dict[str, Any]] = [*pod.get("initContainers", []), *pod["containers"]]
    (container,) = [c for c in containers if c["name"] == "phimask"]
    return container


def classic_sections(text: str) -> list[tuple[str, dict[str, str]]]:
    """Fluent Bit's classic config: [SECTION] headers, then `key value` lines."""
    sections: list[tuple[str, dict[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        header = re.fullmatch(r"\[(\w+)\]", line)
        if header:
            sections.append((header[1].upper(), {}))
        else:
            key, _, value = line.partition(" ")
            sections[-1][1][key.lower()] = value.strip()
    return sections


@pytest.mark.parametrize("shipper", sorted(SNIPPET_FOR))
def test_snippet_container_is_the_charts_phimask(shipper: str) -> None:
    values = snippet(shipper)
    (container,) = [c for c in values["extraContainers"] if c["name"] == "phimask"]
    chart = chart_phimask(shipper)
    for key in SAME:
        assert container[key] == chart[key], key
    # Its mounts are the chart's, each backed by one of the snippet's volumes.
    assert container["volumeMounts"] == chart["volumeMounts"]
    volumes = {v["name"] for v in values["extraVolumes"]}
    assert {m["name"] for m in container["volumeMounts"]} == volumes
    assert values["podSecurityContext"]["fsGroup"] == container["securityContext"]["runAsUser"]
    env = {e["name"] for e in container["env"]}
    assert {"K8S_POD_NAME", "K8S_NAMESPACE_NAME", "K8S_NODE_NAME", "OTEL_SERVICE_NAME",
            "PHIMASK_STATE_DIR", "PHIMASK_KEYS_DIR"} <= env


def test_fluent_bit_snippet_keeps_the_loss_preventing_settings() -> None:
    values = snippet("fluent-bit")
    config = "\n".join(values["config"][k] for k in ("service", "inputs", "filters", "outputs"))
    sections = classic_sections(config)
    (container,) = values["extraContainers"]
    listen = flag(container["args"], "--listen")
    downstream = flag(container["args"], "--otlp-downstream")
    assert listen and downstream
    outputs = [s for kind, s in sections if kind == "OUTPUT"]
    inputs = [s for kind, s in sections if kind == "INPUT"]
    (to_phimask,) = [o for o in outputs if o["name"] == "opentelemetry"]
    host, _, port = listen.rpartition(":")
    assert to_phimask["port"] == port and reaches(to_phimask["host"], host)
    (reference,) = [o for o in yaml.safe_load((EXAMPLES / "fluent-bit.yaml").read_text())[
        "pipeline"]["outputs"] if o["name"] == "opentelemetry"]
    for key in ("grpc_logs_uri", "batch_size", "retry_limit"):
        assert to_phimask[key] == str(reference[key]), key
    assert to_phimask["grpc"] == "on" and to_phimask["net.keepalive"] == "off"
    assert all(i["storage.type"] == "filesystem" for i in inputs)
    (back,) = [i for i in inputs if i["name"] == "opentelemetry"]
    assert downstream == f"http://{back['listen']}:{back['port']}"
    assert all(o["match"] == "masked" for o in outputs if o is not to_phimask)
    (service,) = [s for kind, s in sections if kind == "SERVICE"]
    assert service["storage.path"].startswith("/var/log/")  # the chart's writable hostPath
    assert values["image"]["tag"] >= "4.2.3"


def test_vector_snippet_keeps_the_loss_preventing_settings() -> None:
    values = snippet("vector")
    config = values["customConfig"]
    reference = yaml.safe_load((EXAMPLES / "vector.yaml").read_text())
    (container,) = values["extraContainers"]
    listen, downstream = flag(container["args"], "--listen"), flag(container["args"],
                                                                    "--vector-downstream")
    assert listen and downstream
    sink = config["sinks"]["to_phimask"]
    host, _, port = sink["address"].rpartition(":")
    assert port == listen.rpartition(":")[2] and reaches(host, listen.rpartition(":")[0])
    wiring = ("address", "inputs")
    assert {k: v for k, v in sink.items() if k not in wiring} == {
        k: v for k, v in reference["sinks"]["to_phimask"].items() if k not in wiring}
    masked = config["sources"]["masked"]
    assert masked == reference["sources"]["masked"]
    assert downstream == f"http://{masked['address']}"
    assert config["sinks"]["out"]["inputs"] == ["masked"]
    assert values["role"] == "Agent"
    assert values["podLabels"]["vector.dev/exclude"] == "true"
