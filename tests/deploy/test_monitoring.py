"""Alerts and dashboard panels name metrics phimask really exports, as Prometheus sees
them (OpenTelemetry instrument names with `.` -> `_`, a unit suffix for seconds and
`_total` for counters)."""

from __future__ import annotations

import ast
import json
import re
from typing import Any

import pytest

from tests.deploy import CHART, ROOT, render

OBSERVE = ROOT / "plugin" / "phimask" / "telemetry" / "observe.py"
METRIC = re.compile(r"\bphimask_[a-z0-9_]+")


def exported_metrics() -> set[str]:
    """Prometheus series names of the instruments phimask's Observer creates."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(OBSERVE.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr.startswith("create_")):
            continue
        first = node.args[0]
        assert isinstance(first, ast.Constant) and isinstance(first.value, str)
        name = first.value.replace(".", "_")
        unit = next((k.value.value for k in node.keywords if k.arg == "unit"
                     and isinstance(k.value, ast.Constant)), "")
        if unit == "s":
            name += "_seconds"
        kind = node.func.attr
        if kind == "create_counter":
            names.add(name + "_total")
        elif kind == "create_histogram":
            names |= {name + "_bucket", name + "_sum", name + "_count"}
        else:
            names.add(name)
    return names


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CHART / "files" / "grafana-dashboard.json").read_text())
    return data


def test_the_metric_names_the_brief_and_readme_use_are_exported() -> None:
    exported = exported_metrics()
    for name in ("phimask_records_total", "phimask_rejections_total", "phimask_quarantined_total",
                 "phimask_residual_phi_total", "phimask_downstream_errors_total",
                 "phimask_policy_reload_failures_total", "phimask_batch_duration_seconds_bucket"):
        assert name in exported, name


def test_alert_rules_use_exported_metrics() -> None:
    rule = render("aggregator").one("PrometheusRule")
    exprs = [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]
    used = {m for e in exprs for m in METRIC.findall(e)}
    assert used and used <= exported_metrics(), used - exported_metrics()


def test_dashboard_panels_cover_the_brief_with_exported_metrics() -> None:
    data = dashboard()
    exprs = [t["expr"] for panel in data["panels"] for t in panel["targets"]]
    exprs += [v.get("query", "") for v in data["templating"]["list"] if v["type"] == "query"]
    used = {m for e in exprs for m in METRIC.findall(e)}
    assert used <= exported_metrics(), used - exported_metrics()
    for wanted in ("phimask_records_total", "phimask_batch_duration_seconds_bucket",
                   "phimask_rejections_total", "phimask_quarantined_total",
                   "phimask_residual_phi_total"):
        assert wanted in used, wanted
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids))
    assert any("histogram_quantile" in e for e in exprs)


@pytest.mark.parametrize("case", ["aggregator", "fluent-bit-tls-monitoring"])
def test_dashboard_configmap_carries_the_file_and_the_sidecar_label(case: str) -> None:
    r = render(case)
    (cm,) = [c for c in r.all("ConfigMap") if c["metadata"]["labels"].get("grafana_dashboard")]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    (text,) = cm["data"].values()
    assert json.loads(text) == dashboard()
