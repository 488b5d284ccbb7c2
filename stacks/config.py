"""Reading raw stack config: from a stack file (the CLI, before anything runs) or from the Pulumi engine.

Both give the same shape: `{"secstack:mesh": {...}, ...}` with structured values decoded and every value that was
`secure:` wrapped in `SecretValue`. Only this module and the program read config.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Callable, Optional

import yaml

from stacks.settings import SecretValue

STACKS_DIR = Path(__file__).resolve().parent
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: large stacks parse ~10x faster


class StackFileError(Exception):
    pass


def stack_file(stack: str, directory: Path = STACKS_DIR) -> Path:
    return directory / f"Pulumi.{stack}.yaml"


def read_stack_file(path: Path, reveal: Optional[Callable[[str, str], str]] = None) -> dict[str, Any]:
    """Raw config of a stack file. `secure:` leaves become SecretValue; `reveal(name, ciphertext)` gives their
    value (default: a placeholder, so nothing is ever decrypted or printed)."""
    try:
        document = yaml.load(path.read_text(), Loader=_Loader) or {}
    except FileNotFoundError:
        raise StackFileError(f"{path}: no such stack file; create it with `secstack:environment: dev|staging|prod`")
    except yaml.YAMLError as exc:
        raise StackFileError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("config", {}), dict):
        raise StackFileError(f"{path}: expected a mapping with a `config:` mapping")
    reveal = reveal or (lambda name, _: f"<secret:{name}>")
    return {key: _wrap_secure(value, key, reveal) for key, value in (document.get("config") or {}).items()}


def _wrap_secure(value: Any, path: str, reveal: Callable[[str, str], str]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            name = path.rsplit(".", 1)[-1].split(":")[-1]
            return SecretValue(name, reveal(name, value["secure"]))
        return {k: _wrap_secure(v, f"{path}.{k}", reveal) for k, v in value.items()}
    if isinstance(value, list):
        return [_wrap_secure(v, f"{path}[{i}]", reveal) for i, v in enumerate(value)]
    return value


def read_engine_config() -> dict[str, Any]:
    """Raw config as the Pulumi engine hands it to the program (decrypted, secret keys listed)."""
    from pulumi.runtime import config as runtime_config

    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    raw: dict[str, Any] = {}
    for key, value in values.items():
        decoded = _decode(value)
        if runtime_config.is_config_secret(key):
            decoded = _wrap_all(decoded, key.split(":")[-1])
        raw[key] = decoded
    return raw


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _wrap_all(value: Any, name: str) -> Any:
    if isinstance(value, dict):
        return {k: _wrap_all(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_wrap_all(v, name) for v in value]
    return SecretValue(name, str(value))


def to_engine_config(raw: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """The inverse of read_engine_config, for the offline preview: string values and the secret keys."""
    config, secret_keys = {}, []
    for key, value in raw.items():
        has_secret = [False]
        plain = _unwrap(value, has_secret)
        config[key] = plain if isinstance(plain, str) else json.dumps(plain)
        if has_secret[0]:
            secret_keys.append(key)
    return config, secret_keys


def _unwrap(value: Any, has_secret: list) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()  # YAML reads an unquoted 2027-06-30 as a date; the engine hands strings
    if isinstance(value, SecretValue):
        has_secret[0] = True
        return value.reveal()
    if isinstance(value, dict):
        return {k: _unwrap(v, has_secret) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v, has_secret) for v in value]
    return value
