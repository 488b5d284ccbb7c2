"""SecurityPlatform: composes every security component of a stack in a stated order.

Order (each step depends on the ones before it):
  1. teams        namespaces, RBAC, quotas, default-deny networking
  2. mesh         Istio, mTLS, authorization (policies land in the team namespaces)
Later components (keys, secrets, identities, scanning, runtime detection, monitoring, logging) come after the mesh,
and admission control comes last so that its webhook cannot block the other add-ons while they install.
"""
from __future__ import annotations

from typing import NotRequired, Optional, TypedDict

import pulumi

from components.mesh import IstioMesh, IstioMeshArgs
from components.teams import Team, TeamArgs


class PlatformArgs(TypedDict):
    environment: str
    teams: list[TeamArgs]
    mesh: IstioMeshArgs
    # Later components add NotRequired keys here.


class SecurityPlatform(pulumi.ComponentResource):
    namespaces: pulumi.Output[list[str]]

    def __init__(self, name: str, args: PlatformArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("secstack:platform:SecurityPlatform", name, None, opts)
        teams = [Team(team["name"], team, pulumi.ResourceOptions(parent=self)) for team in args["teams"]]
        namespaces = [ns for team in teams for ns in team.namespace_resources]
        mesh = IstioMesh("mesh", args["mesh"], pulumi.ResourceOptions(parent=self, depends_on=namespaces))
        self.mesh = mesh
        # Add-ons: each depends on the team namespaces and the mesh; append each to `addons`.
        addons: list[pulumi.Resource] = [mesh]
        after_mesh = pulumi.ResourceOptions(parent=self, depends_on=[*namespaces, mesh])

        # Admission control last: its webhook must not block the add-ons above while they install.
        self.addons = addons
        self.teams = teams
        self.namespaces = pulumi.Output.from_input([ns for team in args["teams"] for ns in team["namespaces"]])
        self.register_outputs({"environment": args["environment"], "namespaces": self.namespaces})
