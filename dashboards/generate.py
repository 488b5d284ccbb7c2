"""Security dashboards as code: `python -m dashboards.generate` writes dashboards/<name>.json (committed).

`--check` exits 1 when a committed file differs from what this generator produces.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

OUT = Path(__file__).resolve().parent
DATASOURCE = DataSourceRef(type_val="prometheus", uid="prometheus")  # kube-prometheus-stack's provisioned datasource
DENIED = 'istio_requests_total{reporter="destination", response_code="403"}'
REQUESTS = 'istio_requests_total{reporter="destination"}'
FALCO_EVENTS = "falcosecurity_falcosidekick_falco_events_total"


def _query(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE)
    if legend:
        q = q.legend_format(legend)
    return q.instant() if instant else q


def _series(title: str, expr: str, legend: str, unit: str = "short", width: int = 12) -> timeseries.Panel:
    return timeseries.Panel().title(title).datasource(DATASOURCE).with_target(_query(expr, legend)).unit(unit).height(8).span(width)


def _stat(title: str, expr: str, unit: str = "short", width: int = 6) -> stat.Panel:
    return stat.Panel().title(title).datasource(DATASOURCE).with_target(_query(expr, instant=True)).unit(unit).height(5).span(width)


def _table(title: str, expr: str, width: int = 12) -> table.Panel:
    return table.Panel().title(title).datasource(DATASOURCE).with_target(_query(expr, instant=True)).height(8).span(width)


def _board(uid: str, title: str, description: str) -> dashboard.Dashboard:
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["secstack", "security"])
        .timezone("utc")
        .time("now-6h", "now")
        .refresh("1m")
        .readonly()
    )


def _mtls_share(window: str = "5m") -> str:
    return (
        f'sum(rate(istio_requests_total{{reporter="destination", connection_security_policy="mutual_tls"}}[{window}]))'
        f" / sum(rate({REQUESTS}[{window}]))"
    )


def overview() -> dashboard.Dashboard:
    return (
        _board("secstack-overview", "Security overview", "Is everything mTLS, what is denied, what is vulnerable, what ran.")
        .with_panel(_stat("Requests over mTLS", _mtls_share(), "percentunit"))
        .with_panel(_stat("Denied requests/s", f"sum(rate({DENIED}[5m]))", "reqps"))
        .with_panel(_stat("Critical vulnerabilities", 'sum(trivy_image_vulnerabilities{severity="Critical"})'))
        .with_panel(_stat("Gatekeeper audit violations", "sum(gatekeeper_violations)"))
        .with_panel(_stat("Falco critical events (24h)", f'sum(increase({FALCO_EVENTS}{{priority_raw=~"critical|alert|emergency"}}[24h]))'))
        .with_panel(_stat("Scanners up", 'sum(up{job=~"trivy-operator|falco|falcosidekick|gatekeeper"})'))
        .with_panel(_stat("Security alerts firing", 'count(ALERTS{alertstate="firing", category="security"})'))
        .with_panel(_stat("Seconds since Gatekeeper audit", "time() - max(gatekeeper_audit_last_run_time)", "s"))
    )


def mesh() -> dashboard.Dashboard:
    return (
        _board("secstack-mesh", "Mesh security", "mTLS coverage and authorization denials reported by the destination sidecars.")
        .with_panel(_stat("Requests over mTLS", _mtls_share(), "percentunit", width=8))
        .with_panel(_stat("Plaintext requests/s", 'sum(rate(istio_requests_total{reporter="destination", connection_security_policy!="mutual_tls"}[5m]))', "reqps", width=8))
        .with_panel(_stat("Denied requests/s", f"sum(rate({DENIED}[5m]))", "reqps", width=8))
        .with_panel(
            _series(
                "mTLS share by destination namespace",
                'sum by (destination_workload_namespace) (rate(istio_requests_total{reporter="destination", connection_security_policy="mutual_tls"}[5m]))'
                f" / sum by (destination_workload_namespace) (rate({REQUESTS}[5m]))",
                "{{destination_workload_namespace}}",
                "percentunit",
            )
        )
        .with_panel(
            _series(
                "Authorization denials by workload",
                f"sum by (destination_workload_namespace, destination_workload) (rate({DENIED}[5m]))",
                "{{destination_workload_namespace}}/{{destination_workload}}",
                "reqps",
            )
        )
        .with_panel(
            _table(
                "Top denied principals (1h)",
                f"topk(10, sum by (source_principal, destination_workload_namespace, destination_workload) (increase({DENIED}[1h])))",
                width=24,
            )
        )
    )


def admission() -> dashboard.Dashboard:
    return (
        _board("secstack-admission", "Admission control", "Gatekeeper audit violations, audit freshness and webhook latency.")
        .with_panel(_stat("Seconds since last audit", "time() - max(gatekeeper_audit_last_run_time)", "s", width=8))
        .with_panel(_stat("Audit violations", "sum(gatekeeper_violations)", width=8))
        .with_panel(_stat("Denied admissions/s", 'sum(rate(gatekeeper_validation_request_count{admission_status="deny"}[5m]))', "reqps", width=8))
        .with_panel(
            _table(
                "Violations by constraint and enforcement action",
                "sort_desc(sum by (customresource_kind, constraint, enforcement_action) (secstack_gatekeeper_constraint_violations))",
            )
        )
        .with_panel(_series("Violations by enforcement action", "sum by (enforcement_action) (gatekeeper_violations)", "{{enforcement_action}}"))
        .with_panel(
            _series(
                "Webhook latency (p50, p99)",
                "histogram_quantile(0.99, sum by (le) (rate(gatekeeper_validation_request_duration_seconds_bucket[5m])))",
                "p99",
                "s",
            ).with_target(
                _query("histogram_quantile(0.5, sum by (le) (rate(gatekeeper_validation_request_duration_seconds_bucket[5m])))", "p50", "B")
            )
        )
        .with_panel(_series("Admission decisions", "sum by (admission_status) (rate(gatekeeper_validation_request_count[5m]))", "{{admission_status}}", "reqps"))
    )


def vulnerabilities() -> dashboard.Dashboard:
    return (
        _board("secstack-vulnerabilities", "Vulnerabilities", "Trivy operator findings in running workloads.")
        .with_panel(_stat("Critical", 'sum(trivy_image_vulnerabilities{severity="Critical"})', width=6))
        .with_panel(_stat("High", 'sum(trivy_image_vulnerabilities{severity="High"})', width=6))
        .with_panel(_stat("Exposed secrets in images", "sum(trivy_image_exposedsecrets)", width=6))
        .with_panel(_stat("Failed config checks (critical+high)", 'sum(trivy_resource_configaudits{severity=~"Critical|High"})', width=6))
        .with_panel(_series("Vulnerabilities by severity", "sum by (severity) (trivy_image_vulnerabilities)", "{{severity}}"))
        .with_panel(_series("Critical and high by namespace", 'sum by (namespace) (trivy_image_vulnerabilities{severity=~"Critical|High"})', "{{namespace}}"))
        .with_panel(
            _table(
                "Images with the most critical and high findings",
                'topk(20, sum by (namespace, image_repository, image_tag) (trivy_image_vulnerabilities{severity=~"Critical|High"}))',
                width=24,
            )
        )
    )


def runtime() -> dashboard.Dashboard:
    return (
        _board("secstack-runtime", "Runtime detection", "Falco events forwarded by falcosidekick, and Falco's own rule counters.")
        .with_panel(_stat("Critical events (1h)", f'sum(increase({FALCO_EVENTS}{{priority_raw=~"critical|alert|emergency"}}[1h]))', width=8))
        .with_panel(_stat("All events (1h)", f"sum(increase({FALCO_EVENTS}[1h]))", width=8))
        .with_panel(_stat("Falco pods up", 'sum(up{job="falco"})', width=8))
        .with_panel(_series("Events by priority", f"sum by (priority_raw) (rate({FALCO_EVENTS}[5m]))", "{{priority_raw}}", "ops"))
        .with_panel(_series("Events by rule", f"sum by (rule) (rate({FALCO_EVENTS}[5m]))", "{{rule}}", "ops"))
        .with_panel(_table("Events by rule, priority and namespace (24h)", f"sort_desc(sum by (rule, priority_raw, k8s_ns_name) (increase({FALCO_EVENTS}[24h])))"))
        .with_panel(_series("Rule matches in the Falco engine", "sum by (rule_name) (rate(falcosecurity_falco_rules_matches_total[5m]))", "{{rule_name}}", "ops"))
    )


DASHBOARDS: dict[str, Callable[[], dashboard.Dashboard]] = {
    "overview": overview,
    "mesh": mesh,
    "admission": admission,
    "vulnerabilities": vulnerabilities,
    "runtime": runtime,
}


def render(name: str) -> str:
    return json.dumps(DASHBOARDS[name]().build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def queries(document: dict) -> list[str]:
    """Every PromQL expression of a dashboard JSON document."""
    return [t["expr"] for p in document.get("panels", []) for t in p.get("targets") or [] if t.get("expr")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.generate", description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare with the committed JSON instead of writing")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    stale = []
    for name in DASHBOARDS:
        path = args.out / f"{name}.json"
        text = render(name)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.write_text(text)
    if stale:
        print("out of date (run `python -m dashboards.generate`): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
