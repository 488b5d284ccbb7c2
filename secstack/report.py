"""The compliance report of a stack: every control, where it is enforced, its level read off the rendered stack,
its exemptions and its mapping to PSS / CIS / MLPS 2.0 (the mappings are data: policies/controls.yaml)."""
from __future__ import annotations

import datetime as dt
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import yaml

from secstack.preview import Preview

CONTROLS_FILE = Path(__file__).resolve().parent.parent / "policies" / "controls.yaml"
ENFORCEMENT_POINTS = ("admission", "preview", "runtime", "cloud")
TEAM_LABEL = "secstack.io/team"
EXEMPTIONS_ANNOTATION = "secstack.io/exemptions"


class ControlsError(Exception):
    """policies/controls.yaml is missing or malformed (reported with exit 2)."""


@dataclass(frozen=True)
class Level:
    text: str
    enforced: bool
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class Exemption:
    control: str
    targets: str
    reason: str
    expires: Optional[str]
    expired: bool


@dataclass
class Control:
    id: str
    title: str
    enforced_at: list[str]
    level: Level
    preview_policies: list[tuple[str, str]]
    pss: list[str]
    cis: list[str]
    mlps: list[str]
    principles: list[str]
    exemptions: list[Exemption] = field(default_factory=list)


@dataclass
class Report:
    stack: str
    environment: str
    date: str
    frameworks: dict[str, str]
    principles: dict[str, str]
    controls: list[Control]
    verdicts: dict[str, int]
    admission_excluded: list[str]

    @property
    def exemptions(self) -> list[Exemption]:
        return [e for c in self.controls for e in c.exemptions]


# ---------------------------------------------------------------- loading the mapping


def load_controls(path: Path = CONTROLS_FILE) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ControlsError(f"{path}: no such file; it holds the control mappings the report reads") from None
    except yaml.YAMLError as exc:
        raise ControlsError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("controls"), dict) or not isinstance(data.get("admission"), dict):
        raise ControlsError(f"{path}: expected mappings `controls:` and `admission:`")
    problems = []
    for cid, c in data["controls"].items():
        for key in ("title", "enforced_at", "level", "pss", "cis", "mlps", "principles"):
            if key not in (c or {}):
                problems.append(f"controls.{cid}.{key} is missing")
        if c and c.get("level") not in LEVEL_READERS:
            problems.append(f"controls.{cid}.level: unknown reader {c.get('level')!r} (one of {', '.join(sorted(LEVEL_READERS))})")
        for point in (c or {}).get("enforced_at") or []:
            if point not in ENFORCEMENT_POINTS:
                problems.append(f"controls.{cid}.enforced_at: {point!r} is not one of {', '.join(ENFORCEMENT_POINTS)}")
    known = set(data.get("principles") or {})
    for cid, c in [*data["controls"].items(), *((data["admission"].get("rules") or {}).items())]:
        for p in (c or {}).get("principles") or []:
            if p not in known:
                problems.append(f"{cid}.principles: {p!r} is not declared under `principles:`")
    if problems:
        raise ControlsError(f"{path}: " + "; ".join(problems))
    return data


# ---------------------------------------------------------------- level readers: rendered stack -> level


def _team_namespaces(p: Preview) -> list[str]:
    return sorted(ns["metadata"]["name"] for ns in p.find("Namespace") if TEAM_LABEL in (ns["metadata"].get("labels") or {}))


def _mtls(p: Preview) -> Level:
    modes = {f"{o['metadata'].get('namespace')}/{o['metadata']['name']}": (o.get("spec") or {}).get("mtls", {}).get("mode") for o in p.find("PeerAuthentication")}
    mesh_wide = modes.get("istio-system/default")
    if mesh_wide is None:
        return Level("not deployed", False)
    others = [f"{k}: {v}" for k, v in sorted(modes.items()) if k != "istio-system/default"]
    return Level(f"{mesh_wide} mesh-wide", mesh_wide == "STRICT", tuple(others))


