"""Monitoring settings: receiver shapes, routing coverage per environment and guards."""
from __future__ import annotations

import pytest

from stacks.config import read_stack_file, stack_file
from stacks.settings import SecretValue, SettingsError, load


def _raw(env: str, monitoring: dict) -> dict:
    """A committed stack's config with our section replaced (the other sections stay valid)."""
    raw = read_stack_file(stack_file(env))
    raw["secstack:monitoring"] = monitoring
    raw["secstack:secretValues"] = {**raw["secstack:secretValues"], "hook": SecretValue("hook", "x")}
    return raw


HOOK = {"name": "sec", "type": "webhook", "urlSecret": "hook", "severities": ["critical", "warning"]}


def _problems(raw) -> list[str]:
    with pytest.raises(SettingsError) as exc:
        load(raw)
    return [p for p in exc.value.problems if "monitoring" in p]


def test_profile_defaults_per_environment():
    settings = load(_raw("prod", {"receivers": [HOOK]}))
    assert (settings.monitoring.retention, settings.monitoring.alertmanager_replicas) == ("30d", 3)
    assert load(_raw("dev", {})).monitoring.retention == "3d"


def test_prod_needs_receivers_for_critical_and_warning():
    problems = _problems(_raw("prod", {"receivers": [{**HOOK, "severities": ["critical"]}]}))
    assert any("severity warning" in p for p in problems)


def test_weaker_retention_in_prod_needs_a_reason():
    problems = _problems(_raw("prod", {"receivers": [HOOK], "retention": "7d"}))
    assert any(p.startswith("secstack:monitoring.retention:") and "reason" in p for p in problems)
    assert load(_raw("prod", {"receivers": [HOOK], "retention": "7d", "reason": "cost, evidence in ELK"})).monitoring.retention == "7d"


def test_unknown_secret_reference_is_named():
    problems = _problems(_raw("dev", {"receivers": [{**HOOK, "urlSecret": "nope"}]}))
    assert any("secstack:monitoring.receivers[0].urlSecret" in p and "'nope'" in p for p in problems)


@pytest.mark.parametrize(
    "receiver, message",
    [
        ({"name": "w", "type": "webhook", "severities": ["critical"]}, "needs urlSecret"),
        ({"name": "m", "type": "email", "severities": ["critical"], "to": ["a@b.io"]}, "needs sender, smarthost"),
        ({"name": "m", "type": "email", "severities": ["critical"], "to": ["a@b.io"], "sender": "x@b.io", "smarthost": "smtp"}, "host:port"),
        ({**HOOK, "name": "null"}, "other than 'null'"),
        ({**HOOK, "severities": ["urgent"]}, "severities"),
    ],
)
def test_bad_receivers_are_rejected_with_the_key(receiver, message):
    problems = _problems(_raw("dev", {"receivers": [receiver]}))
    assert any("secstack:monitoring.receivers" in p and message in p for p in problems), problems


def test_default_receiver_must_exist():
    problems = _problems(_raw("dev", {"receivers": [HOOK], "defaultReceiver": "pager"}))
    assert any("defaultReceiver" in p and "'pager'" in p for p in problems)
