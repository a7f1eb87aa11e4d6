"""The shipper configs in examples/ are what the tests exercise: their wiring is read
from the files, checked for the loss-preventing settings, and driven end to end on
the very addresses they name."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as otlp_pb

from phimask._gen.vector import vector_pb2 as vec
from tests.server.harness import phimask_server
from tests.server.sinks import Sink, otlp_sink, vector_sink
from tests.server.test_otlp_forward import fluent_bit_request, received_records
from tests.server.test_vector_forward import log_event

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> tuple[dict[str, Any], list[str]]:
    text = (EXAMPLES / name).read_text()
    command = re.search(r"^#\s+(phimask serve .*)$", text, re.M)
    assert command, f"{name} must show the phimask command it is wired to"
    return yaml.safe_load(text), shlex.split(command[1])[2:]


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def port_of(url_or_address: str) -> int:
    return int(url_or_address.rsplit(":", 1)[1])


def test_fluent_bit_example(tmp_path: Path) -> None:
    config, args = load("fluent-bit.yaml")
    listen, downstream = flag(args, "--listen"), flag(args, "--otlp-downstream")
    (out,) = [o for o in config["pipeline"]["outputs"] if o["name"] == "opentelemetry"]
    (back,) = [i for i in config["pipeline"]["inputs"] if i["name"] == "opentelemetry"]
    (tail,) = [i for i in config["pipeline"]["inputs"] if i["name"] == "tail"]
    assert f"{out['host']}:{out['port']}" == listen
    assert back["port"] == port_of(downstream)
    assert out["grpc"] in ("on", True)
    assert out["retry_limit"] == "no_limits"
    assert out["net.keepalive"] in ("off", False)
    assert "compress" not in out
    assert tail["storage.type"] == back["storage.type"] == "filesystem"
    assert config["service"]["storage.path"]
    with otlp_sink(Sink(port=back["port"])) as sink, phimask_server(
        tmp_path, *args[:], "--workers", "0"
    ) as server, server.channel() as channel:
        channel.unary_unary(out["grpc_logs_uri"])(
            fluent_bit_request(3).SerializeToString(), timeout=20)
    records = received_records(sink)
    assert len(records) == 3
    assert b"123-45-6789" not in b"".join(sink.received)


def test_vector_example(tmp_path: Path) -> None:
    config, args = load("vector.yaml")
    listen, downstream = flag(args, "--listen"), flag(args, "--vector-downstream")
    sink_cfg = config["sinks"]["to_phimask"]
    source = config["sources"]["masked"]
    assert sink_cfg["type"] == "vector" and str(sink_cfg["version"]) == "2"
    assert sink_cfg["address"] == listen
    assert sink_cfg["compression"] in (False, True, "gzip", "none")
    assert source["type"] == "vector" and port_of(source["address"]) == port_of(downstream)
    assert source["acknowledgements"]["enabled"] is True
    assert sink_cfg["buffer"]["type"] == "disk"
    with vector_sink(Sink(port=port_of(downstream))) as sink, phimask_server(
        tmp_path, *args, "--workers", "0"
    ) as server, server.channel() as channel:
        request = vec.PushEventsRequest(events=[log_event(0), log_event(1)])
        channel.unary_unary("/vector.Vector/PushEvents")(request.SerializeToString(),
                                                          timeout=20)
    out = vec.PushEventsRequest.FromString(sink.received[0])
    assert len(out.events) == 2
    assert b"123-45-6789" not in sink.received[0]


def test_otel_collector_example(tmp_path: Path) -> None:
    config, args = load("otel-collector.yaml")
    listen, downstream = flag(args, "--listen"), flag(args, "--otlp-downstream")
    exporter = config["exporters"]["otlp/phimask"]
    receiver = config["receivers"]["otlp/masked"]["protocols"]["grpc"]
    assert exporter["endpoint"] == listen
    assert port_of(receiver["endpoint"]) == port_of(downstream)
    assert exporter["retry_on_failure"]["max_elapsed_time"] == 0
    pipelines = config["service"]["pipelines"]
    assert pipelines["logs/raw"]["exporters"] == ["otlp/phimask"]
    assert pipelines["logs/masked"]["receivers"] == ["otlp/masked"]
    with otlp_sink(Sink(port=port_of(downstream))) as sink, phimask_server(
        tmp_path, *args, "--workers", "0"
    ) as server, server.channel() as channel:
        reply = channel.unary_unary("/opentelemetry.proto.collector.logs.v1.LogsService/Export")(
            fluent_bit_request(2).SerializeToString(), timeout=20)
        assert not otlp_pb.ExportLogsServiceResponse.FromString(reply).HasField(
            "partial_success")
    assert len(received_records(sink)) == 2


@pytest.mark.parametrize("name", ["fluent-bit.yaml", "vector.yaml", "otel-collector.yaml"])
def test_examples_explain_their_wiring(name: str) -> None:
    header = (EXAMPLES / name).read_text().split("\n\n", 1)[0]
    assert header.count("\n#") >= 5, "a header comment explains the wiring"
