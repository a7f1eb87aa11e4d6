"""phimask's own telemetry: the audit log (`audit_log`), and tracing and metrics."""
