"""phimask: mask HIPAA ePHI in streaming logs, inline, as a gRPC sidecar."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("phimask")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+local"
