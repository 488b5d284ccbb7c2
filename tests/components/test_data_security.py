"""KMS keys, Secrets Manager entries, RRSA roles and secret delivery, per committed stack, under the mock monitor."""
from __future__ import annotations

import json

import pytest

from tests.conftest import rendered
from tests.helpers.charts import unknown_keys
from tests.helpers.crds import crd_errors

KEY, ALIAS, SECRET = "alicloud:kms/key:Key", "alicloud:kms/alias:Alias", "alicloud:kms/secret:Secret"
ROLE, POLICY, ATTACH = "alicloud:ram/role:Role", "alicloud:ram/policy:Policy", "alicloud:ram/rolePolicyAttachment:RolePolicyAttachment"
PENDING = {"dev": 7, "staging": 14, "prod": 30}
RECOVERY = {"dev": 7, "staging": 14, "prod": 30}
ROLE_ANNOTATION = "pod-identity.alibabacloud.com/role-name"


def by_name(preview, token):
    return {r.name: r for r in preview.of_type(token)}


def test_one_rotated_key_per_purpose_with_alias(stack_preview):
    env = stack_preview.stack
    keys, aliases = by_name(stack_preview, KEY), by_name(stack_preview, ALIAS)
    assert sorted(keys) == ["config-key", "data-key", "logs-key", "secrets-key"]
    for purpose in ("data", "secrets", "config", "logs"):
        key = keys[f"{purpose}-key"].inputs
        assert key["keySpec"] == "Aliyun_AES_256" and key["keyUsage"] == "ENCRYPT/DECRYPT"
        assert key["automaticRotation"] == "Enabled" and key["rotationInterval"] == "365d"
        assert key["pendingWindowInDays"] == PENDING[env]
        assert key["deletionProtection"] == ("Enabled" if env == "prod" else "Disabled")
        assert key["tags"] == {"managed-by": "secstack", "environment": env, "purpose": purpose}
        alias = aliases[f"{purpose}-alias"]
        assert alias.inputs == {"aliasName": f"alias/secstack/{env}/{purpose}", "keyId": keys[f"{purpose}-key"].id}


def test_prod_keys_aliases_and_secrets_survive_destroy(stack_preview):
    prod = stack_preview.stack == "prod"
    for token in (KEY, ALIAS, SECRET):
        registrations = stack_preview.of_type(token)
        assert registrations
        for r in registrations:
            assert r.options["protect"] is prod and r.options["retainOnDelete"] is prod, (token, r.name)


def test_every_secret_is_encrypted_with_the_secrets_key(stack_preview):
    env = stack_preview.stack
    secrets_key = by_name(stack_preview, KEY)["secrets-key"].id
    secrets = by_name(stack_preview, SECRET)
    assert sorted(secrets) == ["orders-db-password", "stripe-api-key"]
    for name, r in secrets.items():
        assert r.inputs["encryptionKeyId"] == secrets_key
        assert r.inputs["secretName"] == f"secstack/{env}/{name}"
        assert r.inputs["versionId"] == "v1"
        assert r.inputs["recoveryWindowInDays"] == RECOVERY[env]
        assert r.inputs["forceDeleteWithoutRecovery"] is False
        assert r.redacted_inputs()["secretData"] == "[secret]"
    stripe, db = secrets["stripe-api-key"].inputs, secrets["orders-db-password"].inputs
    assert stripe["secretType"] == "Generic" and stripe["enableAutomaticRotation"] is False and "rotationInterval" not in stripe
    assert db["secretType"] == "Rds" and db["enableAutomaticRotation"] is True
    assert db["rotationInterval"] == ("7d" if env == "prod" else "30d")
    assert json.loads(db["extendedConfig"]) == {"CustomData": {}, "DBInstanceId": f"rm-orders-{env}-demo", "SecretSubType": "SingleUser"}


def trust(role) -> dict:
    document = json.loads(role.inputs["assumeRolePolicyDocument"])
    assert document["Version"] == "1"
    (statement,) = document["Statement"]
    assert statement["Action"] == "sts:AssumeRole" and statement["Effect"] == "Allow"
    return statement


@pytest.mark.parametrize("name, subject", [
    ("orders-orders-api", "system:serviceaccount:orders:orders-api"),
    ("payments-payments-api", "system:serviceaccount:payments:payments-api"),
    ("ack-secret-manager", "system:serviceaccount:secrets-system:ack-secret-manager"),
])
def test_trust_policy_pins_issuer_audience_and_service_account(stack_preview, name, subject):
    rrsa = stack_preview.settings.cluster.rrsa
    statement = trust(by_name(stack_preview, ROLE)[name])
    assert statement["Principal"] == {"Federated": [rrsa.oidc_provider_arn]}
    assert statement["Condition"] == {
        "StringEquals": {"oidc:iss": str(rrsa.oidc_issuer_url), "oidc:aud": "sts.aliyuncs.com", "oidc:sub": subject}
    }


