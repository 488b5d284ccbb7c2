"""Falco with Falcosidekick, as each committed stack renders it, and the secstack:runtime settings."""
from __future__ import annotations

import json
import re

import pytest
import yaml

from components import falco_rules
from components.runtime import (
    ALERTMANAGER_URL,
    ES_CREDENTIALS_SECRET,
    FALCO_METRICS_LABELS,
    NAMESPACE,
    RELEASE,
    SIDEKICK_LABELS,
)
from stacks.settings import SettingsError
from stacks.settings.detection import FALCO_PRIORITIES
from tests.conftest import STACKS, rendered
from tests.helpers.charts import unknown_keys
from tests.helpers.detection import load_variant, monitors_selecting, release

FALCO_KEYS_FOR_SIDEKICK = {"enabled", "fullfqdn", "listenPort"}  # keys the falco chart reads itself
RULE_FIELDS = {"rule", "desc", "condition", "output", "priority", "tags"}
PRIORITIES = {p.upper() for p in FALCO_PRIORITIES} | {"INFO"}
DEMO_PASSWORD = "<secret:falco-elasticsearch-password>"  # the offline preview's stand-in for the secret value


def _values(stack: str) -> dict:
    return release(rendered(stack), RELEASE)["values"]


def _rules(stack: str) -> list[dict]:
    return yaml.safe_load(_values(stack)["customRules"][falco_rules.RULES_FILE])


@pytest.mark.parametrize("stack", STACKS)
def test_release_is_pinned_with_the_modern_ebpf_driver(stack):
    r = release(rendered(stack), RELEASE)
    assert (r["chart"], r["version"], r["namespace"], r["repo"]) == ("falco", "9.1.0", NAMESPACE, "https://falcosecurity.github.io/charts")
    assert r["values"]["driver"] == {"kind": "modern_ebpf", "modernEbpf": {"leastPrivileged": True}}
    assert r["values"]["falcoctl"]["artifact"]["follow"]["enabled"] is False


@pytest.mark.parametrize("stack", STACKS)
def test_every_value_key_exists_in_the_charts(stack):
    values = _values(stack)
    falco = {k: v for k, v in values.items() if k != "falcosidekick"}
    assert unknown_keys("falco", falco) == []
    assert set(values["falcosidekick"]) & set(yaml.safe_load("{enabled: 1, fullfqdn: 1, listenPort: 1}")) == {"enabled"}
    sidekick = {k: v for k, v in values["falcosidekick"].items() if k not in FALCO_KEYS_FOR_SIDEKICK}
    assert unknown_keys("falcosidekick", sidekick, free_form=["podSecurityContext"]) == []


@pytest.mark.parametrize("stack", STACKS)
def test_minimum_priority_and_json_output(stack):
    falco = _values(stack)["falco"]
    assert falco["priority"] == rendered(stack).settings.runtime.minimum_priority == "notice"
    assert falco["json_output"] is True and falco["json_include_tags_property"] is True


