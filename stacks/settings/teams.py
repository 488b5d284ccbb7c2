"""Team settings: who owns which namespaces, service accounts and services, and who may call whom."""
from __future__ import annotations

import re
from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, Field, field_validator, model_validator

from .base import Model

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _dns_label(value: str) -> str:
    if not DNS_LABEL.match(value):
        raise ValueError(f"{value!r} is not a DNS label (lowercase letters, digits and '-', at most 63)")
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]


class JwtRule(Model):
    """Requests to these paths and methods need a valid token carrying these roles/scopes."""

    paths: list[str] = Field(min_length=1)
    methods: list[HttpMethod] = Field(default_factory=lambda: ["GET"], min_length=1)
    roles: list[str] = Field(default_factory=list)
    scopes: list[str] = Field(default_factory=list)


class ServiceSettings(Model):
    name: DnsLabel
    namespace: Optional[DnsLabel] = None  # defaults to the team's first namespace
    service_account: Optional[DnsLabel] = None  # defaults to the service name
    port: int = Field(default=8080, ge=1, le=65535)
    allow_from: list[str] = Field(
        default_factory=list, description="callers as <namespace>/<serviceAccount>; becomes SPIFFE principals"
    )
    public: bool = False  # reachable from the ingress gateway
    jwt_rules: list[JwtRule] = Field(default_factory=list)

    @field_validator("allow_from")
    @classmethod
    def _callers(cls, values: list[str]) -> list[str]:
        for value in values:
            parts = value.split("/")
            if len(parts) != 2 or not all(DNS_LABEL.match(p) for p in parts):
                raise ValueError(f"{value!r} must be <namespace>/<serviceAccount>, e.g. orders/orders-api")
        return values


class Groups(Model):
    viewers: list[str] = Field(default_factory=list)
    deployers: list[str] = Field(default_factory=list)


class Quota(Model):
    requests_cpu: str = "4"
    requests_memory: str = "8Gi"
    limits_cpu: str = "8"
    limits_memory: str = "16Gi"
    pods: int = Field(default=50, ge=1)


class TeamSettings(Model):
    name: DnsLabel
    owner: str = Field(min_length=3)
    namespaces: list[str] = Field(min_length=1)
    groups: Groups = Groups()
    quota: Quota = Quota()
    services: list[ServiceSettings] = Field(default_factory=list)

    @field_validator("namespaces")
    @classmethod
    def _namespaces(cls, values: list[str]) -> list[str]:
        for value in values:
            _dns_label(value)
            if value in RESERVED_NAMESPACES or value.startswith("kube-"):
                raise ValueError(f"{value!r} is a platform namespace; pick a team namespace name")
        return values

    @model_validator(mode="after")
    def _service_namespaces(self) -> "TeamSettings":
        for service in self.services:
            if service.namespace and service.namespace not in self.namespaces:
                raise ValueError(
                    f"service {service.name!r} is in namespace {service.namespace!r}, which team {self.name!r} "
                    f"does not own (owns: {', '.join(self.namespaces)})"
                )
        return self


RESERVED_NAMESPACES = {
    "default",
    "istio-system",
    "gatekeeper-system",
    "trivy-system",
    "falco",
    "monitoring",
    "logging",
    "elastic-system",
    "secrets-system",
}
