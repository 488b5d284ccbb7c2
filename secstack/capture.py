"""The Pulumi SDK mock monitor, recording every registration as the engine would receive it.

The SDK's MockMonitor drops the resource options; they are in the RegisterResource request, so this monitor
keeps them (protect, retainOnDelete, deleteBeforeReplace, ignoreChanges, provider, parent, dependencies).
"""
from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import pulumi
from pulumi.runtime import mocks, rpc

SECRET_SIG = rpc._special_sig_key  # noqa: SLF001 - the wire marker of a secret value
SECRET_VALUE = rpc._special_secret_sig  # noqa: SLF001
REDACTED = "[secret]"

# Outputs a real provider computes that the program reads back (type token -> name, inputs -> extra state).
COMPUTED: dict[str, Callable[[str, dict], dict]] = {}


def computed(type_token: str):
    def register(fn: Callable[[str, dict], dict]):
        COMPUTED[type_token] = fn
        return fn

    return register


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    dependencies: list[str]
    inputs: dict[str, Any]  # as received: secrets still wrapped in the wire marker
    options: dict[str, Any]
    id: Optional[str] = None
    state: dict[str, Any] = field(default_factory=dict)

    def redacted_inputs(self) -> dict[str, Any]:
        """Inputs as they would be applied, secrets replaced by "[secret]" (computed once; do not mutate)."""
        cached = self.__dict__.get("_redacted")
        if cached is None:
            cached = self.__dict__["_redacted"] = self._without_secrets() or normalize(self.inputs, redact=True)
        return cached

    def _without_secrets(self) -> Optional[dict[str, Any]]:
        """For the many resources without secrets, one C-speed JSON round trip gives both views at once."""
        if "_shared" not in self.__dict__:
            try:
                text = json.dumps(self.inputs)
            except (TypeError, ValueError):
                text = SECRET_SIG  # not plain data: take the careful path
            self.__dict__["_shared"] = None if SECRET_SIG in text else json.loads(text, parse_float=_number)
        return self.__dict__["_shared"]

    def plain_inputs(self) -> dict[str, Any]:
        """Inputs with secrets unwrapped, as the engine hands them to policy packs (computed once; do not mutate)."""
        cached = self.__dict__.get("_plain")
        if cached is None:
            cached = self.__dict__["_plain"] = self._without_secrets() or normalize(self.inputs, redact=False)
        return cached


def _number(text: str) -> Any:
    number = float(text)
    return int(number) if number.is_integer() else number


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG) == SECRET_VALUE


def normalize(value: Any, redact: bool) -> Any:
    """Wire values back to manifest values: integral floats to ints (protobuf Structs only carry doubles),
    secrets redacted or unwrapped."""
    if is_secret(value):
        return _redact(value.get("value")) if redact else normalize(value.get("value"), redact)
    if isinstance(value, dict):
        return {k: normalize(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v, redact) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _redact(value: Any) -> Any:
    """Keep the shape of a secret (map keys, list length) so manifests stay schema-valid; drop every value."""
    if is_secret(value):
        return _redact(value.get("value"))
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return REDACTED


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.monitor: Optional["CapturingMonitor"] = None

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        extra = COMPUTED.get(args.typ)
        state = {**args.inputs, **(extra(args.name, args.inputs) if extra else {})}
        resource_id = f"{args.name}-id"
        self.monitor.record(args.inputs, resource_id, state)
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}, None


class CapturingMonitor(mocks.MockMonitor):
    def __init__(self, progress: bool = False):
        handler = _Mocks()
        super().__init__(handler)
        handler.monitor = self
        self.registrations: list[Registration] = []
        self._request = threading.local()
        self._lock = threading.Lock()
        self._progress = progress
        self._started = time.monotonic()
        self._last_report = self._started

    def RegisterResource(self, request):  # noqa: N802 - gRPC method name
        self._request.current = request
        return super().RegisterResource(request)

    def record(self, inputs: dict, resource_id: str, state: dict) -> None:
        request = self._request.current
        registration = Registration(
            urn=self.make_urn(request.parent, request.type, request.name),
            type=request.type,
            name=request.name,
            custom=request.custom,
            parent=request.parent,
            dependencies=sorted(set(request.dependencies)),
            inputs=inputs,
            options={
                "protect": request.protect if request.HasField("protect") else False,
                "retainOnDelete": request.retainOnDelete if request.HasField("retainOnDelete") else False,
                "deleteBeforeReplace": request.deleteBeforeReplace,
                "ignoreChanges": list(request.ignoreChanges),
                "provider": request.provider or None,
                "additionalSecretOutputs": list(request.additionalSecretOutputs),
            },
            id=resource_id,
            state=state,
        )
        with self._lock:
            self.registrations.append(registration)
            count = len(self.registrations)
        now = time.monotonic()
        if self._progress and now - self._last_report > 2:
            self._last_report = now
            print(f"  ... {count} resources registered ({now - self._started:.0f}s)", file=sys.stderr, flush=True)
