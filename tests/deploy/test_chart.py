"""The Helm chart, rendered by Helm's engine for every case of the matrix (the defaults
and ci/*-values.yaml): lint, Kubernetes schemas, and the wiring between the parts."""

from __future__ import annotations

import base64
import posixpath
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml

from phimask.cli import build_parser
from phimask.config import SETTINGS, Settings, load_settings
from phimask.keyring import KID_PATTERN, LOCAL_PURPOSES, Keyring, decode_key
from phimask.policy import load_policy
from phimask.tls import listener_certificates
from tests.deploy import (
    CASES,
    CHART,
    KUBE_VERSION,
    NAMESPACE,
    RELEASE,
    Rendered,
    case_values,
    flag,
    reaches,
    render,
    walk_strings,
)

CRD_GROUPS = ("monitoring.coreos.com/",)
# Flags naming a file or directory phimask reads or writes: each must lie in a mount.
PATH_FLAGS = ("--policy", "--keys-dir", "--state-dir", "--access-file", "--tls-cert-file",
              "--tls-key-file", "--tls-client-ca-file", "--forward-ca-file",
              "--forward-cert-file", "--forward-key-file")
FILE_FLAGS = tuple(f for f in PATH_FLAGS if f not in ("--keys-dir", "--state-dir"))
WRITABLE_FLAGS = ("--state-dir",)

cases = pytest.mark.parametrize("case", CASES)


def sidecar_cases() -> list[str]:
    return [c for c in CASES if render(c).values["mode"] == "sidecar"]


def shipper_cases(shipper: str) -> list[str]:
    return [c for c in sidecar_cases() if render(c).values["shipper"] == shipper]


