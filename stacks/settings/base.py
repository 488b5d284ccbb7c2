"""Shared building blocks of the settings schema: camelCase models, secret values, guards."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class Environment(str, Enum):
    dev = "dev"
    staging = "staging"
    prod = "prod"


class Model(BaseModel):
    """Every settings model: camelCase keys as in Pulumi config, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, use_enum_values=True
    )


class SecretValue:
    """A value that came from `secure:` config. Its repr never shows the value."""

    __slots__ = ("_value", "name")

    def __init__(self, name: str, value: str):
        self.name = name
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"SecretValue({self.name!r}, [secret])"

    __str__ = __repr__


@dataclass(frozen=True)
class Guard:
    """A setting whose environment profile is a security floor.

    In the guarded environments an override that is weaker than the profile value is an error unless the
    section's `reason` key explains it (the reason is then reported by `secstack diff` and `secstack report`).
    """

    path: tuple[str, ...]  # camelCase key path below the section, e.g. ("mtlsMode",)
    section: str  # top-level config key, e.g. "mesh"
    weaker: Callable[[Any, Any], bool]  # weaker(value, profile_value)
    environments: tuple[str, ...] = ("staging", "prod")
    hint: str = ""


def rank_weaker(order: list[Any]) -> Callable[[Any, Any], bool]:
    """weaker() for an ordered enum, weakest first."""

    def weaker(value: Any, floor: Any) -> bool:
        return order.index(value) < order.index(floor)

    return weaker


def less_than(value: Any, floor: Any) -> bool:
    return value < floor


def turned_off(value: Any, floor: Any) -> bool:
    return bool(floor) and not value


def secret_ref(**kwargs: Any) -> Any:
    """A field naming an entry of `secstack:secretValues` (the value itself never sits in plain config)."""
    return Field(json_schema_extra={"secret_ref": True}, **kwargs)


def networks(values: list[str], example: str, everything: str) -> list[Any]:
    """Parse CIDRs (host bits zero); `/0` is refused with `everything` as the reason."""
    import ipaddress

    parsed = []
    for value in values:
        try:
            network = ipaddress.ip_network(value, strict=True)
        except ValueError:
            raise ValueError(f"{value!r} is not a network in CIDR notation such as {example} (host bits must be zero)") from None
        if network.prefixlen == 0:
            raise ValueError(f"{value!r} {everything}")
        parsed.append(network)
    return parsed