def test_only_consumers_get_roles(stack_preview):
    env = stack_preview.stack
    roles = by_name(stack_preview, ROLE)
    assert sorted(roles) == ["ack-secret-manager", "orders-orders-api", "payments-payments-api"]
    assert {r.inputs["roleName"] for r in roles.values()} == {
        f"secstack-{env}-orders-orders-api", f"secstack-{env}-payments-payments-api", f"secstack-{env}-secrets-system-ack-secret-manager"
    }
    assert all(r.inputs["maxSessionDuration"] == 3600 for r in roles.values())


def policy(preview, name) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    document = json.loads(by_name(preview, POLICY)[name].inputs["policyDocument"])
    assert document["Version"] == "1"
    assert all(s["Effect"] == "Allow" for s in document["Statement"])
    return [(tuple(s["Action"]), tuple(s["Resource"])) for s in document["Statement"]]


def test_ram_policies_list_exact_actions_and_resources(stack_preview):
    keys = {n.removesuffix("-key"): r.state["arn"] for n, r in by_name(stack_preview, KEY).items()}
    secrets = {n: r.state["arn"] for n, r in by_name(stack_preview, SECRET).items()}
    assert policy(stack_preview, "payments-payments-api") == [
        (("kms:GetSecretValue",), (secrets["stripe-api-key"],)),
        (("kms:Decrypt",), (keys["secrets"],)),
        (("kms:Decrypt", "kms:GenerateDataKey"), (keys["data"],)),
    ]
    assert policy(stack_preview, "orders-orders-api") == [
        (("kms:GetSecretValue",), (secrets["orders-db-password"],)),
        (("kms:Decrypt",), (keys["secrets"],)),
        (("kms:Decrypt", "kms:GenerateDataKey"), (keys["data"],)),
    ]
    assert policy(stack_preview, "ack-secret-manager") == [
        (("kms:GetSecretValue",), tuple(sorted(secrets.values()))),
        (("kms:Decrypt",), (keys["secrets"],)),
    ]
    policies = by_name(stack_preview, POLICY)
    for attachment in stack_preview.of_type(ATTACH):
        assert attachment.inputs["policyType"] == "Custom"
        assert attachment.inputs["policyName"] == policies[attachment.name].inputs["policyName"]
        assert attachment.inputs["roleName"] == by_name(stack_preview, ROLE)[attachment.name].inputs["roleName"]
    assert len(stack_preview.of_type(ATTACH)) == 3


def test_consuming_service_accounts_are_annotated_and_namespaces_injected(stack_preview):
    env = stack_preview.stack
    for ns, sa in (("orders", "orders-api"), ("payments", "payments-api")):
        (account,) = stack_preview.find("ServiceAccount", sa, ns)
        assert account["metadata"]["annotations"] == {ROLE_ANNOTATION: f"secstack-{env}-{ns}-{sa}"}
        assert account["automountServiceAccountToken"] is False
        (namespace,) = stack_preview.find("Namespace", ns)
        assert namespace["metadata"]["labels"]["pod-identity.alibabacloud.com/injection"] == "on"
    (web,) = stack_preview.find("ServiceAccount", "storefront-web", "storefront")
    assert ROLE_ANNOTATION not in (web["metadata"].get("annotations") or {})
    (storefront,) = stack_preview.find("Namespace", "storefront")
    assert "pod-identity.alibabacloud.com/injection" not in storefront["metadata"]["labels"]


def test_secret_store_per_consuming_namespace_uses_rrsa(stack_preview):
    rrsa = stack_preview.settings.cluster.rrsa
    controller_arn = by_name(stack_preview, ROLE)["ack-secret-manager"].state["arn"]
    stores = stack_preview.find("SecretStore")
    assert sorted(s["metadata"]["namespace"] for s in stores) == ["orders", "payments"]
    for store in stores:
        assert crd_errors(store) == []
        assert store["spec"] == {"KMS": {"KMSAuth": {
            "oidcProviderARN": rrsa.oidc_provider_arn,
            "ramRoleARN": controller_arn,
            "oidcTokenFilePath": "/var/run/secrets/tokens/ack-secret-manager",
            "ramRoleSessionName": f"secstack-{store['metadata']['namespace']}",
            "roleSessionExpiration": "3600",
        }}}
        assert "accessKey" not in json.dumps(store)


