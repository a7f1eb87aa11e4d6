"""Real phimask server processes on loopback, real gRPC clients."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import grpc
import orjson
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from phimask._gen.phimask.v1 import transform_pb2 as pb
from tests.server.harness import phimask_server, request

PHI = {"ssn": "123-45-6789", "email": "ann.lee@example.org", "phone": "(617) 555-0142"}


def record(i: int = 0) -> bytes:
    return orjson.dumps({
        "patient": {"ssn": PHI["ssn"], "name": "Ann Lee"},
        "msg": f"visit {i}: reach {PHI['email']} or {PHI['phone']}",
        "status": 200,
    })


def assert_no_phi(blob: str | bytes) -> None:
    text = blob.decode() if isinstance(blob, bytes) else blob
    for value in (*PHI.values(), "Ann Lee"):
        assert value not in text


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with phimask_server(tmp_path_factory.mktemp("state"), "--workers", "2") as running:
        yield running


def test_transform_masks_and_reports_rejections(server) -> None:  # type: ignore[no-untyped-def]
    with server.channel() as channel:
        req = request(record(0), b"{not json", b"[1, 2]", record(3), host="web-1")
        reply = server.stub(channel).Transform(req, timeout=30)
    assert [r.id for r in reply.records] == ["r0", "r3"]
    assert [(r.index, r.reason, r.id) for r in reply.rejections] == [
        (1, "invalid_json", "r1"), (2, "not_an_object", "r2")]
    assert reply.policy_version.startswith("sha256:")
    for out in reply.records:
        assert_no_phi(out.payload)
        body = orjson.loads(out.payload)
        assert body["patient"] == {"ssn": "[REDACTED:SSN]", "name": "[REDACTED:NAME]"}
        assert body["status"] == 200
        assert out.attributes["host"] == "web-1"
    for rejection in reply.rejections:
        assert rejection.reason and "{" not in rejection.reason
    assert_no_phi(server.logs())


def test_stream_answers_in_order(server) -> None:  # type: ignore[no-untyped-def]
    requests = [request(record(i), record(i + 100)) for i in range(12)]
    with server.channel() as channel:
        replies = list(server.stub(channel).TransformStream(iter(requests), timeout=60))
    assert len(replies) == 12
    for i, reply in enumerate(replies):
        msgs = [orjson.loads(r.payload)["msg"] for r in reply.records]
        assert msgs == [f"visit {i}: reach [REDACTED:EMAIL] or [REDACTED:PHONE]",
                        f"visit {i + 100}: reach [REDACTED:EMAIL] or [REDACTED:PHONE]"]


def test_malformed_protobuf_is_invalid_argument(server) -> None:  # type: ignore[no-untyped-def]
    with server.channel() as channel:
        call = channel.unary_unary("/phimask.v1.BatchTransform/Transform")
        with pytest.raises(grpc.RpcError) as info:
            call(b"\x0a\xff\xff\xff\xff\x0f123-45-6789", timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "123-45-6789" not in (info.value.details() or "")


def test_health_and_reflection(server) -> None:  # type: ignore[no-untyped-def]
    with server.channel() as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "phimask.v1.BatchTransform"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        answers = list(stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5))
    names = {s.name for s in answers[0].list_services_response.service}
    assert {"phimask.v1.BatchTransform", "grpc.health.v1.Health"} <= names


def test_logs_are_json_without_phi(server) -> None:  # type: ignore[no-untyped-def]
    for line in server.log_lines:
        entry = json.loads(line)
        assert {"ts", "level", "msg"} <= set(entry)
    assert_no_phi(server.logs())


def _child_cpu_ticks(pid: int) -> dict[int, int]:
    ticks = {}
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        ticks[int(child)] = int(fields[11]) + int(fields[12])
    return ticks


def test_workers_share_load_from_one_connection(server) -> None:  # type: ignore[no-untyped-def]
    pid = server.process.pid
    before = _child_cpu_ticks(pid)
    batch = request(*[record(i) for i in range(3000)])
    with server.channel() as channel:  # one channel = one HTTP/2 connection
        stub = server.stub(channel)
        futures = [stub.Transform.future(batch, timeout=120) for _ in range(8)]  # = the limit
        for future in futures:
            assert len(future.result().records) == 3000
    after = _child_cpu_ticks(pid)
    busy = [p for p in after if after[p] - before.get(p, 0) >= 2]
    assert len(busy) >= 2, (before, after)


def test_limits(tmp_path: Path) -> None:
    with phimask_server(tmp_path, "--workers", "0", "--max-message-bytes", "200000",
                        "--max-batch-records", "10") as server, server.channel() as channel:
        stub = server.stub(channel)
        big = request(orjson.dumps({"msg": "x" * 300_000}))
        with pytest.raises(grpc.RpcError) as info:
            stub.Transform(big, timeout=10)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        many = request(*[b"{}"] * 11)
        with pytest.raises(grpc.RpcError) as info:
            stub.Transform(many, timeout=10)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "records" in (info.value.details() or "")
        assert len(stub.Transform(request(*[b"{}"] * 10), timeout=10).records) == 10


def test_drain_finishes_inflight_and_refuses_new(tmp_path: Path) -> None:
    with phimask_server(tmp_path, "--workers", "1") as server, server.channel() as channel:
        stub = server.stub(channel)
        big = request(*[record(i) for i in range(20_000)])
        result: dict[str, object] = {}

        def slow_call() -> None:
            try:
                result["reply"] = stub.Transform(big, timeout=120)
            except grpc.RpcError as exc:
                result["error"] = exc.code()

        caller = threading.Thread(target=slow_call)
        caller.start()
        time.sleep(0.5)  # the batch is in flight
        os.kill(server.process.pid, signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(grpc.RpcError) as info:
            stub.Transform(request(record(1)), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        caller.join(timeout=120)
        reply = result.get("reply")
        assert isinstance(reply, pb.TransformResponse), result
        assert len(reply.records) == 20_000
        assert server.process.wait(timeout=60) == 0


def test_split_batches_keep_order_and_rejection_indices(server) -> None:  # type: ignore[no-untyped-def]
    payloads = [record(i) if i % 97 else b"not json" for i in range(1000)]
    with server.channel() as channel:
        reply = server.stub(channel).Transform(request(*payloads), timeout=60)
    bad = [i for i in range(1000) if i % 97 == 0]
    assert [r.index for r in reply.rejections] == bad
    assert [r.id for r in reply.rejections] == [f"r{i}" for i in bad]
    assert [r.id for r in reply.records] == [f"r{i}" for i in range(1000) if i % 97]
    assert reply.policy_version.startswith("sha256:")


def test_a_killed_worker_costs_one_retry_not_data(tmp_path: Path) -> None:
    with phimask_server(tmp_path, "--workers", "2") as server, server.channel() as channel:
        stub = server.stub(channel)
        big = request(*[record(i) for i in range(90_000)])  # about a second of masking
        future = stub.Transform.future(big, timeout=60)
        time.sleep(0.4)
        ticks = _child_cpu_ticks(server.process.pid)
        victim = max(ticks, key=lambda pid: ticks[pid])  # a worker, busy masking
        os.kill(victim, signal.SIGKILL)
        try:  # usually the kill lands mid-batch; on a fast machine the batch may be done
            assert len(future.result().records) == 90_000
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE  # the shipper retries
        batch = request(*[record(i) for i in range(3000)])
        for _ in range(3):  # a new worker took its place: the retry and the next succeed
            assert len(stub.Transform(batch, timeout=60).records) == 3000
        assert len(stub.Transform(big, timeout=60).records) == 90_000
        assert server.process.poll() is None
        assert victim not in _child_cpu_ticks(server.process.pid)
