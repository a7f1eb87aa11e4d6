"""Downstream clients: where masked batches go in forward mode."""

from .downstream import Downstream, DownstreamError, parse_downstream_url

__all__ = ["Downstream", "DownstreamError", "parse_downstream_url"]
