"""The checkout team's program under Pulumi's mocks: what it declares, without a cluster or a cloud account."""
from __future__ import annotations

import asyncio
import contextvars
import json

import pulumi
import pytest
from pulumi.runtime import rpc


class Recorder(pulumi.runtime.Mocks):
    def __init__(self):
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args):
        self.resources.append(args)
        state = dict(args.inputs)
        if args.typ.startswith("alicloud:"):
            state["arn"] = f"acs:mock::0000:{args.typ.rsplit(':', 1)[-1].lower()}/{args.name}"
        return [f"{args.name}-id", state]

    def call(self, args):
        return {}

    def of(self, typ: str) -> dict[str, dict]:
        return {r.name: r.inputs for r in self.resources if r.typ == typ}


@pytest.fixture(scope="module")
def declared() -> Recorder:
    # A fresh context and event loop: the SDK keeps its settings in context variables and its loop per thread, and
    # other Pulumi programs may have run in this process before (the main test suite runs these tests too).
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return contextvars.Context().run(_declare)
    finally:
        loop.close()
        asyncio.set_event_loop(None)


def _declare() -> Recorder:
    recorder = Recorder()
    pulumi.runtime.set_mocks(recorder, project="checkout-team", stack="prod", preview=False)
    import app_team

    @pulumi.runtime.test
    def run():
        out = app_team.declare({
            "environment": "prod", "region": "cn-hangzhou", "issuer": "https://auth.shop.example.com/", "audience": "shop-api",
            "secrets_key_id": "key-1", "secrets_key_arn": "acs:kms:cn-hangzhou:1:key/key-1",
            "oidc_issuer_url": "https://oidc.example.com/c1", "oidc_provider_arn": "acs:ram::1:oidc-provider/ack-rrsa-c1",
            "provider_token": pulumi.Output.secret("tok-123"),
        })
        return pulumi.Output.all(*out.values())

    run()
    return recorder


def test_team_namespace_is_restricted_and_default_deny(declared):
    ns = declared.of("kubernetes:core/v1:Namespace")["checkout"]
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    policies = declared.of("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    assert policies["checkout-default-deny"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    roles = declared.of("kubernetes:rbac.authorization.k8s.io/v1:Role")
    assert not any("secrets" in r["resources"] for role in roles.values() for r in role["rules"])


def test_service_requires_a_jwt_through_the_gateway(declared):
    policies = declared.of("kubernetes:security.istio.io/v1:AuthorizationPolicy")
    assert policies["checkout-deny-all"]["spec"] == {}
    rule = policies["checkout-api-require-jwt"]["spec"]["rules"][0]
    assert rule["from"][0]["source"] == {"principals": ["cluster.local/ns/istio-ingress/sa/istio-ingressgateway"],
                                         "requestPrincipals": ["https://auth.shop.example.com//*"]}
    jwt = declared.of("kubernetes:security.istio.io/v1:RequestAuthentication")["checkout-api-jwt"]["spec"]["jwtRules"][0]
    assert jwt["issuer"] == "https://auth.shop.example.com/" and jwt["audiences"] == ["shop-api"]


def test_secret_is_encrypted_protected_and_delivered_to_the_service_only(declared):
    secret = declared.of("alicloud:kms/secret:Secret")["payment-provider-token"]
    assert secret["encryptionKeyId"] == "key-1" and secret["secretName"] == "checkout/prod/payment-provider-token"
    # The value reaches the engine wrapped as a secret (encrypted in state, masked in output), never as plain text.
    assert secret["secretData"] == {rpc._special_sig_key: rpc._special_secret_sig, "value": "tok-123"}  # noqa: SLF001
    delivered = declared.of("kubernetes:alibabacloud.com/v1alpha1:ExternalSecret")
    assert [s["metadata"]["namespace"] for s in delivered.values()] == ["checkout"]
    policy = json.loads(next(iter(declared.of("alicloud:ram/policy:Policy").values()))["policyDocument"])
    assert all("*" not in a for st in policy["Statement"] for a in st["Action"])
