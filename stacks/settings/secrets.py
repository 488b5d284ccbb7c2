"""Secrets Manager settings: which secret values become KMS secrets, who reads them, and how they are delivered."""
from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from .base import Guard, Model, less_than, secret_ref
from .teams import DNS_LABEL

SecretType = Literal["Generic", "Rds", "RAMCredentials", "ECS"]
ROTATABLE = ("Rds", "RAMCredentials", "ECS")
SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


class SecretEntry(Model):
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", description="also the Kubernetes Secret name")
    value: str = secret_ref(description="the secstack:secretValues entry holding the value")
    type: SecretType = "Generic"
    description: str = ""
    version_id: str = Field(default="v1", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    consumers: list[str] = Field(min_length=1, description="<namespace>/<serviceAccount> that read the secret")
    secret_key: str = Field(default="value", description="data key inside the Kubernetes Secret")
    extended_config: dict = Field(default_factory=dict, description="Secrets Manager ExtendedConfig for Rds/RAMCredentials/ECS")
    account_name: Optional[str] = Field(default=None, description="Rds: the database account whose password this is")
    rotation_interval_days: Optional[int] = Field(default=None, ge=1, le=365)

    @field_validator("consumers")
    @classmethod
    def _consumers(cls, values: list[str]) -> list[str]:
        for value in values:
            parts = value.split("/")
            if len(parts) != 2 or not all(DNS_LABEL.match(p) for p in parts):
                raise ValueError(f"{value!r} must be <namespace>/<serviceAccount>, e.g. payments/payments-api")
        return values

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, value: str) -> str:
        if not SECRET_KEY.match(value):
            raise ValueError(f"{value!r} is not a valid Kubernetes Secret data key (letters, digits, '-', '_', '.')")
        return value


class SecretsSettings(Model):
    delivery: Literal["ack-secret-manager", "external-secrets"] = "ack-secret-manager"
    recovery_window_in_days: int = Field(default=30, ge=7, le=30)
    polling_interval_seconds: int = Field(default=120, ge=30, le=3600)
    entries: list[SecretEntry] = Field(default_factory=list)
    passphrase_secret_name: Optional[str] = Field(
        default=None, description="Secrets Manager secret holding the stack's Pulumi passphrase (secstack passphrase)"
    )
    reason: Optional[str] = None

    @field_validator("delivery")
    @classmethod
    def _delivery(cls, value: str) -> str:
        if value == "external-secrets":
            # The pinned external-secrets (chart/CRDs 2.9.0) serves SecretStore v1 without the `alibaba` provider:
            # it was removed in v2.0.0 (external-secrets/external-secrets#5710). Rendering it would be rejected.
            raise ValueError(
                "'external-secrets' is not deliverable: external-secrets 2.x (pinned 2.9.0) removed its Alibaba "
                "provider; use 'ack-secret-manager'"
            )
        return value

    @model_validator(mode="after")
    def _unique(self) -> "SecretsSettings":
        names = [e.name for e in self.entries]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"entries: names must be unique; repeated: {', '.join(duplicates)}")
        return self


PROFILE = {
    "dev": {"recoveryWindowInDays": 7},
    "staging": {"recoveryWindowInDays": 14},
    "prod": {"recoveryWindowInDays": 30},
}

GUARDS = [
    Guard(section="secrets", path=("recoveryWindowInDays",), weaker=less_than,
          hint="a deleted secret could be recovered for fewer days"),
]
