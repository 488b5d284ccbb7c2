"""Typed, validated settings for one stack.

`load()` turns the raw `secstack:*` config of a stack into a `Settings` object, or raises `SettingsError` with one
message per problem, each naming the config key path and what is allowed. Nothing here imports Pulumi: the CLI
validates a stack file before any resource is declared, and services import the auth settings type.
"""
from __future__ import annotations

import copy
from typing import Any, Iterable, get_args, get_origin

from pydantic import Field, ValidationError, model_validator
from pydantic import BaseModel

from . import admission as _admission
from . import detection as _detection
from . import logging as _logging
from . import mesh as _mesh
from . import monitoring as _monitoring
from . import kms as _kms
from . import secrets as _secrets
from .data_checks import check as _check_data_security
from .base import Environment, Guard, Model, SecretValue
from .cluster import ClusterSettings
from .mesh import JwtAuthSettings, MeshSettings
from .teams import ServiceSettings, TeamSettings

NAMESPACE = "secstack"

# section key -> (profile per environment, guards). Sections without a profile are absent here.
PROFILED_SECTIONS: dict[str, tuple[dict, list[Guard]]] = {
    "mesh": (_mesh.PROFILE, _mesh.GUARDS),
    "kms": (_kms.PROFILE, _kms.GUARDS),
    "secrets": (_secrets.PROFILE, _secrets.GUARDS),
    "admission": (_admission.PROFILE, _admission.GUARDS),
    "scanning": (_detection.SCANNING_PROFILE, _detection.SCANNING_GUARDS),
    "runtime": (_detection.RUNTIME_PROFILE, _detection.RUNTIME_GUARDS),
    "monitoring": (_monitoring.PROFILE, _monitoring.GUARDS),
    "logging": (_logging.PROFILE, _logging.GUARDS),
}


class SettingsError(Exception):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class Settings(Model):
    environment: Environment
    cluster: ClusterSettings
    mesh: MeshSettings = MeshSettings()
    kms: _kms.KmsSettings = Field(default_factory=_kms.KmsSettings)
    secrets: _secrets.SecretsSettings = Field(default_factory=_secrets.SecretsSettings)
    admission: _admission.AdmissionSettings = Field(default_factory=_admission.AdmissionSettings)
    scanning: _detection.ScanningSettings = Field(default_factory=_detection.ScanningSettings)
    runtime: _detection.RuntimeSettings = Field(default_factory=_detection.RuntimeSettings)
    monitoring: _monitoring.MonitoringSettings = Field(default_factory=_monitoring.MonitoringSettings)
    logging: _logging.LoggingSettings = Field(default_factory=_logging.LoggingSettings)
    teams: list[TeamSettings] = Field(default_factory=list)
    secret_values: dict[str, Any] = Field(default_factory=dict, exclude=True, repr=False)

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    def secret(self, name: str) -> SecretValue:
        return self.secret_values[name]

    def services(self) -> Iterable[tuple[TeamSettings, ServiceSettings, str, str]]:
        """(team, service, namespace, serviceAccount) with defaults applied."""
        for team in self.teams:
            for service in team.services:
                yield team, service, service.namespace or team.namespaces[0], service.service_account or service.name

    @model_validator(mode="after")
    def _cross_references(self) -> "Settings":
        problems = []
        owners: dict[str, str] = {}
        for i, team in enumerate(self.teams):
            for ns in team.namespaces:
                if ns in owners:
                    problems.append(f"teams[{i}].namespaces: {ns!r} is already owned by team {owners[ns]!r}")
                owners[ns] = team.name
        accounts = {f"{ns}/{sa}" for _, _, ns, sa in self.services()}
        for i, team in enumerate(self.teams):
            for j, service in enumerate(team.services):
                for caller in service.allow_from:
                    if caller not in accounts:
                        problems.append(
                            f"teams[{i}].services[{j}].allowFrom: {caller!r} is not a declared service account "
                            f"(declared: {', '.join(sorted(accounts)) or 'none'})"
                        )
                if service.jwt_rules and self.mesh.jwt is None:
                    problems.append(
                        f"teams[{i}].services[{j}].jwtRules: needs secstack:mesh.jwt (issuer, jwksUri, audiences)"
                    )
        if problems:
            raise ValueError("; ".join(problems))
        return self


def profile(environment: str) -> dict[str, Any]:
    """The secure defaults of an environment, as config-shaped data."""
    return {section: copy.deepcopy(p[environment]) for section, (p, _) in PROFILED_SECTIONS.items()}


def allowed_keys() -> list[str]:
    return sorted(f.alias or name for name, f in Settings.model_fields.items())


