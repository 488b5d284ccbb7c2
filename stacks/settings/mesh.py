"""Mesh settings: Istio version, mTLS mode and the JWT issuer the public API trusts."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, HttpUrl, field_validator

from .base import Guard, Model, rank_weaker

MtlsMode = Literal["PERMISSIVE", "STRICT"]
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
JwtAlgorithm = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


class JwtAuthSettings(Model):
    """The one description of a JWT issuer, shared by the mesh (RequestAuthentication) and the services
    (`secstack.auth.TokenVerifier`)."""

    issuer: str = Field(min_length=1)
    jwks_uri: HttpUrl
    audiences: list[str] = Field(min_length=1)
    algorithms: list[JwtAlgorithm] = Field(default_factory=lambda: ["RS256", "ES256"], min_length=1)
    leeway_seconds: int = Field(default=30, ge=0, le=300)
    required_claims: list[str] = Field(default_factory=lambda: ["exp", "iat", "iss", "aud", "sub"])
    roles_claim: str = "roles"
    scopes_claim: str = "scope"
    forward_original_token: bool = False

    @field_validator("jwks_uri")
    @classmethod
    def _https_only(cls, value: HttpUrl) -> HttpUrl:
        if value.scheme != "https" and value.host not in ("localhost", "127.0.0.1"):
            raise ValueError("must be an https:// URL (keys fetched over plain HTTP can be swapped in transit)")
        return value


class MeshSettings(Model):
    istio_version: str = "1.30.3"
    mtls_mode: MtlsMode = "STRICT"
    reason: Optional[str] = None
    trust_domain: str = "cluster.local"
    istiod_replicas: int = Field(default=1, ge=1, le=10)
    outbound_traffic_policy: Literal["ALLOW_ANY", "REGISTRY_ONLY"] = "REGISTRY_ONLY"
    access_log_json: bool = True
    jwt: Optional[JwtAuthSettings] = None
    istiod_values: dict = Field(default_factory=dict, description="Helm escape hatch, merged over ours")


PROFILE = {
    "dev": {"mtlsMode": "STRICT", "istiodReplicas": 1, "outboundTrafficPolicy": "ALLOW_ANY"},
    "staging": {"mtlsMode": "STRICT", "istiodReplicas": 2, "outboundTrafficPolicy": "REGISTRY_ONLY"},
    "prod": {"mtlsMode": "STRICT", "istiodReplicas": 3, "outboundTrafficPolicy": "REGISTRY_ONLY"},
}

GUARDS = [
    Guard(
        section="mesh",
        path=("mtlsMode",),
        weaker=rank_weaker(["PERMISSIVE", "STRICT"]),
        hint="PERMISSIVE accepts plaintext traffic between workloads",
    ),
    Guard(
        section="mesh",
        path=("outboundTrafficPolicy",),
        weaker=rank_weaker(["ALLOW_ANY", "REGISTRY_ONLY"]),
        hint="ALLOW_ANY lets a compromised pod reach any host on the internet",
    ),
]
