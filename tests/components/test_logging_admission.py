"""The logging namespace as rendered passes the stack's own Gatekeeper constraints (secstack.gatekeeper), with
the shipper's written exemptions, and fails them without."""
from __future__ import annotations

import copy

import pytest

from components import logging_config as cfg
from secstack.admission_constraints import constraints_for
from secstack.gatekeeper import Engine
from secstack.preview import load_stack
from tests.components.logging_render import as_eck_creates, rendered_logging
from tests.conftest import STACKS

# The rules the Filebeat DaemonSet cannot meet: hostPath log mounts and root to read the root-owned files.
SHIPPER_RULES = ("K8sPSPHostFilesystem", "K8sPSPVolumeTypes", "K8sPSPAllowedUsers")
OUR_NAMESPACES = (cfg.NAMESPACE, cfg.OPERATOR_NAMESPACE)


def _objects(stack):
    out = []
    for _, obj in rendered_logging(stack).kubernetes_objects():
        namespace = obj["metadata"].get("namespace") or (obj["metadata"]["name"] if obj["kind"] == "Namespace" else None)
        if namespace in OUR_NAMESPACES:
            out.append(as_eck_creates(obj))
    return out


def _denied(stack, objects, settings=None):
    settings = settings or load_stack(stack)[0]
    constraints = constraints_for(settings)
    engine = Engine()
    return [v for obj in objects for v in engine.evaluate(obj, constraints) if v.enforcement_action == "deny"]


@pytest.mark.parametrize("stack", STACKS)
def test_logging_namespace_passes_the_stack_admission_policies(stack):
    objects = _objects(stack)
    assert {"StatefulSet", "Deployment", "DaemonSet", "Job"} <= {o["kind"] for o in objects}
    denied = _denied(stack, objects)
    assert not denied, "\n".join(f"{v.kind} {v.object_kind} {v.namespace}/{v.name}: {v.message}" for v in denied)


@pytest.mark.parametrize("stack", STACKS)
def test_shipper_exemptions_are_written_with_a_reason(stack):
    settings, _ = load_stack(stack)
    for rule in SHIPPER_RULES:
        covering = [e for e in settings.admission.exemptions if e.rule == rule and cfg.NAMESPACE in e.namespaces]
        assert covering, f"{stack}: no {rule} exemption for the {cfg.NAMESPACE} namespace"
        assert all(len(e.reason) >= 10 for e in covering)


def test_without_the_shipper_exemptions_prod_denies_the_shipper():
    settings, _ = load_stack("prod")
    admission = settings.admission
    kept = [e for e in admission.exemptions if not (e.rule in SHIPPER_RULES and cfg.NAMESPACE in e.namespaces)]
    stripped = settings.model_copy(update={"admission": admission.model_copy(update={"exemptions": kept})})
    shipper = [o for o in _objects("prod") if o["kind"] == "DaemonSet"]
    denied = {v.kind for v in _denied("prod", shipper, stripped)}
    assert {"K8sPSPHostFilesystem", "K8sPSPAllowedUsers"} <= denied


def test_a_privileged_shipper_would_be_denied_in_prod():
    [shipper] = [o for o in _objects("prod") if o["kind"] == "DaemonSet"]
    bad = copy.deepcopy(shipper)
    bad["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
    assert "K8sPSPPrivilegedContainer" in {v.kind for v in _denied("prod", [bad])}
