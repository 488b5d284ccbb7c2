"""Engine.evaluate_all (constraint-major batches, forked workers) gives exactly what `evaluate` gives object by
object, and the regex-free paths in the Rego (allowed-repos globs, plain quantities) keep the regex verdicts."""
from __future__ import annotations

import copy

import pytest

from secstack.gatekeeper import Constraint, Engine, bundle_constraints

IMAGES = [
    "registry.cn-hangzhou.aliyuncs.com/ns/app:1", "registry-vpc.cn-beijing.aliyuncs.com/a/b@sha256:" + "a" * 64,
    "my.cr.aliyuncs.com/x/y:latest", "evil.example/x.cr.aliyuncs.com/a", "registry..aliyuncs.com/", "nginx",
    "registry.a/b.aliyuncs.com/x", "host:443/app", "", "x.cr.aliyuncs.com", "\n.cr.aliyuncs.com/x", "é.cr.aliyuncs.com/x",
]
QUANTITIES = ["100m", "1", "+1", "1.5", ".5", "1e3", "5mi", "2Gi", "1E", "k", "", "1Mii", "1.Gi", 100, 0.5, True, "１"]


def workload(i: int) -> dict:
    container = {"name": f"c{i % 3}", "image": IMAGES[i % len(IMAGES)],
                 "resources": {"limits": {"cpu": QUANTITIES[i % len(QUANTITIES)], "memory": QUANTITIES[(i * 7) % len(QUANTITIES)]},
                               "requests": {"cpu": "100m", "memory": QUANTITIES[(i * 5) % len(QUANTITIES)]}},
                 "securityContext": {"privileged": i % 4 == 0, "readOnlyRootFilesystem": i % 3 == 0}}
    pod = {"metadata": {"labels": {"team": ["shop", "Shop", "a-", 5][i % 4], "owner": "lead"}},
           "spec": {"containers": [container] + ([copy.deepcopy(container)] if i % 5 == 0 else []),
                    "initContainers": [dict(container, name="init")] if i % 6 == 0 else []}}
    kind = ("Deployment", "CronJob", "Pod", "StatefulSet")[i % 4]
    meta = {"name": f"w{i}", "namespace": f"team-{i % 5}", "labels": {"team": "shop"}}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": kind, "metadata": dict(meta, labels=pod["metadata"]["labels"]), "spec": pod["spec"]}
    if kind == "CronJob":
        return {"apiVersion": "batch/v1", "kind": kind, "metadata": meta, "spec": {"jobTemplate": {"spec": {"template": pod}}}}
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": {"template": pod}}


@pytest.fixture(scope="module")
def everything():
    constraints = bundle_constraints("pss-restricted") + bundle_constraints("general")
    objects = [workload(i) for i in range(240)] + [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                                                     "spec": {"type": "NodePort"}}, "not an object"]
    return Engine(), objects, constraints


@pytest.mark.parametrize("workers", [1, 2])
def test_evaluate_all_equals_evaluate_per_object(everything, workers):
    engine, objects, constraints = everything
    serial = [engine.evaluate(obj, constraints) for obj in objects]
    assert engine.evaluate_all(objects, constraints, workers=workers) == serial
    assert sum(map(len, serial)) > 1000  # the objects do violate: the comparison is not between empty lists


def test_evaluate_all_raises_the_error_serial_evaluation_meets_first(everything):
    engine, objects, _ = everything
    unknown = Constraint(kind="K8sNoSuchRule", name="nope")
    for workers in (1, 2):
        with pytest.raises(Exception, match="no ConstraintTemplate defines kind K8sNoSuchRule"):
            engine.evaluate_all(objects, [unknown], workers=workers)


@pytest.mark.parametrize(("repo", "image", "allowed"), [
    ("*.cr.aliyuncs.com/", "my-acr.cr.aliyuncs.com/ns/app", True),
    ("*.cr.aliyuncs.com/", "evil.example/x.cr.aliyuncs.com/a", False),
    ("*.cr.aliyuncs.com/", ".cr.aliyuncs.com/a", True),
    ("registry.*.aliyuncs.com/", "registry.a/b.aliyuncs.com/x", False),
    ("registry.*.aliyuncs.com", "registry.x.aliyuncs.com.evil/x", True),  # an entry is a prefix, as upstream
    ("a*b/c", "aXb/cd", True),
    ("a*b/c", "a/b/c", False),
    ("a**/", "ab", False),  # `**` is not a glob super-star here: it still stops at `/`
    ("a**/", "ab/", True),
    ("a?b*", "a?bc", False),  # `?` is not allowed in a glob entry
])
def test_allowed_repo_globs(repo, image, allowed):
    constraint = Constraint(kind="K8sAllowedRepos", name="repos", parameters={"repos": [repo]})
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": image}]}}
    assert (Engine().evaluate(pod, [constraint]) == []) is allowed


@pytest.mark.parametrize(("value", "parsable"), [
    ("500m", True), ("256Mi", True), ("1", True), ("+1", True), ("1.5Gi", True), ("1e3", True), ("2E", True),
    ("5mi", False), ("Mi", False), ("1Mii", False), ("1 Gi", False), ("１", False), ("-1", False), ("", False),
])
def test_quantities_parse_as_before(value, parsable):
    resources = {"limits": {"cpu": value, "memory": value}}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "a", "image": "x", "resources": resources}]}}
    constraint = Constraint(kind="K8sContainerLimits", name="limits", parameters={"cpu": "1000", "memory": "1000Ei"})
    messages = [v.message for v in Engine().evaluate(pod, [constraint])]
    assert any("could not be parsed" in m for m in messages) is not parsable
