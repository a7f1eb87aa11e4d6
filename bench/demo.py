"""Watch phimask mask log records live: each original next to its masked version.

Waits until the server reports SERVING, then sends small batches of generated hospital
log records through BatchTransform/Transform until Ctrl-C. On a terminal the planted PHI
is highlighted in the original, changed values in the masked copy, and any PHI that
survived masking is flagged as LEAK. Piped output is plain text, one line per record.

  python -m bench.demo --target 127.0.0.1:4317
  python -m bench.demo --target 127.0.0.1:4317 --rate 0.5 --batch 1 --seed 7
  python -m bench.demo --target 127.0.0.1:4317 --bad 5 --count 3 | less
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import orjson
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from bench.corpus import iter_records, planted_phi
from bench.wire import CHANNEL_OPTIONS, TRANSFORM
from phimask._gen.phimask.v1 import transform_pb2

BROKEN = b'{"msg": "truncated by the shipper'


@dataclass
class Outcome:
    """One sent record and what came back for it."""

    index: int
    record_id: str
    original: dict[str, Any] | None
    sent: bytes
    masked: bytes | None = None
    rejection: transform_pb2.Rejection | None = None


def inline(obj: Any) -> str:
    """JSON with a space after every `:` and `,`, so a narrow column wraps between values."""
    if isinstance(obj, dict):
        return (
            "{"
            + ", ".join(f"{orjson.dumps(k).decode()}: {inline(v)}" for k, v in obj.items())
            + "}"
        )
    if isinstance(obj, list):
        return "[" + ", ".join(inline(v) for v in obj) + "]"
    return orjson.dumps(obj).decode()


def pretty(obj: Any) -> str:
    """Top-level keys one per line, nested objects inline: readable in half a screen."""
    if not isinstance(obj, dict):
        return inline(obj)
    lines = [f"  {orjson.dumps(k).decode()}: {inline(v)}" for k, v in obj.items()]
    return "{\n" + ",\n".join(lines) + "\n}"


def leaves(obj: Any) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            for path, leaf in leaves(v):
                yield (str(k), *path), leaf
    else:
        yield (), obj


def changed_values(original: dict[str, Any], masked: Any) -> set[str]:
    before = dict(leaves(original))
    changed = {
        orjson.dumps(v).decode().strip('"')
        for path, v in leaves(masked)
        if path not in before or before[path] != v
    }
    return {c for c in changed if c}


class View:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.rich = console.is_terminal

    def say(self, msg: str, style: str = "") -> None:
        if self.rich:
            self.console.print(Text(msg, style=style))
        else:
            print(msg, flush=True)

    def batch(self, number: int, outcomes: list[Outcome], policy: str) -> None:
        if self.rich:
            self._table(number, outcomes, policy)
        else:
            self._plain(number, outcomes, policy)

    def _plain(self, number: int, outcomes: list[Outcome], policy: str) -> None:
        out = [f"--- batch {number} (policy {policy or '?'}) ---"]
        for o in outcomes:
            out.append(f"[{o.index}] {o.record_id} original: {o.sent.decode(errors='replace')}")
            if o.rejection is not None:
                r = o.rejection
                rule = f", rule {r.rule}" if r.rule else ""
                out.append(f"[{o.index}] {o.record_id} REJECTED: {r.reason}{rule}")
            else:
                masked = (o.masked or b"").decode(errors="replace")
                out.append(f"[{o.index}] {o.record_id} masked:   {masked}")
                leaked = self._leaks(o)
                if leaked:
                    out.append(f"[{o.index}] {o.record_id} LEAK: {sorted(leaked)}")
        print("\n".join(out), flush=True)

    @staticmethod
    def _leaks(o: Outcome) -> set[str]:
        if o.original is None or o.masked is None:
            return set()
        text = o.masked.decode(errors="replace")
        return {v for v in planted_phi(o.original) if v in text}

    def _table(self, number: int, outcomes: list[Outcome], policy: str) -> None:
        table = Table(
            title=f"batch {number}",
            caption=f"policy {policy or '?'}",
            expand=True,
            show_lines=True,
            title_justify="left",
        )
        table.add_column("#", justify="right", style="dim", no_wrap=True)
        table.add_column("original", ratio=1, overflow="fold")
        table.add_column("masked", ratio=1, overflow="fold")
        for o in outcomes:
            if o.original is None:
                left = Text(o.sent.decode(errors="replace"), style="yellow")
            else:
                left = Text(pretty(o.original))
                left.highlight_words(planted_phi(o.original), style="bold red")
            table.add_row(str(o.index), left, self._masked_cell(o))
        self.console.print(table)

    def _masked_cell(self, o: Outcome) -> Text | Group:
        if o.rejection is not None:
            r = o.rejection
            text = Text(f"REJECTED #{r.index}", style="bold yellow")
            text.append(f"\nreason: {r.reason}")
            if r.rule:
                text.append(f"\nrule: {r.rule}")
            return text
        try:
            masked = orjson.loads(o.masked or b"")
        except orjson.JSONDecodeError:
            return Text((o.masked or b"").decode(errors="replace"), style="red")
        text = Text(pretty(masked))
        if o.original is not None:
            text.highlight_words(changed_values(o.original, masked), style="green")
            leaked = self._leaks(o)
            text.highlight_words(leaked, style="bold white on red")
            if leaked:
                return Group(text, Text(f"LEAK: {', '.join(sorted(leaked))}", style="bold red"))
        return text


def wait_serving(channel: Any, target: str, view: View) -> None:
    check = health_pb2_grpc.HealthStub(channel).Check
    request = health_pb2.HealthCheckRequest(service="")
    told = False
    while True:
        try:
            reply = check(request, timeout=1.0)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                view.say(f"phimask at {target} is SERVING", "green")
                return
            state = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.RpcError as e:
            state = e.code().name
        if not told:
            view.say(
                f"Waiting for phimask at {target} to report SERVING ({state}); "
                f"start it with `phimask serve --listen {target}`. Ctrl-C to quit.",
                "yellow",
            )
            told = True
        time.sleep(0.5)


def send_batch(
    call: Any, records: Iterator[dict[str, Any]], opts: argparse.Namespace, serial: int
) -> tuple[list[Outcome], str]:
    outcomes: list[Outcome] = []
    request = transform_pb2.TransformRequest(stream=opts.stream)
    for i in range(opts.batch):
        n = serial + i
        broken = opts.bad > 0 and n % opts.bad == opts.bad - 1
        original = None if broken else next(records)
        payload = BROKEN if original is None else orjson.dumps(original)
        outcomes.append(Outcome(i, f"demo-{n:06d}", original, payload))
        request.records.add(payload=payload, id=f"demo-{n:06d}")
    reply = transform_pb2.TransformResponse.FromString(
        call(request.SerializeToString(), timeout=opts.timeout)
    )
    rejected = {r.index: r for r in reply.rejections}
    masked = iter(reply.records)
    for o in outcomes:
        if o.index in rejected:
            o.rejection = rejected[o.index]
        else:
            rec = next(masked, None)
            o.masked = rec.payload if rec is not None else b"(missing from the response)"
    return outcomes, reply.policy_version


def run(opts: argparse.Namespace, view: View) -> int:
    records = iter_records(opts.seed)
    sent = 0
    with grpc.insecure_channel(opts.target, options=CHANNEL_OPTIONS) as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            TRANSFORM, request_serializer=None, response_deserializer=None
        )
        wait_serving(channel, opts.target, view)
        due = time.monotonic()
        while opts.count == 0 or sent < opts.count:
            try:
                outcomes, policy = send_batch(call, records, opts, sent * opts.batch)
            except grpc.RpcError as e:
                view.say(f"Transform failed: {e.code().name}: {e.details()}", "bold red")
                if e.code() == grpc.StatusCode.UNAVAILABLE:
                    wait_serving(channel, opts.target, view)
                else:
                    time.sleep(1.0)
                due = time.monotonic()
                continue
            sent += 1
            view.batch(sent, outcomes, policy)
            due += 1.0 / opts.rate
            time.sleep(max(0.0, due - time.monotonic()))
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--target", default="127.0.0.1:4317", help="host:port (default 127.0.0.1:4317)")
    p.add_argument("--rate", type=float, default=2.0, help="batches per second (default 2)")
    p.add_argument("--batch", type=int, default=3, help="records per batch (default 3)")
    p.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    p.add_argument("--stream", default="", help="TransformRequest.stream (policy route)")
    p.add_argument(
        "--bad",
        type=int,
        default=0,
        metavar="N",
        help="make every Nth record broken JSON, to show a rejection",
    )
    p.add_argument("--count", type=int, default=0, help="stop after this many batches")
    p.add_argument("--timeout", type=float, default=10.0, help="per-call deadline, seconds")
    opts = p.parse_args(argv)
    if opts.rate <= 0 or opts.batch < 1 or opts.bad < 0 or opts.count < 0:
        p.error("--rate must be > 0, --batch >= 1, --bad and --count >= 0")
    return opts


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    view = View(Console())
    try:
        return run(opts, view)
    except KeyboardInterrupt:
        with contextlib.suppress(BrokenPipeError):
            view.say("stopped", "dim")
        return 0
    except BrokenPipeError:
        # The reader went away (`| head`): silence the flush at exit too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