@pytest.mark.parametrize("stack", STACKS)
def test_every_custom_rule_is_present_and_well_formed(stack):
    items = _rules(stack)
    rules = {item["rule"]: item for item in items if "rule" in item}
    assert set(rules) == set(falco_rules.RULE_NAMES)
    for name, rule in rules.items():
        assert RULE_FIELDS <= set(rule), name
        assert rule["priority"] in PRIORITIES, name
        assert any(t.startswith("mitre_") for t in rule["tags"]), f"{name}: no MITRE tactic tag"
        assert any(re.fullmatch(r"T[AS]?\d{4}(\.\d{3})?", t) for t in rule["tags"]), f"{name}: no MITRE technique id"
        assert "%container.name" in rule["output"] and "%k8s.ns.name" in rule["output"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_referenced_macro_and_list_is_defined(stack):
    items = _rules(stack)
    defined = {item.get("macro") or item.get("list") for item in items if "macro" in item or "list" in item}
    for item in items:
        if "condition" not in item:
            continue
        condition = item["condition"]
        assert condition.count("(") == condition.count(")"), item
        used = set(re.findall(r"\bsecstack_[a-z_]+\b", condition))
        assert used <= defined, f"{item.get('rule') or item.get('macro')}: undefined {used - defined}"
    assert all(isinstance(item["items"], list) for item in items if "list" in item)


@pytest.mark.parametrize("stack", STACKS)
def test_allowed_destinations_come_from_settings(stack):
    settings = rendered(stack).settings.runtime
    lists = {item["list"]: item["items"] for item in _rules(stack) if "list" in item}
    assert lists["secstack_allowed_outbound_networks"] == [f'"{c}"' for c in settings.allowed_outbound_cidrs]
    assert lists["secstack_allowed_outbound_hosts"] == settings.allowed_outbound_hosts
    assert lists["secstack_trusted_namespaces"] == ["kube-system", "falco", "trivy-system"]
    assert "100.100.100.200" not in json.dumps(lists), "the ECS metadata service is never allowed"


@pytest.mark.parametrize("stack", STACKS)
def test_sidekick_forwards_to_alertmanager_and_elasticsearch(stack):
    sidekick = _values(stack)["falcosidekick"]
    assert sidekick["enabled"] is True
    config = sidekick["config"]
    assert config["alertmanager"]["hostport"] == ALERTMANAGER_URL
    assert config["alertmanager"]["endpoint"] == "/api/v2/alerts"
    assert config["alertmanager"]["minimumpriority"] == "warning"
    es = config["elasticsearch"]
    assert es["hostport"] == "https://security-logs-es-http.logging.svc:9200"
    assert (es["index"], es["suffix"], es["checkcert"]) == ("logs-falco-default", "none", True)
    assert config["tlsclient"]["cacertfile"].endswith("/ca.crt")
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in config["extraEnv"]}
    assert env == {
        "ELASTICSEARCH_USERNAME": {"name": ES_CREDENTIALS_SECRET, "key": "username"},
        "ELASTICSEARCH_PASSWORD": {"name": ES_CREDENTIALS_SECRET, "key": "password"},
    }


@pytest.mark.parametrize("stack", STACKS)
def test_no_plaintext_credentials_in_the_release(stack):
    preview = rendered(stack)
    [registration] = [r for r in preview.of_type("kubernetes:helm.sh/v3:Release") if r.name == RELEASE]
    plain = json.dumps(registration.plain_inputs())
    assert DEMO_PASSWORD not in plain
    es = registration.plain_inputs()["values"]["falcosidekick"]["config"]["elasticsearch"]
    assert not {"password", "username", "apikey"} & set(es)


@pytest.mark.parametrize("stack", STACKS)
def test_credentials_secret_is_marked_secret(stack):
    preview = rendered(stack)
    [secret] = [r for r in preview.of_type("kubernetes:core/v1:Secret") if r.name == ES_CREDENTIALS_SECRET]
    redacted = secret.redacted_inputs()["stringData"]
    assert redacted == "[secret]" or redacted["password"] == "[secret]"
    assert DEMO_PASSWORD not in json.dumps(secret.redacted_inputs())
    assert secret.plain_inputs()["stringData"] == {"username": "falcosidekick", "password": DEMO_PASSWORD}
    assert secret.redacted_inputs()["metadata"]["namespace"] == NAMESPACE
    protected = stack == "prod"
    assert (secret.options["protect"], secret.options["retainOnDelete"]) == (protected, protected)


