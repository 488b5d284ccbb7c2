"""components/ as a Pulumi component package: the public components and the schema the SDK's analyzer infers.

`pulumi package add <repo>/components` runs components/__main__.py, which hosts PUBLIC_COMPONENTS with
`pulumi.provider.experimental.component_provider_host`; the schema is inferred from the args TypedDicts and the
annotated outputs. `python -m components.package` prints it (`make schema` writes components/schema.json).
"""
from __future__ import annotations

import inspect
import json
import sys
import typing
from typing import Any

import pulumi

PACKAGE = "secstack"

# Module -> public component classes, in the order they are composed by SecurityPlatform.
PUBLIC = {
    "components.teams": ["Team"],
    "components.mesh": ["IstioMesh"],
    "components.kms": ["KmsKeyring"],
    "components.identity": ["RrsaIdentities"],
    "components.secrets": ["Secrets"],
    "components.data_security": ["DataSecurity"],
    "components.cluster": ["ManagedCluster"],
    "components.logging": ["SecurityLogging"],
    "components.monitoring": ["SecurityMonitoring"],
    "components.scanning": ["TrivyOperator"],
    "components.runtime": ["Falco"],
    "components.admission": ["Gatekeeper"],
    "components.platform": ["SecurityPlatform"],
}


def public_components() -> list[type[pulumi.ComponentResource]]:
    import importlib

    out = []
    for module, names in PUBLIC.items():
        mod = importlib.import_module(module)
        out += [getattr(mod, name) for name in names]
    resolve_annotations(out)
    return out


def _evaluate(value: Any, namespace: dict) -> Any:
    if isinstance(value, typing.ForwardRef):
        value = value.__forward_arg__
    return eval(value, namespace) if isinstance(value, str) else value  # noqa: S307 - our own annotations


def _resolve_class(cls: type, seen: set[int]) -> None:
    if id(cls) in seen:
        return
    seen.add(id(cls))
    for klass in cls.__mro__:
        own = klass.__dict__.get("__annotations__")
        if not own or not klass.__module__.startswith("components"):
            continue
        namespace = vars(sys.modules[klass.__module__])
        resolved = {k: _evaluate(v, namespace) for k, v in own.items()}
        klass.__annotations__ = resolved
        for value in resolved.values():
            _resolve_nested(value, seen)


def _resolve_nested(value: Any, seen: set[int]) -> None:
    for arg in typing.get_args(value):
        _resolve_nested(arg, seen)
    if inspect.isclass(value) and value.__module__.startswith("components"):
        _resolve_class(value, seen)


def resolve_annotations(components: list[type]) -> None:
    """The components use `from __future__ import annotations`, so their annotations are strings (TypedDicts keep
    them as ForwardRefs); the analyzer reads annotations raw. Evaluate them once, in the components' own modules."""
    seen: set[int] = set()
    for component in components:
        init = component.__init__
        init.__annotations__ = {k: _evaluate(v, vars(sys.modules[component.__module__])) for k, v in inspect.get_annotations(init).items()}
        _resolve_nested(init.__annotations__["args"], seen)
        _resolve_class(component, seen)


def version() -> str:
    from secstack import __version__

    return __version__


def schema() -> dict[str, Any]:
    """The package schema exactly as the hosted provider serves it (GetSchema), offline."""
    from pulumi.provider.experimental.component import ComponentProvider

    provider = ComponentProvider(public_components(), PACKAGE, None, version())
    return json.loads(provider.schema)


if __name__ == "__main__":
    print(json.dumps(schema(), indent=2, sort_keys=True))
