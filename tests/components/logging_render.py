"""Render SecurityLogging alone under the capturing mock monitor, from a committed stack's `secstack:logging`
section (merged over the environment profile), so these tests do not depend on the other areas' components."""
from __future__ import annotations

import asyncio
import contextvars
import functools
from typing import Callable, Optional

import pulumi

from components.logging import SecurityLogging, SecurityLoggingArgs
from secstack.capture import CapturingMonitor
from secstack.preview import Preview
from stacks.args import logging_args_from
from stacks.config import read_stack_file, stack_file
from stacks.settings import _deep_merge
from stacks.settings.logging import PROFILE, LoggingSettings

# What the offline preview reveals for a `secure:` value: it must never appear outside a secret.
PLACEHOLDER = "<secret:"


def stack_logging(stack: str, **overrides) -> tuple[str, LoggingSettings]:
    raw = read_stack_file(stack_file(stack))
    environment = raw["secstack:environment"]
    data = _deep_merge(PROFILE[environment], raw.get("secstack:logging") or {})
    return environment, LoggingSettings.model_validate({**data, **overrides})


def args_for(stack: str, **overrides) -> SecurityLoggingArgs:
    environment, settings = stack_logging(stack, **overrides)
    passwords = {key: pulumi.Output.secret(f"{PLACEHOLDER}{key}>") for key in ("setup", "shipper", "falcosidekick")}
    return logging_args_from(settings, environment, passwords, "cluster.local")


def render(make_args: Callable[[], SecurityLoggingArgs], stack: str = "test") -> Preview:
    """`make_args` runs inside the program's event loop (Outputs belong to the loop that creates them)."""
    monitor = CapturingMonitor()

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            pulumi.runtime.set_mocks(monitor.mocks, project="secstack", stack=stack, preview=True, monitor=monitor)
            SecurityLogging("logging", make_args())
            loop.run_until_complete(pulumi.runtime.stack.wait_for_rpcs())
        finally:
            loop.close()
            asyncio.set_event_loop(None)

    contextvars.Context().run(run)
    return Preview(stack=stack, settings=None, resources=monitor.registrations)  # type: ignore[arg-type]


@functools.cache
def rendered_logging(stack: str) -> Preview:
    return render(lambda: args_for(stack), stack)


def one(preview: Preview, kind: str, name: Optional[str] = None, namespace: Optional[str] = None) -> dict:
    found = preview.find(kind, name, namespace)
    assert len(found) == 1, f"expected one {kind} {namespace}/{name}, found {len(found)}"
    return found[0]


ECK_IMAGES = {
    "Elasticsearch": "docker.elastic.co/elasticsearch/elasticsearch",
    "Kibana": "docker.elastic.co/kibana/kibana",
    "Beat": "docker.elastic.co/beats/filebeat",
}


def as_eck_creates(obj: dict) -> dict:
    """The workload ECK creates from one of its CRs (the pod template we control plus ECK's image), so admission
    rules that match Pods and workloads can judge it offline. Other objects are returned unchanged."""
    import copy

    kind, spec = obj["kind"], obj.get("spec") or {}
    templates = {
        "Elasticsearch": ("StatefulSet", lambda: spec["nodeSets"][0]["podTemplate"]),
        "Kibana": ("Deployment", lambda: spec["podTemplate"]),
        "Beat": ("DaemonSet", lambda: spec["daemonSet"]["podTemplate"]),
    }
    if kind not in templates:
        return obj
    workload, template_of = templates[kind]
    template = copy.deepcopy(template_of())
    for container in template["spec"]["containers"]:
        container.setdefault("image", f"{ECK_IMAGES[kind]}:{spec['version']}")
    return {
        "apiVersion": "apps/v1",
        "kind": workload,
        "metadata": {"name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"]},
        "spec": {"selector": {"matchLabels": {}}, "template": template},
    }
