"""SecurityPlatform: composes every security component of a stack in a stated order.

Order (each step depends on the ones before it):
  1. teams        namespaces, RBAC, quotas, default-deny networking
  2. mesh         Istio, mTLS, authorization (policies land in the team namespaces)
  3. data         KMS keys, Secrets Manager entries and their delivery, RRSA roles
  4. logging      ECK: Elasticsearch, Kibana, Filebeat, retention
  5. monitoring   kube-prometheus-stack (its CRDs must exist before anything ships a ServiceMonitor)
  6. detection    Trivy operator and Falco, then the Elasticsearch CA copy into Falco's namespace
  7. admission    Gatekeeper last, so that its webhook cannot block the other add-ons while they install
"""
from __future__ import annotations

from typing import NotRequired, Optional, TypedDict

import pulumi

from components.admission import Gatekeeper, GatekeeperArgs
from components.logging import SecurityLogging, SecurityLoggingArgs
from components.logging_ca import ElasticsearchCaDelivery
from components.data_security import DataSecurity, DataSecurityArgs
from components.mesh import IstioMesh, IstioMeshArgs
from components.monitoring import SecurityMonitoring, SecurityMonitoringArgs
from components.runtime import Falco, FalcoArgs
from components.scanning import TrivyOperator, TrivyOperatorArgs
from components.teams import Team, TeamArgs


class PlatformArgs(TypedDict):
    environment: str
    teams: list[TeamArgs]
    mesh: IstioMeshArgs
    # Later components add NotRequired keys here.
    data_security: NotRequired[DataSecurityArgs]
    admission: NotRequired[GatekeeperArgs]
    scanning: NotRequired[TrivyOperatorArgs]
    runtime: NotRequired[FalcoArgs]
    logging: NotRequired[SecurityLoggingArgs]
    monitoring: NotRequired[SecurityMonitoringArgs]


class SecurityPlatform(pulumi.ComponentResource):
    """Composes every security component of a stack in a stated order."""

    namespaces: pulumi.Output[list[str]]

    def __init__(self, name: str, args: PlatformArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("secstack:platform:SecurityPlatform", name, None, opts)
        teams = [Team(team["name"], team, pulumi.ResourceOptions(parent=self)) for team in args["teams"]]
        namespaces = [ns for team in teams for ns in team.namespace_resources]
        mesh = IstioMesh("mesh", args["mesh"], pulumi.ResourceOptions(parent=self, depends_on=namespaces))
        self.mesh = mesh
        # Add-ons: each depends on the team namespaces and the mesh.
        addons: list[pulumi.Resource] = [mesh]
        after_mesh = pulumi.ResourceOptions(parent=self, depends_on=[*namespaces, mesh])
        self.data_security = None
        if "data_security" in args:
            # KMS keys, Secrets Manager entries and their delivery, RRSA roles (docs/data-security.md).
            self.data_security = DataSecurity("data", args["data_security"], after_mesh)
            addons.append(self.data_security)
        self.logging = None
        if "logging" in args:
            self.logging = SecurityLogging("logging", args["logging"], after_mesh)
            addons.append(self.logging)

        # Monitoring before detection: kube-prometheus-stack installs the prometheus-operator CRDs.
        self.monitoring = None
        if "monitoring" in args:
            self.monitoring = SecurityMonitoring("monitoring", args["monitoring"], after_mesh)
            addons.append(self.monitoring)

        # Detection: both charts ship ServiceMonitors, so they depend on every add-on built before them (the
        # monitoring stack, whose prometheus-operator CRDs must exist, belongs before this point).
        self.scanning = self.runtime = None
        if "scanning" in args:
            self.scanning = TrivyOperator("trivy-operator", args["scanning"], pulumi.ResourceOptions(parent=self, depends_on=[*namespaces, *addons]))
        if "runtime" in args:
            self.runtime = Falco("falco", args["runtime"], pulumi.ResourceOptions(parent=self, depends_on=[*namespaces, *addons]))
        addons += [c for c in (self.scanning, self.runtime) if c is not None]
        # The Elasticsearch CA copy writes into Falco's namespace, so it comes after Falco (docs/logging.md).
        self.logging_ca = None
        if self.logging is not None and self.runtime is not None and self.logging.ca_delivery is not None:
            self.logging_ca = ElasticsearchCaDelivery(
                "logging-es-ca", self.logging.ca_delivery, pulumi.ResourceOptions(parent=self, depends_on=[self.logging, self.runtime])
            )
            addons.append(self.logging_ca)

        # Admission control last: its webhook must not block the add-ons above while they install.
        self.gatekeeper = None
        if "admission" in args:
            self.gatekeeper = Gatekeeper(
                "gatekeeper", args["admission"], pulumi.ResourceOptions(parent=self, depends_on=[*teams, *addons])
            )
        self.addons = addons
        self.teams = teams
        self.namespaces = pulumi.Output.from_input([ns for team in args["teams"] for ns in team["namespaces"]])
        self.register_outputs({"environment": args["environment"], "namespaces": self.namespaces})
