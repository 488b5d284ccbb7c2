"""SecurityMonitoring under the mock monitor, per committed stack."""
from __future__ import annotations

import json

import yaml

from components.charts import KUBE_PROMETHEUS_STACK
from components.monitoring import ALERTMANAGER_SECRET, GRAFANA_SECRET, NAMESPACE, dashboard_files, rule_files
from secstack.capture import is_secret
from tests.helpers.charts import unknown_keys
from tests.helpers.crds import crd_errors

COMPONENT = "secstack:monitoring:SecurityMonitoring"
SUBCHARTS = ("grafana", "kube-state-metrics")
# Read by the chart's alertmanager template but only present as a comment in values.yaml.
TEMPLATE_ONLY = {"alertmanager.alertmanagerSpec.configSecret"}
# grafana.ini is rendered section by section into Grafana's ini file: any Grafana setting is valid there.
FREE_FORM = {"grafana": ["grafana.ini"], "kube-state-metrics": []}


def _release(preview):
    [release] = [r for r in preview.helm_releases() if r["chart"] == "kube-prometheus-stack"]
    return release


def _secret_registration(preview, name):
    [reg] = [r for r in preview.of_type("kubernetes:core/v1:Secret") if r.inputs.get("metadata", {}).get("name") == name]
    return reg


def _marked_secret(reg, key: str) -> bool:
    """The SDK may mark the whole stringData map secret, or only the entry."""
    data = reg.inputs["stringData"]
    return is_secret(data) or is_secret(data.get(key))


def test_release_is_pinned(stack_preview):
    release = _release(stack_preview)
    assert (release["version"], release["repo"], release["namespace"], release["name"]) == (
        "88.5.3", KUBE_PROMETHEUS_STACK.repo, NAMESPACE, "kube-prometheus-stack"
    )
    assert len(stack_preview.of_type(COMPONENT)) == 1


def test_value_keys_exist_in_the_charts(stack_preview):
    values = _release(stack_preview)["values"]
    top = [p for p in unknown_keys("kube-prometheus-stack", values, TEMPLATE_ONLY) if not p.startswith(SUBCHARTS)]
    assert top == []
    for sub in SUBCHARTS:
        # A subchart key is fine if either the parent's defaults or the subchart's own values.yaml define it.
        parent = {p for p in unknown_keys("kube-prometheus-stack", values) if p.startswith(sub + ".")}
        own = {f"{sub}.{p}" for p in unknown_keys(sub, values[sub], FREE_FORM[sub])}
        both = [p for p in own if any(p == q or p.startswith(q + ".") for q in parent)]
        both += [q for q in parent if any(q.startswith(p + ".") for p in own)]
        assert both == [], sub


def test_selects_every_monitor_and_rule(stack_preview):
    spec = _release(stack_preview)["values"]["prometheus"]["prometheusSpec"]
    for kind in ("rule", "serviceMonitor", "podMonitor", "probe", "scrapeConfig"):
        assert spec[f"{kind}SelectorNilUsesHelmValues"] is False
        assert spec[f"{kind}Selector"] == {} and spec[f"{kind}NamespaceSelector"] == {}
    assert spec["enableAdminAPI"] is False


def test_replicas_and_retention_follow_the_environment(stack_preview):
    values = _release(stack_preview)["values"]
    prom, am = values["prometheus"]["prometheusSpec"], values["alertmanager"]["alertmanagerSpec"]
    expected = {"dev": ("3d", 1, 1), "staging": ("15d", 2, 2), "prod": ("30d", 2, 3)}[stack_preview.stack]
    assert (prom["retention"], prom["replicas"], am["replicas"]) == expected
    assert prom["externalLabels"] == {"environment": stack_preview.stack}
    if prom["replicas"] > 1:
        assert prom["podAntiAffinity"] == "hard"


def test_grafana_admin_password_is_a_secret_and_anonymous_access_is_off(stack_preview):
    grafana = _release(stack_preview)["values"]["grafana"]
    assert grafana["admin"] == {"existingSecret": GRAFANA_SECRET, "userKey": "admin-user", "passwordKey": "admin-password"}
    assert "adminPassword" not in grafana
    assert grafana["grafana.ini"]["auth.anonymous"]["enabled"] is False
    reg = _secret_registration(stack_preview, GRAFANA_SECRET)
    assert _marked_secret(reg, "admin-password")
    assert reg.plain_inputs()["stringData"]["admin-password"] == "<secret:grafana-admin-password>"
    assert "grafana-admin-password>" not in json.dumps(_release(stack_preview)["values"])
    assert reg.options["protect"] is (stack_preview.stack == "prod")
    assert reg.options["retainOnDelete"] is (stack_preview.stack == "prod")