def under(path: str, directory: str) -> bool:
    path, directory = posixpath.normpath(path), posixpath.normpath(directory)
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def mount_for(container: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The most specific volumeMount holding `path`."""
    holding = [m for m in container.get("volumeMounts", []) if under(path, m["mountPath"])]
    return max(holding, key=lambda m: len(m["mountPath"]), default=None)


def volume(r: Rendered, name: str) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = r.pod["volumes"]
    (found,) = [v for v in volumes if v["name"] == name]
    return found


def provided_files(r: Rendered, vol: dict[str, Any]) -> set[str] | None:
    """File names a configMap/secret/projected volume provides, when they are known."""
    sources: list[tuple[str, dict[str, Any]]] = []
    if "configMap" in vol:
        sources.append(("ConfigMap", vol["configMap"]))
    if "secret" in vol:
        sources.append(("Secret", {**vol["secret"], "name": vol["secret"]["secretName"]}))
    for source in vol.get("projected", {}).get("sources", []):
        for kind, key in (("ConfigMap", "configMap"), ("Secret", "secret")):
            if key in source:
                sources.append((kind, source[key]))
    if not sources:
        return None
    files: set[str] = set()
    for kind, ref in sources:
        if "items" in ref:
            files |= {item["path"] for item in ref["items"]}
            continue
        obj = r.find(kind, ref["name"])
        if obj is None:
            return None  # an existing object: its keys are the operator's
        files |= set(obj.get("data") or {}) | set(obj.get("stringData") or {})
    return files


def references(pod: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """(kind, name, key or None) of every Secret and ConfigMap the pod uses."""
    refs: list[tuple[str, str, str | None]] = []

    def from_source(kind: str, ref: dict[str, Any], name_key: str) -> None:
        items = ref.get("items")
        if items:
            refs.extend((kind, ref[name_key], item["key"]) for item in items)
        else:
            refs.append((kind, ref[name_key], None))

    for vol in pod.get("volumes", []):
        if "secret" in vol:
            from_source("Secret", vol["secret"], "secretName")
        if "configMap" in vol:
            from_source("ConfigMap", vol["configMap"], "name")
        for source in vol.get("projected", {}).get("sources", []):
            if "secret" in source:
                from_source("Secret", source["secret"], "name")
            if "configMap" in source:
                from_source("ConfigMap", source["configMap"], "name")
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        for env in container.get("env", []):
            value_from = env.get("valueFrom", {})
            for kind, key in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                if key in value_from:
                    refs.append((kind, value_from[key]["name"], value_from[key]["key"]))
        for env_from in container.get("envFrom", []):
            for kind, key in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
                if key in env_from:
                    refs.append((kind, env_from[key]["name"], None))
    return refs


# --- Helm lint and the Kubernetes schemas ---------------------------------------------


@cases
def test_helm_lint_reports_no_errors(case: str) -> None:
    report = helm_python.lint(CHART, case_values(case), strict=True, namespace=NAMESPACE,
                              kube_version=f"v{KUBE_VERSION}.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], problems


@cases
def test_every_manifest_validates_against_kubernetes(case: str) -> None:
    r = render(case)
    assert r.objects
    for obj in r.objects:
        if obj["apiVersion"].startswith(CRD_GROUPS):
            continue  # CRDs: checked structurally below
        try:
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{case}: {obj['kind']}/{obj['metadata']['name']}: {where}: "
                        f"{exc.message}")


@cases
def test_every_object_is_named_labelled_and_namespaced(case: str) -> None:
    r = render(case)
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding"}
    names = [(o["kind"], o["metadata"]["name"]) for o in r.objects]
    assert len(names) == len(set(names)), "duplicate objects"
    for obj in r.objects:
        meta = obj["metadata"]
        assert meta["labels"]["app.kubernetes.io/instance"] == RELEASE
        if obj["kind"] not in cluster_scoped:
            assert meta["namespace"] == NAMESPACE


# --- The phimask container ----------------------------------------------------------


@cases
def test_phimask_accepts_its_rendered_command_line_and_environment(case: str) -> None:
    r = render(case)
    container = r.phimask
    assert "command" not in container, "the image's ENTRYPOINT (phimask) runs the args"
    parsed = build_parser().parse_args(container["args"])
    assert parsed.command == "serve"
    flags = {s.name: getattr(parsed, s.name, None) for s in SETTINGS}
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    for e in container["env"]:
        if e["name"] == "PHIMASK_VAULT_URL":
            env[e["name"]] = "postgresql://phimask@vault-db/phimask"  # from its Secret
    unknown = {n for n in env if n.startswith("PHIMASK_")} - {s.env for s in SETTINGS}
    assert not unknown, f"not phimask settings: {unknown}"
    settings = load_settings(flags, env=env)
    assert settings.listen.startswith("0.0.0.0:"), "kubelet probes come from outside the pod"
    # The CLI commands run by `kubectl exec` see the same directories as serve.
    assert str(settings.state_dir) == env["PHIMASK_STATE_DIR"] == r.flag("--state-dir")
    assert str(settings.keys_dir) == env["PHIMASK_KEYS_DIR"] == r.flag("--keys-dir")
    if r.values["tls"]["enabled"]:
        assert settings.tls_cert_file and settings.tls_key_file
        assert not settings.allow_plaintext
        assert bool(settings.tls_client_ca_file) == r.values["tls"]["mutual"]
    else:
        # Not loopback and no TLS: phimask refuses to start unless plaintext is allowed.
        assert settings.allow_plaintext
        assert listener_certificates(settings) is None
    if r.values["metrics"]["enabled"]:
        port = r.values["metrics"]["port"]
        assert settings.metrics_listen == f"0.0.0.0:{port}"
        assert {"name": "metrics", "containerPort": port, "protocol": "TCP"} in container["ports"]
    else:
        assert settings.metrics_listen == ""
    for name, value in r.values["phimask"]["settings"].items():
        assert getattr(settings, name) == value, name


def test_the_schema_covers_every_phimask_setting() -> None:
    """A new setting in phimask.config must be either settable or set by the chart."""
    schema = json_schema()
    settable = set(schema["properties"]["phimask"]["properties"]["settings"]["properties"])
    set_by_chart = {"listen", "policy", "state_dir", "keys_dir", "vault_url", "tls_cert_file",
                    "tls_key_file", "tls_client_ca_file", "allow_plaintext", "access_file",
                    "forward_ca_file", "forward_cert_file", "forward_key_file",
                    "otlp_downstream", "vector_downstream", "metrics_listen", "audit_log"}
    assert settable.isdisjoint(set_by_chart)
    assert settable | set_by_chart == {s.name for s in SETTINGS}
    defaults = Settings(workers=2)
    for name, value in render("default").values["phimask"]["settings"].items():
        assert name in settable
        assert isinstance(value, type(getattr(defaults, name)) | int), name


@cases
def test_probes_target_phimask_port_and_fit_tls(case: str) -> None:
    r = render(case)
    _, port = r.listen
    assert {"name": "grpc", "containerPort": port, "protocol": "TCP"} in r.phimask["ports"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        spec = r.phimask[probe]
        if r.values["tls"]["enabled"]:
            # kubelet's gRPC probe cannot speak TLS: a TCP connect instead.
            assert "grpc" not in spec and spec["tcpSocket"]["port"] == port, probe
        else:
            assert "tcpSocket" not in spec and spec["grpc"]["port"] == port, probe
    if r.values["mode"] == "aggregator":
        service = r.one("Service", f"{RELEASE}-phimask")
        (svc_port,) = service["spec"]["ports"]
        assert svc_port["targetPort"] == "grpc" and svc_port["port"] == port
        assert service["spec"]["selector"].items() <= r.workload["spec"]["template"][
            "metadata"]["labels"].items()


@cases
def test_native_sidecar_or_plain_container(case: str) -> None:
    r = render(case)
    if r.values["mode"] == "sidecar" and r.values["phimask"]["nativeSidecar"]:
        (init,) = r.pod["initContainers"]
        assert init["name"] == "phimask" and init["restartPolicy"] == "Always"
        assert "startupProbe" in init, "the agent starts once phimask serves"
    else:
        assert "initContainers" not in r.pod
        assert "restartPolicy" not in r.phimask


@cases
def test_otel_and_downward_api_environment(case: str) -> None:
    r = render(case)
    env = {e["name"]: e for e in r.phimask["env"]}
    assert env["OTEL_SERVICE_NAME"]["value"] == r.values["otel"]["serviceName"]
    endpoint = r.values["otel"]["endpoint"]
    if endpoint:
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == endpoint
    else:  # the SDK's default, localhost:4317, would be phimask itself
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env
    fields = {"K8S_POD_NAME": "metadata.name", "K8S_NAMESPACE_NAME": "metadata.namespace",
              "K8S_NODE_NAME": "spec.nodeName"}
    for name, path in fields.items():
        assert env[name]["valueFrom"]["fieldRef"]["fieldPath"] == path
    if r.values["vault"]["postgres"]["enabled"]:
        ref = env["PHIMASK_VAULT_URL"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": r.values["vault"]["postgres"]["existingSecret"],
                       "key": r.values["vault"]["postgres"]["key"]}
        assert "--vault-url" not in r.args, "the DSN holds a password: never in args"
    else:
        assert "PHIMASK_VAULT_URL" not in env


# --- Volumes, mounts, Secrets and ConfigMaps ------------------------------------------


@cases
def test_every_mount_has_its_volume_and_every_volume_is_used(case: str) -> None:
    r = render(case)
    volumes = [v["name"] for v in r.pod["volumes"]]
    assert len(volumes) == len(set(volumes))
    mounted = set()
    for container in r.containers:
        paths = [m["mountPath"] for m in container.get("volumeMounts", [])]
        assert len(paths) == len(set(paths)), container["name"]
        for mount in container.get("volumeMounts", []):
            assert mount["name"] in volumes, f"{container['name']}: {mount['name']}"
            mounted.add(mount["name"])
    assert mounted == set(volumes)


@cases
def test_paths_passed_as_flags_lie_in_mounts_that_provide_them(case: str) -> None:
    r = render(case)
    container = r.phimask
    for name in PATH_FLAGS:
        path = r.flag(name)
        if path is None:
            continue
        mount = mount_for(container, path)
        assert mount is not None, f"{name} {path} is in no mount"
        vol = volume(r, mount["name"])
        if name in WRITABLE_FLAGS:
            assert "emptyDir" in vol and not mount.get("readOnly"), name
        else:
            assert mount.get("readOnly") is True, f"{name}: mounted read-only"
        if name in FILE_FLAGS:
            relative = posixpath.relpath(path, mount["mountPath"])
            files = provided_files(r, vol)
            assert files is not None and relative in files, f"{name}: {relative} not in {files}"
    assert r.flag("--policy") and r.flag("--keys-dir") and r.flag("--state-dir")
    # The policy is a whole mounted directory (a subPath mount would miss updates).
    assert all("subPath" not in m for m in container["volumeMounts"])


@cases
def test_referenced_secrets_and_configmaps_exist(case: str) -> None:
    """Each is either rendered by the chart, with the key used, or named in the values
    (existingSecret, existingConfigMap)."""
    r = render(case)
    named = set(walk_strings(r.values))
    for kind, name, key in references(r.pod):
        obj = r.find(kind, name)
        if obj is None:
            assert name in named, f"{kind} {name} is neither rendered nor named in values"
        elif key is not None:
            assert key in {**obj.get("data", {}), **obj.get("stringData", {})}, (kind, name, key)
    keys = r.values["keys"]
    secret = volume(r, "phimask-keys")["secret"]["secretName"]
    if keys["create"]:
        made = r.one("Secret", secret)
        assert made["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert set(made["data"]) >= {f"{p}.chart.key" for p in LOCAL_PURPOSES}
        for file, encoded in made["data"].items():
            purpose, kid, suffix = file.split(".")
            assert suffix == "key" and KID_PATTERN.fullmatch(kid), file
            decode_key(purpose, base64.b64decode(encoded), file)  # phimask accepts it
    else:
        assert secret == keys["existingSecret"]
        assert not r.all("Secret"), "the chart makes a Secret only when keys.create is true"


@cases
def test_the_policy_phimask_gets_compiles(case: str, tmp_path: Path) -> None:
    r = render(case)
    if r.values["policy"]["existingConfigMap"]:
        assert not r.find("ConfigMap", f"{RELEASE}-phimask-policy")
        return
    cm = r.one("ConfigMap", f"{RELEASE}-phimask-policy")
    path = tmp_path / "policy.yaml"
    path.write_text(cm["data"][r.values["policy"]["key"]])
    plan = load_policy(path, state_dir=tmp_path, keys=Keyring.throwaway())
    assert plan.version


@cases
def test_no_container_runs_as_root(case: str) -> None:
    r = render(case)
    pod_context = r.pod.get("securityContext", {})
    assert pod_context.get("runAsNonRoot") is True and pod_context.get("runAsUser", 0) != 0
    for container in r.containers:
        context = {**pod_context, **container.get("securityContext", {})}
        name = container["name"]
        assert context.get("runAsNonRoot") is True, name
        assert context.get("runAsUser") not in (None, 0), name
        assert context.get("readOnlyRootFilesystem") is True, name
        assert context.get("allowPrivilegeEscalation") is False, name
        assert context.get("privileged", False) is False, name
        assert context.get("capabilities", {}).get("drop") == ["ALL"], name
        assert context.get("seccompProfile") == {"type": "RuntimeDefault"}, name
        assert not context.get("capabilities", {}).get("add"), name


# --- The agent (sidecar mode) --------------------------------------------------------


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((CHART.parents[2] / "examples" / name).read_text())
    return data


def on_off(value: Any) -> str:
    """Fluent Bit's booleans, as YAML reads them (`on` is True) or as strings."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value).lower()


@pytest.mark.parametrize("case", shipper_cases("fluent-bit"))
def test_fluent_bit_is_wired_to_phimask_without_loss(case: str) -> None:
    r = render(case)
    config = r.agent_config()
    inputs, outputs = config["pipeline"]["inputs"], config["pipeline"]["outputs"]
    (to_phimask,) = [o for o in outputs if o["name"] == "opentelemetry"]
    listen_host, listen_port = r.listen
    assert to_phimask["port"] == listen_port
    assert reaches(to_phimask["host"], listen_host)
    # The loss-preventing settings of examples/fluent-bit.yaml, and the brief's own.
    (reference,) = [o for o in example("fluent-bit.yaml")["pipeline"]["outputs"]
                    if o["name"] == "opentelemetry"]
    for key in ("grpc", "grpc_logs_uri", "batch_size", "retry_limit", "net.keepalive"):
        assert on_off(to_phimask[key]) == on_off(reference[key]), key
    assert on_off(to_phimask["grpc"]) == "on"
    assert to_phimask["retry_limit"] == "no_limits"
    assert on_off(to_phimask["net.keepalive"]) == "off"
    assert "compress" not in to_phimask
    assert all(i["storage.type"] == "filesystem" for i in inputs)
    # Buffers and file positions are written to a writable mount of the agent.
    agent = r.container("fluent-bit")
    (tail,) = [i for i in inputs if i["name"] == "tail"]
    for path in (config["service"]["storage.path"], tail["db"]):
        mount = mount_for(agent, path)
        assert mount is not None and not mount.get("readOnly"), path
    # Its config file is the one the chart renders.
    config_file = flag(agent["args"], "--config")
    assert config_file is not None
    mount = mount_for(agent, config_file)
    assert mount is not None and posixpath.basename(config_file) in (
        provided_files(r, volume(r, mount["name"])) or set())
    # The masked stream: back to the agent's opentelemetry input, or to the downstream.
    returned = [i for i in inputs if i["name"] == "opentelemetry"]
    downstream = r.flag("--otlp-downstream")
    if r.values["downstream"]["otlp"]:
        assert downstream == r.values["downstream"]["otlp"] and not returned
        assert all(o.get("match") != "masked" for o in outputs)
    else:
        (back,) = returned
        assert downstream == f"http://{back['listen']}:{back['port']}"
        assert back["listen"] == "127.0.0.1", "the raw-free return path stays in the pod"
        masked = [o for o in outputs if o.get("match") == "masked"]
        assert masked and all(o["name"] != "opentelemetry" for o in masked)
    tls = r.values["tls"]
    assert on_off(to_phimask.get("tls", "off")) == ("on" if tls["enabled"] else "off")
    if tls["enabled"]:
        assert on_off(to_phimask["tls.verify"]) == on_off(to_phimask["tls.verify_hostname"]) == "on"
        assert to_phimask["tls.vhost"] == (tls["serverName"]
                                           or f"{RELEASE}-phimask.{NAMESPACE}.svc")
        files = ["tls.ca_file"] + (["tls.crt_file", "tls.key_file"] if tls["mutual"] else [])
        for key in files:
            mount = mount_for(agent, to_phimask[key])
            assert mount is not None and mount.get("readOnly"), key
            vol = volume(r, mount["name"])
            relative = posixpath.relpath(to_phimask[key], mount["mountPath"])
            assert relative in (provided_files(r, vol) or set()), key


@pytest.mark.parametrize("case", shipper_cases("vector"))
def test_vector_is_wired_to_phimask_without_loss(case: str) -> None:
    r = render(case)
    config = r.agent_config()
    reference = example("vector.yaml")
    (name,) = [n for n, s in config["sinks"].items() if s["type"] == "vector"]
    sink = config["sinks"][name]
    host, _, port = sink["address"].rpartition(":")
    listen_host, listen_port = r.listen
    assert int(port) == listen_port and reaches(host, listen_host)
    # Everything examples/vector.yaml sets on its sink to phimask, but where it points.
    wiring = ("address", "inputs", "tls")
    expected = {k: v for k, v in reference["sinks"]["to_phimask"].items() if k not in wiring}
    assert {k: v for k, v in sink.items() if k not in wiring} == expected
    agent = r.container("vector")
    mount = mount_for(agent, config["data_dir"])
    assert mount is not None and not mount.get("readOnly"), "the disk buffer is writable"
    assert flag(agent["args"], "--config-dir") == "/etc/vector/"
    config_mount = mount_for(agent, "/etc/vector/vector.yaml")
    assert config_mount is not None
    assert "vector.yaml" in (provided_files(r, volume(r, config_mount["name"])) or set())
    downstream = r.flag("--vector-downstream")
    sources = {n: s for n, s in config["sources"].items() if s["type"] == "vector"}
    if r.values["downstream"]["vector"]:
        assert downstream == r.values["downstream"]["vector"] and not sources
    else:
        (back,) = sources.values()
        ignore = ("address",)
        assert {k: v for k, v in back.items() if k not in ignore} == {
            k: v for k, v in reference["sources"]["masked"].items() if k not in ignore}
        assert downstream == f"http://{back['address']}"
        assert back["address"].startswith("127.0.0.1:")
        (source_name,) = [n for n, s in config["sources"].items() if s["type"] == "vector"]
        for other, out in config["sinks"].items():
            if other != name:
                assert out["inputs"] == [source_name], "only masked events leave the pod"
    tls = r.values["tls"]
    assert sink.get("tls", {}).get("enabled", False) is tls["enabled"]
    if tls["enabled"]:
        assert sink["tls"]["verify_certificate"] is sink["tls"]["verify_hostname"] is True
        assert sink["tls"]["server_name"] == (tls["serverName"]
                                              or f"{RELEASE}-phimask.{NAMESPACE}.svc")
        keys = ["ca_file"] + (["crt_file", "key_file"] if tls["mutual"] else [])
        for key in keys:
            mount = mount_for(agent, sink["tls"][key])
            assert mount is not None and mount.get("readOnly"), key


@pytest.mark.parametrize("case", sidecar_cases())
def test_agent_pod_reads_node_logs_read_only_and_skips_its_own(case: str) -> None:
    r = render(case)
    varlog = volume(r, "varlog")
    assert varlog["hostPath"]["path"] == "/var/log"
    agent = r.container(r.values["shipper"])
    logs = mount_for(agent, "/var/log/containers/x.log")
    assert logs is not None and logs["readOnly"] is True and logs["name"] == "varlog"
    labels = r.workload["spec"]["template"]["metadata"]["labels"]
    if r.values["shipper"] == "vector":
        assert labels["vector.dev/exclude"] == "true"
    else:
        (tail,) = [i for i in r.agent_config()["pipeline"]["inputs"] if i["name"] == "tail"]
        assert f"/{RELEASE}-phimask-*_{NAMESPACE}_" in tail["exclude_path"]
    role = r.one("ClusterRole")
    assert {"get", "list", "watch"} == set(role["rules"][0]["verbs"])
    binding = r.one("ClusterRoleBinding")
    assert binding["subjects"][0]["name"] == r.pod["serviceAccountName"]
    assert r.pod["securityContext"]["supplementalGroups"] == [0], "reads root:root 0640 logs"


# --- aggregator mode -----------------------------------------------------------------


@pytest.mark.parametrize("case", [c for c in CASES if render(c).values["mode"] == "aggregator"])
def test_aggregator_scales_and_survives_disruption(case: str) -> None:
    r = render(case)
    assert not r.all("DaemonSet") and not r.all("ClusterRole")
    assert r.pod["automountServiceAccountToken"] is False
    deployment = r.workload
    scaling = r.values["aggregator"]["autoscaling"]
    if scaling["enabled"]:
        hpa = r.one("HorizontalPodAutoscaler")
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                                 "name": deployment["metadata"]["name"]}
        assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
        assert r.phimask["resources"]["requests"]["cpu"], "CPU utilization needs a request"
    else:
        assert not r.all("HorizontalPodAutoscaler")
        assert deployment["spec"]["replicas"] == r.values["aggregator"]["replicas"]
    if r.values["aggregator"]["podDisruptionBudget"]["enabled"]:
        pdb = r.one("PodDisruptionBudget")
        assert pdb["spec"]["selector"]["matchLabels"].items() <= deployment["spec"]["template"][
            "metadata"]["labels"].items()
    downstreams = [r.flag("--otlp-downstream"), r.flag("--vector-downstream")]
    assert [d for d in downstreams if d] == [
        d for d in (r.values["downstream"]["otlp"], r.values["downstream"]["vector"]) if d]


