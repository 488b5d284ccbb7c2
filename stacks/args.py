"""Settings -> component args. The only place that knows both shapes."""
from __future__ import annotations

from collections import defaultdict

from components.mesh import IstioMeshArgs, JwtProviderArgs, MeshServiceArgs, spiffe_principal
from components.platform import PlatformArgs
from components.teams import TeamArgs
from stacks.settings import JwtAuthSettings, Settings


def jwt_provider_args(jwt: JwtAuthSettings) -> JwtProviderArgs:
    return {
        "issuer": jwt.issuer,
        "jwks_uri": str(jwt.jwks_uri),
        "audiences": list(jwt.audiences),
        "forward_original_token": jwt.forward_original_token,
        "roles_claim": jwt.roles_claim,
        "scopes_claim": jwt.scopes_claim,
    }


def pod_security_level(settings: Settings) -> str:
    return "restricted" if settings.is_prod else "baseline"


def team_args(settings: Settings) -> list[TeamArgs]:
    ns_of_team = {ns: team.name for team in settings.teams for ns in team.namespaces}
    callers_into: dict[str, set[str]] = defaultdict(set)
    for _, service, ns, _ in settings.services():
        for caller in service.allow_from:
            callers_into[ns].add(caller.split("/")[0])
    calls_to: dict[str, set[str]] = defaultdict(set)
    for ns, callers in callers_into.items():
        for caller in callers:
            calls_to[caller].add(ns)
    out: list[TeamArgs] = []
    for team in settings.teams:
        accounts = sorted({(ns, sa) for t, _, ns, sa in settings.services() if t.name == team.name})
        out.append(
            {
                "name": team.name,
                "owner": team.owner,
                "namespaces": list(team.namespaces),
                "pod_security": pod_security_level(settings),
                "service_accounts": [{"name": sa, "namespace": ns} for ns, sa in accounts],
                "viewer_groups": list(team.groups.viewers),
                "deployer_groups": list(team.groups.deployers),
                "quota": team.quota.model_dump(),
                "istio_injection": True,
                "ingress_from_namespaces": sorted({c for ns in team.namespaces for c in callers_into[ns] if c in ns_of_team}),
                "egress_to_namespaces": sorted({n for ns in team.namespaces for n in calls_to[ns]}),
            }
        )
    return out


def mesh_args(settings: Settings) -> IstioMeshArgs:
    mesh = settings.mesh
    services: list[MeshServiceArgs] = []
    for _, service, ns, _ in settings.services():
        services.append(
            {
                "namespace": ns,
                "app": service.name,
                "port": service.port,
                "allowed_principals": [spiffe_principal(*c.split("/"), mesh.trust_domain) for c in service.allow_from],
                "public": service.public,
                "jwt_rules": [rule.model_dump() for rule in service.jwt_rules],
            }
        )
    return {
        "mtls_mode": mesh.mtls_mode,
        "mesh_namespaces": [ns for team in settings.teams for ns in team.namespaces],
        "services": services,
        "jwt": jwt_provider_args(mesh.jwt) if mesh.jwt else None,
        "trust_domain": mesh.trust_domain,
        "istiod_replicas": mesh.istiod_replicas,
        "outbound_traffic_policy": mesh.outbound_traffic_policy,
        "access_log_json": mesh.access_log_json,
        "istiod_values": dict(mesh.istiod_values),
    }


def platform_args(settings: Settings, stack: str) -> PlatformArgs:
    return {"environment": settings.environment, "teams": team_args(settings), "mesh": mesh_args(settings)}