def test_alertmanager_config_secret_holds_routes_and_secret_urls(stack_preview):
    am = _release(stack_preview)["values"]["alertmanager"]["alertmanagerSpec"]
    assert am["useExistingSecret"] is True and am["configSecret"] == ALERTMANAGER_SECRET
    reg = _secret_registration(stack_preview, ALERTMANAGER_SECRET)
    assert _marked_secret(reg, "alertmanager.yaml")
    config = yaml.safe_load(reg.plain_inputs()["stringData"]["alertmanager.yaml"])
    settings = stack_preview.settings.monitoring
    names = {r["name"] for r in config["receivers"]}
    assert names == {"null", *(r.name for r in settings.receivers)}
    for r in settings.receivers:
        [rendered] = [x for x in config["receivers"] if x["name"] == r.name]
        if r.url_secret:
            assert rendered["webhook_configs"][0]["url"] == f"<secret:{r.url_secret}>"
        else:
            assert rendered["email_configs"][0]["auth_password"] == f"<secret:{r.auth_password_secret}>"
            assert rendered["email_configs"][0]["require_tls"] is True
    # Redacted view (what plan.json and manifests show) carries no URL.
    assert "<secret:" not in json.dumps([o for _, o in stack_preview.kubernetes_objects()])


def test_custom_resources_validate_against_upstream_crds(stack_preview):
    objects = [o for _, o in stack_preview.kubernetes_objects() if o["apiVersion"] == "monitoring.coreos.com/v1"]
    kinds = {o["kind"] for o in objects}
    assert {"ServiceMonitor", "PodMonitor", "PrometheusRule"} <= kinds
    errors = [e for o in objects for e in crd_errors(o)]
    assert errors == []


def test_monitors_target_the_security_components(stack_preview):
    monitors = {o["metadata"]["name"]: o["spec"] for k in ("ServiceMonitor", "PodMonitor") for o in stack_preview.find(k, namespace=NAMESPACE)}
    assert {"istiod", "envoy-stats", "gatekeeper", "trivy-operator", "falco", "falcosidekick"} <= set(monitors)
    envoy = monitors["envoy-stats"]["podMetricsEndpoints"][0]
    assert envoy["path"] == "/stats/prometheus"
    assert any(r.get("replacement") == "$1:15020" for r in envoy["relabelings"])
    assert any(r.get("regex") == "istio-proxy" and r["action"] == "keep" for r in envoy["relabelings"])
    assert monitors["gatekeeper"]["podMetricsEndpoints"][0]["port"] == "metrics"
    assert monitors["trivy-operator"]["endpoints"][0]["honorLabels"] is True
    assert monitors["falco"]["selector"]["matchLabels"]["type"] == "falco-metrics"
    assert monitors["falcosidekick"]["endpoints"][0]["port"] == "http"


def test_rules_and_dashboards_are_shipped(stack_preview):
    rules = {o["metadata"]["name"]: o for o in stack_preview.find("PrometheusRule", namespace=NAMESPACE)}
    strict = stack_preview.settings.mesh.mtls_mode == "STRICT"
    assert set(rules) == {f"secstack-{p.stem}" for p in rule_files(strict)}
    base = stack_preview.settings.monitoring.runbook_base_url
    for rule in (r for o in rules.values() for g in o["spec"]["groups"] for r in g["rules"]):
        assert rule["annotations"]["runbook_url"].startswith(base + "/docs/monitoring.md#")
    maps = {o["metadata"]["name"]: o for o in stack_preview.find("ConfigMap", namespace=NAMESPACE)}
    for path in dashboard_files():
        cm = maps[f"secstack-dashboard-{path.stem}"]
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert json.loads(cm["data"][f"secstack-{path.stem}.json"]) == json.loads(path.read_text())


def test_prometheus_may_scrape_sidecars_in_team_namespaces(stack_preview):
    for team in stack_preview.settings.teams:
        for ns in team.namespaces:
            [policy] = stack_preview.find("NetworkPolicy", "allow-prometheus-scrape", ns)
            [rule] = policy["spec"]["ingress"]
            assert rule["ports"] == [{"protocol": "TCP", "port": 15020}]
            assert rule["from"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": NAMESPACE}
