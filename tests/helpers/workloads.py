"""Workloads the admission tests feed to the rules."""

# Privileged, `latest` from Docker Hub, no probes or limits: every general and PSS rule has something to say.
BAD_DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "bad", "namespace": "orders", "labels": {"team": "orders", "owner": "orders-lead"}},
    "spec": {
        "selector": {"matchLabels": {"app": "bad"}},
        "template": {
            "metadata": {"labels": {"app": "bad", "team": "orders", "owner": "orders-lead"}},
            "spec": {"containers": [{"name": "app", "image": "nginx:latest", "securityContext": {"privileged": True}}]},
        },
    },
}