def test_one_external_secret_per_entry_into_the_consuming_namespace(stack_preview):
    env = stack_preview.stack
    found = {(e["metadata"]["namespace"], e["metadata"]["name"]): e for e in stack_preview.find("ExternalSecret")}
    assert sorted(found) == [("orders", "orders-db-password"), ("payments", "stripe-api-key")]
    for (ns, name), external in found.items():
        assert crd_errors(external) == []
        (item,) = external["spec"]["data"]
        assert item["key"] == f"secstack/{env}/{name}"
        assert item["versionStage"] == "ACSCurrent" and "versionId" not in item
        assert item["secretStoreRef"] == {"name": "secstack-kms", "namespace": ns}
    assert found[("payments", "stripe-api-key")]["spec"]["data"][0]["name"] == "api-key"
    assert found[("orders", "orders-db-password")]["spec"]["data"][0]["name"] == "password"


def test_ack_secret_manager_release_is_pinned_and_uses_rrsa(stack_preview):
    (release,) = [r for r in stack_preview.helm_releases() if r["name"] == "ack-secret-manager"]
    assert (release["chart"], release["version"], release["namespace"]) == ("ack-secret-manager", "0.5.8", "secrets-system")
    assert release["repo"] == "https://aliyuncontainerservice.github.io/ack-secret-manager"
    values = release["values"]
    assert unknown_keys("ack-secret-manager", values) == []
    assert values["rrsa"] == {"enable": True}
    assert values["serviceAccount"]["name"] == "ack-secret-manager"
    assert values["command"]["region"] == stack_preview.settings.cluster.region
    assert values["securityContext"]["runAsNonRoot"] is True
    assert "envVarsFromSecret" not in values  # no static AccessKey for the controller
    (namespace,) = stack_preview.find("Namespace", "secrets-system")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"


def test_data_security_comes_after_the_mesh_and_before_admission():
    preview = rendered("prod")
    order = [r.type for r in preview.resources if not r.custom]
    assert order.index("secstack:mesh:IstioMesh") < order.index("secstack:data:DataSecurity")
    if "secstack:admission:Gatekeeper" in order:
        assert order.index("secstack:data:DataSecurity") < order.index("secstack:admission:Gatekeeper")
    (data,) = preview.of_type("secstack:data:DataSecurity")
    # A dependency on a component is recorded as dependencies on its children.
    assert any("secstack:mesh:IstioMesh$kubernetes:helm.sh/v3:Release::istiod" in d for d in data.dependencies)


def test_team_roles_cannot_manage_secret_delivery(stack_preview):
    # Any ExternalSecret may name any SecretStore, so only the platform may create them.
    team_namespaces = {ns for team in stack_preview.settings.teams for ns in team.namespaces}
    for role in stack_preview.find("Role"):
        if role["metadata"]["namespace"] not in team_namespaces:
            continue  # platform roles (e.g. the CA copy, limited by resourceNames) are reviewed in their own tests
        for rule in role.get("rules") or []:
            assert "alibabacloud.com" not in rule.get("apiGroups", []), role["metadata"]
            assert "secrets" not in rule.get("resources", []) or role["metadata"]["namespace"] in ("secrets-system",), role["metadata"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_managed_cluster_enables_rrsa_and_encrypts_secrets_with_the_secrets_key(tmp_path, stack):
    import yaml

    from secstack import preview as preview_mod
    from stacks.config import STACKS_DIR

    document = yaml.safe_load((STACKS_DIR / f"Pulumi.{stack}.yaml").read_text())
    cluster = document["config"]["secstack:cluster"]
    cluster["rrsa"] = {"enabled": True}
    cluster["managed"] = {"vswitchIds": ["vsw-demo-a", "vsw-demo-b"], "podVswitchIds": ["vsw-pods-a"]}
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    preview = preview_mod.run(stack, tmp_path, checks=False)

    (managed,) = preview.of_type("alicloud:cs/managedKubernetes:ManagedKubernetes")
    inputs = managed.inputs
    assert inputs["enableRrsa"] is True
    assert inputs["encryptionProviderKey"] == by_name(preview, KEY)["secrets-key"].id
    assert inputs["disableEncryption"] is False
    assert inputs["deletionProtection"] is (stack == "prod")
    assert inputs["slbInternetEnabled"] is False
    assert [a["name"] for a in inputs["addons"]] == ["ack-pod-identity-webhook"]
    assert managed.options["protect"] is (stack == "prod") and managed.options["retainOnDelete"] is (stack == "prod")
    metadata = managed.state["rrsaMetadata"]
    statement = trust(by_name(preview, ROLE)["payments-payments-api"])
    assert statement["Principal"] == {"Federated": [metadata["ramOidcProviderArn"]]}
    assert statement["Condition"]["StringEquals"]["oidc:iss"] == metadata["rrsaOidcIssuerUrl"]
    (store,) = preview.find("SecretStore", namespace="payments")
    assert store["spec"]["KMS"]["KMSAuth"]["oidcProviderARN"] == metadata["ramOidcProviderArn"]