# --- Monitoring and network policy ---------------------------------------------------


@cases
def test_monitoring_objects_are_off_by_default_and_well_formed(case: str) -> None:
    r = render(case)
    metrics = r.values["metrics"]
    monitor = metrics["serviceMonitor"]["enabled"] and metrics["enabled"]
    rule = metrics["prometheusRule"]["enabled"] and metrics["enabled"]
    assert bool(r.all("ServiceMonitor")) == monitor
    assert bool(r.all("PrometheusRule")) == rule
    assert bool(r.all("NetworkPolicy")) == r.values["networkPolicy"]["enabled"]
    dashboards = [c for c in r.all("ConfigMap")
                  if c["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert len(dashboards) == int(metrics["dashboard"]["enabled"])
    if case == "default":
        assert not (monitor or rule or dashboards or r.all("NetworkPolicy"))
    if monitor:
        sm = r.one("ServiceMonitor")
        assert sm["apiVersion"] == "monitoring.coreos.com/v1"
        service = r.one("Service", f"{RELEASE}-phimask-metrics")
        assert sm["spec"]["selector"]["matchLabels"].items() <= service["metadata"][
            "labels"].items()
        assert sm["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
        (endpoint,) = sm["spec"]["endpoints"]
        assert endpoint["port"] in [p["name"] for p in service["spec"]["ports"]]
        assert endpoint["path"] == "/metrics"
        assert service["spec"]["selector"].items() <= r.workload["spec"]["template"][
            "metadata"]["labels"].items()
    if rule:
        pr = r.one("PrometheusRule")
        assert pr["apiVersion"] == "monitoring.coreos.com/v1"
        (group,) = pr["spec"]["groups"]
        alerts = {rule["alert"]: rule for rule in group["rules"]}
        wanted = {"phimask_residual_phi_total", "phimask_rejections_total",
                  "phimask_downstream_errors_total", "phimask_policy_reload_failures_total"}
        exprs = " ".join(a["expr"] for a in alerts.values())
        assert all(metric in exprs for metric in wanted)
        for alert in alerts.values():
            assert set(alert) <= {"alert", "expr", "for", "labels", "annotations"}
            expr = alert["expr"]
            assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}")
            assert f'namespace="{NAMESPACE}"' in expr, "each alert is about this release"
            assert alert["labels"]["severity"] in ("info", "warning", "critical")
            assert alert["annotations"]["summary"]
    for cm in dashboards:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"


@cases
def test_network_policy_lets_only_shippers_in_and_only_dependencies_out(case: str) -> None:
    r = render(case)
    if not r.values["networkPolicy"]["enabled"]:
        return
    policy = r.one("NetworkPolicy")["spec"]
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    assert policy["podSelector"]["matchLabels"].items() <= r.workload["spec"]["template"][
        "metadata"]["labels"].items()
    _, port = r.listen
    to_phimask = [rule for rule in policy["ingress"]
                  if any(p["port"] == port for p in rule["ports"])]
    if r.values["mode"] == "aggregator":
        (rule,) = to_phimask
        assert rule["from"] == r.values["networkPolicy"]["shippers"]
    else:
        assert not to_phimask, "sidecar mode: only the agent, over loopback"
    assert all(rule.get("from") for rule in policy["ingress"]), "no open ingress"
    egress_ports = {p["port"] for rule in policy["egress"] for p in rule["ports"]}
    expected = {53}
    for url in (r.values["downstream"]["otlp"], r.values["downstream"]["vector"],
                r.values["otel"]["endpoint"]):
        if url:
            expected.add(int(url.rsplit(":", 1)[1]))
    if r.values["vault"]["postgres"]["enabled"]:
        expected.add(r.values["vault"]["postgres"]["port"])
    if r.values["mode"] == "sidecar":
        expected |= {443, 6443}
    assert egress_ports == expected


def json_schema() -> dict[str, Any]:
    schema: dict[str, Any] | None = helm_python.Chart.load(CHART).schema
    assert schema is not None
    return schema


@cases
def test_notes_tell_how_to_check_it_works(case: str) -> None:
    r = render(case)
    notes = r.files["phimask/templates/NOTES.txt"]
    _, port = r.listen
    assert "grpc.health.v1.Health/Check" in notes and f"127.0.0.1:{port}" in notes
    assert "phimask audit verify /var/lib/phimask/audit/" in notes
    assert ("-cacert ca.crt" if r.values["tls"]["enabled"] else "grpcurl -plaintext") in notes
    if r.values["mode"] == "sidecar":
        assert f"-c {r.values['shipper']}" in notes and "-c phimask" in notes
    if r.values["metrics"]["enabled"]:
        assert "/metrics" in notes
    if r.values["keys"]["create"]:
        assert "trying phimask out" in notes
