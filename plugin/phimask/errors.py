"""The one error shape that reaches a caller: a gRPC status name and a message that
names fields and reasons, never content."""

from __future__ import annotations

from typing import Any


class CallError(Exception):
    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status  # a grpc.StatusCode name, e.g. "UNAVAILABLE"

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from both arguments when it crosses from a worker process.
        return (type(self), (self.status, str(self)))
