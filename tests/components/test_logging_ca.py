"""ElasticsearchCaDelivery per committed stack: least-privilege RBAC on the two named Secrets, a restricted pod
that passes the stack's own admission constraints, strict schemas, the target falcosidekick really mounts, and
the copy script itself run against a stub API."""
from __future__ import annotations

import base64
import copy
import json
import os
import subprocess

import kubernetes_validate
import pytest

from components import logging_ca as ca
from components import logging_config as cfg
from components.runtime import NAMESPACE as FALCO_NAMESPACE
from secstack.admission_constraints import constraints_for
from secstack.gatekeeper import Engine
from secstack.preview import load_stack
from tests.conftest import STACKS, rendered

TOKEN = "sa-token-must-not-leak"


def _one(stack, kind, name, namespace):
    found = rendered(stack).find(kind, name, namespace)
    assert len(found) == 1, f"{stack}: expected one {kind} {namespace}/{name}, found {len(found)}"
    return found[0]


def _mounted_ca_secret(stack) -> str:
    [release] = [r for r in rendered(stack).helm_releases() if r["namespace"] == FALCO_NAMESPACE and r["chart"] == "falco"]
    volumes = release["values"]["falcosidekick"]["extraVolumes"]
    [volume] = [v for v in volumes if v["name"] == "elasticsearch-ca"]
    assert volume["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    return volume["secret"]["secretName"]


def _ours(stack):
    objects = []
    for _, obj in rendered(stack).kubernetes_objects():
        name = obj["metadata"]["name"]
        if name in (ca.NAME, "es-ca-copy") or name.startswith("es-ca-copy-") or obj["metadata"].get("annotations", {}).get("secstack.io/filled-by"):
            objects.append(obj)
    return objects


@pytest.mark.parametrize("stack", STACKS)
def test_target_is_the_secret_falcosidekick_mounts(stack):
    target = _mounted_ca_secret(stack)
    secret = _one(stack, "Secret", target, FALCO_NAMESPACE)
    assert not secret.get("data") and not secret.get("stringData"), "pre-created empty; the Job fills in ca.crt"
    for kind in ("Job", "CronJob"):
        [job] = [o for o in _ours(stack) if o["kind"] == kind]
        template = job["spec"]["template"] if kind == "Job" else job["spec"]["jobTemplate"]["spec"]["template"]
        env = {e["name"]: e["value"] for e in template["spec"]["containers"][0]["env"]}
        assert (env["TARGET_NAMESPACE"], env["TARGET_SECRET"]) == (FALCO_NAMESPACE, target)
        assert (env["SOURCE_NAMESPACE"], env["SOURCE_SECRET"]) == (cfg.NAMESPACE, cfg.ES_CA_SECRET)


@pytest.mark.parametrize("stack", STACKS)
def test_roles_allow_only_the_named_secrets_and_verbs(stack):
    target = _mounted_ca_secret(stack)
    expected = {cfg.NAMESPACE: (cfg.ES_CA_SECRET, ["get"]), FALCO_NAMESPACE: (target, ["patch"])}
    for namespace, (secret, verbs) in expected.items():
        role = _one(stack, "Role", ca.NAME, namespace)
        assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": [secret], "verbs": verbs}]
        binding = _one(stack, "RoleBinding", ca.NAME, namespace)
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ca.NAME}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": ca.NAME, "namespace": cfg.NAMESPACE}]
    for obj in _ours(stack):
        for rule in obj.get("rules", []):
            assert "*" not in json.dumps(rule) and "create" not in rule["verbs"] and "list" not in rule["verbs"]
    assert not [o for o in _ours(stack) if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    assert _one(stack, "ServiceAccount", ca.NAME, cfg.NAMESPACE)["automountServiceAccountToken"] is False


@pytest.mark.parametrize("stack", STACKS)
def test_pod_is_restricted_and_passes_the_stack_admission_constraints(stack):
    settings, _ = load_stack(stack)
    constraints = constraints_for(settings)
    workloads = [o for o in _ours(stack) if o["kind"] in ("Job", "CronJob")]
    assert sorted(o["kind"] for o in workloads) == ["CronJob", "Job"]
    engine = Engine()
    for obj in workloads:
        reported = engine.evaluate(obj, constraints)  # not even a warning
        assert not reported, "\n".join(f"{v.kind} {v.enforcement_action} {v.namespace}/{v.name}: {v.message}" for v in reported)
    cron = next(o for o in workloads if o["kind"] == "CronJob")
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] == ca.NAME
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    [container] = pod["containers"]
    assert container["image"] == ca.IMAGE and ":" in container["image"] and not container["image"].endswith(":latest")
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                            "readOnlyRootFilesystem": True, "runAsNonRoot": True}
    assert set(container["resources"]["requests"]) == set(container["resources"]["limits"]) == {"cpu", "memory"}
    # A privileged variant is reported (denied in prod, warned in dev), or the check above proves nothing.
    bad = copy.deepcopy(cron)
    bad["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
    actions = {v.enforcement_action for v in engine.evaluate(bad, constraints) if v.kind == "K8sPSPPrivilegedContainer"}
    assert actions and (stack != "prod" or actions == {"deny"})


@pytest.mark.parametrize("stack", STACKS)
def test_uses_the_lifecycle_jobs_image(stack):
    [lifecycle] = [j for j in rendered(stack).find("Job", namespace=cfg.NAMESPACE) if j["metadata"]["name"].startswith("log-lifecycle-")]
    assert lifecycle["spec"]["template"]["spec"]["containers"][0]["image"] == ca.IMAGE


@pytest.mark.parametrize("stack", STACKS)
def test_network_policy_lets_only_the_copy_pod_reach_the_api_server(stack):
    assert _one(stack, "NetworkPolicy", "default-deny", cfg.NAMESPACE)["spec"]["policyTypes"] == ["Ingress", "Egress"]
    spec = _one(stack, "NetworkPolicy", "es-ca-copy", cfg.NAMESPACE)["spec"]
    assert spec["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "es-ca-copy"}}
    assert "ingress" not in spec and set(spec["policyTypes"]) == {"Ingress", "Egress"}
    assert [p["port"] for rule in spec["egress"] for p in rule["ports"]] == [443, 6443]


@pytest.mark.parametrize("stack", STACKS)
def test_built_in_objects_pass_the_strict_kubernetes_schema(stack):
    objects = _ours(stack)
    assert {o["kind"] for o in objects} == {"ServiceAccount", "Role", "RoleBinding", "Secret", "ConfigMap", "NetworkPolicy", "Job", "CronJob"}
    for obj in objects:
        kubernetes_validate.validate(obj, "1.35.0", strict=True)


@pytest.mark.parametrize("stack", STACKS)
def test_delivery_runs_after_falco(stack):
    [registration] = rendered(stack).of_type("secstack:logging:ElasticsearchCaDelivery")
    deps = " ".join(registration.dependencies)
    assert "secstack:runtime:Falco" in deps and "secstack:logging:SecurityLogging" in deps


# --- the script, against a stub `curl` that records what it is asked -------------------------------------------------

PEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"


def _run_script(tmp_path, source_data: dict) -> tuple[subprocess.CompletedProcess, list[dict]]:
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text(TOKEN)
    (sa / "ca.crt").write_text("cluster-ca")
    log = tmp_path / "calls.jsonl"
    source = {"kind": "Secret", "metadata": {"name": cfg.ES_CA_SECRET, "managedFields": [{"fieldsV1": {"f:data": {"f:ca.crt": {}}}}]},
              "data": source_data}
    (tmp_path / "source.json").write_text(json.dumps(source, indent=2))
    stub = tmp_path / "bin" / "curl"
    stub.parent.mkdir()
    stub.write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        f"args = sys.argv[1:]\nconfig = sys.stdin.read() if '-K' in args else ''\n"
        f"open({str(log)!r}, 'a').write(json.dumps({{'args': args, 'config': config}}) + '\\n')\n"
        "if '-X' not in args:\n"
        f"    sys.stdout.write(open({str(tmp_path / 'source.json')!r}).read())\n"
    )
    stub.chmod(0o755)
    env = {"PATH": f"{stub.parent}:{os.environ['PATH']}", "SA_DIR": str(sa), "KUBERNETES_SERVICE_HOST": "10.0.0.1",
           "KUBERNETES_SERVICE_PORT": "443", "SOURCE_NAMESPACE": cfg.NAMESPACE, "SOURCE_SECRET": cfg.ES_CA_SECRET,
           "TARGET_NAMESPACE": FALCO_NAMESPACE, "TARGET_SECRET": "target-ca"}
    done = subprocess.run(["sh", "-c", ca.COPY_SCRIPT], env=env, capture_output=True, text=True, timeout=30)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return done, calls


def test_script_copies_only_ca_crt_and_keeps_the_token_off_the_command_line(tmp_path):
    b64 = base64.b64encode(PEM.encode()).decode()
    done, calls = _run_script(tmp_path, {"ca.crt": b64, "tls.crt": base64.b64encode(b"server cert").decode()})
    assert done.returncode == 0, done.stderr
    get, patch = calls
    assert get["args"][-1] == f"https://10.0.0.1:443/api/v1/namespaces/{cfg.NAMESPACE}/secrets/{cfg.ES_CA_SECRET}"
    assert patch["args"][-1] == f"https://10.0.0.1:443/api/v1/namespaces/{FALCO_NAMESPACE}/secrets/target-ca"
    assert "PATCH" in patch["args"] and "Content-Type: application/merge-patch+json" in patch["args"]
    body = json.loads(patch["args"][patch["args"].index("--data-binary") + 1])
    assert body == {"data": {"ca.crt": b64}}, "only ca.crt, never tls.crt"
    for call in calls:
        assert TOKEN not in " ".join(call["args"]) and TOKEN in call["config"]
        assert "--fail" in call["args"] and "--cacert" in call["args"]


@pytest.mark.parametrize("data, reason", [
    ({}, "no ca.crt"),
    ({"ca.crt": base64.b64encode(b"-----BEGIN PRIVATE KEY-----\nx\n").decode()}, "private key"),
    ({"ca.crt": base64.b64encode(b"garbage").decode()}, "not a PEM certificate"),
])
def test_script_refuses_anything_but_a_certificate(tmp_path, data, reason):
    done, calls = _run_script(tmp_path, data)
    assert done.returncode != 0 and reason in done.stderr
    assert [c for c in calls if "-X" in c["args"]] == [], "nothing is written"
