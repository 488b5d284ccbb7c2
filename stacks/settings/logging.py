"""Logging settings: the Elasticsearch cluster (ECK) that keeps the security logs, and how long it keeps them."""
from __future__ import annotations

import re
from typing import Optional

from pydantic import Field, field_validator, model_validator

from .base import Guard, Model, less_than, networks, secret_ref, turned_off

# Alibaba Cloud ESSD disks start at 20 GiB; a smaller claim fails to provision.
MIN_DISK_GI = 20
_QUANTITY = re.compile(r"^[1-9][0-9]*(m|Mi|Gi)?$")
_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class LoggingSettings(Model):
    elasticsearch_version: str = Field(default="9.5.0", pattern=r"^[89]\.\d+\.\d+$")
    retention_days: int = Field(default=180, ge=1, le=3650)
    node_count: int = Field(default=3, ge=1, le=9)
    zone_awareness: bool = True
    storage_class: str = Field(default="alicloud-disk-essd", min_length=1)
    storage_size: str = Field(default="500Gi", pattern=r"^[1-9][0-9]*Gi$")
    keep_volumes: bool = True  # ECK volumeClaimDeletePolicy: keep the claims when the cluster is deleted
    es_cpu: str = "1"
    es_cpu_limit: str = "2"
    es_memory: str = "4Gi"  # request = limit: Elasticsearch sizes its heap from the container limit
    kibana_count: int = Field(default=1, ge=1, le=5)
    kibana_host: Optional[str] = None  # exposes Kibana on the mesh ingress gateway (TLS passthrough) when set
    kibana_allowed_cidrs: list[str] = Field(default_factory=list)
    allow_mmap: bool = False  # true only if the node pool sets vm.max_map_count >= 262144
    reason: Optional[str] = None
    setup_password: str = secret_ref(default="logging-setup-password")
    shipper_password: str = secret_ref(default="logging-shipper-password")
    # Shared with secstack:runtime.elasticsearch.passwordSecret: falcosidekick logs in as user `falcosidekick` with it.
    falcosidekick_password: str = secret_ref(default="falco-elasticsearch-password")

    @field_validator("node_count")
    @classmethod
    def _quorum(cls, value: int) -> int:
        if value == 2:
            raise ValueError("2 master-eligible nodes cannot lose either one; use 1 (dev) or 3 or more")
        return value

    @field_validator("storage_size")
    @classmethod
    def _disk(cls, value: str) -> str:
        if int(value[:-2]) < MIN_DISK_GI:
            raise ValueError(f"Alibaba Cloud ESSD disks are at least {MIN_DISK_GI}Gi")
        return value

    @field_validator("es_cpu", "es_cpu_limit", "es_memory")
    @classmethod
    def _quantity(cls, value: str) -> str:
        if not _QUANTITY.match(value):
            raise ValueError("must be a Kubernetes quantity such as 500m, 2 or 4Gi")
        return value

    @field_validator("kibana_host")
    @classmethod
    def _host(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not _HOST.match(value):
            raise ValueError("must be a lower-case DNS name such as kibana.example.com")
        return value

    @field_validator("kibana_allowed_cidrs")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        networks(values, "203.0.113.0/24", "allows the whole internet; list the operators' networks")
        return values

    @model_validator(mode="after")
    def _exposure(self) -> "LoggingSettings":
        if self.kibana_host and not self.kibana_allowed_cidrs:
            raise ValueError("kibanaAllowedCidrs: required when kibanaHost is set (who may reach Kibana)")
        if self.zone_awareness and self.node_count == 1:
            raise ValueError("zoneAwareness: a single node cannot be spread over zones; set it to false")
        return self


PROFILE = {
    "dev": {"retentionDays": 7, "nodeCount": 1, "zoneAwareness": False, "storageSize": "20Gi", "keepVolumes": False,
            "esCpu": "500m", "esCpuLimit": "1", "esMemory": "2Gi", "kibanaCount": 1},
    "staging": {"retentionDays": 30, "nodeCount": 3, "zoneAwareness": True, "storageSize": "100Gi", "keepVolumes": False,
                "esCpu": "1", "esCpuLimit": "2", "esMemory": "4Gi", "kibanaCount": 1},
    "prod": {"retentionDays": 180, "nodeCount": 3, "zoneAwareness": True, "storageSize": "500Gi", "keepVolumes": True,
             "esCpu": "2", "esCpuLimit": "4", "esMemory": "8Gi", "kibanaCount": 2},
}

GUARDS = [
    Guard(
        section="logging",
        path=("retentionDays",),
        weaker=less_than,
        hint="MLPS 2.0 asks for at least six months of security logs in production",
    ),
    Guard(
        section="logging",
        path=("nodeCount",),
        weaker=less_than,
        environments=("prod",),
        hint="fewer than 3 master-eligible nodes lose the logs or stop indexing when one node fails",
    ),
    Guard(
        section="logging",
        path=("zoneAwareness",),
        weaker=turned_off,
        environments=("prod",),
        hint="without zone awareness one zone outage can take every copy of a shard",
    ),
    Guard(
        section="logging",
        path=("keepVolumes",),
        weaker=turned_off,
        environments=("prod",),
        hint="the volumes hold production audit data and would be deleted with the cluster",
    ),
]
