"""What the server asks of its masking workers, per wire protocol.

The server process only moves bytes: each serialized request goes to the next idle
worker (worker_processes.py), which parses, masks and serializes the result.
SO_REUSEPORT would spread load by connection, and Vector sends everything over one
HTTP/2 connection; handing requests to idle workers spreads it by request. With
`workers=0` batches run on a thread of the server process instead (tests, tiny
deployments).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .adapters import convert, otlp, vector
from .adapters.native import Limits, RequestError, transform_request
from .audit import AuditBuffer, audit, set_sinks
from .config import Settings
from .detect.name_lists import name_lists
from .errors import CallError
from .keyring import Keyring
from .logs import configure_logging
from .pipeline import Masker
from .runtime import VaultSource, build_masker, load_keyring
from .stats import BatchStats
from .worker_processes import WorkerDied, WorkerProcesses, WorkersDown

log = logging.getLogger("phimask.workers")

# Requests smaller than this are not worth cutting across workers.
SPLIT_FROM_BYTES = 64 * 1024
MAX_PARTS = 8
# The wire protocols a worker translates, and the document roots each one has.
ROOTS = {
    "native": ("payload", "attributes"),
    "otlp": otlp.OTLP_ROOTS,
    "vector": vector.VECTOR_ROOTS,
}
# A worker's result: (True, the protocol's result, stats), or (False, (status name,
# message), stats) for a batch that could not be masked.
Outcome = tuple[bool, Any, BatchStats]
PolicyRef = tuple[int, Path | None]
# (base64 signature, key id) of a whole request, from the call's metadata.
BatchSignature = tuple[str, str] | None

_maskers: dict[str, Masker] = {}
_settings: Settings | None = None
# Which policy this process masks with: (generation, policy file). The server bumps the
# generation on a reload; a worker sees it on its next batch and swaps between batches.
_policy: PolicyRef = (0, None)
_audit_buffer: AuditBuffer | None = None  # in worker processes only
_vault: VaultSource | None = None
_cache_seen = (0, 0)  # the vault cache's (hits, misses) when the last batch ended
_limits = Limits()
_routes = {"otlp": "otlp", "vector": "vector"}  # protocol in -> protocol out


def _setup_worker(settings: Settings) -> None:
    global _audit_buffer
    configure_logging(settings.log_level)  # a spawned process starts without it
    _audit_buffer = AuditBuffer()
    set_sinks(_audit_buffer)  # the server process writes the audit trail
    _load(settings)
    name_lists()  # read now, so no first batch waits ~0.1 s for the person_name lists
    # A batch allocates tens of thousands of short-lived dicts and lists that reference
    # counting frees; the cyclic collector only slows that down. Long-lived state (the
    # compiled policies) is frozen out of its view: +6% records/s measured.
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


def _load(settings: Settings) -> None:
    global _limits, _settings, _vault
    keys = load_keyring(settings)
    _vault = VaultSource(settings, keys)  # one vault (connection, cache) a process
    _settings = settings
    _build(settings, keys, _vault)
    _limits = Limits(settings.max_batch_records)
    _routes.update(otlp=settings.otlp_forward_to, vector=settings.vector_forward_to)


def _build(settings: Settings, keys: Keyring, vault: VaultSource) -> None:
    built = {kind: build_masker(settings, roots=roots, keys=keys, vault=vault)
             for kind, roots in ROOTS.items()}
    _maskers.update(built)  # all or nothing: a failed build keeps every old masker


def _switch_policy(policy: PolicyRef) -> None:
    """Mask with the policy the server validated, from this batch on."""
    global _policy
    assert _settings is not None and _vault is not None
    settings = dataclasses.replace(_settings, policy=policy[1])
    try:
        _build(settings, _vault.keys, _vault)
    except Exception as exc:  # validated by the server: only the file can be gone
        log.error("policy switch failed; masking on with the previous policy",
                  extra={"error_type": type(exc).__name__, "generation": policy[0]})
    _policy = policy


def _transform(kind: str, data: bytes, part: tuple[int, int] = (0, 1),
               signature: BatchSignature = None, policy: PolicyRef = (0, None)) -> Outcome:
    if policy[0] != _policy[0]:
        _switch_policy(policy)
    masker = _maskers[kind]
    outcome = _translate(masker, kind, data, part, signature)
    stats = masker.take_stats()
    _count_vault_cache(stats)
    if _audit_buffer is not None:
        stats.audit = _audit_buffer.take()
    return (*outcome, stats)


def _count_vault_cache(stats: BatchStats) -> None:
    global _cache_seen
    vault = _vault.opened if _vault is not None else None
    if vault is None:
        return
    hits, misses = vault.cache_counts()
    stats.vault_cache.update(hit=hits - _cache_seen[0], miss=misses - _cache_seen[1])
    _cache_seen = (hits, misses)


def _translate(masker: Masker, kind: str, data: bytes, part: tuple[int, int],
               signature: BatchSignature) -> tuple[bool, Any]:
    try:
        if kind == "native":
            return True, transform_request(masker, data, _limits, part, signature)
        if kind == "otlp":
            result = otlp.transform_export(masker, data, _limits, signature)
            if _routes["otlp"] == "vector" and result.forward:
                result = dataclasses.replace(result, forward=convert.otlp_to_vector(result.forward))
            return True, result
        pushed = vector.transform_push(masker, data, _limits, signature)
        if _routes["vector"] == "otlp" and pushed.forward:
            forward, left_out = convert.vector_to_otlp(pushed.forward)
            pushed = dataclasses.replace(pushed, forward=forward, left_out=left_out)
        return True, pushed
    except CallError as exc:  # a bad request, the vault down: a deliberate status
        return False, (exc.status, str(exc))
    except Exception as exc:  # never let a value-bearing exception cross the process line
        log.error("masking failed", extra={"error_type": type(exc).__name__, "protocol": kind})
        return False, ("INTERNAL", "internal error while masking the batch")


class BatchRunner:
    """Runs the protocol translations for the server, bounded by `inflight_limit`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.policy: PolicyRef = (0, settings.policy)
        self.workers = settings.workers
        self._slots: asyncio.Semaphore | None = None
        self._processes: WorkerProcesses | None = None
        self._thread: ThreadPoolExecutor | None = None
        if self.workers == 0:
            _load(settings)
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="phimask-mask")
        else:
            self._processes = WorkerProcesses(self.workers, _setup_worker, settings, _transform)

    async def start(self) -> None:
        """Start every worker and load its policy before the server says SERVING."""
        self._slots = asyncio.Semaphore(self.settings.inflight_limit)
        if self._processes is not None:
            await self._processes.start()

    async def run(self, data: bytes, *, wait: bool = False,
                  signature: BatchSignature = None) -> tuple[bytes, BatchStats]:
        """Mask one serialized phimask.v1 request into its serialized reply. At the
        in-flight limit a unary call is told UNAVAILABLE at once; a stream (`wait=True`)
        waits, which stops it reading and lets HTTP/2 flow control push back."""
        async with self._slot(wait):
            parts = self._parts(len(data))
            outcomes = await asyncio.gather(
                *(self._submit("native", data, (i, parts), signature) for i in range(parts))
            )
        stats = BatchStats()
        for outcome in outcomes:
            stats.merge(outcome[2])
        replies = [_unwrap(outcome) for outcome in outcomes]
        return b"".join(replies), stats

    async def run_otlp(self, data: bytes, signature: BatchSignature = None
                       ) -> tuple[otlp.OtlpResult, BatchStats]:
        """Mask an OTLP export; the caller holds `admit()` until it is forwarded."""
        outcome = await self._submit("otlp", data, (0, 1), signature)
        result = _unwrap(outcome)
        assert isinstance(result, otlp.OtlpResult)
        return result, outcome[2]

    async def run_vector(self, data: bytes, signature: BatchSignature = None
                         ) -> tuple[vector.VectorResult, BatchStats]:
        """Mask a Vector push; the caller holds `admit()` until it is forwarded."""
        outcome = await self._submit("vector", data, (0, 1), signature)
        result = _unwrap(outcome)
        assert isinstance(result, vector.VectorResult)
        return result, outcome[2]

    def use_policy(self, path: Path) -> None:
        """Batches submitted from now on are masked by the policy at `path` (validated
        by the caller); batches already with a worker finish on the one they had."""
        self.policy = (self.policy[0] + 1, path)

    def admit(self) -> contextlib.AbstractAsyncContextManager[None]:
        """One in-flight batch, from arrival until its answer: a batch waiting on its
        downstream counts too, so an outage cannot pile up batches without bound."""
        return self._slot(False)

    @contextlib.asynccontextmanager
    async def _slot(self, wait: bool) -> AsyncIterator[None]:
        assert self._slots is not None, "start() first"
        if not wait and self._slots.locked():
            raise RequestError("UNAVAILABLE", "phimask is at its in-flight batch limit; retry")
        async with self._slots:
            yield

    def _parts(self, size: int) -> int:
        """Into how many slices to cut a request: one per idle worker when it is big
        enough, so a batch's latency at low load is a fraction of its masking time.
        At full load no worker is idle and nothing is cut."""
        if self._processes is None or self.workers < 2 or size < SPLIT_FROM_BYTES:
            return 1
        return max(1, min(self._processes.idle, MAX_PARTS))

    async def _submit(self, kind: str, data: bytes, part: tuple[int, int],
                      signature: BatchSignature) -> Outcome:
        if self._processes is None:
            assert self._thread is not None
            return await asyncio.get_running_loop().run_in_executor(
                self._thread, _transform, kind, data, part, signature, self.policy
            )
        try:
            outcome: Outcome = await self._processes.call(kind, data, part, signature,
                                                          self.policy)
            # The worker's audit events join this process's trail, in the caller's span.
            for event, fields in outcome[2].audit:
                audit(event, **fields)
            outcome[2].audit.clear()
        except WorkerDied:
            raise RequestError("UNAVAILABLE", "a masking worker died; retry") from None
        except WorkersDown:  # the supervisor logs each failed start; not once per call
            raise RequestError("UNAVAILABLE", "masking workers are restarting; retry") from None
        except Exception as exc:  # a replacement that would not start, a broken pipe
            log.error("masking workers failed", extra={"error_type": type(exc).__name__})
            raise RequestError("UNAVAILABLE", "masking workers are restarting; retry") from None
        return outcome

    def close(self) -> None:
        if self._processes is not None:
            self._processes.close()
        if self._thread is not None:
            self._thread.shutdown(wait=True)


def _unwrap(outcome: Outcome) -> Any:
    ok, result, _ = outcome
    if not ok:
        status, message = result
        raise RequestError(str(status), str(message))
    return result
