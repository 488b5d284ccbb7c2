"""The `secstack-auth` ConfigMap: one per JWT-protected namespace, equal to the RequestAuthentication of the same
preview, and readable by `secstack.auth.TokenVerifier`."""
from __future__ import annotations

import json

import pytest

from secstack import auth
from tests.conftest import STACKS, rendered

MESH = "secstack:mesh:IstioMesh"


def _auth_documents(preview) -> dict[str, dict]:
    out = {}
    for cm in preview.find("ConfigMap", auth.CONFIGMAP_NAME):
        assert set(cm["data"]) == {auth.CONFIG_KEY}
        out[cm["metadata"]["namespace"]] = json.loads(cm["data"][auth.CONFIG_KEY])
    return out


@pytest.mark.parametrize("stack", STACKS)
def test_configmap_equals_the_request_authentication(stack):
    preview = rendered(stack)
    documents = _auth_documents(preview)
    request_auths = preview.find("RequestAuthentication")
    assert request_auths, f"{stack}: no RequestAuthentication rendered"
    assert set(documents) == {ra["metadata"]["namespace"] for ra in request_auths}
    for ra in request_auths:
        [rule] = ra["spec"]["jwtRules"]
        document = documents[ra["metadata"]["namespace"]]
        assert {k: document[k] for k in ("issuer", "jwksUri", "audiences")} == {k: rule[k] for k in ("issuer", "jwksUri", "audiences")}


@pytest.mark.parametrize("stack", STACKS)
def test_configmap_carries_the_service_side_settings(stack, tmp_path):
    preview = rendered(stack)
    jwt = preview.settings.mesh.jwt
    for ns, document in _auth_documents(preview).items():
        assert document["algorithms"] == list(jwt.algorithms)
        assert document["leewaySeconds"] == jwt.leeway_seconds
        assert document["requiredClaims"] == list(jwt.required_claims)
        assert (document["rolesClaim"], document["scopesClaim"]) == (jwt.roles_claim, jwt.scopes_claim)
        # What a pod mounting the ConfigMap gets: a verifier for exactly the mesh's issuer.
        (tmp_path / ns).mkdir()
        (tmp_path / ns / auth.CONFIG_KEY).write_text(json.dumps(document))
        verifier = auth.TokenVerifier.from_configmap_dir(tmp_path / ns)
        assert verifier.settings == jwt


@pytest.mark.parametrize("stack", STACKS)
def test_scope_splitting_agrees_with_the_mesh(stack):
    preview = rendered(stack)
    verifier = auth.TokenVerifier(preview.settings.mesh.jwt)
    for ra in preview.find("RequestAuthentication"):
        [rule] = ra["spec"]["jwtRules"]
        assert set(rule.get("spaceDelimitedClaims", [])) | auth.ISTIO_SPACE_DELIMITED == verifier.space_delimited


@pytest.mark.parametrize("stack", STACKS)
def test_only_jwt_namespaces_get_the_configmap(stack):
    preview = rendered(stack)
    protected = {ns for _, service, ns, _ in preview.settings.services() if service.jwt_rules}
    assert set(_auth_documents(preview)) == protected
    assert "payments" not in protected, "payments has no JWT rules in the committed stacks"


@pytest.mark.parametrize("stack", STACKS)
def test_configmap_is_immutable_and_owned_by_the_mesh(stack):
    preview = rendered(stack)
    [mesh] = preview.of_type(MESH)
    registrations = [r for r in preview.of_type("kubernetes:core/v1:ConfigMap") if r.name.endswith(f"-{auth.CONFIGMAP_NAME}")]
    assert registrations
    for registration in registrations:
        assert registration.parent == mesh.urn
        assert registration.options["deleteBeforeReplace"] is True
    for cm in preview.find("ConfigMap", auth.CONFIGMAP_NAME):
        assert cm["immutable"] is True