@pytest.mark.parametrize("stack", STACKS)
def test_metrics_are_on_and_scraped_exactly_once(stack):
    values = _values(stack)
    assert values["metrics"]["enabled"] is True
    assert values["serviceMonitor"]["create"] is False and values["falcosidekick"]["serviceMonitor"]["enabled"] is False
    preview = rendered(stack)
    [falco] = monitors_selecting(preview, NAMESPACE, FALCO_METRICS_LABELS)
    assert [e["port"] for e in falco["spec"]["endpoints"]] == ["metrics"]
    [sidekick] = monitors_selecting(preview, NAMESPACE, SIDEKICK_LABELS)
    assert [e["port"] for e in sidekick["spec"]["endpoints"]] == ["http"]


@pytest.mark.parametrize("stack", STACKS)
def test_namespace_and_sidekick_ingress(stack):
    preview = rendered(stack)
    [ns] = preview.find("Namespace", NAMESPACE)
    labels = ns["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged" and labels["istio-injection"] == "disabled"
    [policy] = preview.find("NetworkPolicy", "falcosidekick-ingress", NAMESPACE)
    assert policy["spec"]["podSelector"]["matchLabels"] == {k: SIDEKICK_LABELS[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}
    [rule] = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": 2801, "protocol": "TCP"}]
    assert len(rule["from"]) == 2


def _set(**values):
    def edit(raw):
        raw.setdefault("secstack:runtime", {}).update(values)

    return edit


def test_prod_cannot_turn_falco_off_without_a_reason():
    with pytest.raises(SettingsError) as err:
        load_variant("prod", _set(enabled=False))
    [problem] = err.value.problems
    assert problem.startswith("secstack:runtime.enabled:") and "secstack:runtime.reason" in problem
    assert load_variant("prod", _set(enabled=False, reason="SEC-77: replaced by Sysdig Secure")).runtime.enabled is False


@pytest.mark.parametrize(
    "override, key",
    [
        ({"minimumPriority": "error"}, "minimumPriority"),
        ({"alertMinimumPriority": "critical"}, "alertMinimumPriority"),
        ({"trustedNamespaces": ["kube-system", "falco", "trivy-system", "payments"]}, "trustedNamespaces"),
        ({"leastPrivileged": False}, "leastPrivileged"),
        ({"elasticsearch": {"enabled": False}}, "elasticsearch.enabled"),
    ],
)
def test_prod_weakening_needs_a_reason(override, key):
    with pytest.raises(SettingsError) as err:
        load_variant("prod", _set(**override))
    assert [p.split(":", 2)[1] for p in err.value.problems] == [f"runtime.{key}"]


@pytest.mark.parametrize(
    "override, key, says",
    [
        ({"allowedOutboundCidrs": ["0.0.0.0/0"]}, "allowedOutboundCidrs", "every destination"),
        ({"allowedOutboundCidrs": ["100.64.0.0/10"]}, "allowedOutboundCidrs", "metadata"),
        ({"allowedOutboundCidrs": ["10.0.0.1/8"]}, "allowedOutboundCidrs", "CIDR"),
        ({"allowedOutboundHosts": ["not a host"]}, "allowedOutboundHosts", "host name"),
        ({"minimumPriority": "loud"}, "minimumPriority", "notice"),
        ({"elasticsearch": {"hostport": "http://security-logs-es-http.logging.svc:9200"}}, "elasticsearch.hostport", "https"),
        ({"secretReaderProcesses": ["a-process-name-too-long"]}, "secretReaderProcesses", "15"),
    ],
)
def test_bad_runtime_config_is_rejected_naming_the_key(override, key, says):
    with pytest.raises(SettingsError) as err:
        load_variant("dev", _set(**override))
    [problem] = [p for p in err.value.problems if p.startswith(f"secstack:runtime.{key}")]
    assert says in problem


def test_plaintext_password_reference_is_rejected():
    def edit(raw):
        raw["secstack:secretValues"] = {**raw["secstack:secretValues"], "falco-elasticsearch-password": "hunter2"}

    with pytest.raises(SettingsError) as err:
        load_variant("dev", edit)
    assert any(p.startswith("secstack:secretValues.falco-elasticsearch-password: is plain text") for p in err.value.problems)
