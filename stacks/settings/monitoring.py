"""Monitoring settings: Prometheus retention and replicas, and where security alerts are sent by severity."""
from __future__ import annotations

import re
from typing import Any, Literal, Optional

from pydantic import Field, field_validator, model_validator

from .base import Guard, Model, less_than, secret_ref

Severity = Literal["critical", "warning", "info"]
SEVERITIES: tuple[str, ...] = ("critical", "warning", "info")
_DURATION = re.compile(r"^(\d+)(h|d|w)$")
_HOURS = {"h": 1, "d": 24, "w": 24 * 7}
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$")
_HOSTPORT = re.compile(r"^[A-Za-z0-9.-]+:\d{1,5}$")


def retention_hours(value: str) -> int:
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a retention like 15d, 72h or 4w")
    return int(match.group(1)) * _HOURS[match.group(2)]


def retention_shorter(value: Any, floor: Any) -> bool:
    return retention_hours(value) < retention_hours(floor)


def fewer_severities(value: Any, floor: Any) -> bool:
    return not set(floor) <= set(value)


class ReceiverSettings(Model):
    """One notification target. `dingtalk` is a webhook to a prometheus-webhook-dingtalk bridge (DingTalk robots do
    not accept Alertmanager's payload); its URL, like a webhook's, names an entry of secstack:secretValues."""

    name: str
    type: Literal["webhook", "dingtalk", "email"]
    severities: list[Severity] = Field(min_length=1)
    url_secret: Optional[str] = secret_ref(default=None)
    to: list[str] = Field(default_factory=list)
    sender: Optional[str] = None
    smarthost: Optional[str] = None
    auth_username: Optional[str] = None
    auth_password_secret: Optional[str] = secret_ref(default=None)
    require_tls: bool = True
    send_resolved: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value == "null" or not _NAME.match(value):
            raise ValueError(f"{value!r} must be a DNS label (lowercase letters, digits, '-') other than 'null'")
        return value

    @model_validator(mode="after")
    def _shape(self) -> "ReceiverSettings":
        if self.type in ("webhook", "dingtalk"):
            if not self.url_secret:
                raise ValueError(f"receiver {self.name!r} ({self.type}) needs urlSecret, the secretValues entry holding its URL")
            if self.to or self.sender or self.smarthost or self.auth_password_secret:
                raise ValueError(f"receiver {self.name!r} ({self.type}) takes urlSecret only; to/sender/smarthost are for email")
        else:
            missing = [k for k, v in (("to", self.to), ("sender", self.sender), ("smarthost", self.smarthost)) if not v]
            if missing:
                raise ValueError(f"receiver {self.name!r} (email) needs {', '.join(missing)}")
            if self.url_secret:
                raise ValueError(f"receiver {self.name!r} (email) does not take urlSecret")
            for address in [*self.to, self.sender]:
                if not _EMAIL.match(address or ""):
                    raise ValueError(f"receiver {self.name!r}: {address!r} is not an e-mail address")
            if not _HOSTPORT.match(self.smarthost or ""):
                raise ValueError(f"receiver {self.name!r}: smarthost {self.smarthost!r} must be host:port")
            if self.auth_username and not self.auth_password_secret:
                raise ValueError(f"receiver {self.name!r}: authUsername needs authPasswordSecret")
        if len(set(self.severities)) != len(self.severities):
            raise ValueError(f"receiver {self.name!r}: severities has duplicates")
        return self


class MonitoringSettings(Model):
    retention: str = "15d"
    prometheus_replicas: int = Field(default=1, ge=1, le=5)
    alertmanager_replicas: int = Field(default=1, ge=1, le=5)
    storage_size: str = Field(default="50Gi", pattern=r"^\d+Gi$")
    storage_class: str = "alicloud-disk-topology-alltype"
    receivers: list[ReceiverSettings] = Field(default_factory=list)
    default_receiver: Optional[str] = Field(default=None, description="receiver of non-security alerts; none drops them")
    require_receivers_for: list[Severity] = Field(default_factory=list)
    grafana_admin_password_secret: str = secret_ref(default="grafana-admin-password")
    runbook_base_url: str = Field(default="https://github.com/secstack/secstack/blob/main", pattern=r"^https://\S+$")
    reason: Optional[str] = None

    @field_validator("retention")
    @classmethod
    def _retention(cls, value: str) -> str:
        retention_hours(value)
        return value

    @model_validator(mode="after")
    def _routing(self) -> "MonitoringSettings":
        names = [r.name for r in self.receivers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"receivers: names must be unique (repeated: {', '.join(dupes)})")
        if self.default_receiver is not None and self.default_receiver not in names:
            raise ValueError(f"defaultReceiver: {self.default_receiver!r} is not a receiver (have: {', '.join(names) or 'none'})")
        covered = {s for r in self.receivers for s in r.severities}
        missing = [s for s in self.require_receivers_for if s not in covered]
        if missing:
            raise ValueError(
                f"receivers: no receiver takes severity {', '.join(missing)}, which this environment requires "
                f"(requireReceiversFor); add a receiver with severities: [{', '.join(missing)}]"
            )
        return self


PROFILE = {
    "dev": {"retention": "3d", "prometheusReplicas": 1, "alertmanagerReplicas": 1, "storageSize": "20Gi", "requireReceiversFor": []},
    "staging": {
        "retention": "15d",
        "prometheusReplicas": 2,
        "alertmanagerReplicas": 2,
        "storageSize": "50Gi",
        "requireReceiversFor": ["critical"],
    },
    "prod": {
        "retention": "30d",
        "prometheusReplicas": 2,
        "alertmanagerReplicas": 3,
        "storageSize": "100Gi",
        "requireReceiversFor": ["critical", "warning"],
    },
}

GUARDS = [
    Guard(section="monitoring", path=("retention",), weaker=retention_shorter, hint="shorter retention loses incident evidence"),
    Guard(section="monitoring", path=("prometheusReplicas",), weaker=less_than, hint="one Prometheus is a blind spot during restarts"),
    Guard(section="monitoring", path=("alertmanagerReplicas",), weaker=less_than, hint="one Alertmanager drops notifications while it restarts"),
    Guard(
        section="monitoring",
        path=("requireReceiversFor",),
        weaker=fewer_severities,
        hint="alerts of a severity nobody receives are silently dropped",
    ),
]
