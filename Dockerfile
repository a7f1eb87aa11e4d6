# syntax=docker/dockerfile:1
# phimask: the gRPC sidecar that masks ePHI in logs.
#
#   docker build -t phimask:0.1.0 .
#   docker run --rm phimask:0.1.0 --version
#
# The builder stage makes the wheel and installs it, with its dependencies (all from
# wheels), into a venv; the final stage copies only that venv onto a fresh slim base:
# no compiler, no pip cache, no sources, running as uid 10001.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY plugin/ plugin/
RUN python -m venv /opt/phimask \
 && /opt/phimask/bin/pip install --upgrade pip \
 && /opt/phimask/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/phimask/bin/pip install /wheels/phimask-*.whl \
 && /opt/phimask/bin/pip uninstall --yes pip \
 && /opt/phimask/bin/phimask --version

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="phimask" \
      org.opencontainers.image.description="gRPC sidecar that masks HIPAA ePHI in streaming logs" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 phimask \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /var/lib/phimask --shell /usr/sbin/nologin phimask \
 && mkdir -p /var/lib/phimask /etc/phimask \
 && chown 10001:10001 /var/lib/phimask
COPY --from=builder /opt/phimask /opt/phimask
ENV PATH=/opt/phimask/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/phimask \
    PHIMASK_STATE_DIR=/var/lib/phimask
WORKDIR /var/lib/phimask
USER 10001:10001
# gRPC (every service), Prometheus /metrics when --metrics-listen is set.
EXPOSE 4317 9464
ENTRYPOINT ["phimask"]
# Loopback: right for a sidecar, whose shipper shares the pod's network. To serve the
# pod IP (kubelet probes, other pods) pass --listen 0.0.0.0:4317 with TLS, or with
# --allow-plaintext true; the Helm chart does that.
CMD ["serve", "--listen", "127.0.0.1:4317", "--state-dir", "/var/lib/phimask"]
