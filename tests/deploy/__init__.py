"""Shared helpers for the deployment tests: render the Helm chart in process with Helm's
own engine (helm-python-sdk), and read what it rendered.

No cluster and no network: `lookup` returns nothing, and the Kubernetes schemas come
bundled with kubernetes-validate.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "phimask"
CI_VALUES = CHART / "ci"
SNIPPETS = ROOT / "deploy" / "helm" / "snippets"
EXAMPLES = ROOT / "examples"
RELEASE, NAMESPACE = "demo", "logging"
# One current Kubernetes version for schema validation and lint.
KUBE_VERSION = "1.35"

# Every case of the matrix: the chart's defaults and each ci/*-values.yaml.
CASES = ["default", *sorted(p.name.removesuffix("-values.yaml")
                            for p in CI_VALUES.glob("*-values.yaml"))]

Manifest = dict[str, Any]


def case_values(case: str) -> dict[str, Any]:
    if case == "default":
        return {}
    values: dict[str, Any] = yaml.safe_load((CI_VALUES / f"{case}-values.yaml").read_text())
    return values


@functools.cache
def _chart() -> helm_python.Chart:
    return helm_python.Chart.load(CHART)


def render_files(values: dict[str, Any], chart: Path | None = None) -> dict[str, str]:
    """Template path -> rendered text (raises HelmValuesError / HelmRenderError)."""
    loaded = _chart() if chart is None else helm_python.Chart.load(chart)
    return loaded.render(values, name=RELEASE, namespace=NAMESPACE)


@dataclass(frozen=True)
class Rendered:
    case: str
    values: dict[str, Any]  # the chart's defaults merged with the case's values
    files: dict[str, str]
    objects: tuple[Manifest, ...]

    def all(self, kind: str) -> list[Manifest]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> Manifest:
        found = [o for o in self.all(kind) if name is None or o["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.case}: expected one {kind} {name or ''}, got {len(found)}"
        return found[0]

    def find(self, kind: str, name: str) -> Manifest | None:
        for o in self.all(kind):
            if o["metadata"]["name"] == name:
                return o
        return None

    @property
    def workload(self) -> Manifest:
        kind = "DaemonSet" if self.values["mode"] == "sidecar" else "Deployment"
        return self.one(kind)

    @property
    def pod(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.workload["spec"]["template"]["spec"]
        return spec

    @property
    def containers(self) -> list[dict[str, Any]]:
        return [*self.pod.get("initContainers", []), *self.pod["containers"]]

    def container(self, name: str) -> dict[str, Any]:
        (found,) = [c for c in self.containers if c["name"] == name]
        return found

    @property
    def phimask(self) -> dict[str, Any]:
        return self.container("phimask")

    @property
    def args(self) -> list[str]:
        args: list[str] = self.phimask["args"]
        return args

    def flag(self, name: str) -> str | None:
        return flag(self.args, name)

    @property
    def listen(self) -> tuple[str, int]:
        listen = self.flag("--listen")
        assert listen is not None
        host, _, port = listen.rpartition(":")
        return host, int(port)

    def agent_config(self) -> dict[str, Any]:
        cm = self.one("ConfigMap", f"{RELEASE}-phimask-agent")
        key = "fluent-bit.yaml" if self.values["shipper"] == "fluent-bit" else "vector.yaml"
        config: dict[str, Any] = yaml.safe_load(cm["data"][key])
        return config


def flag(args: list[str], name: str) -> str | None:
    """The value of `--name VALUE` or `--name=VALUE` in an argument list."""
    for i, arg in enumerate(args):
        if arg == name:
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


@functools.cache
def render(case: str) -> Rendered:
    values = case_values(case)
    files = render_files(values)
    objects = tuple(doc for name, text in sorted(files.items()) if name.endswith(".yaml")
                    for doc in yaml.safe_load_all(text) if doc)
    return Rendered(case, _chart().merge_values(values), files, objects)


def walk_strings(data: Any) -> Iterator[str]:
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for value in data.values():
            yield from walk_strings(value)
    elif isinstance(data, list):
        for value in data:
            yield from walk_strings(value)


def reaches(connect_host: str, listen_host: str) -> bool:
    """Does a client dialling connect_host reach a server listening on listen_host in
    the same network namespace? A wildcard listener holds every local address."""
    if connect_host == listen_host:
        return True
    if listen_host in ("0.0.0.0", "::", "[::]"):
        try:
            return ipaddress.ip_address(connect_host.strip("[]")).is_loopback
        except ValueError:
            return connect_host == "localhost"
    return False
