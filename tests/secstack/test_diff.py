"""`secstack diff`: what changes between environments, read off what each stack declares."""
from __future__ import annotations

import json

from secstack.cli import main
from secstack.posture import diff, posture
from tests.conftest import rendered


def test_dev_to_prod_differences_are_the_security_relevant_ones(capsys):
    code = main(["diff", "dev", "prod", "--format", "json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and (result["a"], result["b"]) == ("dev", "prod")
    rows = {r["key"]: (r["a"], r["b"]) for r in result["differences"]}
    assert rows["environment"] == ("dev", "prod")
    assert rows["podSecurity[orders]"] == ("baseline", "restricted")
    assert rows["helm[istiod].meshConfig.outboundTrafficPolicy.mode"] == ("ALLOW_ANY", "REGISTRY_ONLY")
    assert rows["helm[istiod].replicaCount"] == (1, 3)
    actions = {k: v for k, v in rows.items() if k.startswith("admission[") and k.endswith("enforcementAction")}
    assert actions and all(b == "deny" for _, b in actions.values())
    assert "mesh.mtls[istio-system/default]" not in rows, "both are STRICT: not a difference"


def test_text_table(capsys):
    assert main(["diff", "staging", "prod"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["setting", "staging", "prod"]
    assert "differences between staging and prod" in out


def test_identical_stacks_have_no_differences():
    p = posture(rendered("prod"))
    assert diff(p, p) == [] and p["mesh.mtls[istio-system/default]"] == "STRICT"


def test_unknown_stack_is_bad_input(capsys):
    assert main(["diff", "dev", "nope"]) == 2
    assert "Pulumi.nope.yaml: no such stack file" in capsys.readouterr().err