def _authz(p: Preview) -> Level:
    teams = _team_namespaces(p)
    policies = p.find("AuthorizationPolicy")
    deny_all = {o["metadata"]["namespace"] for o in policies if o["metadata"]["name"] == "deny-all" and not o.get("spec")}
    allows = [o for o in policies if (o.get("spec") or {}).get("action", "ALLOW") == "ALLOW" and o.get("spec")]
    jwt = p.find("RequestAuthentication")
    covered = [ns for ns in teams if ns in deny_all]
    details = tuple(
        f"{o['metadata']['namespace']}/{o['metadata']['name']}: "
        + ", ".join(sorted({pr for r in o["spec"].get("rules") or [] for f in r.get("from") or [] for pr in f.get("source", {}).get("principals", []) + f.get("source", {}).get("requestPrincipals", [])}) or ["any source on the listed ports"])
        for o in sorted(allows, key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"]))
    )
    text = f"deny-all in {len(covered)}/{len(teams)} team namespaces; {len(allows)} allow policies; {len(jwt)} JWT-verified services"
    return Level(text, bool(teams) and len(covered) == len(teams), details)


def _pod_security(p: Preview) -> Level:
    levels: dict[str, list[str]] = {}
    for ns in p.find("Namespace"):
        labels = ns["metadata"].get("labels") or {}
        if TEAM_LABEL in labels:
            levels.setdefault(labels.get("pod-security.kubernetes.io/enforce", "none"), []).append(ns["metadata"]["name"])
    text = "; ".join(f"{lvl}: {', '.join(sorted(nss))}" for lvl, nss in sorted(levels.items())) or "no team namespaces"
    system = tuple(
        f"{ns['metadata']['name']}: {ns['metadata']['labels'].get('pod-security.kubernetes.io/enforce')} (platform namespace)"
        for ns in p.find("Namespace")
        if TEAM_LABEL not in (ns["metadata"].get("labels") or {}) and "pod-security.kubernetes.io/enforce" in (ns["metadata"].get("labels") or {})
    )
    return Level(text, bool(levels) and set(levels) <= {"baseline", "restricted"}, system)


def _rbac(p: Preview) -> Level:
    teams = set(_team_namespaces(p))
    roles = [r for r in p.find("Role") if r["metadata"].get("namespace") in teams]
    problems = []
    for role in roles:
        for rule in role.get("rules") or []:
            if "*" in rule.get("verbs", []) or "*" in rule.get("resources", []) or "*" in rule.get("apiGroups", []):
                problems.append(f"{role['metadata']['namespace']}/{role['metadata']['name']} uses a wildcard")
            if "secrets" in rule.get("resources", []):
                problems.append(f"{role['metadata']['namespace']}/{role['metadata']['name']} can read Secrets")
    ram = [r.redacted_inputs() for r in p.of_type("alicloud:ram/policy:Policy")]
    for policy in ram:
        for st in json.loads(policy.get("policyDocument") or "{}").get("Statement", []):
            actions = st.get("Action") if isinstance(st.get("Action"), list) else [st.get("Action")]
            resources = st.get("Resource") if isinstance(st.get("Resource"), list) else [st.get("Resource")]
            if any(a and "*" in a for a in actions) or any(r == "*" for r in resources):
                problems.append(f"RAM policy {policy.get('policyName')} uses a wildcard")
    bindings = p.find("RoleBinding")
    text = f"{len(roles)} team Roles, {len(bindings)} RoleBindings to groups, {len(ram)} RAM policies: " + ("no wildcards, no Secret access" if not problems else f"{len(problems)} problems")
    return Level(text, not problems, tuple(problems))


def _network_isolation(p: Preview) -> Level:
    teams = _team_namespaces(p)
    deny = sorted(
        o["metadata"]["namespace"]
        for o in p.find("NetworkPolicy")
        if (o.get("spec") or {}).get("podSelector") == {} and set((o.get("spec") or {}).get("policyTypes") or []) == {"Ingress", "Egress"}
        and not o["spec"].get("ingress") and not o["spec"].get("egress")
    )
    covered = [ns for ns in teams if ns in deny]
    others = sorted(set(deny) - set(teams))
    text = f"default-deny ingress+egress in {len(covered)}/{len(teams)} team namespaces" + (f" and {len(others)} platform namespace{'s' if len(others) > 1 else ''}" if others else "")
    return Level(text, bool(teams) and covered == teams, tuple(f"also default-deny: {ns}" for ns in others))


def _kms_rotation(p: Preview) -> Level:
    keys = p.of_type("alicloud:kms/key:Key")
    if not keys:
        return Level("no KMS keys", False)
    rows, ok = [], True
    for r in keys:
        i = r.redacted_inputs()
        rotating = i.get("automaticRotation") == "Enabled"
        ok = ok and rotating
        rows.append(f"{r.name}: rotation {i.get('automaticRotation')} every {i.get('rotationInterval')}, deletion protection {i.get('deletionProtection')}, "
                    f"pending window {i.get('pendingWindowInDays')}d, protect={r.options.get('protect')}")
    intervals = sorted({r.redacted_inputs().get("rotationInterval") for r in keys if r.redacted_inputs().get("rotationInterval")})
    text = f"{sum(r.redacted_inputs().get('automaticRotation') == 'Enabled' for r in keys)}/{len(keys)} keys rotate automatically (every {', '.join(intervals) or '-'})"
    return Level(text, ok, tuple(rows))


def _secret_encryption(p: Preview) -> Level:
    secrets = p.of_type("alicloud:kms/secret:Secret")
    if not secrets:
        return Level("no managed secrets", False)
    with_key = [r for r in secrets if r.redacted_inputs().get("encryptionKeyId")]
    delivered = p.find("ExternalSecret")
    details = tuple(
        f"{r.redacted_inputs().get('secretName')}: key {r.redacted_inputs().get('encryptionKeyId')}, protect={r.options.get('protect')}" for r in secrets
    )
    text = f"{len(with_key)}/{len(secrets)} Secrets Manager entries under a customer KMS key; {len(delivered)} ExternalSecrets delivered over RRSA"
    return Level(text, len(with_key) == len(secrets), details)


def _logging_retention(p: Preview) -> Level:
    for cm in p.find("ConfigMap", "secstack-log-lifecycle"):
        policy = json.loads((cm.get("data") or {}).get("ilm-policy.json") or "{}").get("policy", {})
        delete_after = policy.get("phases", {}).get("delete", {}).get("min_age")
        nodes = sum(int(s.get("count", 0)) for es in p.find("Elasticsearch") for s in (es.get("spec") or {}).get("nodeSets", []))
        if delete_after:
            return Level(f"security logs kept {delete_after} (ILM delete phase), {nodes} Elasticsearch nodes", True)
    return Level("no lifecycle policy rendered", False)


def _release(p: Preview, name: str) -> Optional[dict]:
    return next((r for r in p.helm_releases() if r["name"] == name), None)


def _scanning(p: Preview) -> Level:
    release = _release(p, "trivy-operator")
    if release is None:
        return Level("not deployed", False)
    values = release["values"]
    operator = values.get("operator") or {}
    scanners = [label for key, label in (("vulnerabilityScannerEnabled", "vulnerabilities"), ("configAuditScannerEnabled", "config audit"),
                                         ("rbacAssessmentScannerEnabled", "RBAC"), ("exposedSecretScannerEnabled", "exposed secrets"),
                                         ("infraAssessmentScannerEnabled", "infra")) if operator.get(key)]
    severity = (values.get("trivy") or {}).get("severity", "-")
    compliance = "on" if operator.get("clusterComplianceEnabled") else "off"
    return Level(f"Trivy operator {release['version']}: {', '.join(scanners) or 'no scanners'}; severities {severity}; compliance reports {compliance}", bool(scanners))


def _runtime_detection(p: Preview) -> Level:
    release = _release(p, "falco")
    if release is None:
        return Level("not deployed", False)
    values = release["values"]
    priority = (values.get("falco") or {}).get("priority", "-")
    rules = ", ".join(sorted(values.get("customRules") or {})) or "upstream rules only"
    sidekick = "on" if (values.get("falcosidekick") or {}).get("enabled") else "off"
    return Level(f"Falco {release['version']}: priority >= {priority}; rules {rules}; falcosidekick {sidekick}", True)


def _crossguard_only(p: Preview) -> Level:
    return Level("checked before every deployment (see preview policies)", True)


LEVEL_READERS: dict[str, Callable[[Preview], Level]] = {
    "mtls": _mtls,
    "authz": _authz,
    "pod_security": _pod_security,
    "rbac": _rbac,
    "network_isolation": _network_isolation,
    "kms_rotation": _kms_rotation,
    "secret_encryption": _secret_encryption,
    "logging_retention": _logging_retention,
    "scanning": _scanning,
    "runtime_detection": _runtime_detection,
    "crossguard": _crossguard_only,
}


# ---------------------------------------------------------------- building the report


def _policy_levels(p: Preview) -> dict[str, str]:
    from secstack.crossguard import PolicyConfigError, load_config

    try:
        config = load_config(p.stack, p.settings.environment)
    except PolicyConfigError:
        return {}
    return {name: (entry.get("enforcementLevel") if isinstance(entry, dict) else entry) for name, entry in config.items()}


def _exemptions(control: str, obj: dict, today: dt.date) -> list[Exemption]:
    raw = (obj["metadata"].get("annotations") or {}).get(EXEMPTIONS_ANNOTATION)
    out = []
    for e in json.loads(raw) if raw else []:
        expires = e.get("expires")
        out.append(Exemption(control, ", ".join(e.get("namespaces", []) + e.get("images", [])), e.get("reason", ""), expires,
                             bool(expires) and dt.date.fromisoformat(expires) < today))
    return out


def build(preview: Preview, today: Optional[dt.date] = None, controls_file: Path = CONTROLS_FILE) -> Report:
    today = today or dt.date.today()
    data = load_controls(controls_file)
    levels = _policy_levels(preview)
    controls = []
    for cid, c in data["controls"].items():
        controls.append(Control(
            id=cid, title=c["title"], enforced_at=list(c["enforced_at"]), level=LEVEL_READERS[c["level"]](preview),
            preview_policies=[(name, levels.get(name, "not configured")) for name in c.get("crossguard") or []],
            pss=list(c["pss"]), cis=[str(x) for x in c["cis"]], mlps=list(c["mlps"]), principles=list(c["principles"]),
        ))
    admission = data["admission"]
    rules = admission.get("rules") or {}
    rendered = {}
    for _, obj in preview.kubernetes_objects():
        if obj.get("apiVersion", "").startswith("constraints.gatekeeper.sh/"):
            rendered[obj["kind"]] = obj
    for kind in sorted(set(rules) | set(rendered)):
        rule = rules.get(kind) or {}
        obj = rendered.get(kind)
        name = (obj["metadata"].get("labels") or {}).get("secstack.io/rule", obj["metadata"]["name"]) if obj else kind
        cid = f"admission/{name}"
        if obj is None:
            level = Level("not deployed in this environment", False)
        else:
            action = (obj.get("spec") or {}).get("enforcementAction", "deny")
            level = Level(action, action == "deny")
        controls.append(Control(
            id=cid, title=f"{kind}: {rule.get('title', 'unmapped rule (add it to policies/controls.yaml)')}",
            enforced_at=list(admission.get("enforced_at") or []), level=level,
            preview_policies=[(n, levels.get(n, "not configured")) for n in admission.get("crossguard") or []],
            pss=list(rule.get("pss") or []), cis=[str(x) for x in rule.get("cis") or []],
            mlps=list(rule.get("mlps", admission.get("mlps_default") or [])), principles=list(rule.get("principles") or []),
            exemptions=_exemptions(cid, obj, today) if obj else [],
        ))
    config = preview.find("Config", "config", "gatekeeper-system")
    excluded = sorted({ns for c in config for m in (c.get("spec") or {}).get("match") or [] for ns in m.get("excludedNamespaces") or []})
    verdicts = {"mandatory": sum(v.level == "mandatory" for v in preview.verdicts), "advisory": sum(v.level == "advisory" for v in preview.verdicts)}
    return Report(preview.stack, preview.settings.environment, today.isoformat(), dict(data.get("frameworks") or {}),
                  dict(data.get("principles") or {}), controls, verdicts, excluded)


# ---------------------------------------------------------------- rendering


def _cell(items: list[str]) -> str:
    return "; ".join(items) if items else "-"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _exemption_status(e: Exemption) -> str:
    return "EXPIRED" if e.expired else ("no expiry" if not e.expires else f"until {e.expires}")


def to_markdown(r: Report) -> str:
    out = [f"# Security controls of stack `{r.stack}` ({r.environment})", "",
           f"Rendered offline on {r.date} from `stacks/Pulumi.{r.stack}.yaml` (what `pulumi up` would declare; no live state).",
           f"Preview verdicts: {r.verdicts['mandatory']} mandatory, {r.verdicts['advisory']} advisory.", "",
           "Enforcement points: admission (Gatekeeper, Pod Security Admission), preview (CrossGuard and secstack checks "
           "before deployment), runtime (in the cluster), cloud (Alibaba Cloud KMS, Secrets Manager, RAM).", "",
           "## Controls", "", "| control | enforced at | level in this environment | exemptions |", "|---|---|---|---|"]
    for c in r.controls:
        mark = "enforced" if c.level.enforced else "not enforced"
        out.append(f"| `{c.id}` {_md(c.title)} | {', '.join(c.enforced_at)} | {mark}: {_md(c.level.text)} | {len(c.exemptions)} |")
    out += ["", "## Exemptions", ""]
    if r.admission_excluded:
        out += [f"System namespaces excluded from every admission rule: {', '.join(r.admission_excluded)}.", ""]
    if r.exemptions:
        out += ["| control | exempt (namespaces / images) | reason | expiry |", "|---|---|---|---|"]
        out += [f"| `{e.control}` | {_md(e.targets)} | {_md(e.reason)} | {_exemption_status(e)} |" for e in r.exemptions]
    else:
        out.append("No exemptions.")
    out += ["", "## Framework mapping", "", f"PSS: {r.frameworks.get('pss', '')}. CIS: {r.frameworks.get('cis', '')}. MLPS: {r.frameworks.get('mlps', '')}.", "",
            "| control | PSS | CIS Kubernetes | MLPS 2.0 level 3 | principles |", "|---|---|---|---|---|"]
    for c in r.controls:
        out.append(f"| `{c.id}` | {_md(_cell(c.pss))} | {_md(_cell(c.cis))} | {_md(_cell(c.mlps))} | {_md(_cell(c.principles))} |")
    out += ["", "## Details", ""]
    for c in r.controls:
        if c.level.details or c.preview_policies:
            out.append(f"- `{c.id}`")
            out += [f"  - preview policy `{n}`: {lvl}" for n, lvl in c.preview_policies]
            out += [f"  - {_md(d)}" for d in c.level.details]
    out += ["", "## Principles", ""]
    for key, text in r.principles.items():
        served = [c.id for c in r.controls if key in c.principles]
        out.append(f"- **{key}**: {text}. Served by {len(served)} controls: {', '.join(f'`{s}`' for s in served) or '-'}.")
    return "\n".join(out) + "\n"


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem;color:#1b1f24;line-height:1.4}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;width:100%;font-size:.85rem}th,td{border:1px solid #d0d7de;padding:.3rem .5rem;vertical-align:top;text-align:left}
th{background:#f6f8fa}code{font-size:.85em}.ok{color:#1a7f37;font-weight:600}.bad{color:#cf222e;font-weight:600}
ul.details{margin:.2rem 0;padding-left:1.2rem;font-size:.8rem;color:#57606a}
"""


def _h(text: Any) -> str:
    return html.escape(str(text), quote=True)


def to_html(r: Report) -> str:
    """One self-contained file: inline CSS, no scripts, no external loads."""
    rows = []
    for c in r.controls:
        mark = '<span class="ok">enforced</span>' if c.level.enforced else '<span class="bad">not enforced</span>'
        details = [f"preview policy {_h(n)}: {_h(lvl)}" for n, lvl in c.preview_policies] + [_h(d) for d in c.level.details]
        detail_html = f'<ul class="details">{"".join(f"<li>{d}</li>" for d in details)}</ul>' if details else ""
        rows.append(f"<tr id=\"{_h(c.id)}\"><td><code>{_h(c.id)}</code><br>{_h(c.title)}</td><td>{_h(', '.join(c.enforced_at))}</td>"
                    f"<td>{mark}: {_h(c.level.text)}{detail_html}</td><td>{len(c.exemptions)}</td><td>{_h(_cell(c.pss))}</td>"
                    f"<td>{_h(_cell(c.cis))}</td><td>{_h(_cell(c.mlps))}</td><td>{_h(_cell(c.principles))}</td></tr>")
    exemptions = "".join(
        f"<tr><td><code>{_h(e.control)}</code></td><td>{_h(e.targets)}</td><td>{_h(e.reason)}</td>"
        f"<td class=\"{'bad' if e.expired else ''}\">{_h(_exemption_status(e))}</td></tr>" for e in r.exemptions
    ) or '<tr><td colspan="4">No exemptions.</td></tr>'
    principles = "".join(
        f"<li><b>{_h(k)}</b>: {_h(v)}. Served by: {_h(', '.join(c.id for c in r.controls if k in c.principles) or '-')}</li>"
        for k, v in r.principles.items()
    )
    excluded = f"<p>System namespaces excluded from every admission rule: {_h(', '.join(r.admission_excluded))}.</p>" if r.admission_excluded else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>secstack controls: {_h(r.stack)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<style>{CSS}</style></head><body>
<h1>Security controls of stack <code>{_h(r.stack)}</code> ({_h(r.environment)})</h1>
<p>Rendered offline on {_h(r.date)} from <code>stacks/Pulumi.{_h(r.stack)}.yaml</code> (what <code>pulumi up</code> would declare; no live state).
Preview verdicts: {r.verdicts['mandatory']} mandatory, {r.verdicts['advisory']} advisory.</p>
<p>Enforcement points: admission (Gatekeeper, Pod Security Admission), preview (CrossGuard and secstack checks before deployment),
runtime (in the cluster), cloud (Alibaba Cloud KMS, Secrets Manager, RAM).
PSS: {_h(r.frameworks.get('pss', ''))}. CIS: {_h(r.frameworks.get('cis', ''))}. MLPS: {_h(r.frameworks.get('mlps', ''))}.</p>
<h2>Controls</h2>
<table><thead><tr><th>control</th><th>enforced at</th><th>level in this environment</th><th>exemptions</th><th>PSS</th><th>CIS Kubernetes</th><th>MLPS 2.0 level 3</th><th>principles</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<h2>Exemptions</h2>{excluded}
<table><thead><tr><th>control</th><th>exempt (namespaces / images)</th><th>reason</th><th>expiry</th></tr></thead><tbody>{exemptions}</tbody></table>
<h2>Principles</h2><ul>{principles}</ul>
</body></html>
"""


def write(report: Report, out_dir: Path, formats: tuple[str, ...] = ("md", "html")) -> list[Path]:
    target = out_dir / report.stack
    target.mkdir(parents=True, exist_ok=True)
    written = []
    if "md" in formats:
        written.append(target / "report.md")
        written[-1].write_text(to_markdown(report))
    if "html" in formats:
        written.append(target / "report.html")
        written[-1].write_text(to_html(report))
    return written
