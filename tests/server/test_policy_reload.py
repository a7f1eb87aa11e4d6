"""Policy hot reload under load: a good policy swaps in between batches, a bad one is
refused with its line and the running one stays; no call fails, no batch is masked by
two policies, every reload is audited."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import orjson

from phimask._gen.phimask.v1 import transform_pb2 as pb
from tests.server.harness import phimask_server

A = "version: 1\nprofile: none\nfields:\n  - {path: patient.ssn, action: redact}\n"
B = "version: 1\nprofile: none\nfields:\n  - {path: patient.ssn, action: hmac}\n"
BROKEN = "version: 1\nprofile: none\nfields:\n  - {path: patient.ssn, action: hash}\n"
REQUEST = pb.TransformRequest(records=[
    pb.Record(payload=orjson.dumps({"patient": {"ssn": f"123-45-{i:04d}"}}))
    for i in range(50)]).SerializeToString()


def write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # as an editor or a ConfigMap update does


def test_reloads_under_load(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    write(policy, A)
    seen: list[tuple[str, list[str]]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    with phimask_server(tmp_path / "s", "--policy", str(policy), "--workers", "2",
                        "--policy-reload-seconds", "0.1") as server:
        def load() -> None:
            with server.channel() as channel:
                call = channel.unary_unary("/phimask.v1.BatchTransform/Transform")
                while not done.is_set():
                    try:
                        reply = pb.TransformResponse.FromString(call(REQUEST, timeout=30))
                    except Exception as exc:  # every failure is a finding
                        errors.append(exc)
                        return
                    seen.append((reply.policy_version,
                                 [orjson.loads(r.payload)["patient"]["ssn"]
                                  for r in reply.records]))

        def wait_for(predicate: object, what: str, timeout: float = 20.0) -> None:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if callable(predicate) and predicate():
                    return
                time.sleep(0.05)
            raise AssertionError(f"timed out waiting for {what}")

        worker = threading.Thread(target=load)
        worker.start()
        try:
            wait_for(lambda: seen, "the first batch")
            version_a = seen[0][0]
            write(policy, B)
            wait_for(lambda: seen[-1][0] != version_a, "policy B")
            version_b = seen[-1][0]
            write(policy, BROKEN)
            wait_for(lambda: any("policy reload failed" in line for line in server.log_lines),
                     "the refused reload")
            before = len(seen)
            wait_for(lambda: len(seen) > before + 3, "batches after the refusal")
            assert seen[-1][0] == version_b  # the running policy stayed
            policy.write_text(A)  # in place, then told: as `kill -HUP`
            server.process.send_signal(signal.SIGHUP)
            wait_for(lambda: seen[-1][0] == version_a, "policy A again, by SIGHUP")
        finally:
            done.set()
            worker.join(timeout=30)

    assert not errors, errors
    versions = [v for v, _ in seen]
    assert version_a in versions and version_b in versions
    for version, ssns in seen:
        assert len(ssns) == 50
        if version == version_a:
            assert set(ssns) == {"[REDACTED:SSN]"}
        else:
            assert version == version_b and all(s.startswith("hmac:") for s in ssns)
    failure = next(line for line in server.log_lines if "policy reload failed" in line)
    assert f"{policy} line 4: fields[0].action: unknown action 'hash'" in failure
    assert len(server.audit_events("policy.reload")) == 2
    assert len(server.audit_events("policy.reload_failed")) >= 1
