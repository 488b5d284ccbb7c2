"""`secstack graph`: nodes and edges for a small stack, deterministic text, and the README picture kept fresh."""
from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from secstack import graph, preview
from secstack.cli import main
from tests.conftest import rendered
from tests.helpers.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
SECRET = "v1:ZGVtby1ub25jZQ==:ZGVtby12YWx1ZQ=="

# Two teams: `shop` (public web behind a JWT) calls `billing`'s api, which reads one secret and uses the data key.
SMALL_STACK = textwrap.dedent(f"""\
    config:
      secstack:environment: dev
      secstack:cluster:
        name: tiny
        region: cn-hangzhou
        rrsa:
          oidcIssuerUrl: https://oidc-ack-cn-hangzhou.oss-cn-hangzhou.aliyuncs.com/c0ffee
          oidcProviderArn: acs:ram::1234567890123456:oidc-provider/ack-rrsa-c0ffee
      secstack:mesh:
        jwt: {{issuer: "https://auth.tiny.example.com/", jwksUri: "https://auth.tiny.example.com/jwks.json", audiences: [tiny]}}
      secstack:teams:
        - name: shop
          owner: shop@tiny.example.com
          namespaces: [shop]
          groups: {{viewers: [shop-devs], deployers: [shop-ci]}}
          quota: {{requestsCpu: "1", requestsMemory: 1Gi, limitsCpu: "2", limitsMemory: 2Gi, pods: 10}}
          services:
            - name: web
              port: 8080
              public: true
              jwtRules: [{{paths: [/cart], methods: [GET]}}]
        - name: billing
          owner: billing@tiny.example.com
          namespaces: [billing]
          groups: {{viewers: [billing-devs], deployers: [billing-ci]}}
          quota: {{requestsCpu: "1", requestsMemory: 1Gi, limitsCpu: "2", limitsMemory: 2Gi, pods: 10}}
          services:
            - name: api
              port: 9090
              allowFrom: [shop/web]
      secstack:secretValues:
        falco-elasticsearch-password: {{secure: "{SECRET}"}}
        alerts-webhook-url: {{secure: "{SECRET}"}}
        logging-setup-password: {{secure: "{SECRET}"}}
        logging-shipper-password: {{secure: "{SECRET}"}}
        grafana-admin-password: {{secure: "{SECRET}"}}
        billing-token: {{secure: "{SECRET}"}}
      secstack:runtime:
        elasticsearch: {{passwordSecret: falco-elasticsearch-password}}
      secstack:monitoring:
        receivers: [{{name: hook, type: webhook, urlSecret: alerts-webhook-url, severities: [critical]}}]
      secstack:kms:
        purposes: [data, secrets]
        keyUsers: {{billing/api: [data]}}
      secstack:secrets:
        passphraseSecretName: secstack/tiny/pulumi-passphrase
        entries:
          - {{name: billing-token, value: billing-token, description: token of the billing provider, consumers: [billing/api], secretKey: token}}
    """)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> graph.Graph:
    directory = tmp_path_factory.mktemp("stacks")
    (directory / "Pulumi.tiny.yaml").write_text(SMALL_STACK)
    return graph.build(preview.run("tiny", directory=directory, checks=False))


def test_namespaces_and_the_policies_protecting_them(small):
    edges = small.edge_set()
    for ns in ("shop", "billing"):
        assert small.node(f"ns:{ns}").kind == "namespace"
        assert (f"authz:{ns}/deny-all", f"ns:{ns}", "denies all requests by default") in edges
        assert (f"netpol:{ns}/default-deny", f"ns:{ns}", "denies all egress + ingress") in edges
        assert ("pss:baseline", f"ns:{ns}", "enforces") in edges
        assert any(src == "gatekeeper:warn" and dst == f"ns:{ns}" for src, dst, _ in edges)
    assert small.node("authz:shop/deny-all").group == "shop"
    assert ("component:teams/shop", "ns:shop", "declares") in edges


def test_who_may_call_whom(small):
    edges = small.edge_set()
    assert ("sa:shop/web", "svc:billing/api", "may call: port 9090") in edges
    assert ("issuer:https://auth.tiny.example.com/", "svc:shop/web", "JWT required: /cart") in edges
    assert ("sa:istio-ingress/istio-ingressgateway", "svc:shop/web", "may call (with a JWT): /cart") in edges
    callers_of_api = {src for src, dst, _ in edges if dst == "svc:billing/api"}
    assert callers_of_api == {"sa:shop/web"}, "only the declared caller may call billing/api"


def test_which_identity_reads_which_secret_with_which_key(small):
    edges = small.edge_set()
    secret = "secret:secstack/dev/billing-token"
    assert ("sa:billing/api", secret, "reads (kms:GetSecretValue)") in edges
    assert (secret, "key:secrets-key", "encrypted with") in edges
    assert ("sa:billing/api", "key:data-key", "uses (kms:Decrypt, kms:GenerateDataKey)") in edges
    assert (secret, "ns:billing", "delivered as Secret billing-token key token") in edges
    assert not any(src == "sa:shop/web" and dst.startswith(("secret:", "key:")) for src, dst, _ in edges)
    assert small.node("key:data-key").label == "KMS key alias/secstack/dev/data"


def test_text_is_deterministic_and_complete(small):
    dot, mermaid = graph.to_dot(small), graph.to_mermaid(small)
    assert small.nodes == sorted(small.nodes) and small.edges == sorted(small.edges)
    assert graph.to_dot(graph.build(rendered("dev"))) == graph.to_dot(graph.build(rendered("dev")))
    assert dot.count(" -> ") == len(small.edges) == mermaid.count("-->") + mermaid.count("-.->")
    assert all(f'"{n.id}"' in dot for n in small.nodes)
    assert 'subgraph "cluster_billing"' in dot and 'subgraph ns_billing["namespace billing"]' in mermaid


def test_svg_has_every_node(small):
    require_tool("dot")  # CI installs Graphviz (.ci/run); there a missing binary fails
    svg = graph.to_svg(small)
    titles = set(re.findall(r"<title>(.*?)</title>", svg))
    assert {n.id for n in small.nodes} <= {t.replace("&#45;", "-").replace("&gt;", ">") for t in titles}


def test_svg_without_graphviz_falls_back_to_dot(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(graph, "dot_binary", lambda: None)
    out = tmp_path / "g.svg"
    assert main(["graph", "dev", "--out", str(out)]) == 0
    assert out.read_text().startswith('digraph "secstack-dev"') and "writing DOT text instead" in capsys.readouterr().err


def test_readme_picture_is_fresh():
    g = graph.build(rendered("prod"))
    for suffix, text in ((".dot", graph.to_dot(g)), (".mmd", graph.to_mermaid(g))):
        committed = ROOT / "docs" / f"stack-prod{suffix}"
        assert committed.exists() and committed.read_text() == text, f"{committed.name} is stale: run `make graph`"
    svg = (ROOT / "docs" / "stack-prod.svg").read_text()
    titles = {t.replace("&#45;", "-").replace("&gt;", ">") for t in re.findall(r"<title>(.*?)</title>", svg)}
    assert {n.id for n in g.nodes} <= titles, "stack-prod.svg is stale: run `make graph`"


def test_unknown_stack_is_bad_input(capsys):
    assert main(["graph", "nope", "--format", "dot"]) == 2
    assert "Pulumi.nope.yaml: no such stack file" in capsys.readouterr().err
