"""The stack as a picture: components, the namespaces they declare and the security relations between them, read
off the rendered stack. Which policies protect a namespace (deny-all AuthorizationPolicy, default-deny NetworkPolicy,
Pod Security level, Gatekeeper rules); which caller may call which service (AuthorizationPolicy principals, JWT
issuers); which service account reads which secret and uses which KMS key (RAM policies, ExternalSecrets).

Nodes and edges are sorted, so the DOT and Mermaid text of a stack is deterministic (docs/stack-prod.* are checked).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Optional

from secstack.preview import Preview

TEAM_LABEL = "secstack.io/team"
ROLE_ANNOTATION = "pod-identity.alibabacloud.com/role-name"
SPIFFE = re.compile(r"^(?P<td>[^/]+)/ns/(?P<ns>[^/]+)/sa/(?P<sa>[^/]+)$")

# kind -> (DOT shape, DOT fill colour, Mermaid shape brackets)
STYLE = {
    "component": ("component", "#eaeef2", ("[[", "]]")),
    "namespace": ("folder", "#ddf4ff", ("[/", "/]")),
    "policy": ("note", "#fff8c5", ("{{", "}}")),
    "admission": ("octagon", "#ffebe9", ("{{", "}}")),
    "service": ("ellipse", "#dafbe1", ("([", "])")),
    "identity": ("box", "#fbefff", ("[", "]")),
    "issuer": ("parallelogram", "#f6f8fa", ("[/", "\\]")),
    "secret": ("cylinder", "#fff1e5", ("[(", ")]")),
    "key": ("diamond", "#ffd8b5", ("{", "}")),
}


@dataclass(frozen=True, order=True)
class Node:
    id: str
    label: str
    kind: str
    group: str = ""  # namespace cluster the node is drawn in ("" = top level)


@dataclass(frozen=True, order=True)
class Edge:
    src: str
    dst: str
    label: str
    kind: str = "security"  # security | declares


@dataclass
class Graph:
    stack: str
    nodes: list[Node]
    edges: list[Edge]

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.id == node_id)

    def edge_set(self) -> set[tuple[str, str, str]]:
        return {(e.src, e.dst, e.label) for e in self.edges}


class _Builder:
    def __init__(self, preview: Preview):
        self.p = preview
        self.nodes: dict[str, Node] = {}
        self.edges: set[Edge] = set()
        self.by_urn = {r.urn: r for r in preview.resources}

    def add(self, node_id: str, label: str, kind: str, group: str = "") -> str:
        self.nodes.setdefault(node_id, Node(node_id, label, kind, group))
        return node_id

    def link(self, src: str, dst: str, label: str, kind: str = "security") -> None:
        self.edges.add(Edge(src, dst, label, kind))

    def component_of(self, urn: str) -> Optional[str]:
        """The nearest secstack component above a resource, as a node."""
        r = self.by_urn.get(urn)
        parent = self.by_urn.get(r.parent) if r else None
        while parent is not None and not (parent.type.startswith("secstack:") and parent.type != "secstack:platform:SecurityPlatform"):
            parent = self.by_urn.get(parent.parent)
        if parent is None:
            return None
        return self.add(f"component:{parent.type.split(':')[1]}/{parent.name}", f"{parent.type.rsplit(':', 1)[-1]} {parent.name}", "component")

    def declared(self, node_id: str, reg) -> None:
        component = self.component_of(reg.urn) if reg is not None else None
        if component:
            self.link(component, node_id, "declares", "declares")


def build(preview: Preview) -> Graph:
    b = _Builder(preview)
    objects = preview.kubernetes_objects()
    teams = sorted(o["metadata"]["name"] for _, o in objects if o["kind"] == "Namespace" and TEAM_LABEL in (o["metadata"].get("labels") or {}))
    team_set = set(teams)
    for reg, o in objects:
        if o["kind"] == "Namespace" and o["metadata"]["name"] in team_set:
            ns = o["metadata"]["name"]
            node = b.add(f"ns:{ns}", f"namespace {ns}", "namespace", ns)
            b.declared(node, reg)
            level = (o["metadata"].get("labels") or {}).get("pod-security.kubernetes.io/enforce")
            if level:
                b.link(b.add(f"pss:{level}", f"Pod Security {level}", "admission"), node, "enforces")
    _namespace_policies(b, objects, team_set)
    _gatekeeper(b, objects, teams)
    identities = _identities(b, objects, team_set)
    _callers(b, objects, team_set)
    _secrets_and_keys(b, preview, objects, identities)
    return Graph(preview.stack, sorted(b.nodes.values()), sorted(b.edges))


def _namespace_policies(b: _Builder, objects, teams: set[str]) -> None:
    for reg, o in objects:
        ns, name, spec = o["metadata"].get("namespace"), o["metadata"]["name"], o.get("spec") or {}
        if ns not in teams:
            continue
        if o["kind"] == "AuthorizationPolicy" and not spec:
            node = b.add(f"authz:{ns}/{name}", f"AuthorizationPolicy {name}", "policy", ns)
            b.link(node, f"ns:{ns}", "denies all requests by default")
            b.declared(node, reg)
        elif o["kind"] == "NetworkPolicy" and spec.get("podSelector") == {} and not spec.get("ingress") and not spec.get("egress"):
            node = b.add(f"netpol:{ns}/{name}", f"NetworkPolicy {name}", "policy", ns)
            b.link(node, f"ns:{ns}", f"denies all {' + '.join(t.lower() for t in sorted(spec.get('policyTypes') or []))}")
            b.declared(node, reg)


def _gatekeeper(b: _Builder, objects, teams: list[str]) -> None:
    by_action: dict[str, list] = {}
    for reg, o in objects:
        if o["apiVersion"].startswith("constraints.gatekeeper.sh/"):
            by_action.setdefault((o.get("spec") or {}).get("enforcementAction", "deny"), []).append((reg, o))
    for action, constraints in sorted(by_action.items()):
        node = b.add(f"gatekeeper:{action}", f"Gatekeeper {len(constraints)} rules ({action})", "admission")
        b.declared(node, constraints[0][0])
        for ns in teams:
            applying = [o for _, o in constraints if ns not in ((o["spec"].get("match") or {}).get("excludedNamespaces") or [])]
            if applying:
                b.link(node, f"ns:{ns}", f"{action}: {len(applying)} rules")


def _identities(b: _Builder, objects, teams: set[str]) -> dict[str, str]:
    """Service accounts of the team namespaces; returns RAM role name -> identity node."""
    roles = {}
    for reg, o in objects:
        if o["kind"] == "ServiceAccount" and o["metadata"].get("namespace") in teams:
            ns, sa = o["metadata"]["namespace"], o["metadata"]["name"]
            node = b.add(f"sa:{ns}/{sa}", f"serviceaccount {sa}", "identity", ns)
            role = (o["metadata"].get("annotations") or {}).get(ROLE_ANNOTATION)
            if role:
                roles[role.lower()] = node
    return roles


def _identity(b: _Builder, principal: str) -> str:
    m = SPIFFE.match(principal)
    if not m:
        return b.add(f"principal:{principal}", principal, "identity")
    return b.add(f"sa:{m['ns']}/{m['sa']}", f"serviceaccount {m['sa']}", "identity", m["ns"])


def _callers(b: _Builder, objects, teams: set[str]) -> None:
    calls: dict[tuple[str, str, str], set[str]] = {}  # (source node, service node, label prefix) -> paths / ports
    for reg, o in objects:
        if o["kind"] != "AuthorizationPolicy" or o["metadata"].get("namespace") not in teams or not o.get("spec"):
            continue
        ns, spec = o["metadata"]["namespace"], o["spec"]
        app = ((spec.get("selector") or {}).get("matchLabels") or {}).get("app")
        if not app or spec.get("action", "ALLOW") != "ALLOW":
            continue
        service = b.add(f"svc:{ns}/{app}", f"service {app}", "service", ns)
        for rule in spec.get("rules") or []:
            ops = [t.get("operation", {}) for t in rule.get("to") or []]
            paths = {p for op in ops for p in op.get("paths", [])} or {f"port {p}" for op in ops for p in op.get("ports", [])}
            for source in (f.get("source", {}) for f in rule.get("from") or []):
                issuers = sorted({rp.rsplit("/*", 1)[0] for rp in source.get("requestPrincipals", [])})
                for principal in source.get("principals", []):
                    key = (_identity(b, principal), service, "may call (with a JWT)" if issuers else "may call")
                    calls.setdefault(key, set()).update(paths)
                for issuer in issuers:
                    key = (b.add(f"issuer:{issuer}", f"JWT issuer {issuer}", "issuer"), service, "JWT required")
                    calls.setdefault(key, set()).update(paths)
    for (src, dst, prefix), what in calls.items():
        b.link(src, dst, f"{prefix}: {' '.join(sorted(what))}")


def _statements(policy: dict) -> list[dict]:
    try:
        return json.loads(policy.get("policyDocument") or "{}").get("Statement", [])
    except json.JSONDecodeError:
        return []


def _secrets_and_keys(b: _Builder, p: Preview, objects, identities: dict[str, str]) -> None:
    keys: dict[str, str] = {}  # key ARN / id -> node
    aliases = {r.redacted_inputs().get("keyId"): r.redacted_inputs().get("aliasName") for r in p.of_type("alicloud:kms/alias:Alias")}
    for r in p.of_type("alicloud:kms/key:Key"):
        node = b.add(f"key:{r.name}", f"KMS key {aliases.get(r.id) or r.name}", "key")
        b.declared(node, r)
        for ref in (r.id, r.state.get("arn")):
            if ref:
                keys[ref] = node
    secrets: dict[str, str] = {}  # secret ARN / name -> node
    for r in p.of_type("alicloud:kms/secret:Secret"):
        i = r.redacted_inputs()
        node = b.add(f"secret:{i.get('secretName')}", f"secret {i.get('secretName')}", "secret")
        b.declared(node, r)
        secrets[i.get("secretName")] = node
        if r.state.get("arn"):
            secrets[r.state["arn"]] = node
        if i.get("encryptionKeyId") in keys:
            b.link(node, keys[i["encryptionKeyId"]], "encrypted with")
    for o in (o for _, o in objects if o["kind"] == "ExternalSecret"):
        ns = o["metadata"]["namespace"]
        for item in (o.get("spec") or {}).get("data") or []:
            if item.get("key") in secrets and f"ns:{ns}" in b.nodes:
                b.link(secrets[item["key"]], f"ns:{ns}", f"delivered as Secret {o['metadata']['name']} key {item.get('name')}")
    for policy in (r.redacted_inputs() for r in p.of_type("alicloud:ram/policy:Policy")):
        identity = identities.get(str(policy.get("policyName", "")).lower())
        if identity is None:
            continue  # a platform controller's role, not a team workload
        for st in _statements(policy):
            actions = st.get("Action") if isinstance(st.get("Action"), list) else [st.get("Action")]
            for resource in st.get("Resource") if isinstance(st.get("Resource"), list) else [st.get("Resource")]:
                if resource in secrets:
                    b.link(identity, secrets[resource], "reads (" + ", ".join(sorted(a for a in actions if a)) + ")")
                elif resource in keys:
                    b.link(identity, keys[resource], "uses (" + ", ".join(sorted(a for a in actions if a)) + ")")


# ---------------------------------------------------------------- rendering


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(g: Graph) -> str:
    lines = [f"digraph {_dot_quote('secstack-' + g.stack)} {{", "  rankdir=LR;", '  graph [fontname="Helvetica", fontsize=11];',
             '  node [fontname="Helvetica", fontsize=10, style=filled];', '  edge [fontname="Helvetica", fontsize=8];']
    groups = sorted({n.group for n in g.nodes})
    for group in groups:
        members = [n for n in g.nodes if n.group == group]
        indent = "  "
        if group:
            lines.append(f"  subgraph {_dot_quote('cluster_' + group)} {{")
            lines.append(f"    label={_dot_quote('namespace ' + group)}; style=rounded; color=\"#8c959f\";")
            indent = "    "
        for n in members:
            shape, fill, _ = STYLE[n.kind]
            lines.append(f"{indent}{_dot_quote(n.id)} [label={_dot_quote(n.label)}, shape={shape}, fillcolor={_dot_quote(fill)}];")
        if group:
            lines.append("  }")
    for e in g.edges:
        style = ', style=dashed, color="#8c959f"' if e.kind == "declares" else ""
        lines.append(f"  {_dot_quote(e.src)} -> {_dot_quote(e.dst)} [label={_dot_quote(e.label)}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")


def to_mermaid(g: Graph) -> str:
    ids = {n.id: f"n{i}" for i, n in enumerate(g.nodes)}
    lines = ["flowchart LR"]
    for group in sorted({n.group for n in g.nodes}):
        indent = "  "
        if group:
            lines.append(f'  subgraph ns_{re.sub(r"[^A-Za-z0-9_]", "_", group)}["namespace {_mermaid_text(group)}"]')
            indent = "    "
        for n in (n for n in g.nodes if n.group == group):
            open_, close = STYLE[n.kind][2]
            lines.append(f'{indent}{ids[n.id]}{open_}"{_mermaid_text(n.label)}"{close}')
        if group:
            lines.append("  end")
    for e in g.edges:
        arrow = "-.->" if e.kind == "declares" else "-->"
        lines.append(f'  {ids[e.src]} {arrow}|"{_mermaid_text(e.label)}"| {ids[e.dst]}')
    return "\n".join(lines) + "\n"


class GraphvizMissing(Exception):
    pass


def dot_binary() -> Optional[str]:
    return shutil.which("dot")


def to_svg(g: Graph) -> str:
    binary = dot_binary()
    if binary is None:
        raise GraphvizMissing("Graphviz `dot` is not installed (apt-get install graphviz); use --format dot or mermaid")
    result = subprocess.run([binary, "-Tsvg"], input=to_dot(g), capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise GraphvizMissing(f"dot failed: {result.stderr.strip()}")
    return result.stdout
