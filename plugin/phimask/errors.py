"""The one error shape that reaches a caller: a gRPC status name and a message that
names fields and reasons, never content."""


class CallError(Exception):
    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status  # a grpc.StatusCode name, e.g. "UNAVAILABLE"
