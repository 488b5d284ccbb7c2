"""KMS settings: one customer master key per purpose, their rotation, deletion window and protection."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, field_validator

from .base import Guard, Model, less_than, turned_off

KeyPurpose = Literal["data", "secrets", "config", "logs"]
KEY_PURPOSES = ("data", "secrets", "config", "logs")
# Envelope encryption and Secrets Manager need symmetric keys; the 128/192-bit specs exist only in KMS instances.
SymmetricKeySpec = Literal["Aliyun_AES_256", "Aliyun_SM4"]
# Default (non-instance) keys support only a fixed 365-day automatic rotation period (provider docs, kms.Key).
DEFAULT_KEY_ROTATION_DAYS = 365


class KmsSettings(Model):
    purposes: list[KeyPurpose] = Field(default_factory=lambda: list(KEY_PURPOSES), min_length=1)
    key_spec: SymmetricKeySpec = "Aliyun_AES_256"
    automatic_rotation: bool = True
    rotation_interval_days: int = Field(default=DEFAULT_KEY_ROTATION_DAYS, ge=7, le=365)
    pending_window_in_days: int = Field(default=30, ge=7, le=366)
    deletion_protection: bool = False
    dkms_instance_id: Optional[str] = Field(default=None, pattern=r"^kst-[a-z0-9]+$")
    protection_level: Literal["SOFTWARE", "HSM"] = "SOFTWARE"
    account_id: Optional[str] = Field(default=None, pattern=r"^\d{16}$", description="needed for key policies")
    key_users: dict[str, list[KeyPurpose]] = Field(
        default_factory=dict, description="<namespace>/<serviceAccount> -> purposes whose key it may Decrypt/GenerateDataKey with"
    )
    reason: Optional[str] = None

    @field_validator("purposes")
    @classmethod
    def _once(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError("each purpose may appear once")
        return values


PROFILE = {
    "dev": {"pendingWindowInDays": 7, "rotationIntervalDays": 365, "automaticRotation": True, "deletionProtection": False},
    "staging": {"pendingWindowInDays": 14, "rotationIntervalDays": 365, "automaticRotation": True, "deletionProtection": False},
    "prod": {"pendingWindowInDays": 30, "rotationIntervalDays": 365, "automaticRotation": True, "deletionProtection": True},
}

GUARDS = [
    Guard(section="kms", path=("pendingWindowInDays",), weaker=less_than,
          hint="a shorter window leaves less time to cancel an accidental key deletion"),
    Guard(section="kms", path=("rotationIntervalDays",), weaker=lambda value, floor: value > floor,
          hint="a longer interval keeps each key version in use longer"),
    Guard(section="kms", path=("automaticRotation",), weaker=turned_off, hint="keys would never get new material"),
    Guard(section="kms", path=("deletionProtection",), weaker=turned_off, environments=("prod",),
          hint="KMS would accept a ScheduleKeyDeletion call for a production key"),
]
