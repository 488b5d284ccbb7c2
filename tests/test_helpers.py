"""The validation helpers must be able to fail, or every test built on them proves nothing."""
from tests.helpers.charts import unknown_keys
from tests.helpers.crds import crd_errors


def test_crd_check_rejects_bad_enum_and_unknown_field():
    obj = {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": "default", "namespace": "istio-system"},
        "spec": {"mtls": {"mode": "BOGUS"}, "mtlsTypo": {}},
    }
    errors = crd_errors(obj)
    assert any("BOGUS" in e for e in errors)
    assert any("mtlsTypo" in e for e in errors)


def test_crd_check_accepts_int_or_string_and_preserved_fields():
    obj = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "x", "namespace": "y"},
        "spec": {"action": "ALLOW", "rules": [{"to": [{"operation": {"ports": ["8080"]}}]}]},
    }
    assert crd_errors(obj) == []


def test_chart_key_check_strips_istio_prefix_and_flags_typos():
    assert unknown_keys("istiod", {"replicaCount": 2, "global": {"logAsJson": True}}) == []
    assert unknown_keys("istiod", {"replicaCnt": 2, "pilot": {"env": {}}}) == ["replicaCnt", "pilot"]
    # keys below an empty-map default are free-form
    assert unknown_keys("istiod", {"autoscaleBehavior": {"anything": 1}}) == []
