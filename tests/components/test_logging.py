"""SecurityLogging per committed stack: ECK cluster shape, TLS, claims, retention, shipper privileges, network."""
from __future__ import annotations

import json

import kubernetes_validate
import pytest
import yaml

from components import logging_config as cfg
from tests.components.logging_render import PLACEHOLDER, args_for, one, render, rendered_logging
from tests.conftest import STACKS
from tests.helpers.charts import unknown_keys
from tests.helpers.crds import crd_errors
from tests.helpers.shared import require_shared

EXPECTED = {  # stack -> (nodes, retention days, claim policy, protected)
    "dev": (1, 7, "DeleteOnScaledownAndClusterDeletion", False),
    "staging": (3, 30, "DeleteOnScaledownAndClusterDeletion", False),
    "prod": (3, 180, "DeleteOnScaledownOnly", True),
}
BUILT_IN = {"", "batch", "rbac.authorization.k8s.io", "networking.k8s.io", "policy"}


def _es(stack):
    return one(rendered_logging(stack), "Elasticsearch", cfg.ES_NAME, cfg.NAMESPACE)


def _files(stack):
    return one(rendered_logging(stack), "ConfigMap", "secstack-log-lifecycle", cfg.NAMESPACE)["data"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_custom_resource_matches_the_upstream_crd(stack):
    require_shared("crds", "eck")
    objects = [o for _, o in rendered_logging(stack).kubernetes_objects() if o["apiVersion"].split("/")[0] not in BUILT_IN and "/" in o["apiVersion"]]
    kinds = {o["kind"] for o in objects}
    assert {"Elasticsearch", "Kibana", "Beat", "Telemetry", "AuthorizationPolicy"} <= kinds
    errors = [e for o in objects for e in crd_errors(o)]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("stack", STACKS)
def test_built_in_objects_pass_the_strict_kubernetes_schema(stack):
    checked = 0
    for registration, obj in rendered_logging(stack).kubernetes_objects():
        if obj["apiVersion"] == "v1" or obj["apiVersion"].split("/")[0] in BUILT_IN:
            # pulumi_kubernetes marks a Secret's whole stringData secret; validate what would be applied.
            kubernetes_validate.validate(registration.plain_inputs() if obj["kind"] == "Secret" else obj, "1.35", strict=True)
            checked += 1
    assert checked >= 18


@pytest.mark.parametrize("stack", STACKS)
def test_node_count_zones_and_claim_policy(stack):
    nodes, _, claim_policy, _ = EXPECTED[stack]
    spec = _es(stack)["spec"]
    [node_set] = spec["nodeSets"]
    assert node_set["count"] == nodes
    assert set(node_set["config"]["node.roles"]) >= {"master", "data"}, "every node is master-eligible and holds data"
    assert spec["volumeClaimDeletePolicy"] == claim_policy
    if nodes > 1:
        assert node_set["zoneAwareness"] == {"topologyKey": "topology.kubernetes.io/zone"}
        assert spec["podDisruptionBudget"]["spec"]["minAvailable"] == nodes - 1
    else:
        assert "zoneAwareness" not in node_set
        assert spec["podDisruptionBudget"]["spec"] == {"maxUnavailable": 1, "selector": spec["podDisruptionBudget"]["spec"]["selector"]}
    [claim] = node_set["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "elasticsearch-data"
    assert claim["spec"]["storageClassName"] == "alicloud-disk-essd"


@pytest.mark.parametrize("stack", STACKS)
def test_elasticsearch_has_requests_limits_and_a_pinned_version(stack):
    spec = _es(stack)["spec"]
    assert spec["version"] == "9.5.0"
    [container] = spec["nodeSets"][0]["podTemplate"]["spec"]["containers"]
    resources = container["resources"]
    assert resources["requests"]["memory"] == resources["limits"]["memory"], "heap is sized from the memory limit"
    assert resources["requests"]["cpu"] and resources["limits"]["cpu"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert spec["nodeSets"][0]["config"]["node.store.allow_mmap"] is False, "no privileged sysctl init container"


@pytest.mark.parametrize("stack", STACKS)
def test_tls_and_security_are_on(stack):
    preview = rendered_logging(stack)
    es = _es(stack)["spec"]
    assert es["http"]["tls"]["selfSignedCertificate"].get("disabled") is not True
    assert cfg.ES_HOST in [san["dns"] for san in es["http"]["tls"]["selfSignedCertificate"]["subjectAltNames"]]
    assert "xpack.security.enabled" not in es["nodeSets"][0]["config"]
    assert es["auth"].get("disableElasticUser") is not True or es["auth"]["fileRealm"]
    kibana = one(preview, "Kibana", cfg.ES_NAME, cfg.NAMESPACE)["spec"]
    assert kibana["elasticsearchRef"] == {"name": cfg.ES_NAME}
    assert kibana["http"]["tls"]["selfSignedCertificate"].get("disabled") is not True
    assert kibana["http"]["service"]["spec"]["type"] == "ClusterIP"
    assert cfg.filebeat_config()["output.elasticsearch"]["hosts"] == ["https://security-logs-es-http.logging.svc:9200"]
    assert cfg.filebeat_config()["output.elasticsearch"]["ssl.verification_mode"] == "full"


@pytest.mark.parametrize("stack", STACKS)
def test_production_data_is_protected_only_in_prod(stack):
    *_, protected = EXPECTED[stack]
    preview = rendered_logging(stack)
    by_name = {r.name: r for r in preview.resources}
    for name in ("security-logs-elasticsearch", "logging", "elastic-operator"):
        assert by_name[name].options["protect"] is protected, name
        assert by_name[name].options["retainOnDelete"] is protected, name


@pytest.mark.parametrize("stack", STACKS)
def test_lifecycle_policy_keeps_each_stream_for_the_stack_retention(stack):
    _, days, _, _ = EXPECTED[stack]
    files = _files(stack)
    policy = json.loads(files["ilm-policy.json"])["policy"]
    assert policy["phases"]["delete"] == {"min_age": f"{days}d", "actions": {"delete": {}}}
    template = json.loads(files["index-template.json"])
    assert template["template"]["settings"]["index.lifecycle.name"] == cfg.LIFECYCLE_POLICY
    assert template["priority"] > 100, "must win over the built-in logs-*-* template and its never-deleting policy"
    assert template["data_stream"] == {}
    assert sorted(template["index_patterns"]) == sorted(
        ["logs-kubernetes.container-*", "logs-istio.access-*", "logs-gatekeeper.admission-*", "logs-falco-*"]
    )
    nodes = EXPECTED[stack][0]
    assert template["template"]["settings"]["index.number_of_replicas"] == (0 if nodes == 1 else 1)
    # The Job that applies them is renamed (so re-run) when the content changes.
    [job] = rendered_logging(stack).find("Job", namespace=cfg.NAMESPACE)
    assert job["metadata"]["name"] == f"log-lifecycle-{cfg.checksum(files)}"


def test_changing_retention_changes_the_lifecycle_job():
    longer = render(lambda: args_for("prod", retentionDays=365))
    [job] = longer.find("Job", namespace=cfg.NAMESPACE)
    [prod_job] = rendered_logging("prod").find("Job", namespace=cfg.NAMESPACE)
    assert job["metadata"]["name"] != prod_job["metadata"]["name"]
    policy = json.loads(one(longer, "ConfigMap", "secstack-log-lifecycle")["data"]["ilm-policy.json"])
    assert policy["policy"]["phases"]["delete"]["min_age"] == "365d"


@pytest.mark.parametrize("stack", STACKS)
def test_lifecycle_job_runs_restricted(stack):
    [job] = rendered_logging(stack).find("Job", namespace=cfg.NAMESPACE)
    pod = job["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    [container] = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert "--netrc-file" in cfg.APPLY_SCRIPT and "-u " not in cfg.APPLY_SCRIPT, "the password never sits on a command line"


@pytest.mark.parametrize("stack", STACKS)
def test_shipper_reads_host_logs_read_only_without_privilege(stack):
    beat = one(rendered_logging(stack), "Beat", cfg.SHIPPER_NAME, cfg.NAMESPACE)["spec"]
    assert beat["type"] == "filebeat" and "elasticsearchRef" not in beat, "own least-privilege user, not ECK's"
    pod = beat["daemonSet"]["podTemplate"]["spec"]
    [container] = pod["containers"]
    context = container["securityContext"]
    assert context["privileged"] is False and context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]} and context["readOnlyRootFilesystem"] is True
    assert context["runAsUser"] == 0, "root only to read the kubelet's root-owned 0640 log files"
    host_volumes = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    for name, path in host_volumes.items():
        if path.startswith("/var/log"):
            assert mounts[name].get("readOnly") is True, f"{path} must be mounted read-only"
    assert set(host_volumes.values()) == {"/var/log/containers", "/var/log/pods", "/var/lib/secstack/filebeat-data"}
    assert not pod.get("hostNetwork") and not pod.get("hostPID")


def test_shipper_and_sidekick_roles_can_only_append():
    for role in ("secstack_log_shipper", "secstack_falco_writer"):
        for index in cfg.ROLES[role]["indices"]:
            assert set(index["privileges"]) == {"create_doc", "auto_configure"}, role
        assert cfg.ROLES[role]["cluster"] == ["monitor"]
    assert cfg.ROLES["secstack_falco_writer"]["indices"][0]["names"] == ["logs-falco-*"]
    assert yaml.safe_load(cfg.roles_yaml()) == cfg.ROLES


def test_filebeat_routes_each_source_to_its_own_stream():
    output = cfg.filebeat_config()["output.elasticsearch"]
    assert output["index"] == "logs-kubernetes.container-default"
    routes = {r["index"]: r["when"] for r in output["indices"]}
    assert {"equals": {"kubernetes.container.name": "istio-proxy"}} in routes["logs-istio.access-default"]["and"]
    assert routes["logs-gatekeeper.admission-default"] == {"equals": {"kubernetes.namespace": "gatekeeper-system"}}
    [stream_input] = cfg.filebeat_config()["filebeat.inputs"]
    assert "add_kubernetes_metadata" in stream_input["processors"][0]
    assert output["password"] == "${SHIPPER_PASSWORD}"


@pytest.mark.parametrize("stack", STACKS)
def test_no_plaintext_credentials(stack):
    preview = rendered_logging(stack)
    for r in preview.resources:
        assert PLACEHOLDER not in json.dumps(r.redacted_inputs()), f"{r.type} {r.name} carries a password in plain text"
    revealed = [r for r in preview.resources if PLACEHOLDER in json.dumps(r.plain_inputs())]
    assert {r.name for r in revealed} == {"logging-user-setup", "logging-user-shipper", "logging-user-falcosidekick", "logging-lifecycle-netrc"}
    for name, (secret, username, role) in cfg.USERS.items():
        user = one(preview, "Secret", secret, cfg.NAMESPACE)
        data = user["stringData"]
        assert user["type"] == "kubernetes.io/basic-auth" and (data == "[secret]" or data["password"] == "[secret]")
    assert [f["secretName"] for f in _es(stack)["spec"]["auth"]["fileRealm"]] == [s for s, _, _ in cfg.USERS.values()]


@pytest.mark.parametrize("stack", STACKS)
def test_network_policies_let_only_the_named_clients_reach_elasticsearch(stack):
    preview = rendered_logging(stack)
    policies = {p["metadata"]["name"]: p["spec"] for p in preview.find("NetworkPolicy", namespace=cfg.NAMESPACE)}
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    http, transport = policies["elasticsearch"]["ingress"]
    assert http["ports"] == [{"protocol": "TCP", "port": 9200}]
    sources = http["from"]
    assert {"podSelector": {"matchLabels": {"beat.k8s.elastic.co/name": cfg.SHIPPER_NAME}}} in sources
    assert {"podSelector": {"matchLabels": {"kibana.k8s.elastic.co/name": cfg.ES_NAME}}} in sources
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "falco"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "falcosidekick"}}} in sources
    assert all("podSelector" in s or s == {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "elastic-system"}}} for s in sources)
    assert transport == {"from": [{"podSelector": {"matchLabels": {"elasticsearch.k8s.elastic.co/cluster-name": cfg.ES_NAME}}}], "ports": [{"protocol": "TCP", "port": 9300}]}
    [kibana_in] = policies["kibana"]["ingress"]
    assert [s["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for s in kibana_in["from"]] == ["istio-system", "istio-ingress"]
    assert "ingress" not in policies["shipper"], "nothing connects to the shipper"


@pytest.mark.parametrize("stack", STACKS)
def test_kibana_is_not_exposed_and_only_the_gateway_may_open_it(stack):
    preview = rendered_logging(stack)
    assert not [s for s in preview.find("Service") if s["spec"].get("type") == "LoadBalancer"]
    policy = one(preview, "AuthorizationPolicy", "kibana-allow-gateway", cfg.NAMESPACE)["spec"]
    assert policy["action"] == "ALLOW"
    assert policy["rules"][0]["from"][0]["source"]["principals"] == ["cluster.local/ns/istio-ingress/sa/istio-ingressgateway"]
    assert not preview.find("Gateway"), "no public route unless kibanaHost is set"


def test_kibana_host_adds_a_passthrough_route_limited_to_the_allowed_networks():
    preview = render(lambda: args_for("prod", kibanaHost="kibana.shop.example.com", kibanaAllowedCidrs=["203.0.113.0/24"]))
    gateway = one(preview, "Gateway", "kibana", cfg.NAMESPACE)
    assert gateway["spec"]["servers"][0]["tls"] == {"mode": "PASSTHROUGH"}
    route = one(preview, "VirtualService", "kibana", cfg.NAMESPACE)["spec"]["tls"][0]
    assert route["route"][0]["destination"]["port"] == {"number": 5601}
    deny = one(preview, "AuthorizationPolicy", "kibana-source-ranges", "istio-system")
    assert deny["spec"]["action"] == "DENY"
    assert deny["spec"]["rules"][0]["from"][0]["source"]["notRemoteIpBlocks"] == ["203.0.113.0/24"]
    assert deny["spec"]["rules"][0]["when"] == [{"key": "connection.sni", "values": ["kibana.shop.example.com"]}]
    kibana = one(preview, "Kibana", cfg.ES_NAME)
    assert kibana["spec"]["http"]["tls"]["selfSignedCertificate"]["subjectAltNames"] == [{"dns": "kibana.shop.example.com"}]
    assert kibana["spec"]["config"]["server.publicBaseUrl"] == "https://kibana.shop.example.com"
    virtual_service = one(preview, "VirtualService", "kibana", cfg.NAMESPACE)
    assert not [e for o in (gateway, deny, kibana, virtual_service) for e in crd_errors(o)]


@pytest.mark.parametrize("stack", STACKS)
def test_mesh_access_logging_uses_the_envoy_provider(stack):
    telemetry = one(rendered_logging(stack), "Telemetry", namespace="istio-system")
    assert telemetry["spec"] == {"accessLogging": [{"providers": [{"name": "envoy"}]}]}
    assert "selector" not in telemetry["spec"], "root namespace, no selector: the whole mesh"


def test_operator_release_is_pinned_and_its_keys_exist_in_the_chart():
    [release] = rendered_logging("prod").helm_releases()
    assert (release["chart"], release["version"], release["repo"]) == ("eck-operator", "3.5.0", "https://helm.elastic.co")
    assert release["namespace"] == cfg.OPERATOR_NAMESPACE
    assert not unknown_keys("eck-operator", release["values"], free_form=("podSecurityContext", "securityContext"))
    assert unknown_keys("eck-operator", {"telemetry": {"disable": True}}) == ["telemetry.disable"], "the check can fail"
    assert release["values"]["managedNamespaces"] == [cfg.NAMESPACE]
    assert release["values"]["telemetry"] == {"disabled": True}
