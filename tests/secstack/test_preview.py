"""The offline preview: what it records, what it writes, and that it never prints a secret."""
from __future__ import annotations

import asyncio
import contextvars
import json

import pulumi
import pulumi_kubernetes as k8s
import yaml

from secstack import preview
from secstack.capture import REDACTED, CapturingMonitor
from secstack.cli import main
from tests.conftest import rendered


def _capture(program) -> CapturingMonitor:
    monitor = CapturingMonitor()

    def run():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        pulumi.runtime.set_mocks(monitor.mocks, project="secstack", stack="t", preview=True, monitor=monitor)
        program()
        loop.run_until_complete(pulumi.runtime.stack.wait_for_rpcs())
        loop.close()

    contextvars.Context().run(run)
    return monitor


def test_monitor_records_safety_options_parent_and_dependencies():
    def program():
        ns = k8s.core.v1.Namespace("ns", metadata={"name": "a"}, opts=pulumi.ResourceOptions(protect=True, retain_on_delete=True))
        k8s.core.v1.ConfigMap(
            "cm",
            metadata={"name": "c", "namespace": "a"},
            data={"k": "v"},
            opts=pulumi.ResourceOptions(parent=ns, depends_on=[ns], delete_before_replace=True, ignore_changes=["data"]),
        )

    regs = {r.name: r for r in _capture(program).registrations}
    assert regs["ns"].options["protect"] is True and regs["ns"].options["retainOnDelete"] is True
    cm = regs["cm"]
    assert cm.options["protect"] is True, "protect is inherited from the parent, as the engine sees it"
    assert cm.options["deleteBeforeReplace"] is True and cm.options["ignoreChanges"] == ["data"]
    assert cm.parent == regs["ns"].urn and regs["ns"].urn in cm.dependencies
    assert cm.urn.endswith("kubernetes:core/v1:Namespace$kubernetes:core/v1:ConfigMap::cm")


def test_secrets_are_redacted_but_recognisable_as_secret():
    def program():
        k8s.core.v1.Secret("s", metadata={"name": "s", "namespace": "a"}, string_data={"token": pulumi.Output.secret("hunter2")})

    [secret] = _capture(program).registrations
    assert secret.redacted_inputs()["stringData"] == {"token": REDACTED}, "shape kept, value dropped"
    assert "hunter2" not in json.dumps(secret.redacted_inputs())
    assert secret.plain_inputs()["stringData"] == {"token": "hunter2"}


def test_integral_numbers_come_back_as_integers():
    quota = rendered("dev").find("ResourceQuota")[0]
    limit_range = rendered("dev").find("LimitRange")
    assert limit_range and isinstance(rendered("dev").helm_releases()[0]["values"], dict)
    payments = rendered("dev").find("AuthorizationPolicy", "allow-payments-api-callers")[0]
    assert payments["spec"]["rules"][0]["to"][0]["operation"]["ports"] == ["8443"]
    assert quota["spec"]["hard"]["pods"] == "20"
    istiod = next(r for r in rendered("prod").helm_releases() if r["name"] == "istiod")
    assert istiod["values"]["replicaCount"] == 3 and isinstance(istiod["values"]["replicaCount"], int)


def test_preview_writes_plan_manifests_and_verdicts(tmp_path, capsys):
    code = main(["preview", "prod", "--out", str(tmp_path)])
    output = capsys.readouterr().out
    assert code == 0, output
    target = tmp_path / "prod"
    plan = json.loads((target / "plan.json").read_text())
    assert plan["environment"] == "prod" and "no diff against live state" in plan["note"]
    by_name = {r["name"]: r for r in plan["resources"]}
    platform = by_name["secstack"]
    assert platform["type"] == "secstack:platform:SecurityPlatform" and platform["custom"] is False
    ns = by_name["orders"] if by_name["orders"]["custom"] else next(r for r in plan["resources"] if r["type"] == "kubernetes:core/v1:Namespace" and r["name"] == "orders")
    assert ns["parent"].endswith("secstack:teams:Team::orders")
    assert set(ns["options"]) >= {"protect", "retainOnDelete", "deleteBeforeReplace", "ignoreChanges", "provider"}
    assert sum(plan["counts"].values()) == len(plan["resources"])

    files = sorted(p.name for p in (target / "manifests").iterdir())
    assert "orders.authorizationpolicy.deny-all.yaml" in files
    assert "_cluster.namespace.orders.yaml" in files
    obj = yaml.safe_load((target / "manifests" / "istio-system.peerauthentication.default.yaml").read_text())
    assert obj["spec"]["mtls"]["mode"] == "STRICT"
    releases = yaml.safe_load((target / "manifests" / "helm-releases.yaml").read_text())["items"]
    assert {r["name"]: r["version"] for r in releases}["istiod"] == "1.30.3"
    assert all(r["repo"] and r["chart"] and "values" in r for r in releases)
    assert json.loads((target / "verdicts.json").read_text())["stack"] == "prod"
    assert json.loads((target / "verdicts.sarif").read_text())["version"] == "2.1.0"

    assert "secstack:platform:SecurityPlatform  secstack" in output
    assert "secstack:mesh:IstioMesh  mesh" in output
    assert f"{len(plan['resources'])} resources" in output


def test_secure_values_never_reach_the_output(tmp_path):
    result = preview.run("prod", reveal=lambda name, _: f"PLAINTEXT-{name}")
    target = preview.write(result, tmp_path)
    text = (target / "plan.json").read_text() + "".join(p.read_text() for p in (target / "manifests").iterdir())
    assert "PLAINTEXT-" not in text
    ciphertexts = [line.split("secure:")[1].strip() for line in preview.stack_file("prod").read_text().splitlines() if "secure:" in line]
    assert ciphertexts and not any(c in text for c in ciphertexts), "ciphertexts are not copied into the output either"


def test_fast_and_careful_normalisation_agree_on_every_resource():
    from secstack.capture import normalize

    resources = rendered("prod").resources
    with_secrets = [r for r in resources if r._without_secrets() is None]
    assert with_secrets, "prod has secret inputs, which must take the careful path"
    for r in resources:
        assert r.plain_inputs() == normalize(r.inputs, redact=False)
        assert r.redacted_inputs() == normalize(r.inputs, redact=True)
        if r in with_secrets:
            assert r.plain_inputs() != r.redacted_inputs()