def load(raw: dict[str, Any]) -> Settings:
    """Validate raw config (full `secstack:` keys; structured values already decoded).

    Secret values must be `SecretValue` (from `secure:` config); anything else under `secstack:secretValues` is an
    error. Keys of other namespaces (alicloud:, kubernetes:, pulumi:) are ignored.
    """
    problems: list[str] = []
    ours = {k[len(NAMESPACE) + 1 :]: v for k, v in raw.items() if k.startswith(NAMESPACE + ":")}
    known = set(allowed_keys())
    for key in sorted(set(ours) - known):
        problems.append(f"secstack:{key}: unknown key; allowed keys: {', '.join(sorted(known))}")
    secret_values = ours.pop("secretValues", None) or {}
    problems += check_secret_values(secret_values)

    environment = ours.get("environment")
    if environment is None:
        problems.append("secstack:environment: required key is missing; allowed values: dev, staging, prod")
    elif environment not in Environment.__members__:
        problems.append(f"secstack:environment: {environment!r} is not allowed; allowed values: dev, staging, prod")
    if problems and environment not in Environment.__members__:
        raise SettingsError(problems)

    merged = profile(environment)
    for key, value in ours.items():
        if key in known:
            merged[key] = _deep_merge(merged.get(key), value)
    try:
        settings = Settings.model_validate({**merged, "secretValues": secret_values})
    except ValidationError as exc:
        problems += _format(exc)
        raise SettingsError(problems + _check_guards(environment, merged)) from None
    problems += _check_guards(environment, merged)
    problems += _check_secret_refs(settings, secret_values)
    problems += _check_data_security(settings)
    if problems:
        raise SettingsError(problems)
    return settings


def _deep_merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = _deep_merge(base.get(key), value)
        return out
    return override


def check_secret_values(values: Any) -> list[str]:
    if not isinstance(values, dict):
        return ["secstack:secretValues: must be a map of name -> secret value"]
    problems = []
    for name, value in values.items():
        if not isinstance(value, SecretValue):
            problems.append(
                f"secstack:secretValues.{name}: is plain text but must be a secret; set it with "
                f"`pulumi config set --secret --path 'secstack:secretValues.{name}' <value>`"
            )
    return problems


def _check_guards(environment: str, merged: dict[str, Any]) -> list[str]:
    problems = []
    floor = profile(environment)
    for section, (_, guards) in PROFILED_SECTIONS.items():
        for guard in guards:
            if environment not in guard.environments:
                continue
            value, base = _get(merged.get(section), guard.path), _get(floor.get(section), guard.path)
            try:
                if value is None or base is None or not guard.weaker(value, base):
                    continue
            except (TypeError, ValueError):
                continue  # a malformed value is reported by the schema check
            if (merged.get(section) or {}).get("reason"):
                continue
            key = f"secstack:{section}.{'.'.join(guard.path)}"
            problems.append(
                f"{key}: {value!r} weakens the {environment} profile ({base!r}); {guard.hint + '; ' if guard.hint else ''}"
                f"set secstack:{section}.reason to record why, or remove the override"
            )
    return problems


def _check_secret_refs(settings: Settings, secret_values: dict) -> list[str]:
    problems = []
    for path, name in _secret_refs(settings, ()):
        if name not in secret_values:
            problems.append(
                f"secstack:{path}: refers to secret {name!r}, which is not in secstack:secretValues "
                f"(defined: {', '.join(sorted(secret_values)) or 'none'})"
            )
    return problems


def _secret_refs(model: Any, path: tuple) -> Iterable[tuple[str, str]]:
    """Fields whose metadata marks them as a reference into secretValues (json_schema_extra secret_ref)."""
    if isinstance(model, BaseModel):
        for name, field in type(model).model_fields.items():
            value = getattr(model, name)
            extra = field.json_schema_extra or {}
            key = field.alias or name
            if isinstance(extra, dict) and extra.get("secret_ref") and value is not None:
                yield ".".join(path + (key,)), value
            else:
                yield from _secret_refs(value, path + (key,))
    elif isinstance(model, (list, tuple)):
        for i, item in enumerate(model):
            yield from _secret_refs(item, path[:-1] + (f"{path[-1]}[{i}]",) if path else (f"[{i}]",))
    elif isinstance(model, dict):
        for key, item in model.items():
            yield from _secret_refs(item, path + (str(key),))


def _get(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _format(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        key = "secstack:" + _loc(loc)
        kind = error["type"]
        if kind == "extra_forbidden":
            allowed = _allowed_at(loc[:-1])
            problems.append(f"{key}: unknown key; allowed keys: {', '.join(allowed)}")
        elif kind == "missing":
            problems.append(f"{key}: required key is missing")
        elif kind in ("value_error", "assertion_error") and not loc:
            for part in str(error["msg"]).removeprefix("Value error, ").split("; "):
                problems.append(f"secstack:{part}")
        else:
            msg = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{key}: {msg} (got {error.get('input')!r})" if kind != "value_error" else f"{key}: {msg}")
    return problems


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith(("function-after", "literal[", "function-plain")):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


def _allowed_at(loc: tuple) -> list[str]:
    model: Any = Settings
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part or n == part), None)
        if field is None:
            return []
        model = _unwrap(field.annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return sorted(f.alias or n for n, f in model.model_fields.items() if n != "secret_values")
    return []


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is not None:
        args = [a for a in get_args(annotation) if a is not type(None)]
        candidates = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if candidates:
            return candidates[0]
        if not args:
            return annotation
        annotation = args[-1]
    return annotation


__all__ = [
    "Environment",
    "JwtAuthSettings",
    "MeshSettings",
    "SecretValue",
    "Settings",
    "SettingsError",
    "TeamSettings",
    "load",
    "profile",
]
